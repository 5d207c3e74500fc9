/** One rank's part of a run: every (dtype, redop) series over every size, both placements. */

import type { Communicator } from '../core/communicator';
import { DeviceBuffer } from '../core/device';
import { DTYPE_BYTES, type DType, type HostArray } from '../core/dtypes';
import { allocArray, countWrong, expectedResult, fillInput, inputValues, poison } from './check';
import { bandwidths, combineAcrossRanks, sumAcrossRanks, timeCalls } from './measure';
import { type BenchOp, type Buffers, type CallArgs, type Layout, PLACEMENTS, type Placement } from './ops';
import { type BenchOptions, seriesList, sizeList } from './options';
import type { Cell, Row } from './report';

export interface SweepEvents {
  /** A finished row (the same on every rank). */
  row(r: Row): void;
  /** A size that rounds down to no element for this dtype and world size. */
  skipped(bytes: number, dtype: DType): void;
}

type AlgorithmFn = (op: string, bytes: number, device: boolean) => string;

/** Communicator.algorithm(), asked with nccl-tests' operation names. */
export function algorithmOf(comm: Communicator): AlgorithmFn {
  return (op, bytes, device) => comm.algorithm(op, bytes, { device });
}

const onDevice = (a: HostArray): DeviceBuffer => a as unknown as DeviceBuffer;

/**
 * Runs the check call and counts this rank's wrong elements. On DeviceBuffers the same
 * poison and inputs are copied in before the call and the result copied out after it.
 */
async function checkOnce(
  comm: Communicator,
  op: BenchOp,
  layout: Layout,
  b: Buffers,
  p: Placement,
  args: CallArgs,
  device: boolean,
): Promise<number> {
  const { dtype, redop, root } = args;
  const values = inputValues(redop, dtype, comm.size);
  if (device) {
    const poisoned = allocArray(dtype, onDevice(b.output).length);
    poison(poisoned);
    onDevice(b.output).copyFrom(poisoned);
    const input = allocArray(dtype, onDevice(b.input).length);
    fillInput(input, dtype, values, comm.rank);
    onDevice(b.input).copyFrom(input);
  } else {
    poison(b.output);
    fillInput(b.input, dtype, values, comm.rank);
  }
  await op.call(comm, b, p, args);
  const onRank = op.result(b, comm.rank, root);
  if (onRank === null) return 0;
  const result = device ? onDevice(onRank).copyTo() : onRank;
  const expected = expectedResult(op, layout, result.length, dtype, redop, comm.size, comm.rank, root);
  return op.compare ? op.compare(result, expected, dtype, comm.size, args) : countWrong(result, expected);
}

export async function sweep(comm: Communicator, o: BenchOptions, on: SweepEvents): Promise<Row[]> {
  const { op } = o;
  const n = comm.size;
  const algorithm = algorithmOf(comm);
  const rows: Row[] = [];
  for (const { dtype, redop } of seriesList(o)) {
    const seen = new Set<number>();
    for (const bytes of op.sized ? sizeList(o) : [0]) {
      const layout = op.layout(bytes, DTYPE_BYTES[dtype], n);
      if (op.sized && layout.count === 0) {
        on.skipped(bytes, dtype);
        continue;
      }
      // Sizes that round to the same element count would repeat a row.
      if (seen.has(layout.bytes)) continue;
      seen.add(layout.bytes);
      const args: CallArgs = { dtype, redop, root: o.root, quant: o.quant };
      const measured: ({ seconds: number; wrong: number | null } | null)[] = [];
      for (const p of PLACEMENTS) {
        const device = o.backend === 'nccl' && op.sized;
        // On the NCCL backend the buffers are DeviceBuffers, which the Communicator's
        // methods take in the same positions (and subarray() the same way).
        const alloc = device
          ? (length: number): HostArray => new DeviceBuffer(dtype, length) as unknown as HostArray
          : (length: number): HostArray => allocArray(dtype, length);
        const unsupported = device && p === 'in-place' && op.inPlaceOnDevice === false;
        const b = unsupported ? null : op.buffers(p, layout, alloc, comm.rank);
        if (b === null) {
          measured.push(null);
          continue;
        }
        const seconds = await timeCalls(comm, () => op.call(comm, b, p, args), o.iters, o.warmup, o.blocking);
        const wrong = o.check && op.sized ? await checkOnce(comm, op, layout, b, p, args, device) : null;
        measured.push({ seconds, wrong });
        if (device) {
          onDevice(b.input).free();
          onDevice(b.output).free();
        }
      }
      const times = await combineAcrossRanks(comm, measured.map((m) => m?.seconds ?? 0), o.combine);
      const wrongs = await sumAcrossRanks(comm, measured.map((m) => m?.wrong ?? 0));
      const cells = measured.map((m, i): Cell | null => {
        if (m === null) return null;
        return {
          timeUs: times[i] * 1e6,
          ...bandwidths(layout.bytes, times[i], op.busBwFactor(n)),
          wrong: m.wrong === null ? null : wrongs[i],
        };
      });
      const row: Row = {
        op: op.name,
        bytes: layout.bytes,
        count: layout.count,
        dtype: op.sized ? dtype : 'none',
        redop,
        root: op.rooted ? o.root : -1,
        outOfPlace: cells[0],
        inPlace: cells[1],
        algo: op.quantized
          ? `${o.quant.format}, blocks of ${o.quant.blockSize}`
          : algorithm(op.name, layout.bytes, o.backend === 'nccl' && op.sized),
      };
      rows.push(row);
      on.row(row);
    }
  }
  return rows;
}
