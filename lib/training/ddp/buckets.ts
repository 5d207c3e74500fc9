import type { TensorInfo } from '../params';

/**
 * torch DDP's bucket assignment, kept apart from the reducer so it can be tested alone:
 * tensors are taken in reverse registration order (the order a backward pass produces their
 * gradients) and packed into buckets; a bucket closes once it holds at least its cap, so a
 * tensor larger than the cap gets a bucket of its own. The first bucket has a small cap of its
 * own (1 MiB in torch) so that the first all-reduce starts early in the backward pass.
 *
 * Since consecutive tensors in reverse order are adjacent in the flat buffer, each bucket is one
 * contiguous range [begin, end) of it: the all-reduce runs on a view of the gradients, with no
 * copy in or out (torch's gradient_as_bucket_view).
 */
export interface Bucket {
  /** Launch order: 0 first (the last registered tensors). */
  readonly index: number;
  /** The tensors, in the order their gradients are expected (reverse registration). */
  readonly names: readonly string[];
  /** The flat range of the gradient buffer the bucket covers. */
  readonly begin: number;
  readonly end: number;
}

export interface BucketCaps {
  /** Bytes at which a bucket closes (torch's bucket_cap_mb × 2^20; default 25 MiB). */
  capBytes: number;
  /** Bytes at which the first bucket closes (default 1 MiB). */
  firstCapBytes: number;
}

/** 4 bytes per element: gradients are float32 in the flat buffer. */
const ELEMENT_BYTES = 4;

export function assignBuckets(tensors: readonly TensorInfo[], caps: BucketCaps): Bucket[] {
  const buckets: Bucket[] = [];
  let names: string[] = [];
  let begin = 0;
  let end = 0;
  let bytes = 0;
  const close = (): void => {
    buckets.push(Object.freeze({ index: buckets.length, names: Object.freeze(names), begin, end }));
    names = [];
    bytes = 0;
  };
  for (let i = tensors.length - 1; i >= 0; i--) {
    const t = tensors[i];
    if (names.length === 0) end = t.offset + t.size;
    names.push(t.name);
    begin = t.offset;
    bytes += t.size * ELEMENT_BYTES;
    if (bytes >= (buckets.length === 0 ? caps.firstCapBytes : caps.capBytes)) close();
  }
  if (names.length > 0) close();
  return buckets;
}
