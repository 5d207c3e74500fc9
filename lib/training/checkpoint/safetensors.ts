/**
 * safetensors files (https://github.com/huggingface/safetensors, the format's README), read and
 * written here against the format itself: npm holds no maintained implementation for Node (the
 * `safetensors` package is a 0.0.1 placeholder; @huggingface/hub only parses remote headers), and
 * the format is small enough that its checks are better kept next to the errors they raise.
 *
 * Layout: an 8-byte little-endian unsigned header length N; N bytes of UTF-8 JSON mapping each
 * tensor name to {dtype, shape, data_offsets: [begin, end]} plus an optional "__metadata__"
 * object of strings; then the data, offsets counted from the end of the header, raw
 * little-endian bytes, row-major. As the reference implementation requires, the tensors cover
 * the data exactly: no overlaps, no holes, nothing after the last one (no polyglot files).
 */
import * as fs from 'node:fs';
import { endianness } from 'node:os';
import { argRangeError, argTypeError } from '../errors';
import { invalid } from './locate';

/** The element types of the format that this reader understands. */
export const SAFETENSORS_DTYPES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL'] as const;
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

/** The host array each dtype is read into; F16 and BF16 arrive as their 16-bit patterns. */
export type SafetensorsArray = Float64Array | Float32Array | Uint16Array | BigInt64Array | BigUint64Array | Int32Array | Uint32Array | Int16Array | Int8Array | Uint8Array;

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsArray;
}

/** A tensor to write; `dtype` may be left out where the array type says it (not Uint16Array / Uint8Array for F16, BF16, BOOL). */
export interface SafetensorsInput {
  dtype?: SafetensorsDType;
  shape: readonly number[];
  data: SafetensorsArray;
}

export interface SafetensorsHeaderEntry {
  dtype: SafetensorsDType;
  shape: number[];
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** The tensors in the order of their data. */
  tensors: Map<string, SafetensorsHeaderEntry>;
  metadata: Record<string, string>;
  /** Where the data starts in the file (8 + N). */
  dataStart: number;
}

const ELEMENT_BYTES: Record<SafetensorsDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset?: number, length?: number): SafetensorsArray; BYTES_PER_ELEMENT: number };
const ARRAYS: Record<SafetensorsDType, ArrayCtor> = {
  F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array, I64: BigInt64Array, I32: Int32Array, I16: Int16Array,
  I8: Int8Array, U64: BigUint64Array, U32: Uint32Array, U16: Uint16Array, U8: Uint8Array, BOOL: Uint8Array,
};

/** The reference implementation's bound: a larger header is a corrupt (or hostile) file. */
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN = endianness() === 'LE';


/** Reads a whole file: every tensor copied into its own (aligned) typed array. */
export function readSafetensors(file: string): { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> } {
  const fd = openForRead(file);
  try {
    const size = fs.fstatSync(fd).size;
    const header = readHeaderFrom(fd, size, file);
    const data = readExactly(fd, header.dataStart, size - header.dataStart, file);
    const tensors = new Map<string, SafetensorsTensor>();
    for (const [name, e] of header.tensors) {
      tensors.set(name, { dtype: e.dtype, shape: e.shape, data: toArray(data, e) });
    }
    return { tensors, metadata: header.metadata };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads and checks the header only (against the file's size), without the data. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const fd = openForRead(file);
  try {
    return readHeaderFrom(fd, fs.fstatSync(fd).size, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** Checks a header from a file of `fileSize` bytes, given its JSON bytes. `file` names it in errors. */
export function parseSafetensorsHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const dataStart = 8 + json.length;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw invalid(file, 'the header is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw invalid(file, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid(file, 'the header is not a JSON object');
  const metadata: Record<string, string> = {};
  const entries: [string, SafetensorsHeaderEntry][] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw invalid(file, `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push([name, checkEntry(file, name, value)]);
  }
  const dataBytes = fileSize - dataStart;
  entries.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  let pos = 0;
  let previous = '';
  for (const [name, e] of entries) {
    const [begin, end] = e.dataOffsets;
    if (begin < pos) throw invalid(file, `tensor "${name}" (data_offsets [${begin}, ${end}]) overlaps tensor "${previous}" (which ends at ${pos})`);
    if (begin > pos) throw invalid(file, `${begin - pos} bytes of data before tensor "${name}" belong to no tensor (data_offsets must cover the data without holes)`);
    if (end > dataBytes) throw invalid(file, `tensor "${name}" ends at byte ${end} of the data but the file holds ${Math.max(0, dataBytes)}: truncated?`);
    pos = end;
    previous = name;
  }
  if (pos !== dataBytes) throw invalid(file, `${dataBytes - pos} bytes after the last tensor belong to no tensor`);
  return { tensors: new Map(entries), metadata, dataStart };
}

function checkEntry(file: string, name: string, value: unknown): SafetensorsHeaderEntry {
  const what = `tensor "${name}"`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(file, `${what} is not a {dtype, shape, data_offsets} object`);
  const { dtype, shape, data_offsets: offsets } = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string' || !(SAFETENSORS_DTYPES as readonly string[]).includes(dtype)) {
    throw invalid(file, `${what} has dtype ${JSON.stringify(dtype)}, not one of ${SAFETENSORS_DTYPES.join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw invalid(file, `${what} has shape ${JSON.stringify(shape)}, not an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0) || offsets[0] > offsets[1]) {
    throw invalid(file, `${what} has data_offsets ${JSON.stringify(offsets)}, not [begin, end] with 0 ≤ begin ≤ end`);
  }
  const t = dtype as SafetensorsDType;
  const bytes = shape.reduce((a: number, d: number) => a * d, 1) * ELEMENT_BYTES[t];
  if (offsets[1] - offsets[0] !== bytes) {
    throw invalid(file, `${what}: data_offsets [${offsets[0]}, ${offsets[1]}] hold ${offsets[1] - offsets[0]} bytes, but ${t} ${JSON.stringify(shape)} takes ${bytes}`);
  }
  return { dtype: t, shape: shape as number[], dataOffsets: [offsets[0], offsets[1]] };
}

/**
 * Writes a file and fsyncs it: tensors in the order given, the header padded with spaces to a
 * multiple of 8 bytes so the data starts 8-aligned. `metadata` values must be strings.
 */
export function writeSafetensors(file: string, tensors: Iterable<[string, SafetensorsInput]>, metadata?: Record<string, string>): void {
  const list: [string, SafetensorsDType, SafetensorsInput][] = [];
  // No prototype: tensor names such as "__proto__" or "constructor" are plain keys.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const names = new Set<string>();
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw argTypeError(`metadata.${k}`, 'a string', v);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of tensors) {
    if (typeof name !== 'string' || name === '__metadata__' || names.has(name)) throw argRangeError('tensors', 'unique names other than __metadata__', name);
    const dtype = dtypeOf(name, t);
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count !== t.data.length) throw argRangeError(`tensors["${name}"].data`, `${count} elements (shape ${JSON.stringify(t.shape)})`, t.data.length);
    const bytes = count * ELEMENT_BYTES[dtype];
    names.add(name);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
    list.push([name, dtype, t]);
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length % 8 !== 0) json = Buffer.concat([json, Buffer.alloc(8 - (json.length % 8), 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const fd = fs.openSync(file, 'w');
  try {
    writeAll(fd, prefix);
    writeAll(fd, json);
    for (const [, , t] of list) writeAll(fd, littleEndianBytes(t.data));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function dtypeOf(name: string, t: SafetensorsInput): SafetensorsDType {
  if (t === null || typeof t !== 'object' || !ArrayBuffer.isView(t.data)) throw argTypeError(`tensors["${name}"]`, 'a {dtype?, shape, data} with a typed array', t);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw argTypeError(`tensors["${name}"].shape`, 'an array of non-negative integers', t.shape);
  const candidates = SAFETENSORS_DTYPES.filter((d) => t.data instanceof ARRAYS[d]);
  if (t.dtype !== undefined) {
    if (!candidates.includes(t.dtype)) throw argTypeError(`tensors["${name}"].dtype`, `a dtype that ${t.data.constructor.name} holds (${candidates.join(', ')})`, t.dtype);
    return t.dtype;
  }
  if (candidates.length !== 1) throw argTypeError(`tensors["${name}"].dtype`, `one of ${candidates.join(', ')} for a ${t.data.constructor.name}`, t.dtype);
  return candidates[0];
}

function littleEndianBytes(a: SafetensorsArray): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE_ENDIAN || a.BYTES_PER_ELEMENT === 1) return bytes;
  return swapped(bytes, a.BYTES_PER_ELEMENT);
}

function swapped(bytes: Uint8Array, width: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) {
    for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
  }
  return out;
}

function toArray(data: Uint8Array, e: SafetensorsHeaderEntry): SafetensorsArray {
  const [begin, end] = e.dataOffsets;
  const Ctor = ARRAYS[e.dtype];
  // A copy: the offsets need not be aligned to the element size, and the caller owns the result.
  // (Buffer's slice() would be a view: copy explicitly.)
  let bytes: Uint8Array<ArrayBuffer> = new Uint8Array(end - begin);
  bytes.set(data.subarray(begin, end));
  if (!LITTLE_ENDIAN && Ctor.BYTES_PER_ELEMENT > 1) bytes = swapped(bytes, Ctor.BYTES_PER_ELEMENT);
  return new Ctor(bytes.buffer, 0, (end - begin) / Ctor.BYTES_PER_ELEMENT);
}

function openForRead(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw invalid(file, code === 'ENOENT' ? 'no such file' : `cannot be opened (${code ?? (e as Error).message})`);
  }
}

function readHeaderFrom(fd: number, size: number, file: string): SafetensorsHeader {
  if (size < 8) throw invalid(file, `${size} bytes, too short for the 8-byte header length`);
  const n = readExactly(fd, 0, 8, file).readBigUInt64LE(0);
  if (n > BigInt(size - 8)) throw invalid(file, `the header length ${n} runs past the end of the file (${size} bytes): truncated or not a safetensors file`);
  if (n > BigInt(MAX_HEADER_BYTES)) throw invalid(file, `the header length ${n} is over the format's limit of ${MAX_HEADER_BYTES} bytes`);
  return parseSafetensorsHeader(readExactly(fd, 8, Number(n), file), size, file);
}

function readExactly(fd: number, position: number, length: number, file: string): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const got = fs.readSync(fd, buf, done, length - done, position + done);
    if (got === 0) throw invalid(file, `ended after ${position + done} bytes while reading (truncated while being read?)`);
    done += got;
  }
  return buf;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}
