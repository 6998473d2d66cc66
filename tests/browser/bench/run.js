// Image-encode latency of ViT-B-32 in headless Chromium: clip-burn (WebGPU, CPU) beside
// onnxruntime-web (webgpu, wasm) on the same weights, same page, same machine. Writes the
// browser section of BENCHMARKS.md. Run via scripts/bench-browser.sh.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { startServer } from "../server.js";
import { launch } from "../browser.js";

const RUNS = Number(process.env.RUNS ?? 5);
// BACKENDS=cpu (or webgpu) runs one pair and prints it without touching BENCHMARKS.md.
const BACKENDS = (process.env.BACKENDS ?? "cpu,webgpu").split(",");
const { server, url } = await startServer();
const rows = [];
for (const gpu of [false, true]) {
  if (!BACKENDS.includes(gpu ? "webgpu" : "cpu")) continue;
  const { context } = await launch({ gpu });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && console.error(m.text()));
  await page.goto(`${url}/tests/browser/bench/bench.html`);
  await page.waitForFunction(() => window.ready === true);
  const jobs = gpu ? [["runClipBurn", "webgpu"], ["runOrt", "webgpu"]] : [["runClipBurn", "cpu"], ["runOrt", "wasm"]];
  for (const [fn, backend] of jobs) {
    const r = await page.evaluate(([fn, backend, runs]) => window[fn](backend, runs), [fn, backend, RUNS]);
    console.log(JSON.stringify(r));
    rows.push(r);
  }
  await context.close();
}
server.close();

const version = JSON.parse(readFileSync("node_modules/onnxruntime-web/package.json", "utf8")).version;
const chromium = process.env.CHROMIUM_VERSION ?? "Debian chromium";
const mb = (file) => (statSync(`target/browser-bench/${file}`).size / 1e6).toFixed(0);
const pair = (a, b) => {
  const x = rows.find((r) => r.engine === "clip-burn" && r.backend === a);
  const y = rows.find((r) => r.engine === "onnxruntime-web" && r.backend === b);
  if (!x || !y) return `| ${a} vs ort ${b} | not run (BACKENDS=${BACKENDS}) | | | | | |`;
  return `| ${a} vs ort ${b} | ${x.medianMs.toFixed(0)} ms | ${y.medianMs.toFixed(0)} ms | **${(y.medianMs / x.medianMs).toFixed(2)}x** | ${(x.loadMs / 1000).toFixed(1)} s / ${(y.loadMs / 1000).toFixed(1)} s | ${(x.firstMs / 1000).toFixed(1)} s / ${(y.firstMs / 1000).toFixed(1)} s | ${x.maxDiff.toExponential(1)} / ${y.maxDiff.toExponential(1)} |`;
};
const section = `## Browser: ViT-B-32 image encoding, clip-burn vs onnxruntime-web

Produced by \`scripts/bench-browser.sh\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} x ${cpus()[0].model}, no GPU
(WebGPU is Chromium's SwiftShader adapter, a CPU emulation), ${chromium} headless, onnxruntime-web ${version}
(single-threaded wasm, as clip-burn's). Same random-init open_clip ViT-B-32 weights (clip-burn from safetensors,
ort from the torch ONNX export), one 224x224 image, median of ${RUNS} runs after a first call. Load: from
the weight file's URL to a model ready to run (fetch, parse, upload; ${mb("vitb32.safetensors")} MB safetensors, ${mb("vitb32_visual.onnx")} MB ONNX).
Speed-up = ort time / clip-burn time (above 1: clip-burn is faster).

| backends | clip-burn | onnxruntime-web | speed-up | load (clip-burn / ort) | first call (clip-burn / ort) | max abs diff to open_clip |
| --- | --- | --- | --- | --- | --- | --- |
${pair("cpu", "wasm")}
${pair("webgpu", "webgpu")}
`;
if (BACKENDS.length < 2) {
  console.log(section);
  process.exit(0);
}
let md = "";
try {
  md = readFileSync("BENCHMARKS.md", "utf8");
} catch {
  md = "# Benchmarks\n\nEvery figure here is produced by a script in the repository, as a ratio against the reference measured in the same run.\n\n";
}
const start = md.indexOf("## Browser:");
if (start >= 0) {
  // The heading, the text and the table are this run's; the notes under the table are kept.
  let end = md.indexOf("\n## ", start + 1);
  if (end < 0) end = md.length;
  const table = md.indexOf("\n| backends", start);
  const afterTable = table >= 0 && table < end ? md.indexOf("\n\n", table) : -1;
  const notes = afterTable >= 0 && afterTable < end ? md.slice(afterTable + 2, end) : "";
  md = md.slice(0, start) + section + (notes.trim() ? "\n" + notes : "") + (end < md.length ? "\n" + md.slice(end + 1) : "");
} else {
  md += "\n" + section;
}
writeFileSync("BENCHMARKS.md", md);
console.log(section);
