// collectives/training: distributed training on top of the public collectives API.
export { TrainingError, TrainingErrorCode } from './errors';
export { ParameterSet, type ParameterSetOptions, type TensorSpec, type TensorInfo, type TensorPiece } from './params';
export * from './optim';
export * from './checkpoint';
export * from './ddp';
