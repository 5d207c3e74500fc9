/*
 * Open MPI called from C: the baseline the MPI engine is measured against
 * (bench/mpi.js). The same timing as gloo_reference.cc: per size, warm-up
 * calls, a barrier, then the timed calls back to back on the calling thread;
 * rank 0 prints one line per size, "<bytes> <microseconds per call>".
 *
 *   mpirun -np 2 mpi-reference --op all_reduce --sizes 8,4096 --iters 1000,1000
 *       [--warmup 5] [--nonblocking 1]
 *
 * Sizes are nccl-tests' size column: the all-reduce's array (reduced in
 * place, as bench/overhead-rank.js calls the engine); the whole array of a
 * reduce-scatter or an all-gather (per rank: size / ranks). float32, sum.
 * --nonblocking 1 runs MPI_Iallreduce (...) + MPI_Wait, the calls the engine
 * makes, instead of the blocking collectives.
 *
 * Built on first use by bench/mpi.js: mpicc -O2 -o build/reference/mpi-reference
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZES 64

static int parse_list(const char* text, long* out) {
  int n = 0;
  const char* p = text;
  while (*p && n < MAX_SIZES) {
    char* end;
    out[n++] = strtol(p, &end, 10);
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) break;
  }
  return n;
}

int main(int argc, char** argv) {
  const char* op = "all_reduce";
  long sizes[MAX_SIZES], iters[MAX_SIZES];
  int nsizes = 0, niters = 0, warmup = 5, nonblocking = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--op")) op = argv[i + 1];
    else if (!strcmp(argv[i], "--sizes")) nsizes = parse_list(argv[i + 1], sizes);
    else if (!strcmp(argv[i], "--iters")) niters = parse_list(argv[i + 1], iters);
    else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--nonblocking")) nonblocking = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "mpi-reference: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (nsizes == 0 || niters != nsizes) {
    fprintf(stderr, "mpi-reference: --sizes and as many --iters are required\n");
    return 2;
  }
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (int s = 0; s < nsizes; s++) {
    long count = sizes[s] / 4;
    long per = count / size;
    float* in = calloc((size_t)count + 1, sizeof(float));
    float* out = calloc((size_t)count + 1, sizeof(float));
    for (long i = 0; i < count; i++) in[i] = (float)(i % 7);
    double t0 = 0;
    for (int it = -warmup; it < iters[s]; it++) {
      if (it == 0) {
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
      }
      MPI_Request req;
      if (!strcmp(op, "all_reduce")) {
        if (nonblocking) {
          MPI_Iallreduce(MPI_IN_PLACE, in, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
          MPI_Wait(&req, MPI_STATUS_IGNORE);
        } else {
          MPI_Allreduce(MPI_IN_PLACE, in, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        }
      } else if (!strcmp(op, "reduce_scatter")) {
        if (nonblocking) {
          MPI_Ireduce_scatter_block(in, out, (int)per, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
          MPI_Wait(&req, MPI_STATUS_IGNORE);
        } else {
          MPI_Reduce_scatter_block(in, out, (int)per, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        }
      } else if (!strcmp(op, "all_gather")) {
        if (nonblocking) {
          MPI_Iallgather(in, (int)per, MPI_FLOAT, out, (int)per, MPI_FLOAT, MPI_COMM_WORLD, &req);
          MPI_Wait(&req, MPI_STATUS_IGNORE);
        } else {
          MPI_Allgather(in, (int)per, MPI_FLOAT, out, (int)per, MPI_FLOAT, MPI_COMM_WORLD);
        }
      } else {
        if (rank == 0) fprintf(stderr, "mpi-reference: unknown op %s\n", op);
        MPI_Abort(MPI_COMM_WORLD, 2);
      }
    }
    if (rank == 0) {
      printf("%ld %.2f\n", sizes[s], (MPI_Wtime() - t0) * 1e6 / (double)iters[s]);
      fflush(stdout);
    }
    free(in);
    free(out);
  }
  MPI_Finalize();
  return 0;
}
