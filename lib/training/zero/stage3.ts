/**
 * Stage 3's parameter side: each layer (a partition unit) lives as this rank's piece of the
 * float32 master; `gather` all-gathers a layer into a buffer of its own for the time it is
 * used, `release` frees it, and the next layers' all-gathers are issued ahead (prefetch) so
 * they run while the current layer computes. Layers under the persistence threshold are kept
 * whole and refreshed after each step.
 *
 * The first gather of a layer in a step is its forward gather: from the world, int8 with
 * qwZ. With hpZ that gather also leaves this rank its 1/k of the layer (the secondary
 * partition), and later gathers in the step (the backward's) all-gather those pieces inside
 * the hpZ group (int8 too with qwZ), so they never leave the node. The master is never quantized.
 */
import type { Communicator, QuantFormat } from '../../index';
import { allocate, release, view, type Float32Buffer } from '../buffers';
import { copyInto } from './copy';
import { TrainingError, TrainingErrorCode } from '../errors';
import type { Partition, PartitionUnit } from './partition';

type Status = 'released' | 'prefetching' | 'gathered';

interface UnitState {
  readonly unit: PartitionUnit;
  buffer: Float32Buffer | undefined;
  work: Promise<void> | undefined;
  status: Status;
  refs: number;
  /** Gathers issued for it in this step: the first is the forward's. */
  gathers: number;
  /** hpZ: this rank's 1/k of the layer, kept from the forward gather for the backward's. */
  secondary: Float32Buffer | undefined;
}

export interface GatherConfig {
  world: Communicator;
  hpz: Communicator | null;
  device: number | undefined;
  /** qwZ's format, or undefined for float32 gathers. */
  weightFormat: QuantFormat | undefined;
  blockSize: number;
  prefetchBucketSize: number;
}

/** Counts of what a gather has done, for tests and benchmarks to observe (never timed). */
export interface GatherCounters {
  /** All-gathers issued on the world communicator (forward, or backward without hpZ). */
  world: number;
  /** All-gathers issued inside the hpZ group (backward with hpZ). */
  secondary: number;
  /** Gathers issued ahead of their request. */
  prefetched: number;
}

export class LayerGathers {
  readonly #states: UnitState[];
  readonly #byUnit = new Map<PartitionUnit, UnitState>();
  readonly #master: Float32Buffer;
  readonly #c: GatherConfig;
  readonly counters: GatherCounters = { world: 0, secondary: 0, prefetched: 0 };

  constructor(partition: Partition, master: Float32Buffer, config: GatherConfig) {
    this.#master = master;
    this.#c = config;
    this.#states = partition.units.map((unit) => ({ unit, buffer: undefined, work: undefined, status: 'released' as Status, refs: 0, gathers: 0, secondary: undefined }));
    for (const s of this.#states) this.#byUnit.set(s.unit, s);
  }

  /** Allocates and fills the persistent layers (at creation, and after every step). */
  async refreshPersistent(): Promise<void> {
    const works: Promise<unknown>[] = [];
    for (const s of this.#states) {
      if (!s.unit.persistent) continue;
      s.buffer ??= allocate(s.unit.padded, this.#c.device);
      s.status = 'gathered';
      works.push(this.#c.world.allGather(this.#piece(s.unit), s.buffer).wait());
    }
    await Promise.all(works);
  }

  status(unit: PartitionUnit): Status {
    return this.#byUnit.get(unit)!.status;
  }

  /** The gathered layer's buffer (padded length); an INVALID_STATE error when it is not gathered. */
  buffer(unit: PartitionUnit, what: string): Float32Buffer {
    const s = this.#byUnit.get(unit)!;
    if (s.status !== 'gathered' || s.buffer === undefined) {
      throw new TrainingError(TrainingErrorCode.INVALID_STATE, `${what}: layer ${JSON.stringify(unit.names.join(', '))} is not gathered (await zero.gather([...]) first)`);
    }
    return s.buffer;
  }

  /** Gathers the units (and prefetches those after them in the direction of the pass); resolves when they are usable. */
  async gather(units: readonly PartitionUnit[]): Promise<void> {
    const waits: Promise<void>[] = [];
    // A layer used before in this step is being gathered for the backward pass: prefetch
    // towards the first layer then, towards the last one otherwise.
    let backward = false;
    for (const u of units) {
      const s = this.#byUnit.get(u)!;
      s.refs++;
      if (u.persistent) continue;
      if (s.status === 'released') {
        backward ||= s.gathers > 0;
        this.#issue(s);
      } else {
        backward ||= s.status === 'gathered' || s.gathers > 1;
      }
      waits.push(s.work!);
    }
    this.#prefetchAfter(units, backward);
    await Promise.all(waits);
    for (const u of units) {
      const s = this.#byUnit.get(u)!;
      if (!u.persistent && s.refs > 0) s.status = 'gathered';
    }
  }

  /** Drops one reference to each unit; a layer nobody holds is freed. */
  release(units: readonly PartitionUnit[]): void {
    for (const u of units) {
      const s = this.#byUnit.get(u)!;
      if (s.refs === 0) {
        throw new TrainingError(TrainingErrorCode.INVALID_STATE, `release: layer ${JSON.stringify(u.names.join(', '))} was not gathered`);
      }
      s.refs--;
      if (s.refs === 0 && !u.persistent) this.#free(s);
    }
  }

  /** Layers still held by the caller (stage 3's step refuses to run while any is). */
  held(): PartitionUnit[] {
    return this.#states.filter((s) => s.refs > 0 && !s.unit.persistent).map((s) => s.unit);
  }

  /** The step's end: prefetches nobody asked for are awaited and freed, hpZ's secondary copies dropped. */
  async endStep(): Promise<void> {
    for (const s of this.#states) {
      if (s.unit.persistent) {
        s.gathers = 0;
        s.refs = 0;
        continue;
      }
      if (s.work !== undefined) await s.work.catch(() => {});
      if (s.refs === 0 && s.status !== 'released') this.#free(s);
      if (s.secondary !== undefined) release(s.secondary);
      s.secondary = undefined;
      s.gathers = 0;
    }
  }

  /** Bytes of live buffers: gathered layers, persistent layers, hpZ secondary pieces. */
  bytes(): { gathered: number; persistent: number; secondary: number } {
    const out = { gathered: 0, persistent: 0, secondary: 0 };
    for (const s of this.#states) {
      if (s.buffer !== undefined) out[s.unit.persistent ? 'persistent' : 'gathered'] += s.buffer.byteLength;
      if (s.secondary !== undefined) out.secondary += s.secondary.byteLength;
    }
    return out;
  }

  /** Frees every buffer (device memory). */
  free(): void {
    for (const s of this.#states) {
      if (s.buffer !== undefined) release(s.buffer);
      if (s.secondary !== undefined) release(s.secondary);
      s.buffer = undefined;
      s.secondary = undefined;
      s.status = 'released';
    }
  }

  #piece(u: PartitionUnit): Float32Buffer {
    return view(this.#master, u.shardOffset, u.shardOffset + u.piece);
  }

  #issue(s: UnitState): void {
    const { world, hpz, device, weightFormat, blockSize } = this.#c;
    const u = s.unit;
    const buffer = allocate(u.padded, device);
    s.buffer = buffer;
    const first = s.gathers === 0;
    s.gathers++;
    s.status = 'prefetching';
    if (!first && hpz !== null && s.secondary !== undefined) {
      this.counters.secondary++;
      // With qwZ the secondary pieces travel int8 too: they hold values the forward gather
      // dequantized, on the same block boundaries, so quantizing them again gives back the
      // same codes (the block's absmax is ±127 × its scale).
      const w = weightFormat === undefined ? hpz.allGather(s.secondary, buffer) : hpz.allGatherQuantized(s.secondary as never, buffer as never, { format: weightFormat, blockSize });
      s.work = w.wait().then(() => undefined);
    } else {
      this.counters.world++;
      const piece = this.#piece(u);
      const w = weightFormat === undefined ? world.allGather(piece, buffer) : world.allGatherQuantized(piece as never, buffer as never, { format: weightFormat, blockSize });
      s.work = w.wait().then(() => {
        if (first && hpz !== null) {
          // This rank's 1/k of what the forward gathered: the backward gathers it back inside the node.
          const k = hpz.size;
          const part = u.padded / k;
          s.secondary = allocate(part, device);
          copyInto(view(buffer, hpz.rank * part, (hpz.rank + 1) * part), s.secondary);
        }
      });
    }
    s.work.catch(() => {});
  }

  #prefetchAfter(units: readonly PartitionUnit[], backward: boolean): void {
    const budget = this.#c.prefetchBucketSize;
    if (budget <= 0 || units.length === 0) return;
    const indices = units.map((u) => u.index);
    let i = backward ? Math.min(...indices) - 1 : Math.max(...indices) + 1;
    let taken = 0;
    while (i >= 0 && i < this.#states.length && taken < budget) {
      const s = this.#states[i];
      i += backward ? -1 : 1;
      if (s.unit.persistent) continue;
      // Forward prefetches layers not yet used in this step, backward those the forward used.
      if (backward ? s.gathers === 0 : s.gathers > 0) break;
      if (s.status === 'released') {
        this.#issue(s);
        this.counters.prefetched++;
      }
      taken += s.unit.padded;
    }
  }

  #free(s: UnitState): void {
    const buffer = s.buffer;
    const work = s.work;
    s.buffer = undefined;
    s.work = undefined;
    s.status = 'released';
    if (buffer === undefined) return;
    // A buffer still being gathered into is freed once the gather is done.
    if (work === undefined) release(buffer);
    else void work.then(() => release(buffer), () => release(buffer));
  }
}
