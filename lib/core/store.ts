import { CollectiveError, ErrorCode, argRangeError, argTypeError } from './errors';
import { checkInt } from './options';
import { Status } from '../store/frame';
import { type StoreEndpoint, StoreConnection, encodeRequest, type StoreReply } from '../store/client';

/** Where a communicator's store lives and its namespace there; null for a file store. */
export interface StoreAccess {
  endpoint: StoreEndpoint | null;
  prefix: string;
}

/** Where Store.connect() finds the store; each left out is read from the launcher's environment. */
export interface StoreConnectOptions {
  /** The name the keys are put under (as init()'s `namespace`): `<run id>/<namespace>/store/<key>`. */
  namespace: string;
  /** MASTER_ADDR, else 127.0.0.1. */
  masterAddr?: string;
  /** MASTER_PORT, else 29500. */
  masterPort?: number;
  /** COLLECTIVES_TOKEN. */
  token?: string;
  /** Default timeout of get and wait (COLLECTIVES_TIMEOUT_MS, else 10 minutes). */
  timeoutMs?: number;
  /** The job's run id, the first part of every key (COLLECTIVES_RUN_ID, else 'job'). */
  runId?: string;
}

const CONNECT_KEYS = ['namespace', 'masterAddr', 'masterPort', 'token', 'timeoutMs', 'runId'];
const NAMESPACE = /^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,199}$/;

/** The protocol's longest key (native/store/PROTOCOL.md), less room for the namespace. */
const MAX_KEY_BYTES = 4096;
/** Timeouts travel as u32 milliseconds. */
const MAX_TIMEOUT_MS = 0xffffffff;

/**
 * The rendezvous store, as torch.distributed's Store: set, get, add and wait on keys that
 * every rank of the communicator sees, under the communicator's own namespace (a split's
 * keys do not meet its parent's). Values are bytes (a string is stored as UTF-8); `add`
 * keeps an 8-byte little-endian integer, which `get` returns as such. Requests of one
 * communicator's store are answered in order over one connection, opened on first use.
 */
export class Store {
  readonly #access: StoreAccess;
  readonly #rank: number;
  readonly #timeoutMs: number;
  #connection: StoreConnection | undefined;

  /** @internal The communicator makes its store. */
  constructor(access: StoreAccess, rank: number, timeoutMs: number) {
    this.#access = access;
    this.#rank = rank;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * A store client of its own, not tied to a communicator (torch's `TCPStore(host, port,
   * is_master=False)`): for coordination that must outlive communicators, such as elastic
   * membership. It needs a store that is already running (collectives-run's, or one that a
   * rank 0 hosts). The connection opens on the first request; `close()` ends it.
   */
  static connect(options: StoreConnectOptions): Store {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) throw argTypeError('options', 'an options object', options);
    for (const k of Object.keys(options)) if (!CONNECT_KEYS.includes(k)) throw argTypeError(`options.${k}`, `one of the options ${CONNECT_KEYS.join(', ')}`, k);
    const env = process.env;
    const ns = options.namespace;
    if (typeof ns !== 'string' || !NAMESPACE.test(ns)) throw argTypeError('options.namespace', 'a name of letters, digits and ._-/ (at most 200, not starting with /)', ns);
    const host = options.masterAddr ?? env.MASTER_ADDR ?? '127.0.0.1';
    if (typeof host !== 'string' || host === '') throw argTypeError('options.masterAddr', 'a host name or address', host);
    const portGiven = options.masterPort ?? (env.MASTER_PORT ? Number(env.MASTER_PORT) : 29500);
    const port = checkInt(options.masterPort !== undefined ? 'options.masterPort' : 'MASTER_PORT', portGiven, 1, 65535);
    let token = options.token ?? env.COLLECTIVES_TOKEN ?? '';
    if (typeof token !== 'string') throw argTypeError('options.token', 'a string', token);
    // init()'s rule for ranks started without a shared secret.
    if (token === '') token = `open:${host}:${port}`;
    const timeoutGiven = options.timeoutMs ?? (env.COLLECTIVES_TIMEOUT_MS ? Number(env.COLLECTIVES_TIMEOUT_MS) : 10 * 60 * 1000);
    const timeoutMs = checkInt(options.timeoutMs !== undefined ? 'options.timeoutMs' : 'COLLECTIVES_TIMEOUT_MS', timeoutGiven, 1, MAX_TIMEOUT_MS);
    const runId = options.runId ?? env.COLLECTIVES_RUN_ID ?? 'job';
    if (typeof runId !== 'string' || runId === '') throw argTypeError('options.runId', 'a non-empty string', runId);
    const rank = env.RANK !== undefined && /^[0-9]+$/.test(env.RANK) ? Number(env.RANK) : -1;
    return new Store({ endpoint: { host, port, token }, prefix: `${runId}/${ns}` }, rank, timeoutMs);
  }

  /** The namespace every key is put under. */
  get prefix(): string {
    return `${this.#access.prefix}/store/`;
  }

  /** Stores `value` (bytes, or a string as UTF-8) at `key`, replacing what was there. */
  async set(key: string, value: string | Uint8Array): Promise<void> {
    const k = this.#key('key', key);
    let bytes: Buffer;
    if (typeof value === 'string') bytes = Buffer.from(value, 'utf8');
    else if (value instanceof Uint8Array) bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    else throw argTypeError('value', 'a string or a Uint8Array', value);
    await this.#call('set', encodeRequest.set(k, bytes), key);
  }

  /** The value at `key`, waiting up to `timeoutMs` (default: the communicator's) for it to be set. */
  async get(key: string, timeoutMs?: number): Promise<Uint8Array> {
    const k = this.#key('key', key);
    const t = this.#timeout(timeoutMs);
    const r = await this.#call('get', encodeRequest.get(k, t), key);
    return new Uint8Array(r.value ?? Buffer.alloc(0));
  }

  /** Adds `amount` to the integer at `key` (0 when absent) and returns the new value. */
  async add(key: string, amount: number): Promise<number> {
    const k = this.#key('key', key);
    const n = checkInt('amount', amount, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    const r = await this.#call('add', encodeRequest.add(k, BigInt(n)), key);
    return Number((r.value ?? Buffer.alloc(8)).readBigInt64LE(0));
  }

  /** Resolves once every key of `keys` is set; TIMEOUT after `timeoutMs` (default: the communicator's). */
  async wait(keys: readonly string[], timeoutMs?: number): Promise<void> {
    if (!Array.isArray(keys) || keys.length === 0) throw argTypeError('keys', 'a non-empty array of strings', keys);
    const ks = keys.map((k) => this.#key('keys[]', k));
    const t = this.#timeout(timeoutMs);
    await this.#call('wait', encodeRequest.wait(ks, t), keys.join(', '));
  }

  /** Closes the connection (a communicator's store: its destroy and abort do this); a later request opens a new one. */
  close(): void {
    this.#connection?.close();
    this.#connection = undefined;
  }

  #key(name: string, key: unknown): Buffer {
    if (typeof key !== 'string' || key === '') throw argTypeError(name, 'a non-empty string', key);
    const bytes = Buffer.from(this.prefix + key, 'utf8');
    if (bytes.length > MAX_KEY_BYTES) {
      throw argRangeError(name, `a key of at most ${MAX_KEY_BYTES - Buffer.byteLength(this.prefix)} bytes`, `${bytes.length - Buffer.byteLength(this.prefix)} bytes`);
    }
    return bytes;
  }

  #timeout(timeoutMs: unknown): number {
    if (timeoutMs === undefined) return Math.min(this.#timeoutMs, MAX_TIMEOUT_MS);
    return checkInt('timeoutMs', timeoutMs, 0, MAX_TIMEOUT_MS);
  }

  async #call(operation: string, request: Buffer, what: string): Promise<StoreReply> {
    const op = `store.${operation}`;
    const endpoint = this.#access.endpoint;
    if (endpoint === null) {
      throw new CollectiveError(ErrorCode.BACKEND_UNAVAILABLE,
        `${op} on rank ${this.#rank}: this communicator meets through a file store (options.storePath); comm.store needs the TCP store`,
        this.#rank, op);
    }
    this.#connection ??= new StoreConnection(endpoint);
    let r: StoreReply;
    try {
      r = await this.#connection.request(request);
    } catch (err) {
      const message = (err as Error).message;
      // A wrong token is refused at the handshake, before any request.
      const code = message.startsWith('the store refused') ? ErrorCode.STORE_REFUSED : ErrorCode.STORE_ERROR;
      throw new CollectiveError(code, `${op} on rank ${this.#rank}: ${message}`, this.#rank, op);
    }
    if (r.status === Status.OK || r.status === Status.VALUE) return r;
    const code = r.status === Status.TIMEOUT ? ErrorCode.TIMEOUT : r.status === Status.REFUSED ? ErrorCode.STORE_REFUSED : ErrorCode.STORE_ERROR;
    throw new CollectiveError(code, `${op} ${JSON.stringify(what)} on rank ${this.#rank}: ${r.message ?? `status ${r.status}`}`, this.#rank, op);
  }
}
