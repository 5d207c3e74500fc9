export { DiLoCo, type Fragment } from './diloco';
export {
  DILOCO_MODES,
  PSEUDO_GRADIENT_FORMATS,
  type DiLoCoMode,
  type DiLoCoOptions,
  type OuterOptions,
  type QuantizeOptions,
  type PseudoGradientFormat,
} from './options';
export { FragmentSchedule, type ScheduleEvent, type ScheduleOptions } from './schedule';
export { type DiLoCoState, type DiLoCoStateMeta } from './state';
export { saveDiLoCoCheckpoint, loadDiLoCoCheckpoint, type DiLoCoCheckpointContents,
  type DiLoCoCheckpointTargets, type LoadedDiLoCoCheckpoint } from './checkpoint';
