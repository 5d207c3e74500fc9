/**
 * The operations collectives-bench measures. Each entry says how nccl-tests sizes it, how
 * to lay out its buffers out of place and in place, how to call it, its bus-bandwidth
 * factor, and where each output element comes from (for the check). The quantized forms are
 * in quantized-ops.ts, and registry.ts lists them all.
 */

import type { Communicator } from '../core/communicator';
import type { DType, HostArray, ReduceOp } from '../core/dtypes';
import type { QuantFormat } from '../core/quantized';

/** A reduction, or 'none' for an operation that only moves data. */
export type Redop = ReduceOp | 'none';

export type Placement = 'out-of-place' | 'in-place';
export const PLACEMENTS: readonly Placement[] = ['out-of-place', 'in-place'];

export interface Layout {
  /** nccl-tests' count column, in elements. */
  count: number;
  /** nccl-tests' size column, in bytes. */
  bytes: number;
  /** Elements of one rank's block (reduce-scatter, all-gather, all-to-all); else `count`. */
  block: number;
  /** Elements of the input and of the output, out of place. */
  inLength: number;
  outLength: number;
}

/** The arrays one call reads and writes; in place they share memory. */
export interface Buffers {
  input: HostArray;
  output: HostArray;
}

export interface CallArgs {
  dtype: DType;
  redop: Redop;
  root: number;
  /** The quantized operations' wire format (-q) and block size (--block-size). */
  quant: { format: QuantFormat; blockSize: number };
}

/** Where an output element's expected value comes from. */
export type Source =
  /** The reduction over every rank of input element `index`. */
  | { kind: 'reduce'; index: number }
  /** Input element `index` of rank `rank`, copied. */
  | { kind: 'copy'; rank: number; index: number };

export interface BenchOp {
  /** The name on the command line (nccl-tests' binary names without _perf). */
  readonly name: string;
  /** The Communicator method that runs it. */
  readonly method: string;
  readonly reduces: boolean;
  readonly rooted: boolean;
  /** False for an operation without data (barrier): one row, no sizes. */
  readonly sized: boolean;
  /** Input dtypes it takes, when not all (the quantized ones take floating types). */
  readonly dtypes?: readonly DType[];
  /** Reductions it supports, when not all. */
  readonly redops?: readonly ReduceOp[];
  /** Travels quantized: -q and --block-size apply. */
  readonly quantized?: boolean;
  /** False where the device (NCCL) form has no in-place layout. */
  readonly inPlaceOnDevice?: boolean;
  /** busbw = algbw × this (nccl-tests' factors). */
  busBwFactor(n: number): number;
  /** Rounds `bytes` down to whole elements (whole blocks per rank where there are blocks). */
  layout(bytes: number, elementBytes: number, n: number): Layout;
  /** The buffers for one placement, or null when the API cannot express that placement. */
  buffers(p: Placement, l: Layout, alloc: (length: number) => HostArray, rank: number): Buffers | null;
  call(comm: Communicator, b: Buffers, p: Placement, a: CallArgs): PromiseLike<unknown>;
  /** The elements holding a defined result on `rank`, or null when it has none. */
  result(b: Buffers, rank: number, root: number): HostArray | null;
  /** Where element k of result() on `rank` comes from. */
  source(k: number, rank: number, l: Layout, root: number): Source;
  /**
   * Wrong elements of `actual` against the exact `expected`. Absent: bit for bit. A lossy
   * operation (a quantized one) gives its own tolerance here.
   */
  compare?(actual: HostArray, expected: HostArray, dtype: DType, n: number, args: CallArgs): number;
}

function reduceOp(a: CallArgs): ReduceOp {
  if (a.redop === 'none') throw new TypeError('a reducing operation needs a reduction, got none');
  return a.redop;
}

/** count elements, the same on every rank (all-reduce, broadcast, reduce). */
function flatLayout(bytes: number, elementBytes: number): Layout {
  const count = Math.floor(bytes / elementBytes);
  return { count, bytes: count * elementBytes, block: count, inLength: count, outLength: count };
}

/** n blocks of `block` elements: the size column is the whole array. */
function blockedLayout(bytes: number, elementBytes: number, n: number, countIsBlock: boolean): Layout {
  const block = Math.floor(bytes / (elementBytes * n));
  const total = block * n;
  return { count: countIsBlock ? block : total, bytes: total * elementBytes, block, inLength: total, outLength: total };
}

/** Out of place: two arrays; in place: one array for both. */
function separateOrShared(p: Placement, l: Layout, alloc: (length: number) => HostArray): Buffers {
  if (p === 'out-of-place') return { input: alloc(l.inLength), output: alloc(l.outLength) };
  const x = alloc(l.inLength);
  return { input: x, output: x };
}

const ringFactor = (n: number): number => (n - 1) / n;

/** The plain collectives, in the order the CLI lists them. */
export const PLAIN_OPS: readonly BenchOp[] = [
  {
    name: 'all_reduce',
    method: 'allReduce',
    reduces: true,
    rooted: false,
    sized: true,
    busBwFactor: (n) => (2 * (n - 1)) / n,
    layout: (bytes, e) => flatLayout(bytes, e),
    buffers: (p, l, alloc) => separateOrShared(p, l, alloc),
    call: (comm, b, p, a) =>
      p === 'in-place'
        ? comm.allReduce(b.input, { op: reduceOp(a), dtype: a.dtype })
        : comm.allReduce(b.input, { op: reduceOp(a), dtype: a.dtype, output: b.output }),
    result: (b) => b.output,
    source: (k) => ({ kind: 'reduce', index: k }),
  },

  {
    name: 'reduce_scatter',
    method: 'reduceScatter',
    reduces: true,
    rooted: false,
    sized: true,
    busBwFactor: ringFactor,
    // Input n × block; output block.
    layout: (bytes, e, n) => ({ ...blockedLayout(bytes, e, n, true), outLength: Math.floor(bytes / (e * n)) }),
    // In place (NCCL's layout): the output is this rank's block of the input.
    buffers: (p, l, alloc, rank) => {
      if (p === 'out-of-place') return { input: alloc(l.inLength), output: alloc(l.outLength) };
      const x = alloc(l.inLength);
      return { input: x, output: x.subarray(rank * l.block, (rank + 1) * l.block) };
  },
    call: (comm, b, _p, a) => comm.reduceScatter(b.input, b.output, { op: reduceOp(a), dtype: a.dtype }),
    result: (b) => b.output,
    source: (k, rank, l) => ({ kind: 'reduce', index: rank * l.block + k }),
  },

  {
    name: 'all_gather',
    method: 'allGather',
    reduces: false,
    rooted: false,
    sized: true,
    busBwFactor: ringFactor,
    // Input block; output n × block.
    layout: (bytes, e, n) => ({ ...blockedLayout(bytes, e, n, true), inLength: Math.floor(bytes / (e * n)) }),
    // In place (NCCL's layout): the input is this rank's block of the output.
    buffers: (p, l, alloc, rank) => {
      if (p === 'out-of-place') return { input: alloc(l.inLength), output: alloc(l.outLength) };
      const x = alloc(l.outLength);
      return { input: x.subarray(rank * l.block, (rank + 1) * l.block), output: x };
  },
    call: (comm, b, _p, a) => comm.allGather(b.input, b.output, { dtype: a.dtype }),
    result: (b) => b.output,
    source: (k, _rank, l) => ({ kind: 'copy', rank: Math.floor(k / l.block), index: k % l.block }),
  },

  {
    name: 'alltoall',
    method: 'allToAll',
    // NCCL's grouped send/recv cannot read and write the same memory.
    inPlaceOnDevice: false,
    reduces: false,
    rooted: false,
    sized: true,
    busBwFactor: ringFactor,
    // The count column is the whole array per rank, as nccl-tests prints it.
    layout: (bytes, e, n) => blockedLayout(bytes, e, n, false),
    buffers: (p, l, alloc) => separateOrShared(p, l, alloc),
    call: (comm, b, _p, a) => comm.allToAll(b.input, b.output, { dtype: a.dtype }),
    result: (b) => b.output,
    // Block r of the output is block `rank` of rank r's input.
    source: (k, rank, l) => ({ kind: 'copy', rank: Math.floor(k / l.block), index: rank * l.block + (k % l.block) }),
  },

  {
    name: 'broadcast',
    method: 'broadcast',
    reduces: false,
    rooted: true,
    sized: true,
    busBwFactor: () => 1,
    layout: (bytes, e) => flatLayout(bytes, e),
    // broadcast(buffer) has no separate output: only the in-place form exists.
    buffers: (p, l, alloc) => (p === 'out-of-place' ? null : separateOrShared(p, l, alloc)),
    call: (comm, b, _p, a) => comm.broadcast(b.input, { root: a.root, dtype: a.dtype }),
    result: (b) => b.output,
    source: (k, _rank, _l, root) => ({ kind: 'copy', rank: root, index: k }),
  },

  {
    name: 'reduce',
    method: 'reduce',
    reduces: true,
    rooted: true,
    sized: true,
    busBwFactor: () => 1,
    layout: (bytes, e) => flatLayout(bytes, e),
    buffers: (p, l, alloc) => separateOrShared(p, l, alloc),
    call: (comm, b, p, a) =>
      p === 'in-place'
        ? comm.reduce(b.input, { root: a.root, op: reduceOp(a), dtype: a.dtype })
        : comm.reduce(b.input, { root: a.root, op: reduceOp(a), dtype: a.dtype, output: b.output }),
    // Only the root's output is defined.
    result: (b, rank, root) => (rank === root ? b.output : null),
    source: (k) => ({ kind: 'reduce', index: k }),
  },

  {
    name: 'barrier',
    method: 'barrier',
    reduces: false,
    rooted: false,
    sized: false,
    busBwFactor: () => 0,
    layout: () => ({ count: 0, bytes: 0, block: 0, inLength: 0, outLength: 0 }),
    buffers: (p, l, alloc) => (p === 'in-place' ? null : { input: alloc(0), output: alloc(0) }),
    call: (comm) => comm.barrier(),
    result: () => null,
    source: () => ({ kind: 'reduce', index: 0 }),
  }
];
