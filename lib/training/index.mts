// The ESM entry point of collectives/training: the CommonJS build's named exports.
export * from './index.js';
