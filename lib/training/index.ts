// collectives/training: distributed training on top of the public collectives API.
export { TrainingError, TrainingErrorCode } from './errors';
