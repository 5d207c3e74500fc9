/** What a run records: the header (what the numbers depend on), the rows, and the JSON file. */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { DType } from '../core/dtypes';
import type { Redop } from './ops';
import type { BenchOptions, Combine } from './options';

/** One placement's measurement, combined across ranks. */
export interface Cell {
  /** Per-call time, microseconds. */
  timeUs: number;
  /** GB/s (1e9 bytes). */
  algbw: number;
  busbw: number;
  /** Wrong elements summed over ranks; null when not checked. */
  wrong: number | null;
}

export interface Row {
  op: string;
  /** nccl-tests' size column (bytes). */
  bytes: number;
  /** nccl-tests' count column (elements). */
  count: number;
  dtype: DType | 'none';
  redop: Redop;
  /** -1 for operations without a root. */
  root: number;
  /** null: the API cannot express this placement (printed N/A). */
  outOfPlace: Cell | null;
  inPlace: Cell | null;
  /** Communicator.algorithm(method, bytes), or 'default' where this build has none. */
  algo: string;
}

export interface Header {
  tool: 'collectives-bench';
  version: string;
  /** The command line as typed, --np included, quoted for a POSIX shell: running it again repeats the run. */
  command: string;
  /**
   * Who started the ranks: 'np' (this command, through --np), 'launcher' (collectives-run,
   * torchrun, Slurm: the command is one rank's, to be run again under the same launcher), or
   * 'none' (one rank, nothing started).
   */
  startedBy: 'np' | 'launcher' | 'none';
  date: string;
  op: string;
  backend: 'gloo' | 'nccl';
  /** The host engine (Communicator.engine), and how it was chosen. */
  engine?: { name: 'gloo' | 'mpi'; how: string };
  worldSize: number;
  host: string;
  cpus: number;
  cpuModel: string;
  node: string;
  gloo: string;
  napi: number;
  iters: number;
  warmup: number;
  check: boolean;
  combine: Combine;
  blocking: boolean;
  /** How the communicator drives Gloo (Communicator.tuning). */
  tuning: { mode: string; allReduceAlgorithm: string; busyPoll: boolean; inlineBytes?: number };
}

export interface Summary {
  /** Mean busbw over every measured cell (out-of-place and in-place), as nccl-tests averages. */
  avgBusBw: number | null;
  /** Wrong elements over all rows, or null when not checked. */
  wrongTotal: number | null;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

// Characters a POSIX shell reads literally outside quotes.
const SHELL_SAFE = /^[A-Za-z0-9_./:=@%+,-]+$/;

/** `collectives-bench` and its arguments as a line a POSIX shell splits back into the same words. */
export function commandLine(argv: readonly string[]): string {
  const quote = (a: string): string => (SHELL_SAFE.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['collectives-bench', ...argv].map(quote).join(' ');
}

/** `argv`: the arguments the user gave (with --np), not the ones a started rank was given. */
export function buildHeader(
  o: BenchOptions,
  argv: readonly string[],
  startedBy: Header['startedBy'],
  worldSize: number,
  v: { gloo: string; napi: number; node: string },
  tuning: { mode: string; allReduceAlgorithm: string; busyPoll: boolean; inlineBytes?: number },
  backend: 'gloo' | 'nccl' = 'gloo',
  engine?: Header['engine'],
): Header {
  const cpus = os.cpus();
  return {
    tool: 'collectives-bench',
    version: packageVersion(),
    command: commandLine(argv),
    startedBy,
    date: new Date().toISOString(),
    op: o.op.name,
    backend,
    ...(engine ? { engine } : {}),
    worldSize,
    host: os.hostname(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    node: v.node,
    gloo: v.gloo,
    napi: v.napi,
    iters: o.iters,
    warmup: o.warmup,
    check: o.check,
    combine: o.combine,
    blocking: o.blocking,
    tuning: { ...tuning },
  };
}

export function summarize(rows: readonly Row[]): Summary {
  let sum = 0;
  let cells = 0;
  let wrong: number | null = null;
  for (const row of rows) {
    for (const c of [row.outOfPlace, row.inPlace]) {
      if (c === null) continue;
      if (row.bytes > 0) {
        sum += c.busbw;
        cells++;
      }
      if (c.wrong !== null) wrong = (wrong ?? 0) + c.wrong;
    }
  }
  return { avgBusBw: cells > 0 ? sum / cells : null, wrongTotal: wrong };
}

export function writeJson(file: string, header: Header, rows: readonly Row[], summary: Summary): void {
  fs.writeFileSync(file, `${JSON.stringify({ header, rows, ...summary }, null, 2)}\n`);
}
