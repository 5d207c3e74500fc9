/**
 * DiLoCo checkpoints, on part 1's format. Every rank saves, since each holds its own local
 * parameters, inner optimizer state and residuals:
 *
 *   root/rank-3/step-00000120/                       saveLatestCheckpoint's directory: this rank's
 *                                                    local parameters and inner optimizer state
 *   root/rank-3/diloco-00000120-<id>.safetensors     the outer state (state.ts): `global`,
 *                                                    `momentum_buffer`, `delta`, `spare`,
 *                                                    `residual/<f>`, flat over the padded buffer;
 *                                                    the counters as JSON in its metadata
 *   root/rank-3/latest
 *
 * The outer file is written (temporary name, fsync, rename) before the step directory, whose
 * checkpoint.json names it; `latest` moving is the commit of both. Loading takes the newest
 * step that every rank has, so a crash that left one rank a checkpoint behind resumes from
 * the one before on all of them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { argTypeError, checkKeys, checkNumber, TrainingError, TrainingErrorCode } from '../errors';
import { INDEX_FILE, loadCheckpoint, type CheckpointIndex } from '../checkpoint/checkpoint';
import { listCheckpoints, saveLatestCheckpoint } from '../checkpoint/root';
import { readSafetensors, writeSafetensors, type SafetensorsInput } from '../checkpoint/safetensors';
import { fsyncDir } from '../checkpoint/files';
import { DiLoCo } from './diloco';
import { checkStateFits, type DiLoCoState, type DiLoCoStateMeta } from './state';

export interface DiLoCoCheckpointContents {
  diloco: DiLoCo;
  /** The inner step this checkpoint is taken at. */
  step: number;
  /** Anything JSON can hold, returned by load as it was saved. */
  meta?: Record<string, unknown>;
  /** Checkpoints to keep per rank, the new one included (default: all). */
  keep?: number;
}

export interface LoadedDiLoCoCheckpoint {
  /** This rank's directory loaded. */
  dir: string;
  step: number;
  meta: Record<string, unknown>;
}

const META_KEY = 'diloco';

/** This rank's root inside `root`. */
export function rankRoot(root: string, rank: number): string {
  return path.join(root, `rank-${rank}`);
}

/**
 * Saves this rank's part (call on every rank with the same step). Waits for the rounds in
 * flight to land first, without applying them: the run goes on exactly as if it had not saved.
 * Returns this rank's new checkpoint directory.
 */
export async function saveDiLoCoCheckpoint(root: string, contents: DiLoCoCheckpointContents): Promise<string> {
  if (typeof root !== 'string' || root.length === 0) throw argTypeError('root', 'a directory path', root);
  if (contents === undefined) throw argTypeError('contents', 'a {diloco, step} object', contents);
  const c = checkKeys<DiLoCoCheckpointContents>('contents', contents, ['diloco', 'step', 'meta', 'keep']);
  if (!(c.diloco instanceof DiLoCo)) throw argTypeError('contents.diloco', 'a DiLoCo', c.diloco);
  const { diloco } = c;
  const dir = rankRoot(root, diloco.comm.rank);
  fs.mkdirSync(dir, { recursive: true });
  const state = await diloco.state();
  const file = `diloco-${String(c.step).padStart(8, '0')}-${process.pid}-${Math.random().toString(36).slice(2, 10)}.safetensors`;
  writeStateFile(dir, file, state);
  const saved = saveLatestCheckpoint(
    dir,
    {
      params: diloco.params,
      ...(diloco.innerOptimizer === undefined ? {} : { optimizer: diloco.innerOptimizer }),
      step: c.step,
      worldSize: diloco.comm.size,
      meta: { ...(c.meta ?? {}), [META_KEY]: { file, rank: diloco.comm.rank } },
    },
    c.keep === undefined ? undefined : { keep: c.keep },
  );
  removeUnreferenced(dir);
  return saved;
}

export interface DiLoCoCheckpointTargets {
  diloco: DiLoCo;
  /** The step to load (every rank must have it); default the newest step every rank has. */
  step?: number;
}

/**
 * Loads into `diloco` (its parameters, inner optimizer and outer state) the newest step that
 * every rank of its communicator has saved under `root`, or `targets.step`. Call on every rank.
 */
export async function loadDiLoCoCheckpoint(root: string, targets: DiLoCoCheckpointTargets): Promise<LoadedDiLoCoCheckpoint> {
  if (typeof root !== 'string' || root.length === 0) throw argTypeError('root', 'a directory path', root);
  if (targets === undefined) throw argTypeError('targets', 'a {diloco, step?} object', targets);
  const t = checkKeys<DiLoCoCheckpointTargets>('targets', targets, ['diloco', 'step']);
  if (!(t.diloco instanceof DiLoCo)) throw argTypeError('targets.diloco', 'a DiLoCo', t.diloco);
  if (t.step !== undefined) checkNumber('targets.step', t.step, 0, Number.MAX_SAFE_INTEGER, true);
  const { diloco } = t;
  const comm = diloco.comm;
  const dir = rankRoot(root, comm.rank);
  const mine = listCheckpoints(dir).map((d) => ({ d, index: readIndex(d) }));
  const all = await comm.allGatherObject(mine.map((m) => m.index.step));
  const common = mine.map((m) => m.index.step).filter((s) => all.every((steps) => steps.includes(s)) && (t.step === undefined || s === t.step));
  if (common.length === 0) {
    throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${root}: ${t.step === undefined ? 'no step' : `step ${t.step}`} has ${t.step === undefined ? '' : 'no '}a DiLoCo checkpoint on every rank (rank ${comm.rank} has ${mine.length > 0 ? mine.map((m) => m.index.step).join(', ') : 'none'} in ${dir})`);
  }
  const step = Math.max(...common);
  const chosen = mine.filter((m) => m.index.step === step).pop()!;
  const index = chosen.index;
  if (index.worldSize !== comm.size) throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${chosen.d}: saved by ${index.worldSize} ranks, loading on ${comm.size}`);
  const ref = index.meta[META_KEY] as { file?: unknown } | undefined;
  if (ref === undefined || typeof ref.file !== 'string' || ref.file.includes('/') || ref.file.includes('\\')) {
    throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${path.join(chosen.d, INDEX_FILE)}: not a DiLoCo checkpoint (no outer state named in meta.${META_KEY})`);
  }
  const state = readStateFile(path.join(dir, ref.file), diloco);
  try {
    checkStateFits(state, diloco);
  } catch (e) {
    throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${path.join(dir, ref.file)}: ${(e as Error).message}`);
  }
  loadCheckpoint(chosen.d, { params: diloco.params, ...(diloco.innerOptimizer === undefined ? {} : { optimizer: diloco.innerOptimizer }) });
  diloco.loadState(state);
  const meta = { ...index.meta };
  delete meta[META_KEY];
  return { dir: chosen.d, step, meta };
}

function readIndex(dir: string): CheckpointIndex {
  const file = path.join(dir, INDEX_FILE);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointIndex;
  } catch (e) {
    throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${file}: cannot be read as JSON (${(e as Error).message})`);
  }
}

function writeStateFile(dir: string, name: string, state: DiLoCoState): void {
  const flat = (data: Float32Array): SafetensorsInput => ({ shape: [data.length], data });
  const tensors: [string, SafetensorsInput][] = [
    ['global', flat(state.shared.global)],
    ['momentum_buffer', flat(state.shared.momentum)],
    ['delta', flat(state.shared.delta)],
  ];
  if (state.local.spare !== undefined) tensors.push(['spare', flat(state.local.spare)]);
  state.local.residuals.forEach((r, f) => tensors.push([`residual/${f}`, flat(r)]));
  const tmp = path.join(dir, `.${name}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  try {
    writeSafetensors(tmp, tensors, { format: 'pt', [META_KEY]: JSON.stringify(state.meta) });
    fs.renameSync(tmp, path.join(dir, name));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

function readStateFile(file: string, diloco: DiLoCo): DiLoCoState {
  const { tensors, metadata } = readSafetensors(file);
  let meta: DiLoCoStateMeta;
  try {
    meta = JSON.parse(metadata[META_KEY] ?? '') as DiLoCoStateMeta;
  } catch {
    throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${file}: its metadata holds no DiLoCo counters`);
  }
  const get = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (t === undefined || t.dtype !== 'F32') throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${file}: tensor "${name}" is ${t === undefined ? 'missing' : t.dtype + ', expected F32'}`);
    return t.data as Float32Array;
  };
  const residuals: Float32Array[] = [];
  for (let f = 0; tensors.has(`residual/${f}`); f++) residuals.push(get(`residual/${f}`));
  const known = new Set(['global', 'momentum_buffer', 'delta', 'spare', ...residuals.map((_, f) => `residual/${f}`)]);
  for (const name of tensors.keys()) if (!known.has(name)) throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${file}: unexpected tensor "${name}"`);
  return {
    meta,
    shared: { global: get('global'), momentum: get('momentum_buffer'), delta: get('delta') },
    local: { ...(diloco.options.mode === 'sync' || !tensors.has('spare') ? {} : { spare: get('spare') }), residuals },
  };
}

/** Outer-state files that no checkpoint of this rank names any more (pruned, or a save that crashed). */
function removeUnreferenced(dir: string): void {
  const named = new Set<string>();
  for (const d of listCheckpoints(dir)) {
    const ref = readIndex(d).meta?.[META_KEY] as { file?: string } | undefined;
    if (ref?.file !== undefined) named.add(ref.file);
  }
  for (const n of fs.readdirSync(dir)) {
    if (/^diloco-\d+-\d+-[a-z0-9]+\.safetensors$/.test(n) && !named.has(n)) fs.rmSync(path.join(dir, n), { force: true });
  }
}
