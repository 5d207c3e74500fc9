/**
 * Who owns which parameter elements. The flat parameters are cut into units; each unit is
 * padded with zeros to a multiple of the world size (times the quantization block when the
 * unit travels quantized) and split into N equal, contiguous pieces, piece r belonging to
 * rank r. A rank's shard is its pieces of every unit, back to back.
 *
 * Stages 1 and 2 use one unit, the whole ParameterSet (padded as ParameterSet documents, with
 * `padMultiple` a multiple of N): rank r owns the contiguous range `params.shardRange(r, N)`.
 * Stage 3 uses one unit per layer, so that a layer is gathered by one all-gather of equal
 * pieces and its gradient averaged by one reduce-scatter (DeepSpeed partitions each
 * parameter the same way).
 */
import { TrainingError, TrainingErrorCode, argRangeError } from '../errors';
import type { ParameterSet } from '../params';

export interface PartitionUnit {
  readonly index: number;
  /** The unit's tensors, in registration order. */
  readonly names: readonly string[];
  /** Its elements in the flat parameters: [begin, begin + size). */
  readonly begin: number;
  readonly size: number;
  /** size rounded up to the unit's multiple: N × piece. */
  readonly padded: number;
  /** Elements each rank owns of it. */
  readonly piece: number;
  /** Where this unit's piece starts in every rank's shard. */
  readonly shardOffset: number;
  /** Kept whole on every rank (stage 3's persistence threshold). */
  readonly persistent: boolean;
}

/** A piece of a tensor that one rank owns. */
export interface OwnedPiece {
  readonly name: string;
  readonly rank: number;
  /** The piece in the tensor's own row-major elements. */
  readonly tensorBegin: number;
  readonly tensorEnd: number;
  /** Where it sits in that rank's shard. */
  readonly shardOffset: number;
}

export class Partition {
  readonly worldSize: number;
  readonly units: readonly PartitionUnit[];
  /** Elements of every rank's shard. */
  readonly shardLength: number;
  readonly #params: ParameterSet;
  readonly #unitOf = new Map<string, PartitionUnit>();

  private constructor(params: ParameterSet, worldSize: number, units: PartitionUnit[]) {
    this.#params = params;
    this.worldSize = worldSize;
    this.units = Object.freeze(units);
    this.shardLength = units.reduce((s, u) => s + u.piece, 0);
    for (const u of units) for (const n of u.names) this.#unitOf.set(n, u);
  }

  /** Stages 1–2: rank r owns `params.shardRange(r, worldSize)`. */
  static contiguous(params: ParameterSet, worldSize: number): Partition {
    if (params.length % worldSize !== 0) {
      throw argRangeError(
        'params',
        `a ParameterSet whose padded length divides by the world size ${worldSize} (build it with padMultiple: ParameterSet.padMultiple(${worldSize}))`,
        `padded length ${params.length}`,
      );
    }
    const unit: PartitionUnit = Object.freeze({
      index: 0, names: Object.freeze(params.tensors.map((t) => t.name)), begin: 0, size: params.length,
      padded: params.length, piece: params.length / worldSize, shardOffset: 0, persistent: false,
    });
    return new Partition(params, worldSize, [unit]);
  }

  /**
   * Stage 3: one unit per layer (lists of consecutive tensors covering every tensor once),
   * each padded to a multiple of worldSize × `block`; layers under `persistBelow` elements
   * are marked persistent.
   */
  static layered(params: ParameterSet, worldSize: number, layers: readonly (readonly string[])[], block: number, persistBelow: number): Partition {
    const seen = new Set<string>();
    const units: PartitionUnit[] = [];
    let next = 0;
    let shardOffset = 0;
    layers.forEach((names, i) => {
      for (const [j, name] of names.entries()) {
        if (!params.has(name)) throw argRangeError(`options.layers[${i}][${j}]`, 'the name of a tensor of the ParameterSet', name);
        if (seen.has(name)) throw argRangeError(`options.layers[${i}][${j}]`, 'a tensor in one layer only', name);
        seen.add(name);
      }
      const first = params.get(names[0]);
      if (first.offset !== next) {
        const expected = params.tensors.find((t) => t.offset === next);
        throw argRangeError(`options.layers[${i}]`, `layers of consecutive tensors in registration order, starting with ${JSON.stringify(expected?.name)}`, names[0]);
      }
      let end = first.offset;
      for (const [j, name] of names.entries()) {
        const t = params.get(name);
        if (t.offset !== end) throw argRangeError(`options.layers[${i}][${j}]`, 'the tensor registered right after the one before it', name);
        end += t.size;
      }
      const size = end - first.offset;
      const multiple = worldSize * block;
      const padded = Math.ceil(size / multiple) * multiple;
      const piece = padded / worldSize;
      units.push(Object.freeze({ index: i, names: Object.freeze([...names]), begin: first.offset, size, padded, piece, shardOffset, persistent: size < persistBelow }));
      shardOffset += piece;
      next = end;
    });
    const missing = params.tensors.filter((t) => !seen.has(t.name)).map((t) => t.name);
    if (missing.length > 0) throw argRangeError('options.layers', 'layers covering every tensor', `no layer for ${missing.slice(0, 4).map((n) => JSON.stringify(n)).join(', ')}`);
    return new Partition(params, worldSize, units);
  }

  /** The unit holding `name`. */
  unitOf(name: string): PartitionUnit {
    const u = this.#unitOf.get(name);
    if (u === undefined) throw argRangeError('name', 'the name of a tensor of the ParameterSet', name);
    return u;
  }

  /**
   * Stage 1–2's owned range of the flat parameters, [begin, end); for a layered partition
   * (stage 3) there is no single range: an INVALID_STATE error says to use `pieces`.
   */
  shardRange(rank: number): { begin: number; end: number } {
    if (this.units.length !== 1 || this.units[0].size !== this.#params.length) {
      throw new TrainingError(TrainingErrorCode.INVALID_STATE, 'shardRange: stage 3 owns one piece of every layer, not one range; see pieces(rank) and units');
    }
    return this.#params.shardRange(rank, this.worldSize);
  }

  /** The tensor pieces rank `rank` owns, in shard order (padding belongs to no tensor). */
  pieces(rank: number): OwnedPiece[] {
    const out: OwnedPiece[] = [];
    for (const u of this.units) {
      const a = Math.min(u.size, rank * u.piece);
      const b = Math.min(u.size, (rank + 1) * u.piece);
      if (a >= b) continue;
      for (const p of this.#params.piecesIn(u.begin + a, u.begin + b)) {
        out.push({ name: p.name, rank, tensorBegin: p.tensorBegin, tensorEnd: p.tensorEnd, shardOffset: u.shardOffset + (p.begin - u.begin - rank * u.piece) });
      }
    }
    return out;
  }

  /** Who owns the elements of tensor `name`: one piece per owning rank, in rank order. */
  ownership(name: string): OwnedPiece[] {
    const u = this.unitOf(name);
    const t = this.#params.get(name);
    const out: OwnedPiece[] = [];
    for (let r = 0; r < this.worldSize; r++) {
      const a = Math.max(t.offset, u.begin + r * u.piece);
      const b = Math.min(t.offset + t.size, u.begin + (r + 1) * u.piece);
      if (a < b) out.push({ name, rank: r, tensorBegin: a - t.offset, tensorEnd: b - t.offset, shardOffset: u.shardOffset + (a - u.begin - r * u.piece) });
    }
    return out;
  }

  /** Elements of rank `rank`'s shard that belong to no tensor. */
  padding(rank: number): number {
    return this.shardLength - this.pieces(rank).reduce((s, p) => s + p.tensorEnd - p.tensorBegin, 0);
  }
}

/** The default stage-3 layers: consecutive tensors sharing the name up to the last '.' or '/'. */
export function layersByPrefix(params: ParameterSet): string[][] {
  const layers: string[][] = [];
  let prefix: string | undefined;
  for (const t of params.tensors) {
    const cut = Math.max(t.name.lastIndexOf('.'), t.name.lastIndexOf('/'));
    const p = cut > 0 ? t.name.slice(0, cut) : t.name;
    if (p === prefix && layers.length > 0) layers[layers.length - 1].push(t.name);
    else layers.push([t.name]);
    prefix = p;
  }
  return layers;
}
