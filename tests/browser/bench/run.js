// ViT-B-32 in headless Chromium, clip-burn beside onnxruntime-web on the same weights, same
// machine, in a cross-origin isolated page (both engines may run wasm threads):
//   - the CPU race: image and text tower, each engine at 1 and 2 threads (and at
//     navigator.hardwareConcurrency where larger); clip-burn at 1 thread is its single-threaded
//     module, above 1 its threaded one. Every (engine, threads) in a fresh page, ROUNDS rounds in
//     rotating order, the median of the rounds' medians;
//   - WebGPU: clip-burn webgpu vs ort webgpu, the image tower, one round (SwiftShader: slow).
// Writes the browser section of BENCHMARKS.md. Run via scripts/bench-browser.sh.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { startServer } from "../server.js";
import { launch } from "../browser.js";

const RUNS = Number(process.env.RUNS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
// SwiftShader takes about a minute a call: the WebGPU pair runs a first call and WEBGPU_RUNS more.
const WEBGPU_RUNS = Number(process.env.WEBGPU_RUNS ?? 1);
// BACKENDS=cpu (or webgpu) runs one part and prints it without touching BENCHMARKS.md.
const BACKENDS = (process.env.BACKENDS ?? "cpu,webgpu").split(",");
const { server, url } = await startServer();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function inPage(context, fn, args) {
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && console.error(m.text()));
  try {
    await page.goto(`${url}/tests/browser/bench/bench.html`);
    await page.waitForFunction(() => window.ready === true);
    return await page.evaluate(([fn, args]) => window[fn](...args), [fn, args]);
  } finally {
    await page.close();
  }
}

const race = [];
let cores = cpus().length;
if (BACKENDS.includes("cpu")) {
  const { context } = await launch({ gpu: false });
  cores = await inPage(context, "eval", ["navigator.hardwareConcurrency"]);
  // THREADS=2 (a list) races those thread counts only, without pkg/'s row (printed only).
  const only = process.env.THREADS?.split(",").map(Number);
  const counts = only ?? [...new Set([1, 2, cores])].filter((n) => n <= Math.max(2, cores));
  // clip-burn (pkg/): the single-threaded CPU path as it ran before the CPU-only modules, to
  // compare builds in one run.
  const configs = [...(only ? [] : [["clip-burn (pkg/)", 1]]), ...counts.flatMap((n) => [["clip-burn", n], ["onnxruntime-web", n]])];
  for (let round = 0; round < ROUNDS; round++) {
    const order = configs.map((_, i) => configs[(i + round) % configs.length]);
    for (const [engine, threads] of order) {
      const r = await inPage(context, "race", [engine, threads, RUNS]);
      console.log(JSON.stringify({ round, ...r }));
      race.push(r);
    }
  }
  await context.close();
}

const rows = [];
if (BACKENDS.includes("webgpu")) {
  const { context } = await launch({ gpu: true });
  for (const [fn, backend] of [["runClipBurn", "webgpu"], ["runOrt", "webgpu"]]) {
    const r = await inPage(context, fn, [backend, WEBGPU_RUNS]);
    console.log(JSON.stringify(r));
    rows.push(r);
  }
  await context.close();
}
server.close();

const version = JSON.parse(readFileSync("node_modules/onnxruntime-web/package.json", "utf8")).version;
const chromium = process.env.CHROMIUM_VERSION ?? "Debian chromium";
const mb = (file) => (statSync(`target/browser-bench/${file}`).size / 1e6).toFixed(0);

/** Per (engine, threads): the median over rounds of each figure. */
function summary(engine, threads) {
  const rs = race.filter((r) => r.engine === engine && r.threads === threads);
  if (!rs.length) return null;
  const pick = (f) => median(rs.map(f));
  return {
    actual: rs[0].actual, isolated: rs[0].isolated, loadMs: pick((r) => r.loadMs),
    image: { ms: pick((r) => r.image.medianMs), first: pick((r) => r.image.firstMs), diff: Math.max(...rs.map((r) => r.image.maxDiff)) },
    text: { ms: pick((r) => r.text.medianMs), first: pick((r) => r.text.firstMs), diff: Math.max(...rs.map((r) => r.text.maxDiff)) },
    textCut: { ms: pick((r) => r.textCut.medianMs), first: pick((r) => r.textCut.firstMs), diff: Math.max(...rs.map((r) => r.textCut.maxDiff)) },
  };
}
// How many ids ort's equal-work text row was fed (the page counts them).
const promptIds = race[0]?.promptIds;
const raceRows = [];
for (const threads of [...new Set(race.map((r) => r.threads))].sort((a, b) => a - b)) {
  const cb = summary("clip-burn", threads), ort = summary("onnxruntime-web", threads);
  if (!cb || !ort) continue;
  const label = threads === 1 ? "1 (clip-burn's single-threaded module)" : `${threads} (clip-burn's threaded module, ${cb.actual} workers)`;
  const towers = { image: "image", text: "text, 77 ids (ort runs all 77)", textCut: `text, ${promptIds} ids (ort fed the prompt's ids, no padding)` };
  for (const [tower, name] of Object.entries(towers)) {
    raceRows.push(`| ${name} | ${label} | ${cb[tower].ms.toFixed(0)} ms | ${ort[tower].ms.toFixed(0)} ms | **${(ort[tower].ms / cb[tower].ms).toFixed(2)}x** | ${(cb[tower].first / 1000).toFixed(2)} s / ${(ort[tower].first / 1000).toFixed(2)} s | ${cb[tower].diff.toExponential(1)} / ${ort[tower].diff.toExponential(1)} |`);
  }
  raceRows.push(`| load, both towers | ${threads} | ${(cb.loadMs / 1000).toFixed(1)} s | ${(ort.loadMs / 1000).toFixed(1)} s | ${(ort.loadMs / cb.loadMs).toFixed(2)}x | | |`);
}
const before = summary("clip-burn (pkg/)", 1), now = summary("clip-burn", 1);
if (before && now) {
  for (const tower of ["image", "text"]) {
    raceRows.push(`| ${tower} | 1: pkg/'s CPU path (the build before pkg-cpu/) | ${before[tower].ms.toFixed(0)} ms | | ${(before[tower].ms / now[tower].ms).toFixed(2)}x of it: pkg-cpu/ | ${(before[tower].first / 1000).toFixed(2)} s | ${before[tower].diff.toExponential(1)} |`);
  }
}
const pair = (a, b) => {
  const x = rows.find((r) => r.engine === "clip-burn" && r.backend === a);
  const y = rows.find((r) => r.engine === "onnxruntime-web" && r.backend === b);
  if (!x || !y) return `| ${a} vs ort ${b} | not run (BACKENDS=${BACKENDS}) | | | | | |`;
  return `| ${a} vs ort ${b} | ${x.medianMs.toFixed(0)} ms | ${y.medianMs.toFixed(0)} ms | **${(y.medianMs / x.medianMs).toFixed(2)}x** | ${(x.loadMs / 1000).toFixed(1)} s / ${(y.loadMs / 1000).toFixed(1)} s | ${(x.firstMs / 1000).toFixed(1)} s / ${(y.firstMs / 1000).toFixed(1)} s | ${x.maxDiff.toExponential(1)} / ${y.maxDiff.toExponential(1)} |`;
};
const section = `## Browser: ViT-B-32, clip-burn vs onnxruntime-web

Produced by \`scripts/bench-browser.sh\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} x ${cpus()[0].model}, no GPU
(WebGPU is Chromium's SwiftShader adapter, a CPU emulation), ${chromium} headless, onnxruntime-web ${version}.
The page is cross-origin isolated (COOP/COEP), so both engines may run wasm threads: onnxruntime-web
with \`env.wasm.numThreads\` (its pthread pool), clip-burn with \`Clip.load({ threads })\` (its threaded module; at
1 thread its single-threaded one). Same random-init open_clip ViT-B-32 weights (clip-burn from the ${mb("vitb32.safetensors")} MB
safetensors, ort from torch's ONNX exports of each tower, ${mb("vitb32_visual.onnx")} + ${mb("vitb32_text.onnx")} MB), one 224x224 image, one
prompt; each (engine, threads) in a fresh page, ${ROUNDS} rounds in rotating order, per round the median of ${RUNS} runs
after a first call; the table gives the median over rounds. Speed-up = ort time / clip-burn time (above 1:
clip-burn is faster). Max abs diff: of the features to open_clip's (PyTorch), the worst round.
Text: both engines get the prompt as open_clip tokenizes it, 77 ids; clip-burn encodes only the
positions the features depend on (through the end token: the tower is causal), ort all 77, as a
plain export of open_clip's \`encode_text\` does. transformers.js pads a batch only to its longest
text, so its users feed ort the prompt's ${promptIds} ids: the second text row gives ort those (its own export
of the tower for that length, \`vitb32_text_cut.onnx\`), the same work as clip-burn's.

### The CPU race (wasm; ${cores} cores)

| tower | threads | clip-burn | onnxruntime-web | speed-up | first call (clip-burn / ort) | max abs diff to open_clip (clip-burn / ort) |
| --- | --- | --- | --- | --- | --- | --- |
${raceRows.join("\n") || `| not run (BACKENDS=${BACKENDS}) | | | | | | |`}

### WebGPU (image tower: a first call, then the median of ${WEBGPU_RUNS})

| backends | clip-burn | onnxruntime-web | speed-up | load (clip-burn / ort) | first call (clip-burn / ort) | max abs diff to open_clip |
| --- | --- | --- | --- | --- | --- | --- |
${pair("webgpu", "webgpu")}
`;
if (BACKENDS.length < 2 || process.env.THREADS) {
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
  const table = md.indexOf("\n| backends", start); // the last table of the section
  const afterTable = table >= 0 && table < end ? md.indexOf("\n\n", table) : -1;
  const notes = afterTable >= 0 && afterTable < end ? md.slice(afterTable + 2, end) : "";
  md = md.slice(0, start) + section + (notes.trim() ? "\n" + notes : "") + (end < md.length ? "\n" + md.slice(end + 1) : "");
} else {
  md += "\n" + section;
}
writeFileSync("BENCHMARKS.md", md);
console.log(section);
