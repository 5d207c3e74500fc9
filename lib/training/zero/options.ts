/**
 * ZeRO's options, checked up front with unknown keys refused (as DeepSpeed checks its config),
 * and the translation of DeepSpeed's `zero_optimization` section into them: a user's config
 * reads across name for name.
 */
import { QUANT_FORMATS, type QuantFormat, DEFAULT_BLOCK_SIZE } from '../../index';
import { argRangeError, argTypeError, checkKeys, checkNumber } from '../errors';
import type { Optimizer } from '../optim';
import type { ParameterSet } from '../params';

export type ZeroStage = 1 | 2 | 3;

export interface ZeroOptions {
  /** DeepSpeed's `stage`: 1 shards optimizer state, 2 also gradients, 3 also parameters. */
  stage: ZeroStage;
  /**
   * Makes the optimizer over this rank's shard: called once with a ParameterSet of one flat
   * tensor (`shard`), whose `data` is the float32 master copy of the owned elements and `grad`
   * their averaged gradients; e.g. `(shard) => new AdamW(shard, { lr: 1e-3 })`.
   */
  optimizer: (shard: ParameterSet) => Optimizer;
  /** `overlap_comm` (default true): stage 2–3 average each bucket / layer as soon as it is ready, during the backward pass. */
  overlapComm?: boolean;
  /** `reduce_bucket_size` in elements (default 5e8): stage 2's gradient buckets. */
  reduceBucketSize?: number;
  /** `allgather_bucket_size` in elements (default 5e8): stage 1–2's parameter all-gather, in pieces of this many elements per rank. */
  allgatherBucketSize?: number;
  /** `stage3_prefetch_bucket_size` in elements (default 5e7): how far ahead stage 3 gathers the next layers; 0 turns prefetching off. */
  prefetchBucketSize?: number;
  /** `stage3_param_persistence_threshold` in elements (default 1e5): stage-3 layers smaller than this stay whole on every rank. */
  paramPersistenceThreshold?: number;
  /**
   * Stage 3's gather units, each a list of consecutive tensors (a layer). Default: tensors
   * grouped by their name up to the last '.' or '/' (`fc1.weight` + `fc1.bias` → `fc1`).
   */
  layers?: readonly (readonly string[])[];
  /** `zero_quantized_weights` (qwZ, stage 3): forward all-gathers in int8 blockwise; the master stays float32. */
  quantizedWeights?: boolean;
  /** `zero_hpz_partition_size` (hpZ, stage 3; default 1 = off): a secondary copy sharded over this many ranks of a node serves the backward gathers. */
  hierarchicalPartition?: number;
  /** `zero_quantized_gradients` (qgZ, stage 3): true (int4) or a format; gradients averaged by quantized all-to-all inside each node, then across nodes. */
  quantizedGradients?: boolean | QuantFormat;
  /** Elements per quantization scale (default 256). */
  blockSize?: number;
  /** Broadcast rank 0's parameters at creation (default true, as DataParallel). */
  broadcastParameters?: boolean;
}

/** The options with every default filled in. */
export interface ResolvedZeroOptions {
  stage: ZeroStage;
  optimizer: (shard: ParameterSet) => Optimizer;
  overlapComm: boolean;
  reduceBucketSize: number;
  allgatherBucketSize: number;
  prefetchBucketSize: number;
  paramPersistenceThreshold: number;
  layers: readonly (readonly string[])[] | undefined;
  quantizedWeights: QuantFormat | undefined;
  hierarchicalPartition: number;
  quantizedGradients: QuantFormat | undefined;
  blockSize: number;
  broadcastParameters: boolean;
}

const KEYS = [
  'stage', 'optimizer', 'overlapComm', 'reduceBucketSize', 'allgatherBucketSize', 'prefetchBucketSize',
  'paramPersistenceThreshold', 'layers', 'quantizedWeights', 'hierarchicalPartition', 'quantizedGradients',
  'blockSize', 'broadcastParameters',
] as const;

/** DeepSpeed's `zero_optimization` keys and ours. */
export const DEEPSPEED_NAMES: Readonly<Record<string, keyof ZeroOptions | null>> = Object.freeze({
  stage: 'stage',
  overlap_comm: 'overlapComm',
  reduce_bucket_size: 'reduceBucketSize',
  allgather_bucket_size: 'allgatherBucketSize',
  stage3_prefetch_bucket_size: 'prefetchBucketSize',
  stage3_param_persistence_threshold: 'paramPersistenceThreshold',
  zero_quantized_weights: 'quantizedWeights',
  zero_hpz_partition_size: 'hierarchicalPartition',
  zero_quantized_gradients: 'quantizedGradients',
  // What DeepSpeed makes optional and this implementation always does: accepted when true.
  contiguous_gradients: null,
  reduce_scatter: null,
  allgather_partitions: null,
});

/**
 * ZeroOptions from DeepSpeed's `zero_optimization` object (snake_case keys), plus the
 * optimizer factory, which DeepSpeed configures elsewhere. Unknown keys are refused, naming them.
 */
export function fromDeepSpeedConfig(zeroOptimization: Record<string, unknown>, optimizer: ZeroOptions['optimizer']): ZeroOptions {
  const c = checkKeys<Record<string, unknown>>('zeroOptimization', zeroOptimization, Object.keys(DEEPSPEED_NAMES));
  const out: Record<string, unknown> = { optimizer };
  for (const [key, value] of Object.entries(c)) {
    const ours = DEEPSPEED_NAMES[key];
    if (ours === null) {
      if (value !== true) throw argRangeError(`zeroOptimization.${key}`, 'true (always on here)', value);
      continue;
    }
    out[ours] = value;
  }
  return out as unknown as ZeroOptions;
}

function checkBoolean(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw argTypeError(name, 'a boolean', v);
  return v;
}

function checkFormat(name: string, v: unknown, fallback: QuantFormat): QuantFormat | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return fallback;
  if (typeof v !== 'string' || !(QUANT_FORMATS as readonly string[]).includes(v)) throw argTypeError(name, `a boolean or one of ${QUANT_FORMATS.join(', ')}`, v);
  return v as QuantFormat;
}

export function resolveZeroOptions(options: ZeroOptions, worldSize: number): ResolvedZeroOptions {
  if (options === undefined) throw argTypeError('options', 'a ZeRO options object with stage and optimizer', options);
  if (options !== null && typeof options === 'object') {
    // A DeepSpeed user's first guess: say where the snake_case name went.
    const deepspeed = Object.keys(options).find((k) => typeof DEEPSPEED_NAMES[k] === 'string' && DEEPSPEED_NAMES[k] !== k);
    if (deepspeed !== undefined) {
      throw argTypeError(`options.${deepspeed}`, `our name ${DEEPSPEED_NAMES[deepspeed]} (or the whole section through fromDeepSpeedConfig())`, deepspeed);
    }
  }
  const o = checkKeys<ZeroOptions>('options', options, KEYS);
  if (o.stage !== 1 && o.stage !== 2 && o.stage !== 3) throw argRangeError('options.stage', '1, 2 or 3', o.stage);
  if (typeof o.optimizer !== 'function') throw argTypeError('options.optimizer', 'a function (shard) => Optimizer, e.g. (s) => new AdamW(s)', o.optimizer);
  const count = (name: keyof ZeroOptions, fallback: number, min: number): number =>
    o[name] === undefined ? fallback : checkNumber(`options.${name}`, o[name], min, Number.MAX_SAFE_INTEGER, true);
  const quantizedWeights = checkFormat('options.quantizedWeights', o.quantizedWeights, 'int8');
  const quantizedGradients = checkFormat('options.quantizedGradients', o.quantizedGradients, 'int4');
  const hierarchicalPartition = count('hierarchicalPartition', 1, 1);
  if (o.stage !== 3) {
    for (const k of ['prefetchBucketSize', 'paramPersistenceThreshold', 'layers', 'quantizedWeights', 'hierarchicalPartition', 'quantizedGradients'] as const) {
      if (o[k] !== undefined && o[k] !== false && !(k === 'hierarchicalPartition' && o[k] === 1)) {
        throw argRangeError(`options.${k}`, 'stage 3 (a stage-3 option; ZeRO++ builds on stage 3, as in DeepSpeed)', `stage ${o.stage}`);
      }
    }
  }
  if (hierarchicalPartition > 1 && worldSize % hierarchicalPartition !== 0) {
    throw argRangeError('options.hierarchicalPartition', `a divisor of the world size ${worldSize}`, hierarchicalPartition);
  }
  let layers: readonly (readonly string[])[] | undefined;
  if (o.layers !== undefined) {
    if (!Array.isArray(o.layers) || !o.layers.every((l) => Array.isArray(l) && l.length > 0 && l.every((n) => typeof n === 'string'))) {
      throw argTypeError('options.layers', 'an array of non-empty arrays of tensor names', o.layers);
    }
    layers = o.layers;
  }
  const blockSize = count('blockSize', DEFAULT_BLOCK_SIZE, 8);
  if (blockSize % 8 !== 0) throw argRangeError('options.blockSize', 'a multiple of 8', blockSize);
  return {
    stage: o.stage,
    optimizer: o.optimizer,
    overlapComm: checkBoolean('options.overlapComm', o.overlapComm, true),
    reduceBucketSize: count('reduceBucketSize', 5e8, 1),
    allgatherBucketSize: count('allgatherBucketSize', 5e8, 1),
    prefetchBucketSize: count('prefetchBucketSize', 5e7, 0),
    paramPersistenceThreshold: count('paramPersistenceThreshold', 1e5, 0),
    layers,
    quantizedWeights,
    hierarchicalPartition,
    quantizedGradients,
    blockSize,
    broadcastParameters: checkBoolean('options.broadcastParameters', o.broadcastParameters, true),
  };
}
