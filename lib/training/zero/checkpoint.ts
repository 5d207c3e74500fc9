/**
 * Sharded ZeRO checkpoints: every rank writes its own shard and one JSON index describes the
 * whole (the layout of Hugging Face's sharded `*.safetensors.index.json` and of
 * torch.distributed.checkpoint's metadata):
 *
 *   dir/zero-rank-00000-of-00004.safetensors   rank 0's pieces: `<tensor>` (its parameters,
 *   dir/zero-rank-00001-of-00004.safetensors   flat) and `<state>/<tensor>` (exp_avg/fc1.weight…)
 *   …
  *   dir/checkpoint.json                        format, step, world size, stage, the tensors'
 *                                              shapes, the files (bytes, SHA-256), and for each
 *                                              tensor which file holds which element range
 *
 * A checkpoint records tensor element ranges, not ranks, so it loads into any world size and
 * any stage: each loading rank reads the ranges its own partition owns from whichever files
 * hold them (resharding). `consolidateZeroCheckpoint` writes one plain safetensors model.
 *
 * Saving is collective and atomic: rank 0 makes a temporary sibling directory, every rank
 * writes and fsyncs its file there, rank 0 writes the index last and renames the directory
 * into place. Loading checks every file against the index (present, same size and SHA-256)
 * before anything is written, on every rank, and fails on every rank alike naming the file.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { toHost } from '../buffers';
import { fsyncDir, replaceDirectory, replaceFile, tempSibling, writeSynced } from '../checkpoint/files';
import { invalid, LATEST_FILE, resolveCheckpointDir } from '../checkpoint/locate';
import { readSafetensors, writeSafetensors, type SafetensorsInput, type SafetensorsTensor } from '../checkpoint/safetensors';
import { argTypeError, checkKeys, checkNumber, TrainingError, TrainingErrorCode } from '../errors';
import type { Zero } from './zero';

function checkZero(zero: unknown): void {
  const z = zero as Zero | null;
  if (z === null || typeof z !== 'object' || typeof z.step !== 'function' || z.partition === undefined) throw argTypeError('zero', 'a Zero (from Zero.create)', zero);
}

// The name part 1's checkpoints use too: latestCheckpoint() and listCheckpoints() see both kinds, and
// each loader refuses the other's by its format field.
export const ZERO_INDEX_FILE = 'checkpoint.json';
const FORMAT = 'collectives-zero/1';

export interface ZeroCheckpointIndex {
  format: string;
  step: number;
  worldSize: number;
  stage: number;
  tensors: { name: string; shape: number[] }[];
  files: { file: string; rank: number; bytes: number; sha256: string }[];
  /** Per tensor, the element ranges [begin, end) of its row-major elements and the file holding each. */
  weight_map: Record<string, { file: string; begin: number; end: number }[]>;
  optimizer: { kind: string; step: number; options: Record<string, number | boolean>; states: string[] };
  meta: Record<string, unknown>;
}

export interface ZeroSaveContents {
  step: number;
  meta?: Record<string, unknown>;
}

export interface LoadedZeroCheckpoint {
  dir: string;
  step: number;
  worldSize: number;
  stage: number;
  meta: Record<string, unknown>;
}

const shardFile = (rank: number, size: number): string => `zero-rank-${String(rank).padStart(5, '0')}-of-${String(size).padStart(5, '0')}.safetensors`;

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Turns one rank's failure into the same error on every rank (a collective that some ranks skip would hang the others). */
async function agree<T>(zero: Zero, what: string, fn: () => T | Promise<T>): Promise<T> {
  let result: T | undefined;
  let error: { message: string; code: string } | null = null;
  let thrown: unknown;
  try {
    result = await fn();
  } catch (e) {
    thrown = e;
    error = { message: (e as Error).message, code: (e as { code?: string }).code ?? '' };
  }
  const all = (await zero.comm.allGatherObject(error)) as ({ message: string; code: string } | null)[];
  const first = all.findIndex((e) => e !== null);
  if (first < 0) return result as T;
  if (thrown !== undefined) throw thrown;
  const e = all[first]!;
  if (e.code === TrainingErrorCode.CHECKPOINT_INVALID) throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, e.message);
  throw new TrainingError(TrainingErrorCode.INVALID_STATE, `${what}: rank ${first} failed: ${e.message}`);
}

/**
 * Saves every rank's shard and the index into `dir` (replacing an existing one). Collective;
 * the directory must be one that every rank sees (one host, or a shared file system).
 */
export async function saveZeroCheckpoint(zero: Zero, dir: string, contents: ZeroSaveContents): Promise<string> {
  checkZero(zero);
  if (typeof dir !== 'string' || dir.length === 0) throw argTypeError('dir', 'a directory path', dir);
  const c = checkKeys<ZeroSaveContents>('contents', contents, ['step', 'meta']);
  checkNumber('contents.step', c.step, 0, Number.MAX_SAFE_INTEGER, true);
  if (c.meta !== undefined && (c.meta === null || typeof c.meta !== 'object' || Array.isArray(c.meta))) throw argTypeError('contents.meta', 'a JSON object', c.meta);
  const { comm } = zero;
  const target = path.resolve(dir);
  const tmp = await comm.broadcastObject(comm.rank === 0 ? tempSibling(target, 'tmp') : '');
  try {
    await agree(zero, 'saveZeroCheckpoint', () => {
      if (comm.rank === 0) {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.mkdirSync(tmp);
      }
    });
    const mine = await agree(zero, 'saveZeroCheckpoint', () => writeShard(zero, tmp));
    const files = await comm.allGatherObject(mine);
    await agree(zero, 'saveZeroCheckpoint', () => writeIndexAndCommit(zero, c, tmp, target, files));
  } catch (e) {
    // Every rank has failed alike (agree); what the save left is rank 0's to remove.
    if (comm.rank === 0) fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

/** Rank 0's last part of a save: the index, then the rename that commits it. */
function writeIndexAndCommit(zero: Zero, c: ZeroSaveContents, tmp: string, target: string, files: { file: string; bytes: number; sha256: string }[]): void {
  const { comm } = zero;
  if (comm.rank !== 0) return;
  const state = zero.optimizer.state();
  const weight_map: ZeroCheckpointIndex['weight_map'] = {};
  for (const t of zero.params.tensors) weight_map[t.name] = [];
  for (let r = 0; r < comm.size; r++) {
    for (const p of zero.partition.pieces(r)) weight_map[p.name].push({ file: shardFile(r, comm.size), begin: p.tensorBegin, end: p.tensorEnd });
  }
  const index: ZeroCheckpointIndex = {
    format: FORMAT,
    step: c.step,
    worldSize: comm.size,
    stage: zero.stage,
    tensors: zero.params.tensors.map((t) => ({ name: t.name, shape: [...t.shape] })),
    files: files.map((f, rank) => ({ ...f, rank })),
    weight_map,
    optimizer: { kind: zero.optimizer.kind, step: state.step, options: state.options, states: Object.keys(state.tensors) },
    meta: c.meta ?? {},
  };
  writeSynced(path.join(tmp, ZERO_INDEX_FILE), JSON.stringify(index, null, 1) + '\n');
  fsyncDir(tmp);
  replaceDirectory(tmp, target);
}

/**
 * Saves as `root/step-<8 digits>` and points `root/latest` at it (as saveLatestCheckpoint
 * does for unsharded checkpoints), keeping the newest `keep`.
 */
export async function saveLatestZeroCheckpoint(zero: Zero, root: string, contents: ZeroSaveContents, options?: { keep?: number }): Promise<string> {
  checkZero(zero);
  if (typeof root !== 'string' || root.length === 0) throw argTypeError('root', 'a directory path', root);
  const o = checkKeys<{ keep?: number }>('options', options, ['keep']);
  const keep = o.keep === undefined ? Infinity : checkNumber('options.keep', o.keep, 1, Number.MAX_SAFE_INTEGER, true);
  checkNumber('contents.step', contents?.step, 0, Number.MAX_SAFE_INTEGER, true);
  const name = `step-${String(contents.step).padStart(8, '0')}`;
  const dir = path.join(root, name);
  await saveZeroCheckpoint(zero, dir, contents);
  await agree(zero, 'saveLatestZeroCheckpoint', () => {
    if (zero.comm.rank !== 0) return;
    replaceFile(path.join(root, LATEST_FILE), name + '\n');
    const all = fs.readdirSync(root).filter((n) => /^step-\d{8}$/.test(n) && n !== name).sort();
    for (const n of all.slice(0, Math.max(0, all.length + 1 - keep))) fs.rmSync(path.join(root, n), { recursive: true, force: true });
  });
  return dir;
}

function writeShard(zero: Zero, dir: string): { file: string; bytes: number; sha256: string } {
  const { rank, size } = zero.comm;
  const master = toHost(zero.shard.data);
  const state = zero.optimizer.state();
  const entries: [string, SafetensorsInput][] = [];
  const pieces = zero.partition.pieces(rank);
  const flat = (a: Float32Array, p: (typeof pieces)[number]): SafetensorsInput => ({ shape: [p.tensorEnd - p.tensorBegin], data: a.subarray(p.shardOffset, p.shardOffset + p.tensorEnd - p.tensorBegin) });
  for (const p of pieces) entries.push([p.name, flat(master, p)]);
  for (const [stateName, t] of Object.entries(state.tensors)) for (const p of pieces) entries.push([`${stateName}/${p.name}`, flat(t, p)]);
  const name = shardFile(rank, size);
  const file = path.join(dir, name);
  writeSafetensors(file, entries, { format: 'pt' });
  return { file: name, bytes: fs.statSync(file).size, sha256: sha256(file) };
}

/** Reads and checks the index and every file it lists (present, size, SHA-256). */
export function readZeroIndex(dirOrRoot: string): { dir: string; index: ZeroCheckpointIndex } {
  if (typeof dirOrRoot !== 'string' || dirOrRoot.length === 0) throw argTypeError('dir', 'a directory path', dirOrRoot);
  const dir = resolveCheckpointDir(dirOrRoot, ZERO_INDEX_FILE);
  const file = path.join(dir, ZERO_INDEX_FILE);
  let index: ZeroCheckpointIndex;
  try {
    index = JSON.parse(fs.readFileSync(file, 'utf8')) as ZeroCheckpointIndex;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw invalid(file, code === 'ENOENT' ? 'no such file (not a ZeRO checkpoint, or a save that did not finish)' : `unreadable (${(e as Error).message})`);
  }
  if (index === null || typeof index !== 'object' || index.format !== FORMAT) throw invalid(file, `format ${JSON.stringify(index?.format)}, this version reads ${FORMAT}`);
  if (!Number.isSafeInteger(index.step) || index.step < 0) throw invalid(file, `step ${JSON.stringify(index.step)} is not an integer ≥ 0`);
  if (!Array.isArray(index.files) || index.files.length !== index.worldSize) throw invalid(file, `lists ${index.files?.length} files for a world of ${index.worldSize}`);
  if (!Array.isArray(index.tensors) || index.weight_map === null || typeof index.weight_map !== 'object') throw invalid(file, 'no tensors or weight_map');
  for (const f of index.files) {
    if (typeof f.file !== 'string' || f.file.includes('/') || f.file.includes('\\') || f.file.startsWith('.')) throw invalid(file, `file name ${JSON.stringify(f.file)} is not a plain file name`);
    const shard = path.join(dir, f.file);
    let bytes: number;
    try {
      bytes = fs.statSync(shard).size;
    } catch {
      throw invalid(shard, `the shard of rank ${f.rank} is missing`);
    }
    if (bytes !== f.bytes) throw invalid(shard, `the shard of rank ${f.rank} holds ${bytes} bytes, the index says ${f.bytes}: truncated or replaced`);
    if (sha256(shard) !== f.sha256) throw invalid(shard, `the shard of rank ${f.rank} is corrupted (its SHA-256 differs from the index's)`);
  }
  for (const t of index.tensors) {
    const size = t.shape.reduce((a, d) => a * d, 1);
    const ranges = [...(index.weight_map[t.name] ?? [])].sort((a, b) => a.begin - b.begin);
    let at = 0;
    for (const r of ranges) {
      if (r.begin !== at) throw invalid(file, `tensor "${t.name}": elements [${at}, ${r.begin}) are in no shard`);
      at = r.end;
    }
    if (at !== size) throw invalid(file, `tensor "${t.name}": elements [${at}, ${size}) are in no shard`);
  }
  return { dir, index };
}

/** Reads the shards lazily, each file once. */
class ShardReader {
  readonly #dir: string;
  readonly #files = new Map<string, Map<string, SafetensorsTensor>>();
  constructor(dir: string) {
    this.#dir = dir;
  }
  tensor(file: string, key: string, length: number): Float32Array {
    let t = this.#files.get(file);
    if (t === undefined) {
      t = readSafetensors(path.join(this.#dir, file)).tensors;
      this.#files.set(file, t);
    }
    const e = t.get(key);
    const where = path.join(this.#dir, file);
    if (e === undefined) throw invalid(where, `tensor "${key}" is missing`);
    if (e.dtype !== 'F32' || e.data.length !== length) throw invalid(where, `tensor "${key}" is ${e.dtype} of ${e.data.length} elements, expected F32 of ${length}`);
    return e.data as Float32Array;
  }
}

/** Copies elements [begin, end) of tensor `name` (state `prefix`) from the shards into `out` at `at`. */
function readRange(reader: ShardReader, index: ZeroCheckpointIndex, prefix: string, name: string, begin: number, end: number, out: Float32Array, at: number): void {
  for (const r of index.weight_map[name]) {
    const a = Math.max(begin, r.begin);
    const b = Math.min(end, r.end);
    if (a >= b) continue;
    const src = reader.tensor(r.file, prefix + name, r.end - r.begin);
    out.set(src.subarray(a - r.begin, b - r.begin), at + (a - begin));
  }
}

/**
 * Loads a checkpoint saved by any world size and stage into `zero` (resharding into its
 * partition), with the optimizer state. Collective; on any rank's failure every rank throws
 * CHECKPOINT_INVALID naming the file.
 */
export async function loadZeroCheckpoint(zero: Zero, dirOrRoot: string): Promise<LoadedZeroCheckpoint> {
  checkZero(zero);
  const loaded = await agree(zero, 'loadZeroCheckpoint', () => {
    const { dir, index } = readZeroIndex(dirOrRoot);
    const indexFile = path.join(dir, ZERO_INDEX_FILE);
    const params = zero.params;
    if (index.tensors.length !== params.tensors.length) throw invalid(indexFile, `${index.tensors.length} tensors, the model has ${params.tensors.length}`);
    index.tensors.forEach((t, i) => {
      const m = params.tensors[i];
      if (t.name !== m.name || t.shape.length !== m.shape.length || t.shape.some((d, j) => d !== m.shape[j])) {
        throw invalid(indexFile, `tensor #${i} is "${t.name}" [${t.shape}] in the checkpoint, "${m.name}" [${m.shape}] in the model`);
      }
    });
    if (index.optimizer?.kind !== zero.optimizer.kind) throw invalid(indexFile, `the optimizer state is ${index.optimizer?.kind}'s, the optimizer is ${zero.optimizer.kind}`);
    const states = zero.optimizer.stateNames();
    const missing = states.filter((s) => !index.optimizer.states.includes(s));
    if (missing.length > 0) throw invalid(indexFile, `optimizer state ${missing.join(', ')} is not in the checkpoint`);
    const reader = new ShardReader(dir);
    const n = zero.shard.length;
    const master = new Float32Array(n);
    const tensors: Record<string, Float32Array> = Object.fromEntries(states.map((s) => [s, new Float32Array(n)]));
    for (const p of zero.partition.pieces(zero.comm.rank)) {
      readRange(reader, index, '', p.name, p.tensorBegin, p.tensorEnd, master, p.shardOffset);
      for (const s of states) readRange(reader, index, `${s}/`, p.name, p.tensorBegin, p.tensorEnd, tensors[s], p.shardOffset);
    }
    return { dir, index, master, state: { step: index.optimizer.step, options: index.optimizer.options, range: { begin: 0, end: n }, tensors } };
  });
  await zero.loadShard(loaded.master, loaded.state);
  const { index } = loaded;
  return { dir: loaded.dir, step: index.step, worldSize: index.worldSize, stage: index.stage, meta: index.meta };
}

/**
 * Writes the whole model of a ZeRO checkpoint as one safetensors file (each tensor under its
 * name, in its shape, F32: what `safetensors.torch.load_file` reads), atomically. Runs in one
 * process, without a communicator. Returns the file's path.
 */
export function consolidateZeroCheckpoint(dirOrRoot: string, outFile: string): string {
  if (typeof outFile !== 'string' || outFile.length === 0) throw argTypeError('outFile', 'a file path', outFile);
  const { dir, index } = readZeroIndex(dirOrRoot);
  const reader = new ShardReader(dir);
  const entries: [string, SafetensorsInput][] = index.tensors.map((t) => {
    const size = t.shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(size);
    readRange(reader, index, '', t.name, 0, size, data, 0);
    return [t.name, { shape: t.shape, data }];
  });
  const target = path.resolve(outFile);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempSibling(target, 'tmp');
  try {
    writeSafetensors(tmp, entries, { format: 'pt', step: String(index.step) });
    fs.renameSync(tmp, target);
    fsyncDir(path.dirname(target));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return target;
}
