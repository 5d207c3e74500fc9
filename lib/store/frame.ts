// Frame encoding and decoding for the rendezvous store protocol
// (native/store/PROTOCOL.md): u32 little-endian length, then the body.

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
export const MAX_KEY_BYTES = 4096;

export const Op = {
  HELLO: 1,
  SET: 2,
  GET: 3,
  WAIT: 4,
  ADD: 5,
} as const;

export const Status = {
  OK: 0,
  VALUE: 1,
  TIMEOUT: 2,
  REFUSED: 3,
  ERROR: 4,
} as const;

export type MessageStatus = typeof Status.TIMEOUT | typeof Status.REFUSED | typeof Status.ERROR;

/** A frame that does not follow the protocol; the connection cannot continue. */
export class FrameError extends Error {
  override name = 'FrameError';
}

/** Reads the fields of one frame body in order; throws FrameError past its end. */
export class BodyReader {
  private offset = 0;

  constructor(private readonly body: Buffer) {}

  get remaining(): number {
    return this.body.length - this.offset;
  }

  u8(): number {
    this.need(1, 'u8');
    return this.body.readUInt8(this.offset++);
  }

  u32(): number {
    this.need(4, 'u32');
    const v = this.body.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }

  i64(): bigint {
    this.need(8, 'i64');
    const v = this.body.readBigInt64LE(this.offset);
    this.offset += 8;
    return v;
  }

  /** A length-prefixed byte blob; the result is a view into the body. */
  blob(): Buffer {
    const n = this.u32();
    this.need(n, 'blob');
    const v = this.body.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /**
   * A key. Keys are compared byte for byte, so they are decoded as latin1,
   * which maps every byte to one code unit and back without loss.
   */
  key(): string {
    const n = this.u32();
    if (n > MAX_KEY_BYTES) throw new FrameError(`key of ${n} bytes exceeds ${MAX_KEY_BYTES}`);
    this.need(n, 'key');
    const v = this.body.toString('latin1', this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** Trailing bytes mean the peer and we disagree about the layout. */
  end(): void {
    if (this.remaining !== 0) throw new FrameError(`${this.remaining} unexpected trailing bytes`);
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) {
      throw new FrameError(`truncated ${what}: need ${n} bytes, have ${this.remaining}`);
    }
  }
}

/**
 * Splits a byte stream into frame bodies. Chunks are kept as received and
 * joined once per complete frame, so a large frame arriving in many pieces
 * is not copied over and over.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** `limit` is the largest accepted body; it may change between frames. */
  constructor(public limit: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Returns the next complete body, or null; throws FrameError on an oversized header. */
  next(): Buffer | null {
    if (this.buffered < 4) return null;
    let head = this.chunks[0]!;
    if (head.length < 4) {
      head = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [head];
    }
    const length = head.readUInt32LE(0);
    if (length > this.limit) {
      throw new FrameError(`frame of ${length} bytes exceeds the limit of ${this.limit}`);
    }
    const total = 4 + length;
    if (this.buffered < total) return null;
    const all = this.chunks.length === 1 ? head : Buffer.concat(this.chunks, this.buffered);
    const body = all.subarray(4, total);
    const rest = all.subarray(total);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return body;
  }

  clear(): void {
    this.chunks = [];
    this.buffered = 0;
  }
}

function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

export function encodeOk(): Buffer {
  return frame(Buffer.from([Status.OK]));
}

export function encodeValue(value: Buffer): Buffer {
  const body = Buffer.allocUnsafe(1 + 4 + value.length);
  body.writeUInt8(Status.VALUE, 0);
  body.writeUInt32LE(value.length, 1);
  value.copy(body, 5);
  return frame(body);
}

export function encodeMessage(status: MessageStatus, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const body = Buffer.allocUnsafe(1 + 4 + text.length);
  body.writeUInt8(status, 0);
  body.writeUInt32LE(text.length, 1);
  text.copy(body, 5);
  return frame(body);
}
