// One data-parallel training step on GPUs: every rank holds its parameters and gradients in
// device memory, averages the gradients with NCCL (int8-quantized, with error feedback, as
// ZeRO++'s qgZ does), then takes an AdamW step on the device. One GPU per rank.
// Run with: npx collectives-run --nproc-per-node 8 examples/gpu-step.js
// On a machine without a GPU it says why and exits.
const { init, backends, DeviceBuffer, errorFeedbackLength } = require('collectives');
const { adamwStep } = require('collectives/ops');

async function main() {
  const { cuda, nccl } = backends();
  if (!cuda.available || !nccl.available) {
    console.log(`gpu-step: no GPU run here: ${!cuda.available ? cuda.reason : nccl.reason}`);
    return;
  }
  const comm = await init();
  const device = Number(process.env.LOCAL_RANK ?? comm.rank) % cuda.devices;
  const n = 1 << 20;
  const on = { device };
  const param = new DeviceBuffer('float32', n, on).fill(1);
  const expAvg = new DeviceBuffer('float32', n, on).fill(0);
  const expAvgSq = new DeviceBuffer('float32', n, on).fill(0);
  const residual = new DeviceBuffer('float32', errorFeedbackLength('allReduce', n, comm.size), on).fill(0);
  // A stand-in for the backward pass: this rank's gradient.
  const grad = new DeviceBuffer('float32', n, on).copyFrom(Float32Array.from({ length: n }, (_, i) => Math.sin(i + comm.rank)));

  await comm.allReduceQuantized(grad, { op: 'avg', format: 'int8', errorFeedback: residual });
  adamwStep(param, grad, expAvg, expAvgSq, { lr: 1e-3, step: 1 });

  const first = param.copyTo(new Float32Array(4));
  console.log(`rank ${comm.rank} on GPU ${device}: step done, param[0..3] = ${Array.from(first, (v) => v.toFixed(6)).join(', ')}`);
  for (const b of [param, expAvg, expAvgSq, residual, grad]) b.free();
  await comm.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
