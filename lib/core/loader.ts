import * as fs from 'fs';
import * as path from 'path';
import type { NativeAddon } from './addon';
import { CollectiveError, ErrorCode } from './errors';

const ROOT = path.join(__dirname, '..', '..');
const FILE = 'collectives.node';
/** The Node-API version the addon is compiled for (NAPI_VERSION in CMakeLists.txt and binding.gyp). */
export const ADDON_NAPI_VERSION = 8;
const NO_PREBUILDS = 'none in this package';
// The build tools are optional peer dependencies (a prebuilt install needs none of them).
const SOURCE_BUILD = [
  'Build from source: apt-get install libgloo-dev cmake g++ (Debian, Ubuntu), then',
  '    npm install cmake-js node-addon-api node-api-headers',
  '    COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild collectives',
].join('\n');

/** What scripts/prebuild.js records beside a prebuilt addon (prebuilds/<platform>-<arch>/manifest.json). */
export interface PrebuildManifest {
  /** The addon's file name, e.g. `collectives.glibc.node`. */
  addon: string;
  napi: number;
  libc: string;
  /** The newest GLIBC_ / GLIBCXX_ symbol versions any shipped file needs. */
  glibc?: string;
  glibcxx?: string;
  gloo?: string;
  /** The libraries shipped beside the addon and found through its RUNPATH ($ORIGIN). */
  libraries: { file: string; package?: string; version?: string }[];
  /** The CUDA kernels (libcollectives_cuda.so), when the prebuild has them: opened at run time, not linked. */
  cudaKernels?: { file: string; needs: string[] };
}

/** The C library of this process: glibc with its version, musl, or none (not Linux). */
export interface SystemLibc {
  family: 'glibc' | 'musl' | 'none';
  version?: string;
}

let libcCache: SystemLibc | undefined;
export function systemLibc(): SystemLibc {
  if (libcCache) return libcCache;
  if (process.platform !== 'linux') return (libcCache = { family: 'none' });
  // Node reports the glibc it runs on; a musl build of Node reports none (sharp's detect-libc does the
  // same). Without its network section: that one can look up the names of open sockets' peers.
  const r = process.report as (NodeJS.ProcessReport & { excludeNetwork?: boolean }) | undefined;
  const exclude = r?.excludeNetwork;
  if (r) r.excludeNetwork = true;
  const report = r?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  if (r) r.excludeNetwork = exclude;
  const version = report?.header?.glibcVersionRuntime;
  return (libcCache = version ? { family: 'glibc', version } : { family: 'musl' });
}

/** A place the loader looked, and why it did not load from there. */
export interface Attempt {
  file: string;
  /** The first line of the loader's error, or why the file was skipped. */
  why: string;
  kind: 'absent' | 'skipped' | 'failed';
  prebuild?: boolean;
  /** For a prebuild: the libraries its manifest lists that are not beside it. */
  lacks?: string[];
}

/** Compares dotted version numbers: negative when a < b. */
function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** prebuildify's file name tags, as node-gyp-build reads them: `collectives.glibc.node` → glibc. */
function parseTags(file: string): { libc?: string; specificity: number } {
  const tags = file.split('.').slice(0, -1);
  const libc = tags.find((t) => t === 'glibc' || t === 'musl');
  return { libc, specificity: tags.length };
}

function readManifest(dir: string): PrebuildManifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as PrebuildManifest;
  } catch {
    return undefined;
  }
}

/** Why a prebuild cannot fit this process, before trying to load it; undefined when it may. */
function unfit(file: string, manifest: PrebuildManifest | undefined): string | undefined {
  const tags = parseTags(path.basename(file));
  const napi = Number(process.versions.napi);
  const needs = manifest?.napi ?? ADDON_NAPI_VERSION;
  if (napi < needs) return `built for Node-API ${needs}; Node ${process.version} has Node-API ${napi}`;
  if (tags.libc) {
    const libc = systemLibc();
    if (libc.family !== tags.libc) return `built for ${tags.libc}; this system's C library is ${libc.family === 'none' ? 'not Linux libc' : libc.family}`;
    if (libc.family === 'glibc' && manifest?.glibc && libc.version && compareVersions(libc.version, manifest.glibc) < 0) {
      return `needs glibc ${manifest.glibc} or newer; this system has glibc ${libc.version}`;
    }
  }
  return undefined;
}

/** A place to look: a file to load, or one skipped (or a folder found empty) with the reason. */
interface Candidate {
  file: string;
  prebuild: boolean;
  skip?: string;
  lacks?: string[];
}

/**
 * Every place the addon may be, in order: COLLECTIVES_ADDON alone when it is set; else a source build
 * (build/Release, build/Debug), which wins over a prebuild as with node-gyp-build (a user who forced
 * a source build gets it), then the prebuilds for this platform, most specific name first.
 */
function candidates(): Candidate[] {
  if (process.env.COLLECTIVES_ADDON) return [{ file: path.resolve(process.env.COLLECTIVES_ADDON), prebuild: false }];
  // COLLECTIVES_PREBUILDS_ONLY=1 (node-gyp-build's PREBUILDS_ONLY): the install step's check, or a test of the prebuild.
  const builds = process.env.COLLECTIVES_PREBUILDS_ONLY === '1' ? [] : [path.join(ROOT, 'build', 'Release', FILE), path.join(ROOT, 'build', 'Debug', FILE)];
  const out: Candidate[] = builds.map((file) => ({ file, prebuild: false }));
  const platform = `${process.platform}-${process.arch}`;
  const dir = path.join(ROOT, 'prebuilds', platform);
  if (!fs.existsSync(dir)) {
    const shipped = fs.existsSync(path.join(ROOT, 'prebuilds')) ? fs.readdirSync(path.join(ROOT, 'prebuilds')).sort() : [];
    const skip = shipped.length ? `none for ${platform}; this package has prebuilt addons for ${shipped.join(', ')} only` : NO_PREBUILDS;
    out.push({ file: dir + path.sep, prebuild: true, skip });
    return out;
  }
  const manifest = readManifest(dir);
  const lacks = (manifest?.libraries ?? []).map((l) => l.file).filter((f) => !fs.existsSync(path.join(dir, f)));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
  files.sort((a, b) => parseTags(b).specificity - parseTags(a).specificity || a.localeCompare(b));
  for (const f of files) {
    const file = path.join(dir, f);
    out.push({ file, prebuild: true, skip: unfit(file, manifest), lacks });
  }
  if (files.length === 0) out.push({ file: dir + path.sep, prebuild: true, skip: 'no .node file in it' });
  return out;
}

/** What to do, from what went wrong (sharp's loader gives the same kind of advice). */
export function advice(tried: Attempt[], libc: SystemLibc = systemLibc()): string[] {
  const text = tried.map((t) => t.why).join('\n');
  const out: string[] = [];
  const platform = `${process.platform}-${process.arch}`;
  const missing = [...new Set([...text.matchAll(/(lib[\w.+-]+\.so[\w.]*): cannot open shared object file/g)].map((m) => m[1]))];
  for (const lib of missing) {
    const fromPrebuild = tried.some((t) => t.prebuild && t.kind === 'failed' && t.why.includes(lib));
    if (fromPrebuild) {
      out.push(`A library the prebuilt addon needs is missing: ${lib}. It ships beside the addon in prebuilds/${platform}/; reinstall the package (npm install collectives) to restore it.`);
    } else if (lib.startsWith('libgloo')) {
      out.push(`A library the addon needs is missing: ${lib}. A source build uses the system's Gloo: apt-get install libgloo0 (or libgloo-dev to build).`);
    } else {
      out.push(`A library the addon needs is missing: ${lib}. Install the system package that provides it.`);
    }
  }
  const lacking = [...new Set(tried.flatMap((t) => (t.kind === 'failed' && t.lacks) || []))];
  if (lacking.length) {
    out.push(`The prebuilt addon's folder prebuilds/${platform}/ lacks ${lacking.join(', ')}, shipped with the addon (the system's copies were tried instead): reinstall the package (npm install collectives).`);
  }
  const bad = [...new Set([...text.matchAll(/(\S+): (?:invalid ELF header|wrong ELF class|ELF load command|file too short|not an ELF)/g)].map((m) => m[1]))];
  if (bad.length) {
    out.push(`Not a shared library for this platform (${platform}), or damaged: ${bad.join(', ')}.`);
  }
  const runtime = [...new Set([...text.matchAll(/version `((?:GLIBC|GLIBCXX|CXXABI)_[\d.]+)' not found/g)].map((m) => m[1]))];
  if (runtime.length) {
    out.push(`The addon needs a newer C or C++ runtime than this system has (${runtime.join(', ')}; this system has ${libc.family === 'glibc' ? `glibc ${libc.version}` : libc.family}).`);
  }
  if (/this system has glibc/.test(text)) {
    out.push('The prebuilt addon is built on Debian 12: use a system at least as new, or build from source.');
  }
  if (/built for glibc; this system's C library is musl/.test(text)) {
    out.push('The prebuilt addon is for glibc systems; on musl (Alpine Linux) build from source.');
  }
  if (/built for Node-API/.test(text)) {
    out.push(`Use Node.js 20 or later (Node-API ${ADDON_NAPI_VERSION} or later).`);
  }
  if (/undefined symbol/.test(text)) {
    out.push('A library the addon found is not the one it was built against (an undefined symbol): rebuild it from source.');
  }
  // A package packed without prebuilds/ (npm pack of a clone that never ran build:prebuild) is not
  // a platform mismatch: saying "only Linux x64" to a Linux x64 user would send them the wrong way.
  if (tried.some((t) => t.prebuild && t.kind === 'absent' && t.why === NO_PREBUILDS)) {
    out.push('This package has no prebuilt addon (it was packed without prebuilds/): build the addon from source as below.');
  } else if (tried.some((t) => t.prebuild && t.kind === 'absent' && t.why.startsWith(`none for ${platform}`))) {
    out.push(`No prebuilt addon fits ${platform}: the published package has prebuilds for Linux x64 with glibc only.`);
  }
  if (process.env.COLLECTIVES_ADDON) out.push('COLLECTIVES_ADDON is set, so nothing else was tried: unset it to use the installed addon.');
  out.push(SOURCE_BUILD);
  return out;
}

/** The message of the error loadAddon throws. */
export function describeFailure(tried: Attempt[], libc: SystemLibc = systemLibc()): string {
  const system = libc.family === 'glibc' ? `glibc ${libc.version}` : libc.family === 'musl' ? 'musl' : '';
  const where = [system, `Node ${process.version}`, `Node-API ${process.versions.napi}`].filter(Boolean).join(', ');
  return [
    `collectives: could not load the native addon for ${process.platform}-${process.arch} (${where}).`,
    'Tried:',
    ...tried.map((t) => `  - ${t.file}: ${t.why}`),
    'What to do:',
    ...advice(tried, libc).map((a) => `  - ${a}`),
  ].join('\n');
}

let cached: NativeAddon | undefined;
let cachedFile: string | undefined;

/** The file the addon was loaded from, once it is loaded. */
export function addonPath(): string | undefined {
  return cachedFile;
}

/** Loads the addon, or throws an Error that says what was tried, why each try failed, and what to do. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const tried: Attempt[] = [];
  for (const { file, prebuild, skip, lacks } of candidates()) {
    if (skip) {
      tried.push({ file, why: skip, kind: file.endsWith(path.sep) ? 'absent' : 'skipped', prebuild });
      continue;
    }
    if (!fs.existsSync(file)) {
      tried.push({ file, why: 'not found', kind: 'absent', prebuild });
      continue;
    }
    try {
      cached = require(file) as NativeAddon;
      cachedFile = file;
      return cached;
    } catch (err) {
      tried.push({ file, why: (err as Error).message.split('\n')[0], kind: 'failed', prebuild, lacks: lacks?.length ? lacks : undefined });
    }
  }
  throw new CollectiveError(ErrorCode.BACKEND_UNAVAILABLE, describeFailure(tried), -1, 'load');
}
