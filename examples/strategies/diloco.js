// DiLoCo (Douillard et al.): each rank runs AdamW on its own for --sync-every inner steps, then
// the ranks average the pseudo-gradients θ_global − θ_local and take an outer Nesterov step
// (lr 0.7, momentum 0.9). --fragments P synchronizes P slices of the parameters in turn
// (Streaming DiLoCo), each overlapped with --fragment-sync-delay inner steps; --mode eager
// applies the local pseudo-gradient at once and the average when it lands; --mode delayed
// applies each round's average one round later; --quantize sends int8 / int4 / fp8 with error
// feedback. Every rank saves its own part of the checkpoint.
'use strict';

const { AdamW, DILOCO_MODES, DiLoCo, loadDiLoCoCheckpoint, saveDiLoCoCheckpoint } = require('collectives/training');

const QUANTIZE = ['none', 'int8', 'int4', 'fp8'];

function settings(flags) {
  const int = (flag, min) => {
    const v = Number(flags[flag]);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${flag}: expected an integer ≥ ${min}, got ${JSON.stringify(flags[flag])}`);
    return v;
  };
  const num = (flag) => {
    const v = Number(flags[flag]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${flag}: expected a number ≥ 0, got ${JSON.stringify(flags[flag])}`);
    return v;
  };
  if (!DILOCO_MODES.includes(flags.mode)) throw new Error(`--mode: expected one of ${DILOCO_MODES.join(', ')}, got ${JSON.stringify(flags.mode)}`);
  if (!QUANTIZE.includes(flags.quantize)) throw new Error(`--quantize: expected one of ${QUANTIZE.join(', ')}, got ${JSON.stringify(flags.quantize)}`);
  const syncEvery = int('sync-every', 1);
  const fragments = int('fragments', 1);
  // Eager needs inner steps for the average to land in: 5 unless told (at most H/P − 1).
  const delay = flags['fragment-sync-delay'] !== undefined ? int('fragment-sync-delay', 0) : flags.mode === 'eager' ? Math.min(5, syncEvery / fragments - 1) : undefined;
  return {
    syncEvery,
    fragments,
    mode: flags.mode,
    ...(delay === undefined ? {} : { fragmentSyncDelay: delay }),
    fragmentUpdateAlpha: num('fragment-update-alpha'),
    outer: { lr: num('outer-lr'), momentum: num('outer-momentum'), nesterov: true },
    quantize: flags.quantize === 'none' ? false : flags.quantize,
  };
}

module.exports = {
  names: ['diloco'],
  flags: {
    'sync-every': { type: 'string', default: '50' },
    fragments: { type: 'string', default: '1' },
    'fragment-sync-delay': { type: 'string' },
    'fragment-update-alpha': { type: 'string', default: '0' },
    mode: { type: 'string', default: 'sync' },
    quantize: { type: 'string', default: 'none' },
    'outer-lr': { type: 'string', default: '0.7' },
    'outer-momentum': { type: 'string', default: '0.9' },
  },
  check(flags) {
    settings(flags);
  },
  async create({ comm, params, binding, flags, o: common }) {
    const s = settings(flags);
    const optimizer = new AdamW(params, common.adamw);
    // Compares layouts and options across ranks, broadcasts rank 0's weights.
    const diloco = await DiLoCo.create(comm, params, { innerOptimizer: optimizer, ...s });
    const o = diloco.options;
    return {
      describe: `${params.size} parameters, H ${o.syncEvery}, ${o.fragments} fragment(s), τ ${o.fragmentSyncDelay}, mode ${o.mode}, quantize ${flags.quantize}, outer Nesterov ${o.outer.lr} / ${o.outer.momentum}`,
      diloco,
      async afterBackward() {
        optimizer.step();
        await diloco.step();
        binding.push();
      },
      syncRounds: () => diloco.syncRounds,
      async save(dir, step) {
        return saveDiLoCoCheckpoint(dir, { diloco, step, meta: { strategy: 'diloco', ...flags } });
      },
      // --resume ROOT: the newest step every rank saved; ROOT/rank-0/step-00000060: that step.
      async load(dir) {
        const m = /^(.*)[\\/]rank-\d+[\\/]step-(\d+)[\\/]?$/.exec(dir);
        const { step, dir: from } = await loadDiLoCoCheckpoint(m ? m[1] : dir, { diloco, ...(m ? { step: Number(m[2]) } : {}) });
        return { step, dir: from };
      },
      result: () => ({
        syncEvery: o.syncEvery,
        fragments: o.fragments,
        fragmentSyncDelay: o.fragmentSyncDelay,
        mode: o.mode,
        quantize: flags.quantize,
        outerSteps: diloco.outerSteps,
      }),
      async free() {
        await diloco.free();
        optimizer.free();
      },
    };
  },
};
