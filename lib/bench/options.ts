/** Options of `collectives-bench`: nccl-tests' flags, as strings from commander and as checked values. */

import { DTYPES, isBitwise, isFloating, type DType, type ReduceOp, REDUCE_OPS } from '../core/dtypes';
import { UsageError } from '../launch/options';
import type { BenchOp, Redop } from './ops';
import { findOp, opNames } from './registry';
import { DEFAULT_BLOCK_SIZE, QUANT_FORMATS, type QuantFormat } from '../core/quantized';

export { UsageError };

/** How the per-rank times combine into the printed one (nccl-tests' -a). */
export const COMBINE = ['rank0', 'avg', 'min', 'max'] as const;
export type Combine = (typeof COMBINE)[number];

/** Flag values exactly as commander hands them over (defaults are nccl-tests'). */
export interface RawBenchOptions {
  minbytes: string;
  maxbytes: string;
  stepbytes: string;
  stepfactor: string;
  iters: string;
  warmupIters: string;
  check: string;
  datatype: string;
  op: string;
  root: string;
  average: string;
  blocking: string;
  quant: string;
  blockSize: string;
  backend: string;
  engine?: string;
  np?: string;
  json?: string;
  plot?: string;
}

export const DEFAULTS = {
  minbytes: '32M',
  maxbytes: '32M',
  stepbytes: '1M',
  stepfactor: '1',
  iters: '20',
  warmupIters: '5',
  check: '1',
  datatype: 'float32',
  op: 'sum',
  root: '0',
  average: '1',
  blocking: '0',
  quant: 'int8',
  blockSize: String(DEFAULT_BLOCK_SIZE),
  backend: 'gloo',
} as const;

export interface BenchOptions {
  op: BenchOp;
  minBytes: number;
  maxBytes: number;
  stepBytes: number;
  stepFactor: number;
  iters: number;
  warmup: number;
  check: boolean;
  dtypes: DType[];
  redops: Redop[];
  root: number;
  combine: Combine;
  /** Await every iteration before issuing the next (nccl-tests' -z 1). */
  blocking: boolean;
  /** Ranks to start here (--np); undefined when not given. */
  np: number | undefined;
  json: string | undefined;
  plot: string | undefined;
  /** Wire format and block size of the quantized operations. */
  quant: { format: QuantFormat; blockSize: number };
  /** 'gloo': host typed arrays; 'nccl': DeviceBuffers (GPU memory). */
  backend: 'gloo' | 'nccl';
  /** The host engine (--engine); undefined: init()'s default (MPI under mpirun). */
  engine: 'gloo' | 'mpi' | undefined;
}

// nccl-tests' own names for its types, accepted beside this library's.
const DTYPE_ALIASES: Record<string, DType> = {
  float: 'float32',
  double: 'float64',
  half: 'float16',
  bf16: 'bfloat16',
  int: 'int32',
  char: 'int8',
};

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function fail(flag: string, expected: string, got: string): never {
  throw new UsageError(`${flag}: expected ${expected}, got ${JSON.stringify(got)}`);
}

function integer(flag: string, value: string, min: number, max: number, expected: string): number {
  if (!/^[0-9]+$/.test(value)) fail(flag, expected, value);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) fail(flag, expected, value);
  return n;
}

/** A byte count as nccl-tests reads it: digits with an optional K, M or G (powers of 1024). */
export function parseSize(flag: string, value: string): number {
  const expected = 'a size in bytes: an integer with an optional K, M or G suffix (e.g. 8, 4K, 64M)';
  const m = /^([0-9]+)\s*([kKmMgG]?)[bB]?$/.exec(value);
  if (m === null) fail(flag, expected, value);
  const n = Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()];
  if (!Number.isSafeInteger(n)) fail(flag, expected, value);
  return n;
}

function dtypeList(value: string): DType[] {
  if (value === 'all') return [...DTYPES];
  const d = (DTYPES as string[]).includes(value)
    ? (value as DType)
    : Object.hasOwn(DTYPE_ALIASES, value)
      ? DTYPE_ALIASES[value]
      : undefined;
  if (d === undefined) {
    fail('-d', `one of ${DTYPES.join(', ')} or all (nccl-tests' float, double, half, int, char are accepted too)`, value);
  }
  return [d];
}

function redopList(value: string, op: BenchOp, dtypes: DType[]): ReduceOp[] {
  // nccl-tests' reductions: the bitwise ones exist on host arrays only and are not benchmarked.
  const ops = REDUCE_OPS.filter((o) => !isBitwise(o));
  if (value === 'all') return ops;
  if (!(ops as string[]).includes(value)) fail('-o', `one of ${ops.join(', ')} or all`, value);
  const redop = value as ReduceOp;
  if (op.reduces && redop === 'avg' && dtypes.every((d) => !isFloating(d))) {
    fail('-o', `a reduction defined on ${dtypes.join(', ')} (avg needs a floating dtype)`, value);
  }
  return [redop];
}

/** Checks every flag; the world size is not known yet, so -r is checked against --np only. */
export function validateOptions(opName: string, raw: RawBenchOptions): BenchOptions {
  const op = findOp(opName);
  if (op === undefined) fail('<op>', `one of ${opNames().join(', ')}`, opName);

  const minBytes = parseSize('-b', raw.minbytes);
  const maxBytes = parseSize('-e', raw.maxbytes);
  if (maxBytes < minBytes) fail('-e', `at least -b (${minBytes} bytes)`, raw.maxbytes);
  const stepFactor = integer('-f', raw.stepfactor, 1, 1 << 20, 'an integer factor of at least 1 (1: step by -i instead)');
  const stepBytes = parseSize('-i', raw.stepbytes);
  if (stepFactor === 1 && stepBytes === 0 && maxBytes > minBytes) {
    fail('-i', 'a positive step in bytes when -f is 1 and -e is above -b', raw.stepbytes);
  }
  if (stepFactor > 1 && minBytes === 0) {
    fail('-b', 'at least 1 with -f above 1 (a factor never grows 0)', raw.minbytes);
  }
  const iters = integer('-n', raw.iters, 1, 1e9, 'a positive integer (timed iterations)');
  const warmup = integer('-w', raw.warmupIters, 0, 1e9, 'a non-negative integer (warm-up iterations)');
  const check = integer('-c', raw.check, 0, 1, '0 or 1') === 1;
  const dtypes = dtypeList(raw.datatype);
  // Checked even where unused, so that a typo never passes silently.
  const asked = redopList(raw.op, op, dtypes);
  const redops: Redop[] = op.reduces ? asked : ['none'];
  const np = raw.np === undefined ? undefined : integer('--np', raw.np, 1, 4096, 'a positive number of ranks');
  const rootMax = np === undefined ? 1 << 20 : np - 1;
  const root = integer('-r', raw.root, 0, rootMax, np === undefined ? 'a rank (a non-negative integer)' : `a rank from 0 to ${rootMax} (--np is ${np})`);
  const combine = COMBINE[integer('-a', raw.average, 0, 3, '0 (rank 0), 1 (average), 2 (min) or 3 (max)')];
  const blocking = integer('-z', raw.blocking, 0, 1, '0 or 1') === 1;
  if (raw.json !== undefined && raw.json.length === 0) fail('--json', 'a file name', raw.json);
  const format = raw.quant as QuantFormat;
  if (!QUANT_FORMATS.includes(format)) fail('-q', `one of ${QUANT_FORMATS.join(', ')}`, raw.quant);
  const blockSize = integer('--block-size', raw.blockSize, 8, 1 << 20, 'a multiple of 8 from 8 to 1048576');
  if (blockSize % 8 !== 0) fail('--block-size', 'a multiple of 8 from 8 to 1048576', raw.blockSize);
  if (raw.backend !== 'gloo' && raw.backend !== 'nccl') fail('--backend', 'gloo or nccl', raw.backend);
  if (raw.engine !== undefined && raw.engine !== 'gloo' && raw.engine !== 'mpi') fail('--engine', 'gloo or mpi', raw.engine);
  const opDtypes = op.dtypes;
  if (opDtypes && !dtypes.some((d) => opDtypes.includes(d))) {
    fail('-d', `a dtype ${op.name} takes (${opDtypes.join(', ')})`, raw.datatype);
  }
  if (seriesList({ op, dtypes, redops }).length === 0) {
    fail('-o', `a reduction ${op.name} supports (${(op.redops ?? []).join(', ')})`, raw.op);
  }
  if (raw.plot !== undefined && !/\.svg$/i.test(raw.plot)) fail('--plot', 'a file name ending in .svg', raw.plot);

  return {
    op,
    minBytes,
    maxBytes,
    stepBytes,
    stepFactor,
    iters,
    warmup,
    check,
    dtypes,
    redops,
    root,
    combine,
    blocking,
    np,
    json: raw.json,
    plot: raw.plot,
    quant: { format, blockSize },
    backend: raw.backend,
    engine: raw.engine as 'gloo' | 'mpi' | undefined,
  };
}

/** The root, checked once the world size is known. */
export function checkRoot(root: number, worldSize: number): void {
  if (root >= worldSize) {
    throw new UsageError(`-r: expected a rank from 0 to ${worldSize - 1} (the world size is ${worldSize}), got "${root}"`);
  }
}

/**
 * The byte sizes of a sweep, as nccl-tests walks them: from -b to -e, times -f when -f is
 * above 1, else plus -i.
 */
export function sizeList(o: Pick<BenchOptions, 'minBytes' | 'maxBytes' | 'stepBytes' | 'stepFactor'>): number[] {
  const sizes: number[] = [];
  for (let s = o.minBytes; s <= o.maxBytes; s = o.stepFactor > 1 ? s * o.stepFactor : s + o.stepBytes) {
    sizes.push(s);
    if (o.stepFactor <= 1 && o.stepBytes === 0) break;
  }
  return sizes;
}

/** The (dtype, redop) pairs a run covers: avg is skipped for integer dtypes. */
export function seriesList(o: Pick<BenchOptions, 'op' | 'dtypes' | 'redops'>): { dtype: DType; redop: Redop }[] {
  const out: { dtype: DType; redop: Redop }[] = [];
  for (const dtype of o.op.sized ? o.dtypes : [o.dtypes[0]]) {
    if (o.op.dtypes && !o.op.dtypes.includes(dtype)) continue;
    for (const redop of o.redops) {
      if (o.op.reduces && redop === 'avg' && !isFloating(dtype)) continue;
      if (o.op.redops && redop !== 'none' && !o.op.redops.includes(redop)) continue;
      out.push({ dtype, redop });
    }
  }
  return out;
}

/** Removes `--np N` / `--np=N` from an argument list (what each started rank is given). */
export function withoutNp(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (args[i] === '--np') {
      i++;
      continue;
    }
    if (args[i].startsWith('--np=')) continue;
    out.push(args[i]);
  }
  return out;
}
