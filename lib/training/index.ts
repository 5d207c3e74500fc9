// collectives/training: distributed training on top of the public collectives API.
export { TrainingError, TrainingErrorCode } from './errors';
export {
  loadFashionMnist,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  type FashionMnist,
  type FashionMnistOptions,
  type FashionMnistSplit,
} from './data/fashion-mnist';
export { DistributedSampler, batches, type DistributedSamplerOptions } from './data/sampler';
