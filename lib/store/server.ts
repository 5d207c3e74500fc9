// The job's rendezvous key-value server, speaking native/store/PROTOCOL.md.
// Ranks reach it through native/store/tcp_store.cc.

import { CollectiveError, ErrorCode, argRangeError, argTypeError } from '../core/errors';
import { createHash, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import {
  BodyReader,
  FrameDecoder,
  FrameError,
  MAX_FRAME_BYTES,
  Op,
  PROTOCOL_VERSION,
  Status,
  encodeMessage,
  encodeOk,
  encodeValue,
} from './frame';

export interface StoreServerOptions {
  /** Address to bind; only this address is bound. */
  host: string;
  /** Port to bind; 0 picks a free port. */
  port: number;
  /** Shared secret every client must present in HELLO. */
  token: string;
  /** Largest accepted frame body, at most 16 MiB (the protocol's limit). */
  maxFrameBytes?: number;
}

// setTimeout fires at once (with a warning) for delays above this.
const MAX_TIMER_MS = 2 ** 31 - 1;
// Before HELLO only a handshake is acceptable, so an unauthenticated peer
// cannot make the server buffer a 16 MiB frame.
const HANDSHAKE_MAX_BYTES = 64 * 1024;
// After the final reply a connection is half-closed so the reply is not lost
// to a reset; a peer that never closes its side is cut off after this.
const LINGER_MS = 2000;

interface Waiter {
  readonly conn: Connection;
  readonly missing: Set<string>;
  readonly onReady: () => void;
  timer: NodeJS.Timeout | null;
}

interface Connection {
  readonly socket: net.Socket;
  readonly decoder: FrameDecoder;
  readonly waiters: Set<Waiter>;
  authed: boolean;
  /** A GET or WAIT is pending; replies must stay in request order. */
  busy: boolean;
  closing: boolean;
  linger: NodeJS.Timeout | null;
}

export class StoreServer {
  private readonly values = new Map<string, Buffer>();
  private readonly waitersByKey = new Map<string, Set<Waiter>>();
  private readonly connections = new Set<Connection>();
  private readonly tokenDigest: Buffer;
  private readonly tokenLength: number;
  private closePromise: Promise<void> | null = null;
  private unreferenced = false;

  private constructor(
    private readonly server: net.Server,
    token: string,
    private readonly maxFrameBytes: number,
  ) {
    const tokenBytes = Buffer.from(token, 'utf8');
    this.tokenDigest = digest(tokenBytes);
    this.tokenLength = tokenBytes.length;
  }

  static async start(opts: StoreServerOptions): Promise<StoreServer> {
    const { host, port, token, maxFrameBytes } = validate(opts);
    const server = net.createServer({ noDelay: true, keepAlive: true });
    const store = new StoreServer(server, token, maxFrameBytes);
    server.on('connection', (socket) => store.accept(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        server.off('listening', onListening);
        reject(err);
      };
      const onListening = (): void => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host, port, exclusive: true });
    });
    // Once listening, errors come from accept() (e.g. EMFILE) and concern one
    // would-be client; existing clients must keep being served.
    server.on('error', () => {});
    return store;
  }

  /** The address actually bound (e.g. '127.0.0.1' when 'localhost' was given). */
  get host(): string {
    return this.address().address;
  }

  get port(): number {
    return this.address().port;
  }

  address(): net.AddressInfo {
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') {
      throw new CollectiveError(ErrorCode.STORE_ERROR, 'the store server is not listening', -1, 'store');
    }
    return addr;
  }

  /**
   * Lets the process exit while the server still listens. A rank that hosts
   * the store uses this, so that a script that never calls destroy() still
   * ends; a launcher keeps its server referenced.
   */
  unref(): this {
    this.unreferenced = true;
    this.server.unref();
    for (const conn of this.connections) conn.socket.unref();
    return this;
  }

  /** Stops listening and drops every connection and pending waiter. */
  close(): Promise<void> {
    if (this.closePromise === null) {
      this.closePromise = new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        for (const conn of this.connections) {
          this.teardown(conn);
          conn.socket.destroy();
        }
      });
    }
    return this.closePromise;
  }

  private accept(socket: net.Socket): void {
    if (this.closePromise !== null) {
      socket.destroy();
      return;
    }
    const conn: Connection = {
      socket,
      decoder: new FrameDecoder(Math.min(this.maxFrameBytes, this.handshakeLimit())),
      waiters: new Set(),
      authed: false,
      busy: false,
      closing: false,
      linger: null,
    };
    this.connections.add(conn);
    if (this.unreferenced) socket.unref();
    socket.on('data', (chunk: Buffer) => {
      if (conn.closing) return;
      conn.decoder.push(chunk);
      this.pump(conn);
    });
    socket.on('drain', () => this.pump(conn));
    // 'close' always follows 'error'; cleanup happens there.
    socket.on('error', () => {});
    socket.on('close', () => {
      this.teardown(conn);
      if (conn.linger !== null) clearTimeout(conn.linger);
      this.connections.delete(conn);
    });
  }

  private handshakeLimit(): number {
    return Math.max(HANDSHAKE_MAX_BYTES, 1 + 4 + 4 + this.tokenLength);
  }

  /** Handles buffered requests one at a time, in order, until one blocks. */
  private pump(conn: Connection): void {
    while (!conn.closing && !conn.busy) {
      // A client that sends requests without reading replies would otherwise
      // make the server buffer replies without bound.
      if (conn.socket.writableNeedDrain) break;
      let body: Buffer | null;
      try {
        body = conn.decoder.next();
      } catch (err) {
        this.fail(conn, conn.authed ? Status.ERROR : Status.REFUSED, describe(err));
        return;
      }
      if (body === null) break;
      try {
        this.dispatch(conn, body);
      } catch (err) {
        const what = err instanceof FrameError ? 'malformed request' : 'internal error';
        this.fail(conn, Status.ERROR, `${what}: ${describe(err)}`);
        return;
      }
    }
    if (conn.closing) return;
    // Reading stops while a request is pending so the kernel, not the
    // server, holds whatever the client sends meanwhile.
    if (conn.busy || conn.socket.writableNeedDrain) conn.socket.pause();
    else conn.socket.resume();
  }

  private dispatch(conn: Connection, body: Buffer): void {
    const r = new BodyReader(body);
    const op = r.u8();
    if (!conn.authed) {
      this.hello(conn, op, r);
      return;
    }
    switch (op) {
      case Op.SET: {
        const key = r.key();
        // Copied so the stored value does not pin the whole receive buffer.
        const value = Buffer.from(r.blob());
        r.end();
        this.put(key, value);
        this.send(conn, encodeOk());
        return;
      }
      case Op.GET: {
        const key = r.key();
        const timeoutMs = r.u32();
        r.end();
        const reply = (): void => this.send(conn, encodeValue(this.values.get(key)!));
        if (this.values.has(key)) reply();
        else this.wait(conn, [key], timeoutMs, reply, `GET ${JSON.stringify(key)}`);
        return;
      }
      case Op.WAIT: {
        const n = r.u32();
        if (n * 4 > r.remaining) throw new FrameError(`WAIT announces ${n} keys in ${r.remaining} bytes`);
        const keys: string[] = [];
        for (let i = 0; i < n; i++) keys.push(r.key());
        const timeoutMs = r.u32();
        r.end();
        const missing = keys.filter((k) => !this.values.has(k));
        const reply = (): void => this.send(conn, encodeOk());
        if (missing.length === 0) reply();
        else this.wait(conn, missing, timeoutMs, reply, `WAIT for ${describeKeys(missing)}`);
        return;
      }
      case Op.ADD: {
        const key = r.key();
        const delta = r.i64();
        r.end();
        const prev = this.values.get(key);
        if (prev !== undefined && prev.length !== 8) {
          // The request itself was well formed, so the connection stays usable.
          this.send(conn, encodeMessage(Status.ERROR,
            `ADD ${JSON.stringify(key)}: the stored value has ${prev.length} bytes, not an 8-byte integer`));
          return;
        }
        const sum = BigInt.asIntN(64, (prev === undefined ? 0n : prev.readBigInt64LE(0)) + delta);
        const value = Buffer.alloc(8);
        value.writeBigInt64LE(sum, 0);
        this.put(key, value);
        this.send(conn, encodeValue(value));
        return;
      }
      case Op.HELLO:
        throw new FrameError('HELLO sent twice');
      default:
        throw new FrameError(`unknown opcode ${op}`);
    }
  }

  private hello(conn: Connection, op: number, r: BodyReader): void {
    if (op !== Op.HELLO) {
      this.fail(conn, Status.REFUSED, `expected HELLO as the first request, got opcode ${op}`);
      return;
    }
    let version: number;
    let token: Buffer;
    try {
      version = r.u32();
      token = r.blob();
      r.end();
    } catch (err) {
      this.fail(conn, Status.REFUSED, `malformed HELLO: ${describe(err)}`);
      return;
    }
    if (version !== PROTOCOL_VERSION) {
      this.fail(conn, Status.REFUSED,
        `unsupported protocol version ${version}, this server speaks ${PROTOCOL_VERSION}`);
      return;
    }
    if (!this.tokenMatches(token)) {
      this.fail(conn, Status.REFUSED, 'wrong token');
      return;
    }
    conn.authed = true;
    conn.decoder.limit = this.maxFrameBytes;
    this.send(conn, encodeOk());
  }

  private tokenMatches(given: Buffer): boolean {
    // timingSafeEqual needs equal lengths; comparing fixed-size digests keeps
    // the time spent independent of the given token's length and contents.
    return timingSafeEqual(digest(given), this.tokenDigest) && given.length === this.tokenLength;
  }

  private put(key: string, value: Buffer): void {
    this.values.set(key, value);
    const waiting = this.waitersByKey.get(key);
    if (waiting === undefined) return;
    this.waitersByKey.delete(key);
    for (const w of waiting) {
      w.missing.delete(key);
      if (w.missing.size === 0) this.finish(w, w.onReady);
    }
  }

  private wait(conn: Connection, missing: string[], timeoutMs: number,
    onReady: () => void, what: string): void {
    if (timeoutMs === 0) {
      this.send(conn, encodeMessage(Status.TIMEOUT, `${what}: not present and the timeout is 0 ms`));
      return;
    }
    const w: Waiter = { conn, missing: new Set(missing), onReady, timer: null };
    for (const key of w.missing) {
      let set = this.waitersByKey.get(key);
      if (set === undefined) {
        set = new Set();
        this.waitersByKey.set(key, set);
      }
      set.add(w);
    }
    conn.waiters.add(w);
    conn.busy = true;
    w.timer = setTimeout(() => {
      const still = describeKeys([...w.missing]);
      this.finish(w, () => this.send(conn, encodeMessage(Status.TIMEOUT,
        `${what} timed out after ${timeoutMs} ms; still missing ${still}`)));
    }, Math.min(timeoutMs, MAX_TIMER_MS));
  }

  private finish(w: Waiter, reply: () => void): void {
    this.dropWaiter(w);
    const conn = w.conn;
    if (conn.closing) return;
    reply();
    conn.busy = false;
    // Deferred so a SET from one client does not run another client's
    // queued requests inside its own handler.
    setImmediate(() => this.pump(conn));
  }

  private dropWaiter(w: Waiter): void {
    if (w.timer !== null) clearTimeout(w.timer);
    w.timer = null;
    w.conn.waiters.delete(w);
    for (const key of w.missing) {
      const set = this.waitersByKey.get(key);
      if (set === undefined) continue;
      set.delete(w);
      if (set.size === 0) this.waitersByKey.delete(key);
    }
  }

  private send(conn: Connection, frame: Buffer): void {
    if (!conn.closing && conn.socket.writable) conn.socket.write(frame);
  }

  /** Sends a last reply, if the socket still takes one, and closes the connection. */
  private fail(conn: Connection, status: typeof Status.REFUSED | typeof Status.ERROR, message: string): void {
    if (conn.closing) return;
    const { socket } = conn;
    this.teardown(conn);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(encodeMessage(status, message));
    // Keep reading (and discarding) so unread input does not turn the close
    // into a reset that could discard the reply.
    socket.resume();
    conn.linger = setTimeout(() => socket.destroy(), LINGER_MS);
    conn.linger.unref();
  }

  private teardown(conn: Connection): void {
    conn.closing = true;
    for (const w of [...conn.waiters]) this.dropWaiter(w);
    conn.decoder.clear();
  }
}

function digest(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function describeKeys(keys: string[]): string {
  const shown = keys.slice(0, 5).map((k) => JSON.stringify(k)).join(', ');
  return keys.length > 5 ? `${shown} and ${keys.length - 5} more` : shown;
}

function validate(opts: StoreServerOptions): Required<StoreServerOptions> {
  if (typeof opts !== 'object' || opts === null) {
    throw argTypeError('options', 'an options object', opts);
  }
  const { host, port, token, maxFrameBytes = MAX_FRAME_BYTES } = opts;
  if (typeof host !== 'string' || host.length === 0) {
    throw argTypeError('options.host', 'a non-empty string', host);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw argRangeError('options.port', 'an integer from 0 to 65535', port);
  }
  if (typeof token !== 'string' || token.length === 0) {
    throw argTypeError('options.token', 'a non-empty string', token === undefined ? token : typeof token === 'string' ? 'an empty string' : 'a non-string');
  }
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 64 || maxFrameBytes > MAX_FRAME_BYTES) {
    throw argRangeError('options.maxFrameBytes', `an integer from 64 to ${MAX_FRAME_BYTES}`, maxFrameBytes);
  }
  return { host, port, token, maxFrameBytes };
}
