#!/usr/bin/env node
/**
 * `collectives-bench <op> [flags]`: collective latency and bandwidth in nccl-tests' terms.
 * With --np N it starts N local ranks of itself through collectives-run's supervisor;
 * started by a launcher (RANK / WORLD_SIZE set) it is one rank of that job.
 */

import { Command, CommanderError } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { backends, mpiStatus } from '../core/backends';
import { runUnderMpirun } from '../launch/mpirun';
import { rankFromEnvironment } from '../core/env';
import { init, versions } from '../core/init';
import { run } from '../launch/supervisor';
import { missingPlotLibraries } from './plot';
import { opNames } from './registry';
import { DEFAULTS, type BenchOptions, type RawBenchOptions, UsageError, checkRoot, validateOptions, withoutNp } from './options';
import { buildHeader, summarize, writeJson } from './report';
import { sweep } from './sweep';
import { formatFooter, formatHeader, formatRow, formatTableHead } from './table';
import { exitWhenFlushed } from '../launch/exit';

const NAME = 'collectives-bench';
/** Set by the parent for its ranks: progress lines as if stderr were a terminal. */
const TTY_ENV = 'COLLECTIVES_BENCH_TTY';
/**
 * Set by the parent for its ranks: the arguments the user typed (JSON). A started rank is
 * given them without --np, and a header that recorded those would re-run as one rank.
 */
const COMMAND_ENV = 'COLLECTIVES_BENCH_COMMAND';
/** A sweep that has run this long reports each size on stderr. */
const PROGRESS_AFTER_MS = 2000;

function program(): Command {
  return new Command(NAME)
    .description(
      "Collective latency and bandwidth in nccl-tests' terms (algbw, busbw, #wrong). " +
        'Sizes take K, M and G suffixes (powers of 1024).',
    )
    .usage('<op> [flags]')
    .argument('<op>', `one of ${opNames().join(', ')}`)
    .option('-b, --minbytes <size>', 'smallest size', DEFAULTS.minbytes)
    .option('-e, --maxbytes <size>', 'largest size', DEFAULTS.maxbytes)
    .option('-i, --stepbytes <size>', 'size increment, used when -f is 1', DEFAULTS.stepbytes)
    .option('-f, --stepfactor <f>', 'size multiplier; 1 steps by -i instead', DEFAULTS.stepfactor)
    .option('-n, --iters <n>', 'timed iterations per measurement', DEFAULTS.iters)
    .option('-w, --warmup_iters <n>', 'warm-up iterations before each measurement', DEFAULTS.warmupIters)
    .option('-c, --check <0|1>', 'check every result (one extra call after the timed ones)', DEFAULTS.check)
    .option('-d, --datatype <dtype>', 'float32, float64, float16, bfloat16, int8, uint8, int32, int64 or all', DEFAULTS.datatype)
    .option('-o, --op <redop>', 'sum, prod, min, max, avg or all', DEFAULTS.op)
    .option('-r, --root <rank>', 'root of broadcast and reduce', DEFAULTS.root)
    .option('-a, --average <0-3>', 'times across ranks: 0 rank 0, 1 average, 2 minimum, 3 maximum', DEFAULTS.average)
    .option('-z, --blocking <0|1>', '1: await each call before issuing the next', DEFAULTS.blocking)
    .option('-q, --quant <format>', 'wire format of the *_quantized operations: int8, int4, fp8e4m3, fp8e5m2', DEFAULTS.quant)
    .option('--block-size <n>', 'elements per scale of the *_quantized operations', DEFAULTS.blockSize)
    .option('--backend <name>', 'gloo (host typed arrays) or nccl (DeviceBuffers in GPU memory)', DEFAULTS.backend)
    .option('--engine <name>', 'host engine: gloo or mpi (default: mpi under mpirun when libmpi loads; with --np, mpi starts the ranks through mpirun)')
    .option('--np <n>', 'start n local ranks (not needed under collectives-run or torchrun)')
    .option('-J, --json <file>', 'write the header and every row as JSON')
    .option('--plot <file.svg>', 'draw busbw and time against size (needs vega and vega-lite)')
    .showHelpAfterError(`(see ${NAME} --help)`)
    .exitOverride()
    .helpCommand(false);
}

function parse(argv: string[]): BenchOptions {
  const cmd = program();
  cmd.parse(argv);
  const [op] = cmd.processedArgs as [string];
  const o = cmd.opts<Omit<RawBenchOptions, 'warmupIters'> & { warmup_iters: string }>();
  return validateOptions(op, { ...o, warmupIters: o.warmup_iters });
}

/** --np outside a launched job: this process supervises N ranks running this same file (through mpirun for --engine mpi). */
function launchRanks(np: number, args: string[], engine: BenchOptions['engine']): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (process.stderr.isTTY) env[TTY_ENV] = '1';
  env[COMMAND_ENV] = JSON.stringify(args);
  const launch = engine === 'mpi' ? runUnderMpirun : run;
  return launch(
    {
      script: __filename,
      scriptArgs: withoutNp(args),
      nprocPerNode: np,
      nnodes: 1,
      nodeRank: 0,
      masterAddr: '127.0.0.1',
      masterPort: 0,
      maxRestarts: 0,
      prefix: false,
      graceMs: 2000,
    },
    env,
  );
}

function out(lines: string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}

/** The arguments to record, and who started this rank. */
function typedCommand(args: string[], launched: boolean): { argv: string[]; startedBy: 'np' | 'launcher' | 'none' } {
  const fromParent = process.env[COMMAND_ENV];
  delete process.env[COMMAND_ENV];
  if (fromParent !== undefined) {
    try {
      const argv: unknown = JSON.parse(fromParent);
      if (Array.isArray(argv) && argv.every((a) => typeof a === 'string')) return { argv, startedBy: 'np' };
    } catch {
      // Not ours: fall through to this rank's own arguments.
    }
  }
  return { argv: args, startedBy: launched ? 'launcher' : 'none' };
}

async function runRank(o: BenchOptions, args: string[], launched: boolean): Promise<number> {
  const typed = typedCommand(args, launched);
  // A reader that went away (`collectives-bench … | head`) ends the run quietly, as SIGPIPE would.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(141);
  });
  if (o.backend === 'nccl') {
    // Said before any rank meets: without a GPU or NCCL every rank would fail alike.
    const b = backends();
    const missing = !b.cuda.available ? b.cuda : !b.nccl.available ? b.nccl : null;
    if (missing) {
      process.stderr.write(`${NAME}: --backend nccl: ${missing.reason ?? 'not available'}\n`);
      return 1;
    }
  }
  const comm = await init(o.engine === undefined ? undefined : { engine: o.engine });
  try {
    const rank0 = comm.rank === 0;
    try {
      checkRoot(o.root, comm.size);
    } catch (err) {
      if (rank0) throw err;
      return 2;
    }
    const mpi = comm.engine === 'mpi' ? mpiStatus() : undefined;
    const how =
      mpi === undefined
        ? ''
        : `${mpi.libraryVersion ?? 'Open MPI'}, ${mpi.threadLevel ?? ''}, ${
            o.engine === 'mpi' || process.env.COLLECTIVES_ENGINE === 'mpi' ? 'chosen with --engine mpi / COLLECTIVES_ENGINE' : `the default: ${mpi.defaultReason}`
          }`;
    const header = buildHeader(o, typed.argv, typed.startedBy, comm.size, versions(), comm.tuning, o.backend, {
      name: comm.engine,
      how: comm.engine === 'mpi' ? how : 'Gloo over TCP',
    });
    if (rank0) out([...formatHeader(header), ...formatTableHead()]);

    const started = Date.now();
    const tty = process.stderr.isTTY || process.env[TTY_ENV] === '1';
    let done = 0;
    const rows = await sweep(comm, o, {
      row: (r) => {
        done++;
        if (!rank0) return;
        out([formatRow(r)]);
        const ms = Date.now() - started;
        if (tty || ms > PROGRESS_AFTER_MS) {
          process.stderr.write(`${NAME}: ${r.op} ${r.dtype} ${r.redop} ${r.bytes} B done (${done} rows, ${(ms / 1000).toFixed(1)} s)\n`);
        }
      },
      skipped: (bytes, dtype) => {
        if (rank0) out([`# ${bytes} B: less than one ${dtype} element per rank, skipped`]);
      },
    });
    const summary = summarize(rows);
    if (rank0) {
      out(formatFooter(summary));
      if (o.json !== undefined) writeJson(o.json, header, rows, summary);
      if (o.plot !== undefined) {
        const { writePlot } = await import('./plot');
        await writePlot(o.plot, rows, header);
      }
    }
    return summary.wrongTotal !== null && summary.wrongTotal > 0 ? 1 : 0;
  } finally {
    await comm.destroy();
  }
}

/** A file rank 0 will write must be creatable before the sweep starts, not after it. */
function checkWritable(flag: string, file: string | undefined): void {
  if (file === undefined) return;
  try {
    fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
  } catch {
    throw new UsageError(`${flag}: expected a file in a writable folder, got ${JSON.stringify(file)}`);
  }
}

async function main(argv: string[]): Promise<number> {
  try {
    const o = parse(argv);
    const args = argv.slice(2);
    const info = rankFromEnvironment();
    // A launcher's world of one (e.g. a Slurm step of one task) does not stop --np.
    const launched = info.source !== 'default' && (o.np === undefined || info.worldSize > 1);
    if (!launched || info.rank === 0) {
      checkWritable('--json', o.json);
      checkWritable('--plot', o.plot);
      // Before any rank starts: a sweep that runs for minutes must not end without its plot.
      const missing = o.plot === undefined ? null : missingPlotLibraries();
      if (missing !== null) throw new UsageError(missing);
    }
    if (o.np !== undefined && !launched) return await launchRanks(o.np, args, o.engine);
    if (o.np !== undefined && o.np !== info.worldSize) {
      throw new UsageError(
        `--np: expected ${info.worldSize} (the world size the launcher gave this rank) or no --np, got "${o.np}"`,
      );
    }
    return await runRank(o, args, launched);
  } catch (err) {
    // Commander has already printed its message (or the help text).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UsageError || (err as { code?: unknown }).code === 'INVALID_ARGUMENT') {
      process.stderr.write(`${NAME}: ${(err as Error).message}\n(see ${NAME} --help)\n`);
      return 2;
    }
    // A system error (a file that could not be written) says enough in its message.
    const e = err as { stack?: string; message?: string; syscall?: unknown };
    process.stderr.write(`${NAME}: ${typeof e.syscall === 'string' ? e.message : (e.stack ?? String(err))}\n`);
    return 1;
  }
}


if (require.main === module) void main(process.argv).then(exitWhenFlushed);

export { main };
