/**
 * What each rank runs: the script resolved once, before any rank starts, so that a missing file
 * is one clear message and not one MODULE_NOT_FOUND stack per rank.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from './options';

export interface Command {
  file: string;
  args: string[];
}

/** What resolveCommand needs of the running Node.js; the tests pass other versions. */
export interface NodeRuntime {
  execPath: string;
  execArgv: readonly string[];
  /** process.versions.node */
  version: string;
  /** process.features.typescript: set where Node strips types without a flag. */
  typescript?: string | false;
}

const JS = /\.(c|m)?js$/i;
const TS = /\.(c|m)?ts$/i;
// Node strips TypeScript types from 22.6 with --experimental-strip-types.
const STRIP_TYPES_SINCE = [22, 6];

export function currentRuntime(): NodeRuntime {
  const features = process.features as { typescript?: string | false };
  return { execPath: process.execPath, execArgv: process.execArgv, version: process.versions.node, typescript: features.typescript };
}

function atLeast(version: string, [major, minor]: readonly number[]): boolean {
  const [a, b] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

/** Whether `p` names a regular file (false for anything that cannot be stat'ed). */
export function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Whether a file is a Node.js program: a JavaScript extension, or a `#!` line naming node. */
function runsUnderNode(file: string): boolean {
  if (JS.test(file)) return true;
  try {
    const fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(128);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
    const first = head.subarray(0, n).toString('latin1').split('\n')[0];
    return first.startsWith('#!') && /\bnode\b/.test(first);
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/**
 * `-m NAME` (torchrun's --module): NAME is a package installed in node_modules; each rank runs its
 * `bin` (the only one, or the one named like the package).
 */
export function resolvePackageBin(name: string, cwd: string): string {
  let manifestPath: string;
  try {
    manifestPath = require.resolve(`${name}/package.json`, { paths: [cwd] });
  } catch {
    throw new UsageError(`-m ${name}: expected a package installed in node_modules (from ${cwd}), got none named ${JSON.stringify(name)}`);
  }
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { name?: string; bin?: string | Record<string, string> };
  const dir = path.dirname(manifestPath);
  const bin = manifest.bin;
  let rel: string | undefined;
  if (typeof bin === 'string') rel = bin;
  else if (bin && typeof bin === 'object') {
    const names = Object.keys(bin);
    const base = name.split('/').pop() as string;
    rel = names.length === 1 ? bin[names[0]] : bin[base];
    if (rel === undefined) {
      throw new UsageError(`-m ${name}: expected a package with one bin or a bin named ${JSON.stringify(base)}, got bins ${names.join(', ')} (run one by its path instead)`);
    }
  }
  if (rel === undefined) throw new UsageError(`-m ${name}: expected a package with a "bin" in its package.json, got none (${manifestPath})`);
  const file = path.join(dir, rel);
  if (!isFile(file)) throw new UsageError(`-m ${name}: the package's bin ${file} does not exist`);
  return file;
}

/** Resolves what every rank starts, or throws a UsageError naming the script. */
export function resolveCommand(
  script: string,
  args: readonly string[],
  { module = false, cwd = process.cwd(), env = process.env, runtime = currentRuntime() }: {
    module?: boolean;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    runtime?: NodeRuntime;
  } = {},
): Command {
  const node = (file: string, extra: readonly string[] = []): Command => ({
    file: runtime.execPath,
    args: [...runtime.execArgv, ...extra, file, ...args],
  });
  if (module) {
    const bin = resolvePackageBin(script, cwd);
    return runsUnderNode(bin) ? node(bin) : { file: bin, args: [...args] };
  }
  const full = path.resolve(cwd, script);
  if (JS.test(script) || TS.test(script)) {
    if (!isFile(full)) throw new UsageError(`<script>: expected a file, got ${JSON.stringify(script)}, which does not exist (in ${cwd})`);
    if (JS.test(script)) return node(script);
    if (runtime.typescript) return node(script);
    if (!atLeast(runtime.version, STRIP_TYPES_SINCE)) {
      throw new UsageError(
        `<script>: ${JSON.stringify(script)} is TypeScript, which Node.js runs (type stripping) from version 22.6 on; ` +
          `this is Node.js ${runtime.version}: use Node.js 22.6 or later, or compile the script to .js first (npx tsc)`,
      );
    }
    const flag = '--experimental-strip-types';
    return node(script, runtime.execArgv.includes(flag) ? [] : [flag]);
  }
  // spawn() searches PATH for a bare name, so `collectives-run train.sh` would miss ./train.sh.
  if (!script.includes(path.sep)) {
    if (isFile(full)) return { file: `.${path.sep}${script}`, args: [...args] };
    if (onPath(script, env)) return { file: script, args: [...args] };
    throw new UsageError(`<script>: expected a program, got ${JSON.stringify(script)}, which is neither a file in ${cwd} nor a command on PATH`);
  }
  if (!isFile(full)) throw new UsageError(`<script>: expected a file, got ${JSON.stringify(script)}, which does not exist`);
  return { file: script, args: [...args] };
}
