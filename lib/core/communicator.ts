import { CollectiveError, ErrorCode, argRangeError, argTypeError, fromNative } from './errors';
import {
  DTYPE_BYTES,
  DTYPE_CODE,
  REDUCE_OP_CODE,
  type DType,
  type HostArray,
  type ReduceOp,
  checkArray,
  checkReduceOp,
  isBitwise,
  resolveDType,
} from './dtypes';
import { DeviceBuffer, onDevice } from './device';
import { checkSameDType } from './device-args';
import { type Collective, type RootedMove, SHAPES, checkLengths, wireBytes } from './shapes';
import { type JsonValue, checkJson, decodeJson, encodeJson } from './objects';
import { Store, type StoreAccess } from './store';
import { type CommStats, StatsCounter } from './stats';
import type { NativeCommunicator } from './addon';
import { type CallOptions, checkInt, checkOptions, checkTimeout } from './options';
import type { ResolvedGlooTuning } from './tuning';
import { Work } from './work';
import {
  type QuantizedAllReduceOptions,
  type QuantizedCallOptions,
  type QuantizedKind,
  type QuantizedReduceOptions,
  deviceQuantizedCallArgs,
  quantizedCallArgs,
} from './quantized';

export interface ReduceOptions extends CallOptions {
  op?: ReduceOp;
  /** Needed for Uint16Array buffers: 'float16' or 'bfloat16'. */
  dtype?: DType;
}

export interface AllReduceOptions extends ReduceOptions {
  /** Out-of-place: the result goes here and the input is left unchanged. */
  output?: HostArray | DeviceBuffer;
}

/** Host typed arrays run on Gloo, DeviceBuffers on NCCL. */
export type CollectiveBuffer = HostArray | DeviceBuffer;

export interface RootedReduceOptions extends ReduceOptions {
  root?: number;
  /** Out-of-place on the root: the result goes here instead of the input. */
  output?: HostArray | DeviceBuffer;
}

export interface BroadcastOptions extends CallOptions {
  root?: number;
  dtype?: DType;
}

export interface DataOptions extends CallOptions {
  dtype?: DType;
}

export interface P2POptions extends CallOptions {
  dtype?: DType;
  /** Matches a send with a receive between the same two ranks (default 0). */
  tag?: number;
}

export interface RootedOptions extends CallOptions {
  root?: number;
  dtype?: DType;
}

export interface MonitoredBarrierOptions extends CallOptions {
  /** Wait for every rank and name all the missing ones (default), or fail at the first. */
  waitAll?: boolean;
}

/**
 * Where a communicator sits: its store's address and namespace, and its ranks on this
 * host. init() reads LOCAL_RANK / LOCAL_WORLD_SIZE; split() counts the members on the same
 * host (os.hostname()).
 */
export interface Placement {
  access: StoreAccess;
  localRank: number;
  localSize: number;
  /** A hash of os.hostname(), compared by split(). */
  host: number;
}

/**
 * The point-to-point tags monitoredBarrier uses: the top 256 of the 32-bit range, so that
 * its messages never match a user's send or recv. Users' tags stop below them.
 */
const MONITORED_TAG_BASE = 0xffffff00;
const MAX_USER_TAG = MONITORED_TAG_BASE - 1;

/** Called when the communicator is destroyed (e.g. to close the store it hosts). */
type Cleanup = () => Promise<void> | void;

/**
 * A group of ranks that run collectives together. Every call returns a Work
 * at once; operations run in issue order off the JavaScript thread, and the
 * buffers they use must not be touched until their Work completes. The
 * exception is the inline path (GlooTuning.inlineBytes): a small call on a
 * communicator with nothing in flight runs on the calling thread and returns
 * a Work that has already settled.
 */
export class Communicator {
  readonly #native: NativeCommunicator;
  readonly #timeoutMs: number;
  readonly #tuning: Readonly<ResolvedGlooTuning>;
  readonly #pending = new Set<Promise<unknown>>();
  #cleanups: Cleanup[] = [];
  #splits = 0;
  #destroyed: Promise<void> | undefined;
  #aborted = false;
  #inGroup = false;
  /** The host calls issued inside the open group, which its Work waits for. */
  #groupHost: Promise<unknown>[] = [];
  #monitored = 0;
  readonly #place: Placement;
  #store: Store | undefined;
  readonly #callSites: boolean;
  readonly #stats = new StatsCounter();

  /** Communicators come from init(), split() and subgroup(). */
  private constructor(
    native: NativeCommunicator,
    timeoutMs: number,
    tuning: ResolvedGlooTuning,
    cleanups: Cleanup[] = [],
    callSites = false,
    place?: Placement,
  ) {
    this.#native = native;
    this.#place = place ?? { access: { endpoint: null, prefix: '' }, localRank: native.rank, localSize: native.size, host: 0 };
    this.#timeoutMs = timeoutMs;
    this.#tuning = Object.freeze({ ...tuning });
    this.#cleanups = cleanups;
    this.#callSites = callSites;
  }

  /** @internal init()'s way to make one. */
  static create(
    native: NativeCommunicator,
    timeoutMs: number,
    tuning: ResolvedGlooTuning,
    cleanups: Cleanup[],
    callSites: boolean,
    place?: Placement,
  ): Communicator {
    return new Communicator(native, timeoutMs, tuning, cleanups, callSites, place);
  }

  /** How this communicator drives Gloo (resolved from init's options and the environment). */
  get tuning(): Readonly<ResolvedGlooTuning> {
    return this.#tuning;
  }

  /**
   * The engine that runs collectives on host memory: 'gloo' (TCP), or 'mpi' (Open MPI, chosen
   * with init({ engine: 'mpi' }) or by default under mpirun; see docs/mpi.md). DeviceBuffers
   * always go through NCCL.
   */
  get engine(): 'gloo' | 'mpi' {
    return this.#native.engine === 'mpi' ? 'mpi' : 'gloo';
  }

  get rank(): number {
    return this.#native.rank;
  }
  get size(): number {
    return this.#native.size;
  }
  /**
   * This rank's index among the communicator's ranks on the same host, and their number
   * (torchrun's LOCAL_RANK and LOCAL_WORLD_SIZE for the world; for split() and subgroup()
   * children, counted among the members whose os.hostname() matches, in the child's rank order).
   */
  get localRank(): number {
    return this.#place.localRank;
  }
  get localSize(): number {
    return this.#place.localSize;
  }
  /**
   * The rendezvous store, as torch.distributed's Store (set, get, add, wait), with keys under
   * this communicator's namespace. Needs the TCP store (not options.storePath).
   */
  get store(): Store {
    this.#store ??= new Store(this.#place.access, this.rank, this.#timeoutMs);
    return this.#store;
  }
  /**
   * What runs `op` (the method's name, `allReduce`…, or nccl-tests' name: 'all_reduce',
   * 'reduce_scatter', 'all_gather', 'broadcast', 'reduce', 'alltoall', 'barrier') on `bytes` bytes at the default
   * timeout, e.g. 'sync halving-doubling'. Benchmarks print it beside their numbers.
   * With `{ device: true }`, what runs it on DeviceBuffers: 'nccl', and for 'alltoall'
   * 'nccl alltoall' (ncclAlltoAll, NCCL 2.28+) or 'nccl send/recv' (grouped send/recv).
   */
  algorithm(op: string, bytes: number, options?: { device?: boolean }): string {
    if (typeof op !== 'string') throw argTypeError('op', 'an operation name', op);
    checkInt('bytes', bytes, 0, Number.MAX_SAFE_INTEGER);
    const o = checkOptions<{ device?: boolean }>('options', options, ['device']);
    if (o.device !== undefined && typeof o.device !== 'boolean') throw argTypeError('options.device', 'a boolean', o.device);
    try {
      return this.#native.algorithm(NCCL_TESTS_NAME[op] ?? op, bytes, o.device === true);
    } catch (err) {
      throw fromNative(err, this.rank, 'algorithm');
    }
  }
  /** The default timeout of every call, in milliseconds. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }
  /** Operations issued and not yet completed. */
  get pending(): number {
    return this.#pending.size;
  }
  /**
   * What this communicator has moved since it was made or last reset, per operation (method
   * names: `allReduce`, `allReduceQuantized`, `send`, …): calls, failures, bytes sent and
   * received by this rank, and the summed time from issue to completion. Bytes are those of the
   * bandwidth-optimal schedule for the call's shape (nccl-tests' bus model), B being the
   * buffer's bytes and n the world size: all-reduce 2(n−1)/n·B each way; reduce-scatter
   * (B the input), all-gather (B the output) and all-to-all (n−1)/n·B; broadcast B sent by the
   * root and received by the others; reduce B sent by the others, received by the root;
   * send / recv their buffer; all-to-all-v the counts for the other ranks; the quantized
   * collectives their encoded slots (quantizedSize of each chunk) × (n−1), twice for all-reduce.
   * `inline` counts the calls that ran on the calling thread (docs/tuning.md#the-inline-path).
   * Counting costs no allocation per call.
   */
  stats(): CommStats {
    return this.#stats.snapshot(this.#native.inlineCalls());
  }

  /** Starts stats() from zero. */
  resetStats(): void {
    this.#stats.reset(this.#native.inlineCalls());
  }

  get destroyed(): boolean {
    return this.#destroyed !== undefined || this.#aborted;
  }

  /** Reduces `buffer` across ranks; in place unless `options.output` is given. */
  allReduce<T extends CollectiveBuffer>(buffer: T, options?: AllReduceOptions): Work<T> {
    return this.#collective('allReduce', buffer, outputOption(options), options) as Work<T>;
  }

  /**
   * Reduces `input` (size × n elements) across ranks and leaves block `rank`
   * of the result in `output` (n elements).
   */
  reduceScatter<T extends CollectiveBuffer>(input: CollectiveBuffer, output: T, options?: ReduceOptions): Work<T> {
    return this.#collective('reduceScatter', input, output, options) as Work<T>;
  }

  /** Gathers every rank's `input` (n elements) into `output` (size × n), in rank order. */
  allGather<T extends CollectiveBuffer>(input: CollectiveBuffer, output: T, options?: DataOptions): Work<T> {
    return this.#collective('allGather', input, output, options) as Work<T>;
  }

  /** Copies the root's `buffer` into every other rank's `buffer`. */
  broadcast<T extends CollectiveBuffer>(buffer: T, options?: BroadcastOptions): Work<T> {
    return this.#collective('broadcast', buffer, undefined, options) as Work<T>;
  }

  /** Reduces `buffer` onto the root (in place there, or into `options.output`). */
  reduce<T extends CollectiveBuffer>(buffer: T, options?: RootedReduceOptions): Work<T> {
    return this.#collective('reduce', buffer, outputOption(options), options) as Work<T>;
  }

  /** Completes once every rank has reached it. */
  barrier(options?: CallOptions): Work<void> {
    const o = checkOptions<CallOptions>('options', options, ['timeoutMs']);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue('barrier', undefined, (n) => n.barrier(timeout), 0, 0);
  }

  /**
   * A barrier that says who is missing (torch's monitored_barrier): every other rank sends
   * rank 0 a message and waits for its release; rank 0 waits for all of them against one
   * deadline. When some do not arrive within `timeoutMs`, rank 0 fails with TIMEOUT and
   * `missingRanks` (all of them with `waitAll`, the default; else the first), and the ranks
   * that did arrive fail with TIMEOUT once the same time has passed without a release.
   * Runs on Gloo's point-to-point transfers (tags 0xffffff00 and up are kept for it).
   */
  monitoredBarrier(options?: MonitoredBarrierOptions): Work<void> {
    const o = checkOptions<MonitoredBarrierOptions>('options', options, ['timeoutMs', 'waitAll']);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    if (o.waitAll !== undefined && typeof o.waitAll !== 'boolean') throw argTypeError('options.waitAll', 'a boolean', o.waitAll);
    const waitAll = o.waitAll ?? true;
    const tag = MONITORED_TAG_BASE + (this.#monitored++ & 0xff);
    const rank = this.rank;
    return this.#issue('monitoredBarrier', undefined, (n) =>
      n.monitoredBarrier(timeout, waitAll, tag).then((missing) => {
        if (missing.length === 0) return;
        const which = waitAll ? `ranks ${missing.join(', ')}` : `rank ${missing[0]} (the first missing; waitAll: true names them all)`;
        throw new CollectiveError(ErrorCode.TIMEOUT,
          `monitoredBarrier on rank ${rank}: ${which} did not reach the barrier within ${timeout} ms`,
          rank, 'monitoredBarrier', undefined, missing);
      }),
    0, 0);
  }

  /**
   * Gathers every rank's `input` (n elements) into the root's `output` (size × n, in rank
   * order), as torch's gather; the other ranks pass null as output. Host arrays only.
   * Resolves with the output (null off the root).
   */
  gather<T extends HostArray>(input: HostArray, output: T | null, options?: RootedOptions): Work<T | null> {
    return this.#rootedMove('gather', input, output, options) as Work<T | null>;
  }

  /**
   * Sends block r of the root's `input` (size × n elements) to rank r's `output` (n
   * elements), as torch's scatter; the other ranks pass null as input. Host arrays only.
   */
  scatter<T extends HostArray>(input: HostArray | null, output: T, options?: RootedOptions): Work<T> {
    return this.#rootedMove('scatter', input, output, options) as Work<T>;
  }

  /**
   * Gather and scatter as one all-to-all-v where only the root's blocks are non-empty: Gloo
   * moves each block once, between its rank and the root.
   */
  #rootedMove(kind: RootedMove, input: unknown, output: unknown, options: unknown): Work<unknown> {
    const rule = SHAPES[kind];
    const o = checkOptions<RootedOptions>('options', options, rule.keys);
    const root = o.root === undefined ? 0 : checkInt('options.root', o.root, 0, this.size - 1);
    for (const [name, b] of [[rule.input, input], [rule.output as string, output]] as const) {
      if (b instanceof DeviceBuffer) throw argTypeError(name, `a typed array (${kind} runs on host arrays only, not on DeviceBuffers)`, b);
    }
    const atRoot = this.rank === root;
    // The root-only buffer: gather's output, scatter's input.
    const [rootName, rootBuf, blockName, blockBuf] = kind === 'gather'
      ? ([rule.output as string, output, rule.input, input] as const)
      : ([rule.input, input, rule.output as string, output] as const);
    const block = checkArray(blockName, blockBuf);
    const dtype = resolveDType(blockName, block, o.dtype);
    let whole: HostArray | undefined;
    if (rootBuf !== null && rootBuf !== undefined) {
      whole = checkArray(rootName, rootBuf);
      resolveDType(rootName, whole, dtype);
    } else if (atRoot) {
      throw argTypeError(rootName, `a typed array on the root (rank ${root})`, rootBuf);
    }
    if (kind === 'gather') checkLengths(kind, this.size, block.length, whole?.length);
    else checkLengths(kind, this.size, whole?.length, block.length);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    const { sent, received } = wireBytes(kind, block.byteLength, this.size, this.rank, root);
    // Off the root the root-only buffer takes no part (a given one is left unchanged).
    const empty = new (block.constructor as new (n: number) => HostArray)(0);
    const wholeArg = atRoot ? (whole as HostArray) : empty;
    const n = block.length;
    const fromRoot = Array.from({ length: this.size }, (_, r) => (r === root ? n : 0));
    const toAll = Array.from({ length: this.size }, () => (atRoot ? n : 0));
    const dt = DTYPE_CODE[dtype];
    if (kind === 'gather') {
      return this.#issue(kind, atRoot ? wholeArg : null, (c) => c.allToAllV(block, fromRoot, wholeArg, toAll, dt, timeout), sent, received);
    }
    return this.#issue(kind, block, (c) => c.allToAllV(wholeArg, toAll, block, fromRoot, dt, timeout), sent, received);
  }

  /**
   * The root's `value` on every rank (torch's broadcast_object_list, for configs and metrics):
   * its JSON length is broadcast, then its bytes. `value` must round-trip through JSON (see
   * JsonValue); the other ranks' `value` is ignored.
   */
  broadcastObject<T extends JsonValue>(value: T, options?: RootedOptions): Promise<T> {
    // Checked here, before anything is issued, so that a bad argument throws at the call.
    const o = checkOptions<RootedOptions>('options', options, ['root', 'timeoutMs']);
    const root = o.root === undefined ? 0 : checkInt('options.root', o.root, 0, this.size - 1);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    const atRoot = this.rank === root;
    if (atRoot) checkJson('value', value);
    const bytes = atRoot ? encodeJson(value) : undefined;
    const length = Float64Array.of(bytes?.length ?? 0);
    const sized = this.broadcast(length, { root, timeoutMs: timeout });
    return (async () => {
      await sized;
      const data = bytes ?? new Uint8Array(length[0]);
      await this.broadcast(data, { root, timeoutMs: timeout });
      return (atRoot ? value : decodeJson(data)) as T;
    })();
  }

  /**
   * Every rank's `value`, in rank order (torch's all_gather_object): the JSON lengths are
   * all-gathered, then the bytes, each rank's padded to the longest. `value` must round-trip
   * through JSON (see JsonValue).
   */
  allGatherObject<T extends JsonValue>(value: T, options?: CallOptions): Promise<T[]> {
    const o = checkOptions<CallOptions>('options', options, ['timeoutMs']);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    checkJson('value', value);
    const bytes = encodeJson(value);
    const lengths = new Float64Array(this.size);
    const sized = this.allGather(Float64Array.of(bytes.length), lengths, { timeoutMs: timeout });
    return (async () => {
      await sized;
      const longest = Math.max(...lengths);
      const mine = new Uint8Array(longest);
      mine.set(bytes);
      const all = new Uint8Array(longest * this.size);
      await this.allGather(mine, all, { timeoutMs: timeout });
      return Array.from(lengths, (len, r) => (r === this.rank ? value : (decodeJson(all.subarray(r * longest, r * longest + len)) as T)));
    })();
  }

  /** Block r of `input` goes to rank r; block r of `output` comes from rank r (equal blocks). */
  allToAll<T extends CollectiveBuffer>(input: CollectiveBuffer, output: T, options?: DataOptions): Work<T> {
    return this.#collective('allToAll', input, output, options) as Work<T>;
  }

  /**
   * One of the collectives with a fixed length rule (shapes.ts), on host arrays (Gloo) or
   * DeviceBuffers (NCCL): validated through the shape table, then dispatched. The result is
   * the output, or the input where the call is in place (reduce writes its output only on
   * the root).
   */
  #collective(kind: Collective, input: unknown, output: unknown, options: unknown): Work<unknown> {
    const rule = SHAPES[kind];
    const buffers: [string, unknown][] = [[rule.input, input]];
    if (rule.output !== null) buffers.push([rule.output, output]);
    const device = onDevice(...buffers);
    const o = checkOptions<RootedReduceOptions>('options', options, rule.keys);
    const root = rule.rooted && o.root !== undefined ? checkInt('options.root', o.root, 0, this.size - 1) : 0;
    if (device) return this.#deviceCollective(kind, input as DeviceBuffer, output as DeviceBuffer | undefined, o, root);
    const inp = checkArray(rule.input, input);
    const out = output === undefined && rule.output !== 'output' ? undefined : checkArray(rule.output as string, output);
    const dtype = resolveDType(rule.input, inp, o.dtype);
    if (out !== undefined && out !== inp) resolveDType(rule.output as string, out, dtype);
    const op = REDUCE_OP_CODE[rule.reduces ? checkReduceOp(o.op, dtype) : 'sum'];
    checkLengths(kind, this.size, inp.length, out === undefined || out === inp ? undefined : out.length);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    const dt = DTYPE_CODE[dtype];
    const bytes = (kind === 'allGather' ? (out as HostArray) : inp).byteLength;
    const { sent, received } = wireBytes(kind, bytes, this.size, this.rank, root);
    switch (kind) {
      case 'allReduce': {
        const o2 = out ?? inp;
        return this.#issue(kind, o2, (n) => n.allReduce(inp, o2, dt, op, timeout), sent, received);
      }
      case 'reduceScatter':
        return this.#issue(kind, out, (n) => n.reduceScatter(inp, out as HostArray, dt, op, timeout), sent, received);
      case 'allGather':
        return this.#issue(kind, out, (n) => n.allGather(inp, out as HostArray, dt, timeout), sent, received);
      case 'broadcast':
        return this.#issue(kind, inp, (n) => n.broadcast(inp, dt, root, timeout), sent, received);
      case 'reduce': {
        const o2 = out ?? (this.rank === root ? inp : null);
        return this.#issue(kind, o2 ?? inp, (n) => n.reduce(inp, o2, dt, op, root, timeout), sent, received);
      }
      case 'allToAll':
        return this.#issue(kind, out, (n) => n.allToAll(inp, out as HostArray, dt, timeout), sent, received);
    }
  }

  /**
   * All-to-all with per-rank counts: the first inputSplits[0] elements go to
   * rank 0, the next inputSplits[1] to rank 1…; outputSplits[r] elements
   * arrive from rank r, in rank order. On DeviceBuffers: grouped
   * ncclSend/ncclRecv; input and output must not overlap.
   */
  allToAllV<T extends CollectiveBuffer>(
    input: CollectiveBuffer,
    inputSplits: readonly number[],
    output: T,
    outputSplits: readonly number[],
    options?: DataOptions,
  ): Work<T> {
    const o = checkOptions<DataOptions>('options', options, ['dtype', 'timeoutMs']);
    if (onDevice(['input', input], ['output', output])) {
      const inp = input as DeviceBuffer;
      const out = output as DeviceBuffer;
      checkDeviceDType(inp, out, 'output', o.dtype);
      const ins = this.#checkSplits('inputSplits', inputSplits, inp.length, "the input's length");
      const outs = this.#checkSplits('outputSplits', outputSplits, out.length, "the output's length");
      const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
      const w = splitBytes(ins, outs, this.rank, inp.byteLength / Math.max(inp.length, 1) || out.byteLength / Math.max(out.length, 1));
      return this.#issue('allToAllV', output, (n) =>
        n.deviceAllToAllV(DeviceBuffer.native(inp), ins, DeviceBuffer.native(out), outs, timeout),
      w.sent, w.received);
    }
    const inp = checkArray('input', input);
    const out = checkArray('output', output);
    const dtype = resolveDType('input', inp, o.dtype);
    resolveDType('output', out, dtype);
    const ins = this.#checkSplits('inputSplits', inputSplits, inp.length, "the input's length");
    const outs = this.#checkSplits('outputSplits', outputSplits, out.length, "the output's length");
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    const w = splitBytes(ins, outs, this.rank, DTYPE_BYTES[dtype]);
    return this.#issue('allToAllV', output, (n) => n.allToAllV(inp, ins, out, outs, DTYPE_CODE[dtype], timeout), w.sent, w.received);
  }

  /**
   * All-to-all whose chunks travel quantized (scales and payload) and arrive
   * dequantized in the input's dtype. errorFeedback: input.length elements.
   */
  allToAllQuantized<T extends HostArray>(input: HostArray, output: T, options?: QuantizedCallOptions): Work<T>;
  allToAllQuantized(input: DeviceBuffer, output: DeviceBuffer, options?: QuantizedCallOptions<DeviceBuffer>): Work<DeviceBuffer>;
  allToAllQuantized(input: unknown, output: unknown, options?: unknown): Work<unknown> {
    return this.#quantized('allToAll', input, output, options);
  }

  /**
   * Reduce-scatter with one quantization per element: quantize, all-to-all,
   * dequantize and reduce in float32. errorFeedback: input.length elements.
   */
  reduceScatterQuantized<T extends HostArray>(input: HostArray, output: T, options?: QuantizedReduceOptions): Work<T>;
  reduceScatterQuantized(input: DeviceBuffer, output: DeviceBuffer, options?: QuantizedReduceOptions<DeviceBuffer>): Work<DeviceBuffer>;
  reduceScatterQuantized(input: unknown, output: unknown, options?: unknown): Work<unknown> {
    return this.#quantized('reduceScatter', input, output, options);
  }

  /** All-gather of quantized shards, dequantized on every rank. errorFeedback: input.length elements. */
  allGatherQuantized<T extends HostArray>(input: HostArray, output: T, options?: QuantizedCallOptions): Work<T>;
  allGatherQuantized(input: DeviceBuffer, output: DeviceBuffer, options?: QuantizedCallOptions<DeviceBuffer>): Work<DeviceBuffer>;
  allGatherQuantized(input: unknown, output: unknown, options?: unknown): Work<unknown> {
    return this.#quantized('allGather', input, output, options);
  }

  /**
   * Quantized reduce-scatter then quantized all-gather (two quantizations);
   * every rank ends with the same bits. In place unless options.output is
   * given. errorFeedback: length + ceil(length / size) elements.
   */
  allReduceQuantized<T extends HostArray>(buffer: T, options?: QuantizedAllReduceOptions): Work<T>;
  allReduceQuantized(buffer: DeviceBuffer, options?: QuantizedAllReduceOptions<DeviceBuffer>): Work<DeviceBuffer>;
  allReduceQuantized(buffer: unknown, options?: unknown): Work<unknown> {
    const output = options !== null && typeof options === 'object' ? (options as { output?: unknown }).output : undefined;
    return this.#quantized('allReduce', buffer, output, options);
  }

  /**
   * Sends `buffer` to `peer`; completes when the peer has received it.
   *
   * A DeviceBuffer goes by ncclSend on the communicator's stream. As in NCCL there are no
   * tags: sends and receives between two ranks match in issue order, and a send whose matching
   * receive the peer issues only after its own send to this rank deadlocks. Pair them in
   * `group(fn)` (like torch's batch_isend_irecv), which is also the only way to send to this
   * rank itself.
   */
  send<T extends CollectiveBuffer>(buffer: T, peer: number, options?: P2POptions): Work<T> {
    if (buffer instanceof DeviceBuffer) return this.#deviceSendRecv('send', buffer, peer, options) as Work<T>;
    return this.#pointToPoint('send', buffer as HostArray, peer, options) as Work<T>;
  }

  /**
   * Receives into `buffer` from `peer` a message sent with the same tag. A DeviceBuffer
   * receives by ncclRecv, matched in issue order (see send).
   */
  recv<T extends CollectiveBuffer>(buffer: T, peer: number, options?: P2POptions): Work<T> {
    if (buffer instanceof DeviceBuffer) return this.#deviceSendRecv('recv', buffer, peer, options) as Work<T>;
    return this.#pointToPoint('recv', buffer as HostArray, peer, options) as Work<T>;
  }

  #deviceSendRecv(operation: 'send' | 'recv', buffer: DeviceBuffer, peer: unknown, options: P2POptions | undefined): Work<DeviceBuffer> {
    const o = checkOptions<P2POptions>('options', options, ['dtype', 'tag', 'timeoutMs']);
    checkDeviceDType(buffer, undefined, 'buffer', o.dtype);
    // A rank may send to itself on NCCL, but only inside a group: alone, the send would hang.
    const other = checkInt('peer', peer, 0, this.size - 1);
    if (o.tag !== undefined && o.tag !== 0) {
      throw argRangeError('options.tag', '0 or nothing (NCCL matches device transfers in issue order, without tags)', o.tag);
    }
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    if (other === this.rank && !this.#inGroup) {
      throw argRangeError('peer', `another rank than this one (${this.rank}), or this one inside group(fn)`, other);
    }
    const bytes = other === this.rank ? 0 : buffer.byteLength;
    return this.#issue(operation, buffer, (n) => n.deviceSendRecv(operation === 'send', DeviceBuffer.native(buffer), other, timeout),
      operation === 'send' ? bytes : 0, operation === 'recv' ? bytes : 0);
  }

  /**
   * Splits the ranks into groups by `color` (like MPI_Comm_split): ranks with
   * the same color form a new communicator, ordered by `key` then by rank.
   * Every rank must call it; a rank with color null (or a negative color)
   * joins no group and gets null. The parent stays usable.
   */
  async split(color: number | null, key?: number, options?: CallOptions): Promise<Communicator | null> {
    const o = checkOptions<CallOptions>('options', options, ['timeoutMs']);
    const c = color === null || (typeof color === 'number' && color < 0) ? -1 : checkInt('color', color, 0, 0x7fffffff);
    const k = key === undefined ? this.rank : checkInt('key', key, -0x80000000, 0x7fffffff);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    const seq = this.#splits++;
    // Color, key and host of every rank: the host gives the child its localRank / localSize.
    const all = new Int32Array(3 * this.size);
    await this.allGather(Int32Array.of(c, k, this.#place.host), all, { timeoutMs: timeout });
    if (c < 0) return null;
    const members: { rank: number; key: number; host: number }[] = [];
    for (let r = 0; r < this.size; r++) {
      if (all[3 * r] === c) members.push({ rank: r, key: all[3 * r + 1], host: all[3 * r + 2] });
    }
    members.sort((a, b) => a.key - b.key || a.rank - b.rank);
    const newRank = members.findIndex((m) => m.rank === this.rank);
    const local = members.filter((m) => m.host === this.#place.host);
    const place: Placement = {
      // The child's namespace, as native Rendezvous::child names it.
      access: { endpoint: this.#place.access.endpoint, prefix: `${this.#place.access.prefix}/s${seq}c${c}` },
      localRank: local.findIndex((m) => m.rank === this.rank),
      localSize: local.length,
      host: this.#place.host,
    };
    const native = await this.#issue('split', undefined, (n) =>
      n.split(newRank, members.length, `s${seq}c${c}`, timeout, members.map((m) => m.rank)),
    0, 0).wait();
    return new Communicator(native as unknown as NativeCommunicator, this.#timeoutMs, this.#tuning, [], this.#callSites, place);
  }

  /**
   * A communicator over `ranks` (like torch.distributed.new_group): every
   * rank of this communicator must call it with the same list; members get
   * the new communicator (ranked in ascending order), others get null.
   */
  async subgroup(ranks: readonly number[], options?: CallOptions): Promise<Communicator | null> {
    if (!Array.isArray(ranks) || ranks.length === 0) throw argTypeError('ranks', 'a non-empty array of ranks', ranks);
    const seen = new Set<number>();
    for (const r of ranks) {
      checkInt('ranks[]', r, 0, this.size - 1);
      if (seen.has(r)) throw argRangeError('ranks', 'distinct ranks', `rank ${r} twice`);
      seen.add(r);
    }
    const sorted = [...ranks].sort((a, b) => a - b);
    const index = sorted.indexOf(this.rank);
    return this.split(index >= 0 ? 0 : null, index >= 0 ? index : 0, options);
  }

  /** Waits for pending work, then releases the communicator. Safe to call twice. */
  destroy(): Promise<void> {
    if (!this.#destroyed) {
      this.#destroyed = (async () => {
        await Promise.allSettled([...this.#pending]);
        if (!this.#aborted) this.#native.close();
        this.#store?.close();
        for (const c of this.#cleanups) await c();
      })();
    }
    return this.#destroyed;
  }

  /** Fails every pending operation at once with ABORTED; the communicator is unusable after. */
  abort(reason?: string): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#native.abort(reason ?? 'the communicator was aborted');
    this.#store?.close();
    for (const c of this.#cleanups) void c();
    this.#cleanups = [];
  }

  #issue<T>(operation: string, result: T, call: (n: NativeCommunicator) => Promise<unknown>, sent: number, received: number): Work<T> {
    if (this.#destroyed !== undefined || this.#aborted) {
      throw new CollectiveError(
        this.#aborted ? ErrorCode.ABORTED : ErrorCode.DESTROYED,
        `${operation}: the communicator was ${this.#aborted ? 'aborted' : 'destroyed'}`,
        this.rank,
        operation,
      );
    }
    // The issuing call's stack costs 3.5–5 µs a call (a third of the JavaScript
    // side); without it a failure carries the stack of the wait() that met it (see Work).
    const site: { stack?: string } | undefined = this.#callSites ? {} : undefined;
    if (site) Error.captureStackTrace(site, this.#issue);
    const rank = this.rank;
    const pending = this.#pending;
    const entry = this.#stats.issued(operation, sent, received);
    const issuedAt = performance.now();
    // The Work attaches its handlers to `p`, so a failure is never unhandled.
    const p: Promise<T> = call(this.#native).then(
      (v) => {
        pending.delete(p);
        entry.timeMs += performance.now() - issuedAt;
        return result === undefined ? (v as T) : result;
      },
      (err: unknown) => {
        pending.delete(p);
        entry.timeMs += performance.now() - issuedAt;
        entry.failures++;
        throw fromNative(err, rank, operation, site);
      },
    );
    pending.add(p);
    if (this.#inGroup) this.#groupHost.push(p);
    return new Work<T>(operation, p);
  }

  /**
   * A collective over DeviceBuffers on this communicator's NCCL backend (created by the first
   * one), under the same shape rules as on host arrays.
   */
  #deviceCollective(kind: Collective, input: DeviceBuffer, output: DeviceBuffer | undefined, o: RootedReduceOptions, root: number): Work<DeviceBuffer> {
    const rule = SHAPES[kind];
    if (rule.output === 'output' && output === undefined) throw argTypeError('output', `a DeviceBuffer like ${rule.input}`, output);
    checkDeviceDType(input, output, rule.output ?? 'options.output', o.dtype);
    const op = rule.reduces ? checkReduceOp(o.op, input.dtype) : 'sum';
    if (isBitwise(op)) {
      throw argRangeError('options.op', `a reduction NCCL has (sum, prod, min, max, avg): '${op}' runs on host arrays only`, op);
    }
    checkLengths(kind, this.size, input.length, output?.length);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    // In place unless an output is given; reduce writes into its output only on the root.
    const nativeOut = output === undefined ? null : DeviceBuffer.native(output);
    const bytes = (kind === 'allGather' && output !== undefined ? output : input).byteLength;
    const { sent, received } = wireBytes(kind, bytes, this.size, this.rank, root);
    return this.#issue(
      kind,
      output ?? input,
      (nc) => nc.deviceCollective(kind, DeviceBuffer.native(input), nativeOut, REDUCE_OP_CODE[op], root, timeout),
      sent,
      received,
    );
  }

  /**
   * Runs `fn`, which issues device calls (collectives, send/recv), as one NCCL group
   * (ncclGroupStart/End): NCCL launches them together, and pairs sends with receives
   * (torch's batch_isend_irecv). The Works of the calls made inside `fn` complete when their
   * operation is enqueued, not when it has run; the Work returned here completes when every one
   * of them has finished on the GPU. `fn` must be synchronous and issue the same device calls on
   * every rank; host calls inside it run as usual. Groups do not nest.
   */
  group(fn: () => void, options?: CallOptions): Work<void> {
    if (typeof fn !== 'function') throw argTypeError('fn', 'a function', fn);
    const o = checkOptions<CallOptions>('options', options, ['timeoutMs']);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    if (this.#inGroup) throw argTypeError('fn', 'a function called outside another group (groups do not nest)', 'a nested group');
    this.#issue('group', undefined, (n) => n.deviceGroup(true, timeout), 0, 0);
    this.#inGroup = true;
    this.#groupHost = [];
    let result: unknown;
    let end: Work<void>;
    let host: Promise<unknown>[];
    try {
      result = fn();
    } finally {
      // Closed even when fn throws, so the communicator's next calls are not grouped.
      this.#inGroup = false;
      host = this.#groupHost;
      this.#groupHost = [];
      end = this.#issue('group', undefined, (n) => n.deviceGroup(false, timeout), 0, 0);
    }
    if (result instanceof Promise) {
      throw argTypeError('fn', 'a synchronous function (its calls must be issued before the group ends)', 'an async function');
    }
    if (host.length === 0) return end;
    // Host calls were issued at once and run concurrently (Gloo posts each send and receive);
    // the group completes when they and the device group have.
    return new Work<void>('group', Promise.all([end.wait(), ...host]).then(() => undefined));
  }

  #quantized(kind: QuantizedKind, input: unknown, output: unknown, options: unknown): Work<unknown> {
    const operation = `${kind}Quantized` as const;
    const inName = kind === 'allReduce' ? 'buffer' : 'input';
    const outName = kind === 'allReduce' ? 'options.output' : 'output';
    const feedback = options !== null && typeof options === 'object' ? (options as { errorFeedback?: unknown }).errorFeedback : undefined;
    if (onDevice([inName, input], [outName, output], ['options.errorFeedback', feedback])) {
      if (this.#inGroup) {
        // The codec kernels would run at once and the exchanges only at the group's end.
        throw argTypeError(operation, 'a call outside group() (quantized collectives cannot run inside group())', 'a call inside group(fn)');
      }
      const d = deviceQuantizedCallArgs(kind, this.size, input as DeviceBuffer, output, options as QuantizedAllReduceOptions<DeviceBuffer> | undefined, this.#timeoutMs);
      return this.#issue(operation, d.result, (n) => n.deviceQuantized(...d.args), d.wire.sent, d.wire.received);
    }
    return this.#hostQuantized(kind, input, output, options as QuantizedAllReduceOptions | undefined);
  }

  #hostQuantized<T>(kind: QuantizedKind, input: unknown, output: unknown, options: QuantizedAllReduceOptions | undefined): Work<T> {
    const c = quantizedCallArgs(kind, this.size, input, output, options, this.#timeoutMs);
    const operation = `${kind}Quantized` as const;
    return this.#issue(operation, c.output as T, (n) => n[operation](c.input, c.output, ...c.args), c.wire.sent, c.wire.received);
  }

  #pointToPoint<T extends HostArray>(
    operation: 'send' | 'recv',
    buffer: T,
    peer: unknown,
    options: P2POptions | undefined,
  ): Work<T> {
    const o = checkOptions<P2POptions>('options', options, ['dtype', 'tag', 'timeoutMs']);
    const buf = checkArray('buffer', buffer);
    const dtype = resolveDType('buffer', buf, o.dtype);
    const other = this.#peer(peer);
    const tag = o.tag === undefined ? 0 : checkInt('options.tag', o.tag, 0, MAX_USER_TAG);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue(operation, buffer, (n) => n[operation](buf, DTYPE_CODE[dtype], other, tag, timeout),
      operation === 'send' ? buf.byteLength : 0, operation === 'recv' ? buf.byteLength : 0);
  }

  #peer(peer: unknown): number {
    const p = checkInt('peer', peer, 0, this.size - 1);
    if (p === this.rank) throw argRangeError('peer', `a rank other than this one (${this.rank})`, p);
    return p;
  }

  #checkSplits(name: string, splits: unknown, total: number, what: string): number[] {
    if (!Array.isArray(splits) || splits.length !== this.size) {
      throw argTypeError(name, `an array of ${this.size} counts (one per rank)`, splits);
    }
    let sum = 0;
    for (const s of splits) {
      checkInt(`${name}[]`, s, 0, Number.MAX_SAFE_INTEGER);
      sum += s as number;
    }
    if (sum !== total) throw argRangeError(name, `counts summing to ${what} (${total})`, `a sum of ${sum}`);
    return splits as number[];
  }
}

/** The dtype of device call: the input's; the output's and options.dtype, if given, must match. */
function checkDeviceDType(input: DeviceBuffer, output: DeviceBuffer | undefined, outName: string, dtype: unknown): void {
  checkSameDType('options.dtype', dtype, input);
  if (output !== undefined && output.dtype !== input.dtype) {
    throw argTypeError(outName, `a DeviceBuffer of ${input.dtype}`, `a DeviceBuffer of ${output.dtype}`);
  }
  if (output !== undefined && output.device !== input.device) {
    throw argRangeError(outName, `a DeviceBuffer on device ${input.device}`, `device ${output.device}`);
  }
}

/** The method names algorithm() takes, as nccl-tests names the operations. */
const NCCL_TESTS_NAME: Readonly<Record<string, string>> = {
  allReduce: 'all_reduce',
  reduceScatter: 'reduce_scatter',
  allGather: 'all_gather',
  allToAll: 'alltoall',
};

/** Bytes an all-to-all-v sends to and receives from the other ranks. */
function splitBytes(ins: readonly number[], outs: readonly number[], rank: number, elementBytes: number): { sent: number; received: number } {
  let sent = 0;
  let received = 0;
  for (let r = 0; r < ins.length; r++) {
    if (r === rank) continue;
    sent += ins[r] * elementBytes;
    received += outs[r] * elementBytes;
  }
  return { sent, received };
}

/** options.output, read before the options are validated (a non-object has none). */
function outputOption(options: unknown): unknown {
  return options !== null && typeof options === 'object' ? (options as { output?: unknown }).output : undefined;
}
