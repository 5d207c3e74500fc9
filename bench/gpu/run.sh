#!/usr/bin/env bash
# Every GPU check and benchmark the project records, in one command, on a
# machine with an NVIDIA GPU (see bench/gpu/README.md for packing and carrying):
#
#   bash bench/gpu/run.sh            writes to $OUT, or bench/out/gpu where OUT is unset
#
# Files (8, one folder, as the device machine returns them):
#   device.txt         nvidia-smi's device, driver and clocks; Node; backends()
#   gpu-tests.txt      the GPU suite, test/gpu (mocha)
#   selftest.txt       collectives_cuda_selftest --bench: kernels against the host code, then codec GB/s against a copy
#   call-cost.txt/.json  bench/gpu-call-cost.js: JavaScript's per-call cost against the C++ NCCL loop
#   nccl-bench.txt/.json collectives-bench --backend nccl, 1 rank, five operations, 8 B to 256 MiB
#   summary.txt        the figures the targets are judged on (bench/gpu/summary.js)
# A step that fails is recorded and the next one still runs; the exit status is
# that of the summary (1 where a step failed). Each step has a time limit, and
# together they stay under the device machine's 10 minutes a command (570 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out=${OUT:-bench/out/gpu}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The packed node and libraries (bench/gpu/pack.sh), where this machine lacks them.
[[ -f .device/env.sh ]] && source .device/env.sh
# Packages come from .device/node_modules where the project's own are not here.
export NODE_PATH="$root/.device/node_modules${NODE_PATH:+:$NODE_PATH}"
mocha=node_modules/mocha/bin/mocha.js
[[ -f $mocha ]] || mocha=.device/node_modules/mocha/bin/mocha.js
# NCCL and the CUDA runtime are often pip wheels: tell the addon's search where Python keeps them.
if command -v python3 >/dev/null; then
  site=$(python3 -c 'import site; print(":".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null)
  export COLLECTIVES_PYTHON_SITE="${site}${COLLECTIVES_PYTHON_SITE:+:$COLLECTIVES_PYTHON_SITE}"
fi

status=$(mktemp)
step() {  # step NAME FILE SECONDS COMMAND...: runs it, output to FILE and the console, status and time to $status
  local name=$1 file=$2 limit=$3
  shift 3
  echo "== $name: $*" | tee -a "$file"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$file"
  local rc=${PIPESTATUS[0]}
  echo "$name $rc $((SECONDS - t0))" >> "$status"
  echo "== $name: exit $rc, $((SECONDS - t0)) s" | tee -a "$file"
}

rm -f "$out"/{device,gpu-tests,selftest,call-cost,nccl-bench}.txt "$out"/{call-cost,nccl-bench}.json "$out/summary.txt"
{
  date -u
  uname -a
  nvidia-smi -L || echo "nvidia-smi: no GPU listed"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,persistence_mode --format=csv || true
  echo "node $(node --version)"
  node -e 'console.log(JSON.stringify(require(".").backends(), null, 1))'
} > "$out/device.txt" 2>&1
cat "$out/device.txt"

step gpu-tests "$out/gpu-tests.txt" 150 node "$mocha" --no-config --exit --expose-gc --timeout 120000 test/gpu/*.test.js
step selftest "$out/selftest.txt" 120 build/Release/collectives_cuda_selftest --bench
step call-cost "$out/call-cost.txt" 150 node bench/gpu-call-cost.js --json "$out/call-cost.json"
parts=$(mktemp -d)
for op in all_reduce reduce_scatter all_gather broadcast alltoall; do
  step "nccl-bench-$op" "$out/nccl-bench.txt" 30 node dist/bench/cli.js "$op" --backend nccl --np 1 -b 8 -e 256M -f 4 -c 1 -J "$parts/$op.json"
done
# One JSON for the five operations: the device returns 8 files at most.
node -e 'const fs=require("fs"),p=process.argv[1];console.log(JSON.stringify(fs.readdirSync(p).sort().map((f)=>JSON.parse(fs.readFileSync(`${p}/${f}`,"utf8"))),null,1))' "$parts" > "$out/nccl-bench.json"
rm -rf "$parts"

node bench/gpu/summary.js "$out" "$status" | tee "$out/summary.txt"
rc=${PIPESTATUS[0]}
rm -f "$status"
exit "$rc"
