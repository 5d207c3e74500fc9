import { CollectiveError, ErrorCode, argRangeError, argTypeError } from './errors';
import { checkInt } from './options';
import { Status } from '../store/frame';
import { type StoreEndpoint, StoreConnection, encodeRequest, type StoreReply } from '../store/client';

/** Where a communicator's store lives and its namespace there; null for a file store. */
export interface StoreAccess {
  endpoint: StoreEndpoint | null;
  prefix: string;
}

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

  /** @internal Closes the connection (the communicator's destroy and abort). */
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
      throw new CollectiveError(ErrorCode.STORE_ERROR, `${op} on rank ${this.#rank}: ${(err as Error).message}`, this.#rank, op);
    }
    if (r.status === Status.OK || r.status === Status.VALUE) return r;
    const code = r.status === Status.TIMEOUT ? ErrorCode.TIMEOUT : r.status === Status.REFUSED ? ErrorCode.STORE_REFUSED : ErrorCode.STORE_ERROR;
    throw new CollectiveError(code, `${op} ${JSON.stringify(what)} on rank ${this.#rank}: ${r.message ?? `status ${r.status}`}`, this.#rank, op);
  }
}
