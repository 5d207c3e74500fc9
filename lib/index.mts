// The ESM entry point (package.json exports, "import"): the same named exports as the CommonJS
// build in dist/index.js, which Node reads from it, so both entry points share one module
// instance and one loaded addon.
export * from './index.js';
