/** Durable writes: what makes a rename a commit point is that everything before it is on disk. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes a file and fsyncs it. */
export function writeSynced(file: string, text: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    const bytes = Buffer.from(text, 'utf8');
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes a directory's entries (a created file, a rename) durable. Windows cannot open a
 * directory for fsync; NTFS journals the rename itself there.
 */
export function fsyncDir(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replaces `file` with `text` all at once: a temporary sibling, fsync, rename, fsync of the directory. */
export function replaceFile(file: string, text: string): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  try {
    writeSynced(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/**
 * Puts the complete directory `tmp` at `target`. An existing `target` is moved aside first and
 * removed after, so a crash in between leaves either the old or the new directory (and a
 * `.old-*` leftover), never a half-written one.
 */
export function replaceDirectory(tmp: string, target: string): void {
  if (fs.existsSync(target)) {
    const old = tempSibling(target, 'old');
    fs.renameSync(target, old);
    fs.renameSync(tmp, target);
    fsyncDir(path.dirname(target));
    fs.rmSync(old, { recursive: true, force: true });
  } else {
    fs.renameSync(tmp, target);
    fsyncDir(path.dirname(target));
  }
}

/** A fresh temporary directory beside `target`, named so that leftovers can be recognized. */
export function tempSibling(target: string, kind: 'tmp' | 'old'): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${kind}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/** The pid in a name from tempSibling / replaceFile, or undefined for other names. */
export function tempOwner(name: string): number | undefined {
  const m = /^\..+\.(?:tmp|old)-(\d+)-[a-z0-9]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
