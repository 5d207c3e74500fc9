/**
 * Stage 3's gradient side: a layer's gradients are written into a buffer of the layer's own
 * (allocated when first asked for), and once all of them are ready that buffer is averaged
 * over the ranks by a reduce-scatter into this rank's piece of the gradient shard, then freed.
 *
 * With qgZ (ZeRO++'s quantized gradients) the average is hierarchical, as in the paper:
 * a quantized reduce-scatter inside each node (quantize, all-to-all, dequantize, reduce),
 * then a second one across nodes among the ranks of the same local index, on the node's
 * partial sums: two quantizations per element whatever the world size, and 1/k of the
 * gradient bytes cross nodes. The layer is reordered first so that the piece each rank ends
 * with is the one it owns: chunk j (for local index j) holds the pieces of ranks
 * j, k + j, 2k + j, … in node order.
 */
import type { Communicator, QuantFormat } from '../../index';
import { allocate, release, view, type Float32Buffer } from '../buffers';
import { copyInto } from './copy';
import type { PartitionUnit } from './partition';

export interface LayerGradientConfig {
  world: Communicator;
  intra: Communicator | null;
  inter: Communicator | null;
  device: number | undefined;
  gradientFormat: QuantFormat | undefined;
  blockSize: number;
}

export class LayerGradients {
  readonly #c: LayerGradientConfig;
  readonly #shardGrad: Float32Buffer;
  readonly #buffers = new Map<PartitionUnit, Float32Buffer>();

  constructor(shardGrad: Float32Buffer, config: LayerGradientConfig) {
    this.#shardGrad = shardGrad;
    this.#c = config;
  }

  /** The layer's gradient buffer (padded length, zero at first). */
  buffer(u: PartitionUnit): Float32Buffer {
    let b = this.#buffers.get(u);
    if (b === undefined) {
      b = allocate(u.padded, this.#c.device);
      this.#buffers.set(u, b);
    }
    return b;
  }

  /** Starts averaging the layer's gradients into this rank's piece of the shard; frees the buffer when done. */
  reduce(u: PartitionUnit): Promise<void> {
    const grad = this.buffer(u);
    this.#buffers.delete(u);
    const out = view(this.#shardGrad, u.shardOffset, u.shardOffset + u.piece);
    const { world, intra, inter, gradientFormat: format, blockSize } = this.#c;
    let done: Promise<unknown>;
    const scratch: Float32Buffer[] = [grad];
    if (format === undefined) {
      done = world.reduceScatter(grad, out, { op: 'avg' }).wait();
    } else if (intra === null || inter === null) {
      done = world.reduceScatterQuantized(grad as never, out as never, { op: 'avg', format, blockSize }).wait();
    } else {
      const k = intra.size;
      const m = inter.size;
      const reordered = allocate(u.padded, this.#c.device);
      const chunk = allocate(u.padded / k, this.#c.device);
      scratch.push(reordered, chunk);
      const p = u.piece;
      for (let j = 0; j < k; j++) {
        for (let i = 0; i < m; i++) {
          const from = (i * k + j) * p;
          const to = (j * m + i) * p;
          copyInto(view(grad, from, from + p), view(reordered, to, to + p));
        }
      }
      const q = { op: 'avg' as const, format, blockSize };
      // The second level starts when the first has landed: its input is the first's output.
      done = intra.reduceScatterQuantized(reordered as never, chunk as never, q).wait().then(() => inter.reduceScatterQuantized(chunk as never, out as never, q).wait());
    }
    const settled = done.then(() => undefined);
    void settled.finally(() => {
      for (const b of scratch) release(b);
    }).catch(() => {});
    return settled;
  }

  /** Bytes of the gradient buffers alive now. */
  bytes(): number {
    let n = 0;
    for (const b of this.#buffers.values()) n += b.byteLength;
    return n;
  }

  free(): void {
    for (const b of this.#buffers.values()) release(b);
    this.#buffers.clear();
  }
}
