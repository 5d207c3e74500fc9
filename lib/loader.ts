import * as fs from 'fs';
import * as path from 'path';

/** The addon's exports (see native/addon.cc). */
export interface NativeAddon {
  connect(options: NativeConnectOptions): Promise<NativeCommunicator>;
  versions: { gloo: string; napi: number };
  quant: NativeQuant;
}

/** The codecs (native/quant/quant_exports.cc). */
export interface NativeQuant {
  quantize(input: Arr, dtype: number, format: number, blockSize: number, output: Uint8Array, residual: Float32Array | null, seed: bigint | null): void;
  dequantize(bytes: Uint8Array, count: number, format: number, blockSize: number, output: Arr, dtype: number): void;
  quantizedSize(count: number, format: number, blockSize: number): number;
  readonly defaultBlockSize: number;
  readonly instructionSet: string;
}

/** Arguments of every quantized collective, after `input` and `output`. */
export type NativeQuantizedArgs = [dtype: number, format: number, blockSize: number, op: number, residual: Float32Array | null, seed: bigint | null, timeoutMs: number];

export interface NativeConnectOptions {
  rank: number;
  size: number;
  timeoutMs: number;
  prefix: string;
  hostname?: string;
  iface?: string;
  storeHost?: string;
  storePort?: number;
  storePath?: string;
  token?: string;
  glooMode?: string;
  allReduceAlgorithm?: string;
  busyPoll?: boolean;
  /** 'detail' compares a fingerprint of every collective across ranks first. */
  debug?: string;
}

type Arr = ArrayBufferView;
export interface NativeCommunicator {
  readonly rank: number;
  readonly size: number;
  readonly pending: number;
  readonly closed: boolean;
  algorithm(op: string, bytes: number): string;
  allReduce(input: Arr, output: Arr, dtype: number, op: number, timeoutMs: number): Promise<void>;
  reduceScatter(input: Arr, output: Arr, dtype: number, op: number, timeoutMs: number): Promise<void>;
  allGather(input: Arr, output: Arr, dtype: number, timeoutMs: number): Promise<void>;
  broadcast(buffer: Arr, dtype: number, root: number, timeoutMs: number): Promise<void>;
  reduce(input: Arr, output: Arr | null, dtype: number, op: number, root: number, timeoutMs: number): Promise<void>;
  barrier(timeoutMs: number): Promise<void>;
  allToAll(input: Arr, output: Arr, dtype: number, timeoutMs: number): Promise<void>;
  allToAllV(input: Arr, inputSplits: number[], output: Arr, outputSplits: number[], dtype: number, timeoutMs: number): Promise<void>;
  allToAllQuantized(input: Arr, output: Arr, ...args: NativeQuantizedArgs): Promise<void>;
  reduceScatterQuantized(input: Arr, output: Arr, ...args: NativeQuantizedArgs): Promise<void>;
  allGatherQuantized(input: Arr, output: Arr, ...args: NativeQuantizedArgs): Promise<void>;
  allReduceQuantized(input: Arr, output: Arr, ...args: NativeQuantizedArgs): Promise<void>;
  send(buffer: Arr, dtype: number, peer: number, tag: number, timeoutMs: number): Promise<void>;
  recv(buffer: Arr, dtype: number, peer: number, tag: number, timeoutMs: number): Promise<void>;
  split(rank: number, size: number, key: string, timeoutMs: number): Promise<NativeCommunicator>;
  close(): void;
  abort(reason?: string): void;
}

const ROOT = path.join(__dirname, '..');
const FILE = 'collectives.node';

function candidates(): string[] {
  const platform = `${process.platform}-${process.arch}`;
  const out: string[] = [];
  if (process.env.COLLECTIVES_ADDON) out.push(path.resolve(process.env.COLLECTIVES_ADDON));
  const prebuilds = path.join(ROOT, 'prebuilds', platform);
  if (fs.existsSync(prebuilds)) {
    for (const f of fs.readdirSync(prebuilds).sort()) {
      if (f.endsWith('.node')) out.push(path.join(prebuilds, f));
    }
  }
  out.push(path.join(ROOT, 'build', 'Release', FILE), path.join(ROOT, 'build', 'Debug', FILE));
  return out;
}

function hints(messages: string[]): string[] {
  const text = messages.join('\n');
  const out: string[] = [];
  const lib = /(lib[\w.+-]+\.so[\w.]*): cannot open shared object file/.exec(text);
  if (lib) {
    out.push(`A library the addon needs is missing: ${lib[1]}.`);
    if (lib[1].startsWith('libgloo')) out.push('On Debian or Ubuntu: apt-get install libgloo0 (or libgloo-dev to build).');
  }
  if (/invalid ELF header|wrong ELF class/.test(text)) {
    out.push(`The addon was built for another platform; this is ${process.platform}-${process.arch}.`);
  }
  if (/GLIBC_|GLIBCXX_/.test(text)) out.push('The addon needs a newer C or C++ runtime than this system has.');
  out.push('To build from source: apt-get install libgloo-dev cmake g++, then `npm rebuild collectives`.');
  return out;
}

let cached: NativeAddon | undefined;

/** Loads the addon, or throws an Error that says what was tried and why each try failed. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const tried: string[] = [];
  for (const file of candidates()) {
    if (!fs.existsSync(file)) {
      tried.push(`${file}: not found`);
      continue;
    }
    try {
      cached = require(file) as NativeAddon;
      return cached;
    } catch (err) {
      tried.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const e = new Error(
    [
      `collectives: could not load the native addon for ${process.platform}-${process.arch} (Node ${process.version}, Node-API ${process.versions.napi}).`,
      'Tried:',
      ...tried.map((t) => `  - ${t}`),
      ...hints(tried),
    ].join('\n'),
  );
  (e as Error & { code: string }).code = 'BACKEND_UNAVAILABLE';
  throw e;
}
