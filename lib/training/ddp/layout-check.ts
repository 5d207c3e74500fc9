import type { Communicator } from '../../index';
import { TrainingError, TrainingErrorCode } from '../errors';
import type { ParameterSet } from '../params';

/**
 * Compares the parameter layouts of all ranks before any gradient moves (torch DDP verifies
 * the model's shapes across ranks the same way at construction). Each rank's layout (names,
 * shapes, order) is all-gathered as JSON, so that a rank with another model gets, on every
 * rank, an error naming the first tensor that differs and what each rank holds there, rather
 * than an all-reduce of mismatched buffers.
 */
export async function checkSameLayout(comm: Communicator, params: ParameterSet, what: string): Promise<void> {
  const mine = new TextEncoder().encode(JSON.stringify({ length: params.length, tensors: params.tensors.map((t) => [t.name, t.shape]) }));
  const lengths = new Int32Array(comm.size);
  await comm.allGather(Int32Array.of(mine.length), lengths);
  const width = Math.max(...lengths);
  const padded = new Uint8Array(width);
  padded.set(mine);
  const all = new Uint8Array(width * comm.size);
  await comm.allGather(padded, all);
  const decoder = new TextDecoder();
  const layouts: { length: number; tensors: [string, number[]][] }[] = [];
  for (let r = 0; r < comm.size; r++) {
    layouts.push(JSON.parse(decoder.decode(all.subarray(r * width, r * width + lengths[r]))));
  }
  const difference = firstDifference(layouts);
  if (difference !== null) {
    throw new TrainingError(
      TrainingErrorCode.LAYOUT_MISMATCH,
      `${what} on rank ${comm.rank}: the ranks hold different parameters: ${difference}`,
    );
  }
}

function describeTensor(t: [string, number[]] | undefined): string {
  return t === undefined ? 'no tensor' : `${JSON.stringify(t[0])} [${t[1].join(', ')}]`;
}

/** The first position where some rank's layout differs from rank 0's, in words; null if none. */
function firstDifference(layouts: { length: number; tensors: [string, number[]][] }[]): string | null {
  const count = Math.max(...layouts.map((l) => l.tensors.length));
  for (let i = 0; i < count; i++) {
    const key = (r: number): string => JSON.stringify(layouts[r].tensors[i] ?? null);
    const differs = layouts.some((_, r) => key(r) !== key(0));
    if (differs) {
      const each = layouts.map((l, r) => `rank ${r} has ${describeTensor(l.tensors[i])}`).join(', ');
      return `tensor #${i}: ${each}`;
    }
  }
  const lengths = layouts.map((l) => l.length);
  if (lengths.some((n) => n !== lengths[0])) {
    return `the same tensors padded to different lengths (${lengths.map((n, r) => `rank ${r}: ${n}`).join(', ')}): build every rank's ParameterSet with the same padMultiple`;
  }
  return null;
}
