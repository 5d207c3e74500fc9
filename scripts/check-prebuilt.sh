#!/usr/bin/env bash
# Proves that `npm install collectives` works from the prebuilt addon alone.
#
# Packs the package, then, in a mount namespace where the system's Gloo (and the libraries it
# needs), Gloo's headers and CMake files, and every compiler and build tool are hidden, installs
# the tarball into an empty folder (its dependencies come from the npm registry) and runs a 2-rank
# all-reduce through `npx collectives-run`, importing the package as ESM; then installs it again
# with --ignore-scripts and loads it. Fails, and says which check failed, when:
#   - the tarball lacks the prebuild or holds build folders or tests;
#   - the install step compiled anything, or left a build/ folder;
#   - a rank mapped Gloo or one of its libraries from anywhere but the package's prebuilds folder;
#   - the all-reduce is wrong;
#   - without its install step, the package does not load its prebuild.
#
# Usage: bash scripts/check-prebuilt.sh   (as root, after `npm run build:prebuild`)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PLATFORM=linux-x64

say() { echo "check-prebuilt: $*"; }
fail() { echo "check-prebuilt: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root, for the mount namespace that hides the system's Gloo and compilers"
command -v unshare >/dev/null || fail "unshare (util-linux) is missing"
[ -f "prebuilds/$PLATFORM/manifest.json" ] || fail "no prebuild in prebuilds/$PLATFORM: run npm run build:prebuild first"

work=$(mktemp -d /tmp/collectives-check-XXXXXX)
trap 'rm -rf "$work"' EXIT

# 1. Pack, and look at what the tarball holds.
say "packing"
npm pack --json --pack-destination "$work" >"$work/pack.json"
tarball="$work/$(node -p "require('$work/pack.json')[0].filename")"
tar tzf "$tarball" | sed 's|^package/||' | sort >"$work/contents.txt"
addon=$(node -p "require('./prebuilds/$PLATFORM/manifest.json').addon")
for f in "prebuilds/$PLATFORM/$addon" "prebuilds/$PLATFORM/libgloo.so.0" "prebuilds/$PLATFORM/manifest.json" \
         dist/index.js dist/index.mjs dist/index.d.ts dist/index.d.mts dist/ops/index.js dist/ops/index.mjs dist/ops/index.d.ts \
         dist/ops/index.d.mts dist/launch/cli.js dist/bench/cli.js \
         scripts/install.js CMakeLists.txt binding.gyp native/addon.cc README.md docs/api.md LICENSE package.json \
         dist/training/index.js dist/training/tfjs/index.js; do
  grep -qx "$f" "$work/contents.txt" || fail "the tarball lacks $f"
done
kernels=$(node -p "require('./prebuilds/$PLATFORM/manifest.json').cudaKernels?.file ?? ''")
if [ -n "$kernels" ]; then
  grep -qx "prebuilds/$PLATFORM/$kernels" "$work/contents.txt" || fail "the manifest lists $kernels but the tarball lacks it"
fi
if grep -E '^(build|test|bench|examples|node_modules|\.ci)/' "$work/contents.txt" >"$work/extra.txt"; then
  fail "the tarball holds files it must not: $(head -5 "$work/extra.txt" | tr '\n' ' ')"
fi
say "tarball $(basename "$tarball"): $(wc -l <"$work/contents.txt") files, $(du -k "$tarball" | cut -f1) KiB"

# 2. What the namespace hides: every system copy of the libraries the prebuild ships (an empty
#    file in its place, so a load from there fails loudly), Gloo's headers and CMake files, and
#    the compilers and build tools (a script that fails in their place).
mkdir -p "$work/app" "$work/empty"
: >"$work/empty-file"
printf '#!/bin/sh\necho "hidden by check-prebuilt: $0 must not run during install" >&2\nexit 1\n' >"$work/no-tool"
chmod +x "$work/no-tool"
node -e '
  const m = require(process.argv[1]);
  for (const l of m.libraries) console.log(l.file);
' "$ROOT/prebuilds/$PLATFORM/manifest.json" >"$work/shipped.txt"
hide_libs=()
while read -r name; do
  for d in /usr/lib /usr/lib/x86_64-linux-gnu /usr/local/lib /lib /lib/x86_64-linux-gnu; do
    [ -e "$d/$name" ] && hide_libs+=("$(readlink -f "$d/$name")")
  done
done <"$work/shipped.txt"
hide_dirs=()
for d in /usr/include/gloo /usr/share/cmake/Gloo /usr/lib/gcc /usr/libexec/gcc; do
  [ -d "$d" ] && hide_dirs+=("$d")
done
hide_tools=()
for t in cc c++ gcc g++ cpp clang clang++ cmake make ninja ld nvcc node-gyp; do
  p=$(command -v "$t" 2>/dev/null) && hide_tools+=("$(readlink -f "$p")")
done

cat >"$work/app/allreduce.mjs" <<'EOF'
// One rank of the check: an exact all-reduce, and where Gloo was mapped from.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { backends, init, versions } from 'collectives';

const prebuilds = createRequire(import.meta.url).resolve('collectives/package.json').replace(/package\.json$/, 'prebuilds/');
const comm = await init();
const { rank, size } = comm;
const n = 1 << 16;
const buf = new Float32Array(n).map((_, i) => (rank + 1) * (i % 7));
await comm.allReduce(buf);
const factor = (size * (size + 1)) / 2;
let wrong = 0;
for (let i = 0; i < n; i++) if (buf[i] !== factor * (i % 7)) wrong++;
const mapped = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5]).filter((f) => f && f.startsWith('/')))];
const shipped = JSON.parse(process.env.CHECK_SHIPPED);
const foreign = mapped.filter((f) => shipped.some((s) => f.endsWith('/' + s) || f.includes('/' + s.replace(/\.so.*/, '.so'))) && !f.startsWith(prebuilds));
const addon = versions().addon;
const problems = [];
if (wrong) problems.push(`all-reduce: ${wrong} of ${n} elements wrong`);
if (!addon.startsWith(prebuilds)) problems.push(`the addon was loaded from ${addon}, not from ${prebuilds}`);
if (foreign.length) problems.push(`libraries mapped from outside the prebuilds folder: ${foreign.join(', ')}`);
// The CUDA kernels shipped beside the addon are the ones it finds (loading them needs no GPU).
if (process.env.CHECK_KERNELS) {
  const k = backends().cuda.kernels;
  if (k.library !== prebuilds + 'linux-x64/' + process.env.CHECK_KERNELS) problems.push(`the CUDA kernels came from ${k.library ?? 'nowhere'} (${k.reason ?? ''}), not from the prebuilds folder`);
}
const gloo = mapped.filter((f) => /libgloo/.test(f));
if (!gloo.length) problems.push('no libgloo mapped at all');
await comm.destroy();
if (problems.length) {
  console.log(`CHECK FAIL rank ${rank}: ${problems.join('; ')}`);
  process.exit(1);
}
console.log(`CHECK OK rank ${rank}: ${n} float32 summed exactly over ${size} ranks; addon ${addon}; gloo ${gloo.join(', ')}`);
EOF

cat >"$work/inside.sh" <<'EOF'
set -euo pipefail
work=$1 tarball=$2
fail() { echo "check-prebuilt: FAILED: $*" >&2; exit 1; }
mapfile -t hide_libs <"$work/hide_libs"; mapfile -t hide_dirs <"$work/hide_dirs"; mapfile -t hide_tools <"$work/hide_tools"
for f in "${hide_libs[@]}"; do [ -n "$f" ] && mount --bind "$work/empty-file" "$f"; done
for d in "${hide_dirs[@]}"; do [ -n "$d" ] && mount -t tmpfs -o ro,size=1k none "$d"; done
for t in "${hide_tools[@]}"; do [ -n "$t" ] && mount --bind "$work/no-tool" "$t"; done
# The hiding took: no compiler runs, no Gloo to load or compile against.
if g++ --version >/dev/null 2>&1 || cc --version >/dev/null 2>&1 || cmake --version >/dev/null 2>&1; then fail "a compiler is still reachable"; fi
[ -s /usr/lib/libgloo.so.0 ] && fail "the system's libgloo.so.0 is still readable"
[ -e /usr/include/gloo/allreduce.h ] && fail "Gloo's headers are still reachable"
echo "check-prebuilt: hidden: ${#hide_libs[@]} system libraries, ${#hide_dirs[@]} folders, ${#hide_tools[@]} tools"

cd "$work/app"
npm init -y >/dev/null
echo "check-prebuilt: npm install $(basename "$tarball")"
set +e
npm install --foreground-scripts --no-audit --no-fund "$tarball" >install.log 2>&1
rc=$?
set -e
grep -A8 '^collectives:' install.log || true
grep -q 'building the addon from source' install.log && fail "the install step did not use the prebuilt addon and tried to compile it (see above)"
[ "$rc" = 0 ] || { cat install.log; fail "npm install of the tarball failed"; }
grep -q 'collectives: using the prebuilt addon' install.log || { cat install.log; fail "the install step did not say it used the prebuilt addon"; }
grep -Eqi 'cmake-js|hidden by check-prebuilt|gyp info' install.log && { cat install.log; fail "the install step ran a build tool"; }
[ -e node_modules/collectives/build ] && fail "the installed package has a build/ folder: the addon was compiled during install"

# CommonJS entry point too.
node -e "const c = require('collectives'); if (typeof c.init !== 'function') process.exit(1)" || fail "require('collectives') did not give init()"

echo "check-prebuilt: npx collectives-run --nproc-per-node 2 allreduce.mjs"
set +e
npx --no-install collectives-run --nproc-per-node 2 --master-port 0 allreduce.mjs >run.log 2>&1
rc=$?
set -e
cat run.log
grep -q 'CHECK FAIL' run.log && fail "$(grep -m1 -o 'CHECK FAIL.*' run.log)"
[ "$rc" = 0 ] || fail "collectives-run exited with $rc"
[ "$(grep -c 'CHECK OK' run.log)" = 2 ] || fail "not both ranks reported an exact all-reduce"

# The README says the prebuild needs no install step: the same tarball with --ignore-scripts.
mkdir -p "$work/app-noscripts" && cd "$work/app-noscripts"
npm init -y >/dev/null
npm install --ignore-scripts --no-audit --no-fund "$tarball" >install.log 2>&1 || { cat install.log; fail "npm install --ignore-scripts of the tarball failed"; }
addon=$(node -p "require('collectives').versions().addon" 2>&1) || fail "with --ignore-scripts the addon did not load: $addon"
case "$addon" in
  "$work/app-noscripts/node_modules/collectives/prebuilds/"*) echo "check-prebuilt: with --ignore-scripts too: $addon" ;;
  *) fail "with --ignore-scripts the addon came from $addon" ;;
esac
echo "check-prebuilt: passed"
EOF

printf '%s\n' "${hide_libs[@]}" | sort -u >"$work/hide_libs"
printf '%s\n' "${hide_dirs[@]}" >"$work/hide_dirs"
printf '%s\n' "${hide_tools[@]}" | sort -u >"$work/hide_tools"
export CHECK_SHIPPED CHECK_KERNELS=$kernels
CHECK_SHIPPED=$(node -p 'JSON.stringify(require(process.argv[1]).libraries.map((l) => l.file))' "$ROOT/prebuilds/$PLATFORM/manifest.json")

# 3. Install and run, inside the namespace.
unshare --mount --propagation private bash "$work/inside.sh" "$work" "$tarball"
