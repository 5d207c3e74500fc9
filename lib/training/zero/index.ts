export { Zero, type ZeroMemory } from './zero';
export { fromDeepSpeedConfig, DEEPSPEED_NAMES, type ZeroOptions, type ZeroStage, type ResolvedZeroOptions } from './options';
export { Partition, layersByPrefix, type PartitionUnit, type OwnedPiece } from './partition';
export type { Topology, ZeroGroups } from './topology';
export type { GatherCounters } from './stage3';
export {
  saveZeroCheckpoint,
  saveLatestZeroCheckpoint,
  loadZeroCheckpoint,
  consolidateZeroCheckpoint,
  readZeroIndex,
  ZERO_INDEX_FILE,
  type ZeroCheckpointIndex,
  type ZeroSaveContents,
  type LoadedZeroCheckpoint,
} from './checkpoint';
