export { DataParallel, type DataParallelOptions } from './data-parallel';
export { assignBuckets, type Bucket, type BucketCaps } from './buckets';
export { COMPRESSIONS, type Compression } from './comm-hooks';
