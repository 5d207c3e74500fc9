// Data parallelism (torch DDP): the gradients averaged every step in buckets, AdamW on the
// whole model on every rank, rank 0 writing the (replicated) checkpoint.
'use strict';

const { AdamW, COMPRESSIONS, DataParallel, loadCheckpoint, saveLatestCheckpoint } = require('collectives/training');

module.exports = {
  names: ['ddp'],
  flags: {
    compress: { type: 'string', default: 'none' },
  },
  check(flags) {
    if (!COMPRESSIONS.includes(flags.compress)) {
      throw new Error(`--compress: expected one of ${COMPRESSIONS.join(', ')}, got ${JSON.stringify(flags.compress)}`);
    }
  },
  async create({ comm, params, binding, flags, o }) {
    // Rank 0's initial weights go to every rank; the layouts are compared first.
    const dp = await DataParallel.create(comm, params, { compress: flags.compress });
    const optimizer = new AdamW(params, o.adamw);
    let rounds = 0;
    return {
      describe: `${params.size} parameters in ${dp.buckets.length} bucket(s), compress ${flags.compress}`,
      async afterBackward() {
        dp.gradsReady();
        await dp.synchronizeAndStep(optimizer);
        binding.push();
        rounds++;
      },
      syncRounds: () => rounds,
      async save(dir, step) {
        return comm.rank === 0 ? saveLatestCheckpoint(dir, { params, optimizer, step, worldSize: comm.size, meta: { strategy: 'ddp', compress: flags.compress } }) : undefined;
      },
      async load(dir) {
        const { step, dir: from } = loadCheckpoint(dir, { params, optimizer });
        return { step, dir: from };
      },
      result: () => ({ compress: flags.compress }),
      free() {
        dp.free();
        optimizer.free();
      },
    };
  },
};
