'use strict';
// A minimal raw-socket client for the rendezvous store protocol
// (native/store/PROTOCOL.md), so tests can send well-formed and broken frames.

const net = require('node:net');

const Op = { HELLO: 1, SET: 2, GET: 3, WAIT: 4, ADD: 5 };
const Status = { OK: 0, VALUE: 1, TIMEOUT: 2, REFUSED: 3, ERROR: 4 };

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

function blob(data) {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  return Buffer.concat([u32(bytes.length), bytes]);
}

function frame(body) {
  return Buffer.concat([u32(body.length), body]);
}

const encode = {
  hello: (token, version = 1) => frame(Buffer.concat([Buffer.from([Op.HELLO]), u32(version), blob(token)])),
  set: (key, value) => frame(Buffer.concat([Buffer.from([Op.SET]), blob(key), blob(value)])),
  get: (key, timeoutMs) => frame(Buffer.concat([Buffer.from([Op.GET]), blob(key), u32(timeoutMs)])),
  wait: (keys, timeoutMs) => frame(Buffer.concat([
    Buffer.from([Op.WAIT]), u32(keys.length), ...keys.map(blob), u32(timeoutMs)])),
  add: (key, delta) => {
    const d = Buffer.alloc(8);
    d.writeBigInt64LE(BigInt(delta), 0);
    return frame(Buffer.concat([Buffer.from([Op.ADD]), blob(key), d]));
  },
};

function parseReply(body) {
  const status = body.readUInt8(0);
  if (status === Status.OK) return { status };
  const n = body.readUInt32LE(1);
  const payload = body.subarray(5, 5 + n);
  if (status === Status.VALUE) return { status, value: Buffer.from(payload) };
  return { status, message: payload.toString('utf8') };
}

class StoreClient {
  static connect(port, host = '127.0.0.1') {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new StoreClient(socket));
      });
    });
  }

  static async authed(port, token, host = '127.0.0.1') {
    const c = await StoreClient.connect(port, host);
    const r = await c.request(encode.hello(token));
    if (r.status !== Status.OK) throw new Error(`HELLO failed: ${JSON.stringify(r)}`);
    return c;
  }

  constructor(socket) {
    this.socket = socket;
    this.pending = Buffer.alloc(0);
    this.replies = [];
    this.readers = [];
    this.ended = false;
    this.closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4) {
        const n = this.pending.readUInt32LE(0);
        if (this.pending.length < 4 + n) break;
        this.replies.push(parseReply(this.pending.subarray(4, 4 + n)));
        this.pending = this.pending.subarray(4 + n);
      }
      this.flush();
    });
    socket.on('close', () => {
      this.ended = true;
      this.flush();
    });
  }

  flush() {
    while (this.readers.length > 0 && (this.replies.length > 0 || this.ended)) {
      const { resolve, reject } = this.readers.shift();
      if (this.replies.length > 0) resolve(this.replies.shift());
      else reject(new Error('connection closed before a reply'));
    }
  }

  /** Resolves with the next reply, in order. */
  reply() {
    return new Promise((resolve, reject) => {
      this.readers.push({ resolve, reject });
      this.flush();
    });
  }

  send(bytes) {
    this.socket.write(bytes);
  }

  request(bytes) {
    this.send(bytes);
    return this.reply();
  }

  close() {
    this.socket.destroy();
    return this.closed;
  }
}

module.exports = { StoreClient, Op, Status, encode, frame, u32, blob };
