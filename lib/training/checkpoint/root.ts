/**
 * A root of checkpoints, one writer at a time (rank 0):
 *
 *   root/step-00000100/   complete checkpoints (saveCheckpoint's directories)
 *   root/step-00000200/
 *   root/latest           "step-00000200\n": the one to resume from
 *
 * A save (1) writes `step-N` through saveCheckpoint (temporary sibling, fsync, rename), then
 * (2) replaces `latest` the same way (temporary file, fsync, rename, fsync of the root), then
 * (3) removes the oldest checkpoints beyond `keep`, never the one `latest` names. A crash in (1)
 * leaves a temporary directory, which the next save removes, and `latest` on the previous
 * checkpoint; a crash between (1) and (2) leaves a complete but unnamed `step-N`; a crash in (3)
 * leaves extra old checkpoints. At no point does `latest` name a directory that is incomplete
 * or gone, so the previous checkpoint stays loadable throughout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { argTypeError, checkKeys, checkNumber, TrainingError, TrainingErrorCode } from '../errors';
import { INDEX_FILE, saveCheckpoint, type CheckpointContents } from './checkpoint';
import { processAlive, replaceFile, tempOwner } from './files';

export { LATEST_FILE } from './locate';
import { LATEST_FILE } from './locate';

export interface SaveLatestOptions {
  /** Checkpoints to keep, the new one included (default: all). */
  keep?: number;
}

const NAME = /^step-(\d+)(?:\.(\d+))?$/;

/**
 * Saves `contents` as `root/step-<step, 8 digits>` and points `root/latest` at it (see the
 * module comment for what a crash leaves). Saving a step that is already there writes
 * `step-<step>.1` (.2, …) rather than replacing a checkpoint that `latest` may name.
 * Returns the new checkpoint's directory.
 */
export function saveLatestCheckpoint(root: string, contents: CheckpointContents, options?: SaveLatestOptions): string {
  if (typeof root !== 'string' || root.length === 0) throw argTypeError('root', 'a directory path', root);
  const o = checkKeys<SaveLatestOptions>('options', options, ['keep']);
  const keep = o.keep === undefined ? Infinity : checkNumber('options.keep', o.keep, 1, Number.MAX_SAFE_INTEGER, true);
  checkNumber('contents.step', contents?.step, 0, Number.MAX_SAFE_INTEGER, true);
  fs.mkdirSync(root, { recursive: true });
  removeAbandoned(root);
  const base = `step-${String(contents.step).padStart(8, '0')}`;
  let name = base;
  for (let k = 1; fs.existsSync(path.join(root, name)); k++) name = `${base}.${k}`;
  saveCheckpoint(path.join(root, name), contents);
  replaceFile(path.join(root, LATEST_FILE), name + '\n');
  prune(root, keep, name);
  return path.join(root, name);
}

/** The directory `root/latest` names, or null when the root has no checkpoint yet. */
export function latestCheckpoint(root: string): string | null {
  const pointer = path.join(root, LATEST_FILE);
  let name: string;
  try {
    name = fs.readFileSync(pointer, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (!NAME.test(name)) throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${pointer}: ${JSON.stringify(name)} is not the name of a checkpoint directory`);
  const dir = path.join(root, name);
  if (!fs.existsSync(path.join(dir, INDEX_FILE))) throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${pointer}: names ${dir}, which holds no ${INDEX_FILE}`);
  return dir;
}

/** The checkpoints in a root, oldest (lowest step) first. */
export function listCheckpoints(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((n) => ({ n, m: NAME.exec(n) }))
    .filter((e): e is { n: string; m: RegExpExecArray } => e.m !== null && fs.existsSync(path.join(root, e.n, INDEX_FILE)))
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]) || Number(a.m[2] ?? 0) - Number(b.m[2] ?? 0))
    .map((e) => path.join(root, e.n));
}

function prune(root: string, keep: number, latest: string): void {
  const all = listCheckpoints(root).filter((d) => path.basename(d) !== latest);
  const excess = all.length + 1 - keep;
  for (let i = 0; i < excess; i++) fs.rmSync(all[i], { recursive: true, force: true });
}

/** Temporary files and directories of saves whose process is gone. */
function removeAbandoned(root: string): void {
  for (const n of fs.readdirSync(root)) {
    const pid = tempOwner(n);
    if (pid !== undefined && pid !== process.pid && !processAlive(pid)) fs.rmSync(path.join(root, n), { recursive: true, force: true });
  }
}
