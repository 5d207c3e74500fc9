// How every checkpoint kind (part 1's, ZeRO's) finds its directory and names a bad file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TrainingError, TrainingErrorCode } from '../errors';

/** The file in a checkpoint root that names its newest checkpoint directory. */
export const LATEST_FILE = 'latest';

export function invalid(file: string, what: string): TrainingError {
  return new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${file}: ${what}`);
}

/**
 * `dir` itself when it holds `indexFile`; else, when it is a root, the directory its `latest`
 * names (a plain name beside it, never a path); else `dir`, for the reader to refuse by name.
 */
export function resolveCheckpointDir(dir: string, indexFile: string): string {
  if (fs.existsSync(path.join(dir, indexFile))) return dir;
  const pointer = path.join(dir, LATEST_FILE);
  if (fs.existsSync(pointer)) {
    const name = fs.readFileSync(pointer, 'utf8').trim();
    if (name.length === 0 || name.includes('/') || name.includes('\\') || name.startsWith('.')) {
      throw invalid(pointer, `${JSON.stringify(name)} is not the name of a checkpoint directory`);
    }
    return path.join(dir, name);
  }
  return dir;
}
