export {
  saveCheckpoint,
  loadCheckpoint,
  MODEL_FILE,
  OPTIMIZER_FILE,
  INDEX_FILE,
  type CheckpointContents,
  type CheckpointTargets,
  type CheckpointIndex,
  type LoadedCheckpoint,
} from './checkpoint';
export { saveLatestCheckpoint, latestCheckpoint, listCheckpoints, LATEST_FILE, type SaveLatestOptions } from './root';
export {
  readSafetensors,
  readSafetensorsHeader,
  parseSafetensorsHeader,
  writeSafetensors,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  type SafetensorsArray,
  type SafetensorsTensor,
  type SafetensorsInput,
  type SafetensorsHeader,
  type SafetensorsHeaderEntry,
} from './safetensors';
