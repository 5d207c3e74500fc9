// Client side of the rendezvous store protocol (native/store/PROTOCOL.md) for the
// communicator's `store`: one connection, opened on first use, requests answered in order.
// The native client (native/store/tcp_store.*) serves the engines on the queue thread;
// this one runs on the JavaScript thread so that a blocking GET or WAIT never holds up a
// collective, nor the reverse.

import * as net from 'node:net';
import { FrameDecoder, MAX_FRAME_BYTES, Op, PROTOCOL_VERSION, Status } from './frame';

export interface StoreEndpoint {
  host: string;
  port: number;
  token: string;
}

/** A reply: OK, VALUE with its bytes, or a status with the server's message. */
export interface StoreReply {
  status: number;
  value?: Buffer;
  message?: string;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}

function blob(bytes: Buffer): Buffer {
  return Buffer.concat([u32(bytes.length), bytes]);
}

function frame(parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length), body]);
}

export const encodeRequest = {
  hello: (token: string) => frame([Buffer.from([Op.HELLO]), u32(PROTOCOL_VERSION), blob(Buffer.from(token, 'utf8'))]),
  set: (key: Buffer, value: Buffer) => frame([Buffer.from([Op.SET]), blob(key), blob(value)]),
  get: (key: Buffer, timeoutMs: number) => frame([Buffer.from([Op.GET]), blob(key), u32(timeoutMs)]),
  wait: (keys: Buffer[], timeoutMs: number) => frame([Buffer.from([Op.WAIT]), u32(keys.length), ...keys.map(blob), u32(timeoutMs)]),
  add: (key: Buffer, delta: bigint) => {
    const d = Buffer.allocUnsafe(8);
    d.writeBigInt64LE(delta, 0);
    return frame([Buffer.from([Op.ADD]), blob(key), d]);
  },
};

function parseReply(body: Buffer): StoreReply {
  const status = body.readUInt8(0);
  if (status === Status.OK) return { status };
  const n = body.length >= 5 ? body.readUInt32LE(1) : 0;
  const payload = body.subarray(5, 5 + n);
  if (status === Status.VALUE) return { status, value: Buffer.from(payload) };
  return { status, message: payload.toString('utf8') };
}

interface Waiter {
  resolve: (r: StoreReply) => void;
  reject: (e: Error) => void;
}

/**
 * One connection to the store. The server answers a connection's requests in order, so
 * replies are matched to requests by position. The socket keeps the process alive only
 * while a request waits for its reply.
 */
export class StoreConnection {
  readonly #endpoint: StoreEndpoint;
  #socket: net.Socket | undefined;
  #ready: Promise<void> | undefined;
  readonly #waiters: Waiter[] = [];
  readonly #decoder = new FrameDecoder(MAX_FRAME_BYTES);
  #closed = false;

  constructor(endpoint: StoreEndpoint) {
    this.#endpoint = endpoint;
  }

  /** Sends one request and resolves with its reply; rejects when the connection fails. */
  async request(bytes: Buffer): Promise<StoreReply> {
    await this.#open();
    return this.#send(bytes);
  }

  close(): void {
    this.#closed = true;
    this.#socket?.destroy();
    this.#fail(new Error('the store connection was closed'));
  }

  #open(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the store connection was closed'));
    this.#ready ??= new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: this.#endpoint.host, port: this.#endpoint.port });
      this.#socket = socket;
      socket.setNoDelay(true);
      socket.once('connect', () => {
        this.#send(encodeRequest.hello(this.#endpoint.token)).then((r) => {
          if (r.status === Status.OK) resolve();
          else reject(new Error(`the store refused this client: ${r.message ?? `status ${r.status}`}`));
        }, reject);
      });
      socket.on('data', (chunk: Buffer) => {
        this.#decoder.push(chunk);
        for (let body = this.#decoder.next(); body !== null; body = this.#decoder.next()) {
          this.#waiters.shift()?.resolve(parseReply(body));
        }
        if (this.#waiters.length === 0) socket.unref();
      });
      socket.on('error', (err) => {
        reject(err);
        this.#fail(err);
      });
      socket.on('close', () => {
        const err = new Error(`the store at ${this.#endpoint.host}:${this.#endpoint.port} closed the connection`);
        reject(err);
        this.#fail(err);
        // A later request reconnects.
        this.#ready = undefined;
        this.#socket = undefined;
      });
    });
    return this.#ready;
  }

  #send(bytes: Buffer): Promise<StoreReply> {
    const socket = this.#socket;
    if (socket === undefined) return Promise.reject(new Error('the store connection is not open'));
    return new Promise<StoreReply>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      socket.ref();
      socket.write(bytes);
    });
  }

  #fail(err: Error): void {
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}
