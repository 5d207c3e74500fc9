/**
 * The quantized collectives as collectives-bench operations. Each takes the
 * layout, sizes and bus-bandwidth factor of its plain counterpart, so its
 * busbw reads as the float bandwidth it delivers (the wire carries less).
 * The check allows what the format loses: one quantization step of the
 * largest magnitude per quantization an element goes through.
 */

import type { DType, HostArray } from '../core/dtypes';
import type { QuantFormat } from '../core/quantized';
import { type BenchOp, type Buffers, type CallArgs, PLAIN_OPS } from './ops';

const FLOATING: readonly DType[] = ['float32', 'float16', 'bfloat16'];

// One quantization step relative to the block's largest magnitude (int) or to
// the value itself (fp8: two mantissa-step halves).
const STEP: Record<QuantFormat, number> = { int8: 1 / 127, int4: 1 / 7, fp8e4m3: 2 ** -3, fp8e5m2: 2 ** -2 };
// The result is rounded once more to the output dtype.
const OUTPUT_STEP: Partial<Record<DType, number>> = { float16: 2 ** -10, bfloat16: 2 ** -7 };

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The value an element holds: half types are stored as their bits. */
function valueAt(a: HostArray, i: number, dtype: DType): number {
  const x = Number(a[i]);
  if (dtype === 'bfloat16') {
    U32[0] = x << 16;
    return F32[0];
  }
  if (dtype === 'float16') {
    const sign = x & 0x8000 ? -1 : 1;
    const exp = (x >> 10) & 0x1f;
    const frac = x & 0x3ff;
    if (exp === 0x1f) return frac ? NaN : sign * Infinity;
    return exp === 0 ? sign * frac * 2 ** -24 : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return x;
}

function countOutside(quantizations: (n: number) => number) {
  return (actual: HostArray, expected: HostArray, dtype: DType, n: number, args: CallArgs): number => {
    let largest = 0;
    for (let i = 0; i < expected.length; i++) largest = Math.max(largest, Math.abs(valueAt(expected, i, dtype)));
    const bound = quantizations(n) * STEP[args.quant.format] * (largest + 1);
    let wrong = 0;
    for (let i = 0; i < actual.length; i++) {
      const e = valueAt(expected, i, dtype);
      const tolerance = bound + Math.abs(e) * (OUTPUT_STEP[dtype] ?? 0);
      if (!(Math.abs(valueAt(actual, i, dtype) - e) <= tolerance)) wrong++;
    }
    return wrong;
  };
}

function quantOptions(a: CallArgs): { format: QuantFormat; blockSize: number; dtype: DType } {
  return { format: a.quant.format, blockSize: a.quant.blockSize, dtype: a.dtype };
}

function base(name: string): BenchOp {
  return PLAIN_OPS.find((op) => op.name === name) as BenchOp;
}

const outOfPlaceOnly = (op: BenchOp): BenchOp['buffers'] => (p, l, alloc, rank) =>
  p === 'in-place' ? null : op.buffers(p, l, alloc, rank);

const allReduce = base('all_reduce');
const allReduceQuantized: BenchOp = {
  ...allReduce,
  name: 'all_reduce_quantized',
  method: 'allReduceQuantized',
  dtypes: FLOATING,
  redops: ['sum', 'avg'],
  quantized: true,
  call: (comm, b: Buffers, p, a) =>
    comm.allReduceQuantized(b.input, {
      ...quantOptions(a),
      op: a.redop === 'avg' ? 'avg' : 'sum',
      ...(p === 'in-place' ? {} : { output: b.output }),
    }),
  // Each rank's input is quantized once, the reduced shard once more.
  compare: countOutside((n) => n + 1),
};

const reduceScatter = base('reduce_scatter');
const reduceScatterQuantized: BenchOp = {
  ...reduceScatter,
  name: 'reduce_scatter_quantized',
  method: 'reduceScatterQuantized',
  dtypes: FLOATING,
  redops: ['sum', 'avg'],
  quantized: true,
  buffers: outOfPlaceOnly(reduceScatter),
  call: (comm, b, _p, a) =>
    comm.reduceScatterQuantized(b.input, b.output, { ...quantOptions(a), op: a.redop === 'avg' ? 'avg' : 'sum' }),
  compare: countOutside((n) => n),
};

const allGather = base('all_gather');
const allGatherQuantized: BenchOp = {
  ...allGather,
  name: 'all_gather_quantized',
  method: 'allGatherQuantized',
  dtypes: FLOATING,
  quantized: true,
  buffers: outOfPlaceOnly(allGather),
  call: (comm, b, _p, a) => comm.allGatherQuantized(b.input, b.output, quantOptions(a)),
  compare: countOutside(() => 1),
};

const allToAll = base('alltoall');
const allToAllQuantized: BenchOp = {
  ...allToAll,
  name: 'alltoall_quantized',
  method: 'allToAllQuantized',
  dtypes: FLOATING,
  quantized: true,
  buffers: outOfPlaceOnly(allToAll),
  call: (comm, b, _p, a) => comm.allToAllQuantized(b.input, b.output, quantOptions(a)),
  compare: countOutside(() => 1),
};

/** The quantized forms, listed after the plain ones. */
export const QUANTIZED_OPS: readonly BenchOp[] = [allReduceQuantized, reduceScatterQuantized, allGatherQuantized, allToAllQuantized];
