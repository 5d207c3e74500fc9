/**
 * A checkpoint is a directory:
 * - `model.safetensors`: each tensor of the ParameterSet under its name, in its own shape, F32
 *   (`safetensors.torch.load_file` reads it into a state dict);
 * - `optimizer.safetensors` (with an optimizer): its state, `<state>/<tensor>` in the tensor's
 *   shape (`exp_avg/fc.weight`) for an optimizer over the whole set, or the flat `<state>` of
 *   its range for a ranged (ZeRO) one;
 * - `checkpoint.json`: `{format: 1, step, worldSize?, length, padMultiple, tensors: [{name,
 *   shape}], optimizer?: {kind, step, options, range, layout}, meta}`, written last.
 *
 * `saveCheckpoint` writes all three into a temporary sibling directory, fsyncs them and the
 * directory, and renames it into place: a reader sees the old directory or the complete new one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { argRangeError, argTypeError, checkKeys, checkNumber } from '../errors';
import { Optimizer, type OptimizerState } from '../optim/optimizer';
import { ParameterSet } from '../params';
import { fromHost, toHost } from '../buffers';
import { readSafetensors, writeSafetensors, type SafetensorsInput, type SafetensorsTensor } from './safetensors';
import { fsyncDir, replaceDirectory, tempSibling, writeSynced } from './files';
import { invalid, resolveCheckpointDir } from './locate';

export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const INDEX_FILE = 'checkpoint.json';
const FORMAT = 1;

export interface CheckpointContents {
  params: ParameterSet;
  /** An optimizer over `params` (the same layout). */
  optimizer?: Optimizer;
  /** The training step this checkpoint is taken at (an integer ≥ 0). */
  step: number;
  /** The world size that trained it (recorded for resharding tools; not checked on load). */
  worldSize?: number;
  /** Anything JSON can hold, returned by load as it was saved. */
  meta?: Record<string, unknown>;
}

export interface CheckpointTargets {
  /** Receives the tensors; its names and shapes must be the checkpoint's. */
  params: ParameterSet;
  /** Receives the optimizer state; same kind and range as the saved one. */
  optimizer?: Optimizer;
}

/** What checkpoint.json records. */
export interface CheckpointIndex {
  format: number;
  step: number;
  worldSize?: number;
  length: number;
  padMultiple: number;
  tensors: { name: string; shape: number[] }[];
  optimizer?: {
    kind: string;
    step: number;
    options: Record<string, number | boolean>;
    range: { begin: number; end: number };
    /** 'tensors': `<state>/<name>` per tensor; 'flat': one `<state>` over the range. */
    layout: 'tensors' | 'flat';
  };
  meta: Record<string, unknown>;
}

/** What loadCheckpoint found, after writing it into the targets. */
export interface LoadedCheckpoint {
  /** The directory loaded (the one `latest` points to when a root was given). */
  dir: string;
  step: number;
  worldSize?: number;
  meta: Record<string, unknown>;
  /** The saved optimizer's kind, step and hyperparameters, when there was one. */
  optimizer?: CheckpointIndex['optimizer'];
}

/**
 * Saves into `dir` atomically (see the module comment). An existing `dir` is replaced: it is
 * renamed aside, the new one renamed in, the old one removed — a crash between the two renames
 * leaves the old one as `.<dir>.old-*`. `saveLatestCheckpoint` never replaces, so has no such window.
 * Returns `dir`.
 */
export function saveCheckpoint(dir: string, contents: CheckpointContents): string {
  if (typeof dir !== 'string' || dir.length === 0) throw argTypeError('dir', 'a directory path', dir);
  const c = checkContents(contents);
  const target = path.resolve(dir);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempSibling(target, 'tmp');
  fs.mkdirSync(tmp);
  try {
    writeContents(tmp, c);
    fsyncDir(tmp);
    replaceDirectory(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

function checkContents(contents: CheckpointContents): CheckpointContents {
  if (contents === undefined) throw argTypeError('contents', 'a {params, step} object', contents);
  const c = checkKeys<CheckpointContents>('contents', contents, ['params', 'optimizer', 'step', 'worldSize', 'meta']);
  if (!(c.params instanceof ParameterSet)) throw argTypeError('contents.params', 'a ParameterSet', c.params);
  checkNumber('contents.step', c.step, 0, Number.MAX_SAFE_INTEGER, true);
  if (c.worldSize !== undefined) checkNumber('contents.worldSize', c.worldSize, 1, 2 ** 20, true);
  checkOptimizer('contents.optimizer', c.optimizer, c.params);
  if (c.meta !== undefined) {
    if (c.meta === null || typeof c.meta !== 'object' || Array.isArray(c.meta)) throw argTypeError('contents.meta', 'a JSON object', c.meta);
    try {
      JSON.stringify(c.meta);
    } catch (e) {
      throw argTypeError('contents.meta', `an object JSON can hold (${(e as Error).message})`, c.meta);
    }
  }
  return c;
}

function checkOptimizer(name: string, optimizer: Optimizer | undefined, params: ParameterSet): void {
  if (optimizer === undefined) return;
  if (!(optimizer instanceof Optimizer)) throw argTypeError(name, 'an AdamW or SGD optimizer', optimizer);
  if (optimizer.params !== params && optimizer.params.fingerprint() !== params.fingerprint()) {
    throw argRangeError(name, 'an optimizer over the ParameterSet given as params (or one of the same layout)', 'an optimizer over another layout');
  }
}

function writeContents(dir: string, c: CheckpointContents): void {
  const { params, optimizer } = c;
  const host = toHost(params.data);
  const model: [string, SafetensorsInput][] = params.tensors.map((t) => [t.name, { shape: t.shape, data: host.subarray(t.offset, t.offset + t.size) }]);
  writeSafetensors(path.join(dir, MODEL_FILE), model, { format: 'pt' });
  let optimizerIndex: CheckpointIndex['optimizer'];
  if (optimizer !== undefined) {
    const state = optimizer.state();
    const whole = state.range.begin === 0 && state.range.end === params.length;
    const entries: [string, SafetensorsInput][] = [];
    for (const [stateName, flat] of Object.entries(state.tensors)) {
      if (whole) {
        // Padding is left out: its gradient, and so its state, stays zero.
        for (const t of params.tensors) entries.push([`${stateName}/${t.name}`, { shape: t.shape, data: flat.subarray(t.offset, t.offset + t.size) }]);
      } else {
        entries.push([stateName, { shape: [flat.length], data: flat }]);
      }
    }
    writeSafetensors(path.join(dir, OPTIMIZER_FILE), entries, { format: 'pt' });
    optimizerIndex = { kind: optimizer.kind, step: state.step, options: state.options, range: state.range, layout: whole ? 'tensors' : 'flat' };
  }
  const index: CheckpointIndex = {
    format: FORMAT,
    step: c.step,
    ...(c.worldSize !== undefined ? { worldSize: c.worldSize } : {}),
    length: params.length,
    padMultiple: params.padMultiple,
    tensors: params.tensors.map((t) => ({ name: t.name, shape: [...t.shape] })),
    ...(optimizerIndex !== undefined ? { optimizer: optimizerIndex } : {}),
    meta: c.meta ?? {},
  };
  writeSynced(path.join(dir, INDEX_FILE), JSON.stringify(index, null, 2) + '\n');
}

/**
 * Loads a checkpoint directory into `targets` — or, given a root written by
 * saveLatestCheckpoint, the checkpoint its `latest` points to. Every file is read and checked
 * before anything is written: a tensor missing from either side or of another shape, an
 * optimizer of another kind or range, a corrupt file — TrainingError CHECKPOINT_INVALID naming
 * the file and the tensor, and the targets untouched.
 */
export function loadCheckpoint(dir: string, targets: CheckpointTargets): LoadedCheckpoint {
  if (typeof dir !== 'string' || dir.length === 0) throw argTypeError('dir', 'a directory path', dir);
  if (targets === undefined) throw argTypeError('targets', 'a {params, optimizer?} object', targets);
  const t = checkKeys<CheckpointTargets>('targets', targets, ['params', 'optimizer']);
  if (!(t.params instanceof ParameterSet)) throw argTypeError('targets.params', 'a ParameterSet', t.params);
  checkOptimizer('targets.optimizer', t.optimizer, t.params);
  const resolved = resolveCheckpointDir(dir, INDEX_FILE);
  const index = readIndex(path.join(resolved, INDEX_FILE));
  const modelFile = path.join(resolved, MODEL_FILE);
  const model = readSafetensors(modelFile).tensors;
  checkModel(modelFile, model, t.params);
  let state: OptimizerState | undefined;
  if (t.optimizer !== undefined) state = readOptimizer(resolved, index, t.optimizer, t.params);

  const host = new Float32Array(t.params.length);
  for (const info of t.params.tensors) host.set(model.get(info.name)!.data as Float32Array, info.offset);
  fromHost(host, t.params.data);
  if (t.optimizer !== undefined && state !== undefined) t.optimizer.loadState(state);
  return {
    dir: resolved,
    step: index.step,
    ...(index.worldSize !== undefined ? { worldSize: index.worldSize } : {}),
    meta: index.meta,
    ...(index.optimizer !== undefined ? { optimizer: index.optimizer } : {}),
  };
}

function readIndex(file: string): CheckpointIndex {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw invalid(file, code === 'ENOENT' ? 'no such file (not a checkpoint directory, or a save that did not finish)' : `cannot be read (${code})`);
  }
  let index: CheckpointIndex;
  try {
    index = JSON.parse(text) as CheckpointIndex;
  } catch (e) {
    throw invalid(file, `not valid JSON (${(e as Error).message})`);
  }
  if (index === null || typeof index !== 'object') throw invalid(file, 'not a JSON object');
  if (index.format !== FORMAT) throw invalid(file, `format ${JSON.stringify(index.format)}, this version reads format ${FORMAT}`);
  if (!Number.isSafeInteger(index.step) || index.step < 0) throw invalid(file, `step ${JSON.stringify(index.step)} is not an integer ≥ 0`);
  if (index.meta === null || typeof index.meta !== 'object') throw invalid(file, 'meta is not an object');
  return index;
}

function checkModel(file: string, model: Map<string, SafetensorsTensor>, params: ParameterSet): void {
  for (const info of params.tensors) {
    const t = model.get(info.name);
    if (t === undefined) throw invalid(file, `tensor "${info.name}" of the model is not in the checkpoint`);
    if (!sameShape(t.shape, info.shape)) {
      throw invalid(file, `tensor "${info.name}" has shape ${JSON.stringify(t.shape)} in the checkpoint, ${JSON.stringify(info.shape)} in the model`);
    }
    if (t.dtype !== 'F32') throw invalid(file, `tensor "${info.name}" is ${t.dtype}; parameters load from F32`);
  }
  for (const name of model.keys()) {
    if (!params.has(name)) throw invalid(file, `tensor "${name}" of the checkpoint is not in the model`);
  }
}

function readOptimizer(dir: string, index: CheckpointIndex, optimizer: Optimizer, params: ParameterSet): OptimizerState {
  const indexFile = path.join(dir, INDEX_FILE);
  const file = path.join(dir, OPTIMIZER_FILE);
  const saved = index.optimizer;
  if (saved === undefined) throw invalid(indexFile, 'the checkpoint holds no optimizer state');
  if (saved.kind !== optimizer.kind) throw invalid(indexFile, `the optimizer state is ${saved.kind}'s, the optimizer given is ${optimizer.kind}`);
  const range = optimizer.range;
  if (saved.range?.begin !== range.begin || saved.range?.end !== range.end) {
    throw invalid(indexFile, `the optimizer state covers elements [${saved.range?.begin}, ${saved.range?.end}), the optimizer [${range.begin}, ${range.end})`);
  }
  if (!Number.isSafeInteger(saved.step) || saved.step < 0) throw invalid(indexFile, `optimizer.step ${JSON.stringify(saved.step)} is not an integer ≥ 0`);
  const whole = range.begin === 0 && range.end === params.length;
  const tensors = readSafetensors(file).tensors;
  const expected = new Set<string>();
  const out: Record<string, Float32Array> = {};
  const length = range.end - range.begin;
  for (const stateName of optimizer.stateNames()) {
    const flat = new Float32Array(length);
    const parts = whole ? params.tensors.map((t) => ({ key: `${stateName}/${t.name}`, shape: t.shape, offset: t.offset })) : [{ key: stateName, shape: [length], offset: 0 }];
    for (const part of parts) {
      expected.add(part.key);
      const t = tensors.get(part.key);
      if (t === undefined) throw invalid(file, `state tensor "${part.key}" is missing`);
      if (t.dtype !== 'F32' || !sameShape(t.shape, part.shape)) {
        throw invalid(file, `state tensor "${part.key}" is ${t.dtype} ${JSON.stringify(t.shape)}, expected F32 ${JSON.stringify(part.shape)}`);
      }
      flat.set(t.data as Float32Array, part.offset);
    }
    out[stateName] = flat;
  }
  for (const key of tensors.keys()) {
    if (!expected.has(key)) throw invalid(file, `state tensor "${key}" is not ${optimizer.kind}'s over this model`);
  }
  return { step: saved.step, options: saved.options, range: { begin: range.begin, end: range.end }, tensors: out };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
