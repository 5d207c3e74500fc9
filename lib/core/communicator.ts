import { CollectiveError, ErrorCode, argRangeError, argTypeError, fromNative } from './errors';
import {
  DTYPE_CODE,
  REDUCE_OP_CODE,
  type DType,
  type HostArray,
  type ReduceOp,
  checkArray,
  checkReduceOp,
  resolveDType,
} from './dtypes';
import { DeviceBuffer, onDevice } from './device';
import { checkSameDType } from './device-args';
import type { NativeCommunicator } from './loader';
import { type CallOptions, checkInt, checkOptions, checkTimeout } from './options';
import type { GlooTuning } from './tuning';
import { Work } from './work';
import {
  type DeviceQuantizedAllReduceOptions,
  type DeviceQuantizedCallOptions,
  type DeviceQuantizedReduceOptions,
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

type DeviceKind = 'allReduce' | 'reduceScatter' | 'allGather' | 'broadcast' | 'reduce' | 'allToAll';

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

/** Called when the communicator is destroyed (e.g. to close the store it hosts). */
type Cleanup = () => Promise<void> | void;

const REDUCE_KEYS = ['op', 'dtype', 'timeoutMs'] as const;

/**
 * A group of ranks that run collectives together. Every call returns a Work
 * at once; operations run in issue order off the JavaScript thread, and the
 * buffers they use must not be touched until their Work completes.
 */
export class Communicator {
  readonly #native: NativeCommunicator;
  readonly #timeoutMs: number;
  readonly #tuning: Readonly<Required<GlooTuning>>;
  readonly #pending = new Set<Promise<unknown>>();
  #cleanups: Cleanup[] = [];
  #splits = 0;
  #destroyed: Promise<void> | undefined;
  #aborted = false;
  #inGroup = false;
  readonly #callSites: boolean;

  /** @internal Use init(). */
  constructor(
    native: NativeCommunicator,
    timeoutMs: number,
    tuning: Required<GlooTuning>,
    cleanups: Cleanup[] = [],
    callSites = false,
  ) {
    this.#native = native;
    this.#timeoutMs = timeoutMs;
    this.#tuning = Object.freeze({ ...tuning });
    this.#cleanups = cleanups;
    this.#callSites = callSites;
  }

  /** How this communicator drives Gloo (resolved from init's options and the environment). */
  get tuning(): Readonly<Required<GlooTuning>> {
    return this.#tuning;
  }

  get rank(): number {
    return this.#native.rank;
  }
  get size(): number {
    return this.#native.size;
  }
  /**
   * What runs `op` (nccl-tests' name: 'all_reduce', 'reduce_scatter', 'all_gather',
   * 'broadcast', 'reduce', 'alltoall', 'barrier') on `bytes` bytes at the default
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
      return this.#native.algorithm(op, bytes, o.device === true);
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
  get destroyed(): boolean {
    return this.#destroyed !== undefined || this.#aborted;
  }

  /** Reduces `buffer` across ranks; in place unless `options.output` is given. */
  allReduce<T extends CollectiveBuffer>(buffer: T, options?: AllReduceOptions): Work<T> {
    if (onDevice(['buffer', buffer], ['options.output', options?.output])) {
      return this.#device('allReduce', buffer as DeviceBuffer, options?.output as DeviceBuffer | undefined, options, true, false) as Work<T>;
    }
    const o = checkOptions<AllReduceOptions>('options', options, [...REDUCE_KEYS, 'output']);
    const input = checkArray('buffer', buffer);
    const dtype = resolveDType('buffer', input, o.dtype);
    const op = checkReduceOp(o.op, dtype);
    const output = o.output === undefined ? input : checkArray('options.output', o.output);
    if (output !== input) {
      resolveDType('options.output', output, dtype);
      sameLength('options.output', output, input.length, "the buffer's length");
    }
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue('allReduce', output as T, (n) =>
      n.allReduce(input, output, DTYPE_CODE[dtype], REDUCE_OP_CODE[op], timeout),
    );
  }

  /**
   * Reduces `input` (size × n elements) across ranks and leaves block `rank`
   * of the result in `output` (n elements).
   */
  reduceScatter<T extends CollectiveBuffer>(input: CollectiveBuffer, output: T, options?: ReduceOptions): Work<T> {
    if (onDevice(['input', input], ['output', output])) {
      return this.#device('reduceScatter', input as DeviceBuffer, output as DeviceBuffer, options, true, false) as Work<T>;
    }
    const o = checkOptions<ReduceOptions>('options', options, REDUCE_KEYS);
    const inp = checkArray('input', input);
    const out = checkArray('output', output);
    const dtype = resolveDType('input', inp, o.dtype);
    resolveDType('output', out, dtype);
    const op = checkReduceOp(o.op, dtype);
    sameLength('input', inp, out.length * this.size, `output.length × world size (${out.length} × ${this.size})`);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue('reduceScatter', output, (n) =>
      n.reduceScatter(inp, out, DTYPE_CODE[dtype], REDUCE_OP_CODE[op], timeout),
    );
  }

  /** Gathers every rank's `input` (n elements) into `output` (size × n), in rank order. */
  allGather<T extends CollectiveBuffer>(input: CollectiveBuffer, output: T, options?: DataOptions): Work<T> {
    if (onDevice(['input', input], ['output', output])) {
      return this.#device('allGather', input as DeviceBuffer, output as DeviceBuffer, options, false, false) as Work<T>;
    }
    const o = checkOptions<DataOptions>('options', options, ['dtype', 'timeoutMs']);
    const inp = checkArray('input', input);
    const out = checkArray('output', output);
    const dtype = resolveDType('input', inp, o.dtype);
    resolveDType('output', out, dtype);
    sameLength('output', out, inp.length * this.size, `input.length × world size (${inp.length} × ${this.size})`);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue('allGather', output, (n) => n.allGather(inp, out, DTYPE_CODE[dtype], timeout));
  }

  /** Copies the root's `buffer` into every other rank's `buffer`. */
  broadcast<T extends CollectiveBuffer>(buffer: T, options?: BroadcastOptions): Work<T> {
    if (onDevice(['buffer', buffer])) {
      return this.#device('broadcast', buffer as DeviceBuffer, undefined, options, false, true) as Work<T>;
    }
    const o = checkOptions<BroadcastOptions>('options', options, ['root', 'dtype', 'timeoutMs']);
    const buf = checkArray('buffer', buffer);
    const dtype = resolveDType('buffer', buf, o.dtype);
    const root = o.root === undefined ? 0 : checkInt('options.root', o.root, 0, this.size - 1);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue('broadcast', buffer, (n) => n.broadcast(buf, DTYPE_CODE[dtype], root, timeout));
  }

  /** Reduces `buffer` onto the root (in place there, or into `options.output`). */
  reduce<T extends CollectiveBuffer>(buffer: T, options?: RootedReduceOptions): Work<T> {
    if (onDevice(['buffer', buffer], ['options.output', options?.output])) {
      return this.#device('reduce', buffer as DeviceBuffer, options?.output as DeviceBuffer | undefined, options, true, true) as Work<T>;
    }
    const o = checkOptions<RootedReduceOptions>('options', options, [...REDUCE_KEYS, 'root', 'output']);
    const input = checkArray('buffer', buffer);
    const dtype = resolveDType('buffer', input, o.dtype);
    const op = checkReduceOp(o.op, dtype);
    const root = o.root === undefined ? 0 : checkInt('options.root', o.root, 0, this.size - 1);
    let output: HostArray | null = null;
    if (o.output !== undefined) {
      output = checkArray('options.output', o.output);
      resolveDType('options.output', output, dtype);
      sameLength('options.output', output, input.length, "the buffer's length");
    } else if (this.rank === root) {
      output = input;
    }
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    const result = (output ?? input) as T;
    return this.#issue('reduce', result, (n) =>
      n.reduce(input, output, DTYPE_CODE[dtype], REDUCE_OP_CODE[op], root, timeout),
    );
  }

  /** Completes once every rank has reached it. */
  barrier(options?: CallOptions): Work<void> {
    const o = checkOptions<CallOptions>('options', options, ['timeoutMs']);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue('barrier', undefined, (n) => n.barrier(timeout));
  }

  /** Block r of `input` goes to rank r; block r of `output` comes from rank r (equal blocks). */
  allToAll<T extends CollectiveBuffer>(input: CollectiveBuffer, output: T, options?: DataOptions): Work<T> {
    if (onDevice(['input', input], ['output', output])) {
      return this.#device('allToAll', input as DeviceBuffer, output as DeviceBuffer, options, false, false) as Work<T>;
    }
    const o = checkOptions<DataOptions>('options', options, ['dtype', 'timeoutMs']);
    const inp = checkArray('input', input);
    const out = checkArray('output', output);
    const dtype = resolveDType('input', inp, o.dtype);
    resolveDType('output', out, dtype);
    if (inp.length % this.size !== 0) {
      throw argRangeError('input', `a length divisible by the world size (${this.size})`, inp.length);
    }
    sameLength('output', out, inp.length, "the input's length");
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue('allToAll', output, (n) => n.allToAll(inp, out, DTYPE_CODE[dtype], timeout));
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
      return this.#issue('allToAllV', output, (n) =>
        n.deviceAllToAllV(DeviceBuffer.native(inp), ins, DeviceBuffer.native(out), outs, timeout),
      );
    }
    const inp = checkArray('input', input);
    const out = checkArray('output', output);
    const dtype = resolveDType('input', inp, o.dtype);
    resolveDType('output', out, dtype);
    const ins = this.#checkSplits('inputSplits', inputSplits, inp.length, "the input's length");
    const outs = this.#checkSplits('outputSplits', outputSplits, out.length, "the output's length");
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue('allToAllV', output, (n) => n.allToAllV(inp, ins, out, outs, DTYPE_CODE[dtype], timeout));
  }

  /**
   * All-to-all whose chunks travel quantized (scales and payload) and arrive
   * dequantized in the input's dtype. errorFeedback: input.length elements.
   */
  allToAllQuantized<T extends HostArray>(input: HostArray, output: T, options?: QuantizedCallOptions): Work<T>;
  allToAllQuantized(input: DeviceBuffer, output: DeviceBuffer, options?: DeviceQuantizedCallOptions): Work<DeviceBuffer>;
  allToAllQuantized(input: unknown, output: unknown, options?: unknown): Work<unknown> {
    return this.#quantized('allToAll', input, output, options);
  }

  /**
   * Reduce-scatter with one quantization per element: quantize, all-to-all,
   * dequantize and reduce in float32. errorFeedback: input.length elements.
   */
  reduceScatterQuantized<T extends HostArray>(input: HostArray, output: T, options?: QuantizedReduceOptions): Work<T>;
  reduceScatterQuantized(input: DeviceBuffer, output: DeviceBuffer, options?: DeviceQuantizedReduceOptions): Work<DeviceBuffer>;
  reduceScatterQuantized(input: unknown, output: unknown, options?: unknown): Work<unknown> {
    return this.#quantized('reduceScatter', input, output, options);
  }

  /** All-gather of quantized shards, dequantized on every rank. errorFeedback: input.length elements. */
  allGatherQuantized<T extends HostArray>(input: HostArray, output: T, options?: QuantizedCallOptions): Work<T>;
  allGatherQuantized(input: DeviceBuffer, output: DeviceBuffer, options?: DeviceQuantizedCallOptions): Work<DeviceBuffer>;
  allGatherQuantized(input: unknown, output: unknown, options?: unknown): Work<unknown> {
    return this.#quantized('allGather', input, output, options);
  }

  /**
   * Quantized reduce-scatter then quantized all-gather (two quantizations);
   * every rank ends with the same bits. In place unless options.output is
   * given. errorFeedback: length + ceil(length / size) elements.
   */
  allReduceQuantized<T extends HostArray>(buffer: T, options?: QuantizedAllReduceOptions): Work<T>;
  allReduceQuantized(buffer: DeviceBuffer, options?: DeviceQuantizedAllReduceOptions): Work<DeviceBuffer>;
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
    return this.#issue(operation, buffer, (n) => n.deviceSendRecv(operation === 'send', DeviceBuffer.native(buffer), other, timeout));
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
    const all = new Int32Array(2 * this.size);
    await this.allGather(Int32Array.of(c, k), all, { timeoutMs: timeout });
    if (c < 0) return null;
    const members: { rank: number; key: number }[] = [];
    for (let r = 0; r < this.size; r++) {
      if (all[2 * r] === c) members.push({ rank: r, key: all[2 * r + 1] });
    }
    members.sort((a, b) => a.key - b.key || a.rank - b.rank);
    const newRank = members.findIndex((m) => m.rank === this.rank);
    const native = await this.#issue('split', undefined, (n) =>
      n.split(newRank, members.length, `s${seq}c${c}`, timeout),
    ).wait();
    return new Communicator(native as unknown as NativeCommunicator, this.#timeoutMs, this.#tuning, [], this.#callSites);
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
    for (const c of this.#cleanups) void c();
    this.#cleanups = [];
  }

  #issue<T>(operation: string, result: T, call: (n: NativeCommunicator) => Promise<unknown>): Work<T> {
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
    // The Work attaches its handlers to `p`, so a failure is never unhandled.
    const p: Promise<T> = call(this.#native).then(
      (v) => {
        pending.delete(p);
        return result === undefined ? (v as T) : result;
      },
      (err: unknown) => {
        pending.delete(p);
        throw fromNative(err, rank, operation, site);
      },
    );
    pending.add(p);
    return new Work<T>(operation, p);
  }

  /**
   * A collective over DeviceBuffers on this communicator's NCCL backend (created by the first
   * one). The result is the output (or the input where the call is in place).
   */
  #device(
    kind: DeviceKind,
    input: DeviceBuffer,
    output: DeviceBuffer | undefined,
    options: unknown,
    reduces: boolean,
    rooted: boolean,
  ): Work<DeviceBuffer> {
    const keys = ['dtype', 'timeoutMs', ...(reduces ? ['op'] : []), ...(rooted ? ['root'] : [])];
    if (kind === 'allReduce' || kind === 'reduce') keys.push('output');
    const o = checkOptions<ReduceOptions & { root?: number }>('options', options, keys);
    const inName = kind === 'allReduce' || kind === 'broadcast' || kind === 'reduce' ? 'buffer' : 'input';
    const outName = kind === 'allReduce' || kind === 'reduce' ? 'options.output' : 'output';
    const dtype = input.dtype;
    checkDeviceDType(input, output, outName, o.dtype);
    const op = reduces ? checkReduceOp(o.op, dtype) : 'sum';
    const root = rooted && o.root !== undefined ? checkInt('options.root', o.root, 0, this.size - 1) : 0;
    const n = this.size;
    if (output !== undefined) {
      const expected =
        kind === 'reduceScatter' ? output.length * n : kind === 'allGather' ? output.length / n : output.length;
      if (kind === 'reduceScatter' && input.length !== expected) {
        throw argRangeError(inName, `${expected} elements (output.length × world size (${output.length} × ${n}))`, input.length);
      }
      if (kind === 'allGather' && output.length !== input.length * n) {
        throw argRangeError(outName, `${input.length * n} elements (input.length × world size (${input.length} × ${n}))`, output.length);
      }
      if ((kind === 'allReduce' || kind === 'reduce' || kind === 'allToAll') && output.length !== input.length) {
        throw argRangeError(outName, `${input.length} elements (the input's length)`, output.length);
      }
    }
    if (kind === 'allToAll' && input.length % n !== 0) {
      throw argRangeError('input', `a length divisible by the world size (${n})`, input.length);
    }
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    // In place unless an output is given; reduce writes into its output only on the root.
    const nativeOut = output === undefined ? null : DeviceBuffer.native(output);
    const result = output ?? input;
    return this.#issue(kind, result, (nc) =>
      nc.deviceCollective(kind, DeviceBuffer.native(input), nativeOut, REDUCE_OP_CODE[op], root, timeout),
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
    if (this.#inGroup) {
      const e = new Error('group: groups do not nest');
      (e as Error & { code: string }).code = ErrorCode.INVALID_ARGUMENT;
      throw e;
    }
    this.#issue('group', undefined, (n) => n.deviceGroup(true, timeout));
    this.#inGroup = true;
    let result: unknown;
    let end: Work<void>;
    try {
      result = fn();
    } finally {
      // Closed even when fn throws, so the communicator's next calls are not grouped.
      this.#inGroup = false;
      end = this.#issue('group', undefined, (n) => n.deviceGroup(false, timeout));
    }
    if (result instanceof Promise) {
      throw argTypeError('fn', 'a synchronous function (its calls must be issued before the group ends)', 'an async function');
    }
    return end;
  }

  #quantized(kind: QuantizedKind, input: unknown, output: unknown, options: unknown): Work<unknown> {
    const operation = `${kind}Quantized` as const;
    const inName = kind === 'allReduce' ? 'buffer' : 'input';
    const outName = kind === 'allReduce' ? 'options.output' : 'output';
    const feedback = options !== null && typeof options === 'object' ? (options as { errorFeedback?: unknown }).errorFeedback : undefined;
    if (onDevice([inName, input], [outName, output], ['options.errorFeedback', feedback])) {
      if (this.#inGroup) {
        // The codec kernels would run at once and the exchanges only at the group's end.
        const e = new Error(`${operation}: quantized collectives cannot run inside group()`);
        (e as Error & { code: string }).code = ErrorCode.INVALID_ARGUMENT;
        throw e;
      }
      const d = deviceQuantizedCallArgs(kind, this.size, input as DeviceBuffer, output, options as DeviceQuantizedAllReduceOptions | undefined, this.#timeoutMs);
      return this.#issue(operation, d.result, (n) => n.deviceQuantized(...d.args));
    }
    return this.#hostQuantized(kind, input, output, options as QuantizedAllReduceOptions | undefined);
  }

  #hostQuantized<T>(kind: QuantizedKind, input: unknown, output: unknown, options: QuantizedAllReduceOptions | undefined): Work<T> {
    const c = quantizedCallArgs(kind, this.size, input, output, options, this.#timeoutMs);
    const operation = `${kind}Quantized` as const;
    return this.#issue(operation, c.output as T, (n) => n[operation](c.input, c.output, ...c.args));
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
    const tag = o.tag === undefined ? 0 : checkInt('options.tag', o.tag, 0, 0xffffffff);
    const timeout = checkTimeout('options.timeoutMs', o.timeoutMs, this.#timeoutMs);
    return this.#issue(operation, buffer, (n) => n[operation](buf, DTYPE_CODE[dtype], other, tag, timeout));
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

function sameLength(name: string, a: HostArray, expected: number, what: string): void {
  if (a.length !== expected) throw argRangeError(name, `${expected} elements (${what})`, a.length);
}
