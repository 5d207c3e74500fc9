// ZeRO (DeepSpeed's Zero Redundancy Optimizer): zero1 shards AdamW's state over the ranks,
// zero2 also the gradients (averaged in buckets as they are ready), zero3 also the weights
// (gathered layer by layer), zero++ is zero3 with ZeRO++'s quantized weights (int8 all-gather),
// hierarchical partition (backward gathers inside the node) and quantized gradients (int4,
// node first, then across nodes), each a flag. Every rank writes its shard of the checkpoint.
//
// TF.js keeps its own full copy of the weights in its variables, so this example shows the
// strategies' traffic and accuracy, not their memory: zero3 gathers each layer into
// params.data before the forward pass and again for the backward pass, as a model computing
// inside the gather windows would.
'use strict';

const { AdamW, ParameterSet, Zero, layersByPrefix, loadZeroCheckpoint, saveLatestZeroCheckpoint } = require('collectives/training');

const QUANT = ['none', 'int8', 'int4', 'fp8e4m3'];

module.exports = {
  names: ['zero1', 'zero2', 'zero3', 'zero++'],
  flags: {
    // zero3's defaults are off, zero++'s on: int8 weights, hpZ over the ranks of a node, int4 gradients.
    'quantized-weights': { type: 'string' },
    hpz: { type: 'string' },
    'quantized-gradients': { type: 'string' },
    'reduce-bucket-size': { type: 'string', default: '500000000' },
    'prefetch-bucket-size': { type: 'string', default: '50000000' },
    'persistence-threshold': { type: 'string', default: '100000' },
  },
  check(flags) {
    for (const f of ['quantized-weights', 'quantized-gradients']) {
      if (flags[f] !== undefined && !QUANT.includes(flags[f])) throw new Error(`--${f}: expected one of ${QUANT.join(', ')}, got ${JSON.stringify(flags[f])}`);
    }
    for (const f of ['hpz', 'reduce-bucket-size', 'prefetch-bucket-size', 'persistence-threshold']) {
      if (flags[f] !== undefined && !(Number.isInteger(Number(flags[f])) && Number(flags[f]) >= 0)) throw new Error(`--${f}: expected an integer ≥ 0, got ${JSON.stringify(flags[f])}`);
    }
  },
  async create({ comm, params, binding, flags, o }) {
    const stage = o.strategy === 'zero1' ? 1 : o.strategy === 'zero2' ? 2 : 3;
    const plus = o.strategy === 'zero++';
    const quant = (flag, fallback) => {
      const v = flags[flag] ?? (plus ? fallback : 'none');
      return v === 'none' ? undefined : v;
    };
    const hpz = Number(flags.hpz ?? (plus ? comm.localSize : 1)) || 1;
    const options = {
      stage,
      optimizer: (shard) => new AdamW(shard, o.adamw),
      reduceBucketSize: Number(flags['reduce-bucket-size']),
      ...(stage === 3
        ? {
            prefetchBucketSize: Number(flags['prefetch-bucket-size']),
            paramPersistenceThreshold: Number(flags['persistence-threshold']),
            ...(quant('quantized-weights', 'int8') && { quantizedWeights: quant('quantized-weights', 'int8') }),
            ...(hpz > 1 && { hierarchicalPartition: hpz }),
            ...(quant('quantized-gradients', 'int4') && { quantizedGradients: quant('quantized-gradients', 'int4') }),
          }
        : {}),
    };
    // Stages 1–2 own contiguous 1/N ranges, so their set is padded to a multiple of N: a padded
    // copy of the binding's set when it is not (one copy of the gradients and weights a step).
    const padded = stage < 3 && params.length % comm.size !== 0;
    const set = padded ? new ParameterSet(params.tensors.map((t) => ({ name: t.name, shape: t.shape })), { padMultiple: ParameterSet.padMultiple(comm.size) }) : params;
    if (padded) set.data.set(params.data);
    const zero = await Zero.create(comm, set, options);
    const layers = layersByPrefix(params);
    let rounds = 0;

    /** The next forward pass's weights into the model: params.data, then the TF.js variables. */
    async function publish() {
      if (stage < 3) {
        if (padded) params.data.set(set.data.subarray(0, params.length));
      } else {
        for (const layer of layers) {
          await zero.withGathered(layer, () => {
            for (const name of layer) params.view(name).set(zero.view(name));
          });
        }
      }
      binding.push();
    }

    return {
      describe: `ZeRO stage ${stage}${plus ? ' (ZeRO++)' : ''}: ${zero.partition.shardLength} of ${params.size} parameters' master and AdamW state per rank` +
        (stage === 3 ? `, ${zero.partition.units.length} layers, quantizedWeights ${options.quantizedWeights ?? 'off'}, hpZ ${hpz}, quantizedGradients ${options.quantizedGradients ?? 'off'}` : ''),
      async afterBackward() {
        if (stage < 3) {
          if (padded) set.grad.set(params.grad);
          zero.gradsReady();
        } else {
          for (let l = layers.length - 1; l >= 0; l--) {
            await zero.withGathered(layers[l], () => {
              for (const name of [...layers[l]].reverse()) {
                zero.gradView(name).set(params.gradView(name));
                zero.gradReady(name);
              }
            });
          }
        }
        await zero.step();
        rounds++;
        await publish();
      },
      syncRounds: () => rounds,
      async save(dir, step) {
        return saveLatestZeroCheckpoint(zero, dir, { step, meta: { strategy: o.strategy } });
      },
      async load(dir) {
        const loaded = await loadZeroCheckpoint(zero, dir);
        await publish();
        return { step: loaded.step, dir: loaded.dir };
      },
      result: () => {
        const groups = [zero.groups.intra, zero.groups.inter, zero.groups.hpz].filter((c, i, a) => c !== null && a.indexOf(c) === i);
        return {
          stage,
          quantizedWeights: options.quantizedWeights ?? null,
          hierarchicalPartition: hpz,
          quantizedGradients: options.quantizedGradients ?? null,
          subgroupBytesSent: groups.reduce((s, c) => s + c.stats().total.bytesSent, 0),
        };
      },
      async free() {
        await zero.free();
      },
    };
  },
};
