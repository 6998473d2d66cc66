// Vite 7's dependency pre-bundler moves clip-burn's modules to node_modules/.vite/deps/, away from
// the .wasm and worker.js their import.meta.url points at: exclude the package (README, "Using it
// from a bundler"). Vite 8 needs no configuration.
export default {
  optimizeDeps: { exclude: ["clip-burn"] },
};
