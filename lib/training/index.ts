// collectives/training: distributed training on top of the public collectives API.
export { TrainingError, TrainingErrorCode } from './errors';
export { ParameterSet, type ParameterSetOptions, type TensorSpec, type TensorInfo, type TensorPiece } from './params';
export * from './optim';
export * from './checkpoint';
export * from './ddp';
export * from './diloco';
export {
  loadFashionMnist,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  type FashionMnist,
  type FashionMnistOptions,
  type FashionMnistSplit,
} from './data/fashion-mnist';
export { DistributedSampler, batches, type DistributedSamplerOptions } from './data/sampler';
export * from './zero';
export * from './elastic';
