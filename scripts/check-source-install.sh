#!/usr/bin/env bash
# Proves that a tarball packed from a clone without prebuilds/ installs on a machine with the
# build tools (Gloo, CMake, a C++17 compiler; nvcc too when present) and works.
#
# Copies the clone's files (tracked and untracked, not ignored: no prebuilds/, no build/) into a
# temporary folder and runs `npm pack` there, as a user of a fresh clone would; then:
#   1. checks that packing warned on stderr that the tarball has no prebuilt addon, and that the
#      tarball holds no prebuilds/ and nothing a source build would need from outside `files`;
#   2. installs it with --ignore-scripts into an empty folder and checks that loading it says the
#      package has no prebuilt addon and gives the source-build command;
#   3. runs that command as the loader prints it (COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild
#      collectives), which compiles the addon (and the CUDA kernels when nvcc is found);
#   4. runs a 2-rank all-reduce through `npx collectives-run` on the addon it built.
# With --full it also installs the tarball a second time the ordinary way (npm install, whose
# install step must build from source because no prebuild exists) and runs the all-reduce again.
#
# The build is the slow part: CUDAARCHS (default 90) limits the CUDA architectures compiled and
# CMAKE_BUILD_PARALLEL_LEVEL (default: the number of CPUs) the jobs.
#
# Usage: bash scripts/check-source-install.sh [--full]   (after npx tsc -p tsconfig.json)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FULL=0
[ "${1:-}" = --full ] && FULL=1

say() { echo "check-source-install: $*"; }
fail() { echo "check-source-install: FAILED: $*" >&2; exit 1; }

command -v cmake >/dev/null || fail "cmake is missing (apt-get install cmake)"
[ -e /usr/include/gloo/allreduce.h ] || [ -n "${GLOO_DIR:-}" ] || fail "Gloo's headers are missing (apt-get install libgloo-dev)"
[ -d node_modules ] || fail "node_modules is missing: npm install first"
export CUDAARCHS=${CUDAARCHS:-90}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
started=$SECONDS

work=$(mktemp -d /tmp/collectives-source-XXXXXX)
trap 'rm -rf "$work"' EXIT

# 1. A clone's files, without what only this checkout has (prebuilds/, build/, dist/ are ignored).
mkdir -p "$work/clone"
git ls-files -z --cached --others --exclude-standard | grep -zv '^node_modules$' | tar -c --null -T - -f - | tar -x -C "$work/clone"
ln -s "$(readlink -f node_modules)" "$work/clone/node_modules"
[ ! -e "$work/clone/prebuilds" ] || fail "the copy has prebuilds/"
say "npm pack of a clone without prebuilds/"
(cd "$work/clone" && npm pack --json --pack-destination "$work" >"$work/pack.json" 2>"$work/pack.err") ||
  { cat "$work/pack.err"; fail "npm pack failed"; }
grep -q 'WARNING: this tarball has NO prebuilt addon' "$work/pack.err" || { cat "$work/pack.err"; fail "npm pack did not warn that the tarball has no prebuild"; }
tarball="$work/$(node -p "require('$work/pack.json')[0].filename")"
tar tzf "$tarball" | sed 's|^package/||' | sort >"$work/contents.txt"
grep -q '^prebuilds/' "$work/contents.txt" && fail "the tarball has prebuilds/"
grep -qx 'dist/launch/cli.js' "$work/contents.txt" || fail "the tarball lacks dist/ (prepare did not build it)"
# Every source file CMakeLists.txt names that the tarball lacks must be one it builds only when present.
for f in $(grep -oE '(native|bench)/[A-Za-z0-9_./-]+\.(cc|cu|h)' CMakeLists.txt | sort -u); do
  grep -qx "$f" "$work/contents.txt" && continue
  grep -q "if(EXISTS \${CMAKE_SOURCE_DIR}/$f)" CMakeLists.txt || fail "CMakeLists.txt needs $f, which the tarball lacks"
done
say "tarball $(basename "$tarball"): $(wc -l <"$work/contents.txt") files, no prebuilds/; packing warned"

# 2. Installed without its install step: the loader must say there is no prebuild, and how to build.
mkdir -p "$work/app" && cd "$work/app"
npm init -y >/dev/null
npm install --ignore-scripts --no-audit --no-fund "$tarball" >install.log 2>&1 || { cat install.log; fail "npm install --ignore-scripts failed"; }
set +e
node -e "require('collectives').versions()" >load.log 2>&1
rc=$?
set -e
[ "$rc" != 0 ] || fail "the package loaded an addon it should not have: $(cat load.log)"
grep -q 'This package has no prebuilt addon' load.log || { cat load.log; fail "the loader did not say the package has no prebuilt addon"; }
tools=$(grep -oE 'npm install cmake-js node-addon-api node-api-headers' load.log | head -1)
hint=$(grep -oE 'COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild collectives' load.log | head -1)
[ -n "$hint" ] && [ -n "$tools" ] || { cat load.log; fail "the loader gave no source-build commands"; }
say "the loader says: $(grep -m1 -o 'This package has no prebuilt addon[^.]*' load.log)"

# 3. The loader's commands, as printed: the build tools (optional peers), then the build.
say "running the loader's advice: $tools; $hint"
npm install --no-audit --no-fund cmake-js node-addon-api node-api-headers >tools.log 2>&1 || { tail -40 tools.log; fail "$tools failed"; }
b0=$SECONDS
set +e
env COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild collectives --foreground-scripts >rebuild.log 2>&1
rc=$?
set -e
[ "$rc" = 0 ] || { tail -40 rebuild.log; fail "$hint failed (exit $rc)"; }
grep -q 'building the addon from source (COLLECTIVES_BUILD_FROM_SOURCE is set)' rebuild.log || { tail -40 rebuild.log; fail "npm rebuild did not run the source build"; }
grep -E '^-- collectives:' rebuild.log || true
pkg=$work/app/node_modules/collectives
[ -f "$pkg/build/Release/collectives.node" ] || fail "no build/Release/collectives.node after the build"
if command -v nvcc >/dev/null; then
  [ -f "$pkg/build/Release/libcollectives_cuda.so" ] || fail "nvcc is here but the CUDA kernels were not built"
fi
say "built from source in $((SECONDS - b0)) s"

cat >allreduce.js <<'JS'
const { init, versions } = require('collectives');
(async () => {
  const comm = await init();
  const n = 4096;
  const buf = new Float64Array(n).map((_, i) => (comm.rank + 1) * i);
  await comm.allReduce(buf);
  const f = (comm.size * (comm.size + 1)) / 2;
  const wrong = buf.filter((v, i) => v !== f * i).length;
  const addon = versions().addon;
  await comm.destroy();
  if (wrong || !addon.endsWith('/build/Release/collectives.node')) {
    console.log(`CHECK FAIL rank ${comm.rank}: ${wrong} wrong, addon ${addon}`);
    process.exit(1);
  }
  console.log(`CHECK OK rank ${comm.rank}: all-reduce over ${comm.size} ranks exact; addon ${addon}`);
})();
JS
allreduce() {
  set +e
  npx --no-install collectives-run --nproc-per-node 2 --master-port 0 "$1" >run.log 2>&1
  local rc=$?
  set -e
  cat run.log
  [ "$rc" = 0 ] || fail "collectives-run exited with $rc"
  [ "$(grep -c 'CHECK OK' run.log)" = 2 ] || fail "not both ranks reported an exact all-reduce"
}
allreduce "$work/app/allreduce.js"

# 4. Optionally: the ordinary install, whose install step finds no prebuild and builds.
if [ "$FULL" = 1 ]; then
  mkdir -p "$work/app2" && cd "$work/app2"
  npm init -y >/dev/null
  say "npm install of the tarball (its install step must build from source)"
  npm install --foreground-scripts --no-audit --no-fund "$tarball" cmake-js node-addon-api node-api-headers >install.log 2>&1 || { tail -40 install.log; fail "npm install failed"; }
  grep -q 'building the addon from source (no prebuilt addon fits)' install.log || { tail -40 install.log; fail "the install step did not build from source"; }
  cp "$work/app/allreduce.js" .
  allreduce "$work/app2/allreduce.js"
fi
say "passed in $((SECONDS - started)) s"
