// webpack 5, production, no configuration for clip-burn: the worker (new Worker(new URL(...)))
// and the .wasm (new URL(..., import.meta.url)) are found by webpack itself.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export default {
  mode: "production",
  context: here,
  entry: "./src/index.js",
  output: { path: join(here, "dist"), filename: "main.js", clean: true },
  performance: { hints: false },
};
