// The training strategies of examples/train-fashion-mnist.js, one file each. A strategy module
// exports:
//   names   the --strategy values it handles
//   flags   node:util parseArgs options of its own (refused with any other strategy)
//   check?  (flags) => void, throws on a bad value before any communicator is made
//   create  async (ctx) => driver, ctx = { comm, params, binding, flags, o }: flags are its own
//           parsed values, o the common options (steps, batchSize, seed,
//           adamw: the AdamW settings every strategy's optimizer takes, …)
// and the driver:
//   describe               one line for the banner
//   beforeForward?(step)   before the step's forward pass (e.g. gathering sharded weights)
//   afterBackward(step)    the gradients are in params.grad; leaves the next forward's weights
//                          in the model (binding.push())
//   syncRounds()           synchronizations so far (what the results table counts)
//   save(dir, step)        called on every rank; the checkpoint is complete when all return;
//                          resolves to the directory written (at least on rank 0)
//   load(dir) → { step, dir }  called on every rank: the step the checkpoint was taken at, and
//                          the directory it was read from
//   result?()              extra fields for the --json result
//   free()                 may return a promise (the example awaits it)
'use strict';

const STRATEGY_MODULES = [
  require('./ddp'),
  require('./diloco'),
  require('./zero'),
];

module.exports = { STRATEGY_MODULES };
