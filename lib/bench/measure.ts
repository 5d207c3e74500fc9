/**
 * Timing, as nccl-tests times: warm-up calls, a barrier, then n calls issued back to back
 * and awaited together; the time is the elapsed time over n. Then the ranks' times combine
 * through the communicator itself (-a), after the timed loop.
 */

import type { Communicator } from '../core/communicator';
import type { Combine } from './options';

/**
 * Seconds per call on this rank. With `blocking` each call is awaited before the next is
 * issued (nccl-tests' -z 1): the latency one caller sees rather than the pipelined rate.
 */
export async function timeCalls(
  comm: Communicator,
  issue: () => PromiseLike<unknown>,
  iters: number,
  warmup: number,
  blocking: boolean,
): Promise<number> {
  await runCalls(issue, warmup, blocking);
  await comm.barrier();
  const start = process.hrtime.bigint();
  await runCalls(issue, iters, blocking);
  return Number(process.hrtime.bigint() - start) / 1e9 / iters;
}

async function runCalls(issue: () => PromiseLike<unknown>, count: number, blocking: boolean): Promise<void> {
  if (blocking) {
    for (let i = 0; i < count; i++) await issue();
    return;
  }
  const works: PromiseLike<unknown>[] = [];
  for (let i = 0; i < count; i++) works.push(issue());
  await Promise.all(works);
}

/**
 * Combines each rank's values into one per entry, the same on every rank: rank 0's
 * (-a 0), the average (-a 1), the minimum (-a 2) or the maximum (-a 3).
 */
export async function combineAcrossRanks(comm: Communicator, values: readonly number[], how: Combine): Promise<number[]> {
  const buf = Float64Array.from(values);
  if (how === 'rank0' && comm.rank !== 0) buf.fill(0);
  const op = how === 'min' ? 'min' : how === 'max' ? 'max' : 'sum';
  await comm.allReduce(buf, { op });
  if (how === 'avg') for (let i = 0; i < buf.length; i++) buf[i] /= comm.size;
  return [...buf];
}

/** Sums counts (wrong elements) over the ranks. */
export async function sumAcrossRanks(comm: Communicator, values: readonly number[]): Promise<number[]> {
  const buf = Float64Array.from(values);
  await comm.allReduce(buf, { op: 'sum' });
  return [...buf];
}

/** nccl-tests' bandwidths in GB/s (1e9 bytes): algbw = bytes / time, busbw = algbw × factor. */
export function bandwidths(bytes: number, seconds: number, factor: number): { algbw: number; busbw: number } {
  const algbw = seconds > 0 ? bytes / seconds / 1e9 : 0;
  return { algbw, busbw: algbw * factor };
}
