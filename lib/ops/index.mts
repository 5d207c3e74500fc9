// The ESM entry point of collectives/ops: the CommonJS build's named exports, so that both
// module systems share one module instance and one loaded addon.
export * from './index.js';
