import { markAsUntransferable } from 'node:worker_threads';

import { argTypeError } from './errors';

/**
 * Buffers and other threads.
 *
 * Pinning a typed array keeps the JavaScript object alive, not its memory:
 * postMessage(x, [x.buffer]) moves the memory to another thread (and lets it
 * free it) while an operation may still read or write it. Node-API cannot
 * forbid that for a while and allow it again, so a buffer handed to this
 * library is marked untransferable for good: a later transfer copies it
 * (Node 20) or throws DataCloneError (Node 21+) instead of detaching it.
 */
export function keepAttached(a: ArrayBufferView): void {
  const buf = a.buffer;
  if (buf instanceof ArrayBuffer) markAsUntransferable(buf);
}

/**
 * True when `a`'s buffer was transferred away (it then reads as empty). A
 * typed array of length 0 over an intact buffer is not detached.
 */
export function isDetached(a: ArrayBufferView): boolean {
  if (a.byteLength !== 0) return false;
  const buf = a.buffer as ArrayBufferLike & { detached?: boolean };
  if (typeof buf.detached === 'boolean') return buf.detached;
  if (buf.byteLength !== 0) return false;
  try {
    new Uint8Array(buf);
    return false;
  } catch {
    return true;
  }
}

/** Refuses a detached typed array with a message that says what happened. */
export function checkAttached(name: string, a: ArrayBufferView): void {
  if (isDetached(a)) {
    throw argTypeError(name, 'a typed array whose buffer is attached, not one transferred away (postMessage transfer list)', a);
  }
}
