// One measurement of loading ViT-B-32 in node, in a fresh process (run by tests/bench/load.sh):
//   node tests/bench/load.mjs clip-burn <weights.safetensors>    the npm package's ClipModel.load, CPU backend
//   node tests/bench/load.mjs ort <model.onnx>                   onnxruntime-web's InferenceSession.create, wasm
// Prints one JSON line: the time from instantiating the engine's wasm (ort does it inside its first
// `create`) and reading the file to a model ready to run, the wasm heap after the load and the
// process's peak resident memory.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const [engine, file] = process.argv.slice(2);
if (engine === "clip-burn") {
  const pkg = await import("../../pkg-cpu/clip_wasm.js");
  const start = performance.now();
  const exports = pkg.initSync({ module: readFileSync(new URL("../../pkg-cpu/clip_wasm_bg.wasm", import.meta.url)) });
  const model = await pkg.ClipModel.load(readFileSync(file), "ViT-B-32", "cpu");
  const ms = performance.now() - start;
  report(ms, model.embedDim, exports.memory.buffer.byteLength);
} else if (engine === "ort") {
  const ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1; // clip-burn's wasm is single-threaded too
  const start = performance.now();
  const session = await ort.InferenceSession.create(readFileSync(file), { executionProviders: ["wasm"] });
  const ms = performance.now() - start;
  report(ms, session.inputNames.length);
} else {
  console.error("usage: node tests/bench/load.mjs clip-burn|ort <file>");
  process.exit(2);
}

function report(ms, check, heapBytes) {
  if (!check) throw new Error(`${engine}: the loaded model is empty`);
  const rssMB = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
  console.log(JSON.stringify({ engine, ms, heapMB: heapBytes ? heapBytes / 2 ** 20 : null, rssMB }));
}
