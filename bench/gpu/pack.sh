#!/usr/bin/env bash
# Packs, on this machine, what bench/gpu/run.sh needs on a GPU machine that has
# CUDA but no Node.js, no Gloo and no node_modules:
#   .device/              node, the addon's shared libraries, env.sh (../shared/tools/device-pack.sh)
#   .device/node_modules/ mocha and commander with what they require, nothing else
#                         (all of node_modules is ~70 MB, over the 64 MiB a run may carry)
# Build first, with the CUDA part:  npx cmake-js compile --out build && npx tsc -p .
# Then carry: .device dist build/Release   (the total is printed; it must stay under 64 MiB)
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
for f in build/Release/collectives.node build/Release/libcollectives_cuda.so build/Release/collectives_cuda_selftest build/Release/nccl-loop dist/index.js; do
  if [[ ! -e $f ]]; then
    echo "bench/gpu/pack.sh: $f is missing: build with the CUDA part first (npx cmake-js compile --out build && npx tsc -p .)" >&2
    exit 1
  fi
done
pack=${DEVICE_PACK:-$(dirname "$top")/shared/tools/device-pack.sh}
if [[ ! -x $pack ]]; then
  echo "bench/gpu/pack.sh: device-pack.sh not found at $pack (set DEVICE_PACK to its path)" >&2
  exit 1
fi
# device-pack.sh records .device/ in .git/info/exclude; in a git worktree .git
# is a file and that fails. .gitignore already ignores .device/, so there the
# record is dropped.
if [[ -d .git ]]; then
  "$pack" build/Release/*.node build/Release/libcollectives_cuda.so
else
  bash <(sed 's|\.git/info/exclude|/dev/null|g' "$pack") build/Release/*.node build/Release/libcollectives_cuda.so
fi

# The packages run.sh starts, and everything each one requires, found the way
# Node finds them (the nearest node_modules upwards); nested node_modules come along.
rm -rf .device/node_modules
node - <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const root = process.cwd();
function find(name, from) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === path.dirname(dir)) throw new Error(`${name} not found from ${from}`);
  }
}
const seen = new Set();
const queue = ['mocha', 'commander'].map((n) => find(n, root));
while (queue.length) {
  const dir = queue.pop();
  if (seen.has(dir)) continue;
  seen.add(dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
    try { queue.push(find(dep, dir)); } catch { /* an optional dependency not installed here */ }
  }
}
for (const dir of seen) {
  const rel = path.relative(path.join(root, 'node_modules'), dir);
  if (rel.includes(`node_modules${path.sep}`)) continue; // inside a package copied whole
  fs.cpSync(dir, path.join(root, '.device', 'node_modules', rel), { recursive: true, dereference: true });
}
console.log(`.device/node_modules: ${seen.size} packages`);
JS
du -sch .device dist build/Release
git ls-files -z | du -ch --files0-from=- | tail -1 | sed 's/total/tracked files (travel too)/'
echo "carry: .device dist build/Release; run: bash bench/gpu/run.sh"
