export { Elastic, describeGeneration, type GenerationRecord, type GenerationKind } from './membership';
export type { ElasticOptions } from './options';
export { ElasticDiLoCo } from './elastic-diloco';
export { ElasticDataParallel, type ElasticDataParallelOptions } from './elastic-ddp';
