export { Optimizer, type FlatRange, type LearningRate, type OptimizerState } from './optimizer';
export { AdamW, type AdamWOptions } from './adamw';
export { SGD, type SGDOptions } from './sgd';
export {
  linearLR,
  cosineAnnealingLR,
  cosineWithWarmup,
  type Schedule,
  type LinearLROptions,
  type CosineAnnealingLROptions,
  type CosineWithWarmupOptions,
} from './schedules';
