// Lighter models for the web (issue 30), measured in headless Chromium (not a CI test): ViT-B-32
// file sizes (f32 / f16 / int8 burnpacks made here with the native CLI from
// target/browser-bench's random-init safetensors, and the safetensors), the load time of each on
// a first visit and a cached second visit (Cache Storage, over the test server on localhost),
// ViT-B-32 image-tower latency of int8 against f16 on the CPU path, and 32 images through
// embedImages (several batch sizes) against 32 embedImage calls: ViT-B-32 on the CPU, the
// default model on the CPU and on WebGPU (SwiftShader; ViT-B-32 takes ~50 s an image there).
// Writes the section "Lighter models for the web (issue 30)" of BENCHMARKS.md (ONLY=... runs
// a part and prints it: sizes, loads, tower, batch). Run via scripts/bench-browser.sh.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "../server.js";
import { launch, openPage } from "../browser.js";

const D = "target/browser-bench";
const RUNS = Number(process.env.RUNS ?? 5);
const ONLY = process.env.ONLY?.split(",");
const part = (name) => !ONLY || ONLY.includes(name);
const BATCHES = (process.env.BATCHES ?? "1,4,8,16,32").split(",").map(Number);
const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/clip-burn/target");
const BIN = process.env.CLIP_BURN_BIN ?? join(target, "debug/clip-burn");
if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build the native CLI or set CLIP_BURN_BIN`);
/** Whether a compiler runs beside the measurement (2 cores: it would skew every figure). */
const busy = () => {
  try {
    return execFileSync("pgrep", ["-x", "rustc"], { encoding: "utf8" }).trim().length > 0;
  } catch {
    return false;
  }
};
if (busy()) console.error("warning: rustc is running: the timings will be skewed (wait for the build to end)");

// ---- the files ----------------------------------------------------------------------------
const FILES = [
  { name: "safetensors (open_clip, f32)", path: `${D}/vitb32.safetensors`, model: "ViT-B-32" },
  { name: "burnpack f32", path: `${D}/vitb32-f32.bpk`, dtype: "f32" },
  { name: "burnpack f16", path: `${D}/vitb32-f16.bpk`, dtype: "f16" },
  { name: "burnpack int8", path: `${D}/vitb32-int8.bpk`, dtype: "int8" },
];
for (const f of FILES.filter((f) => f.dtype)) {
  if (existsSync(f.path) && statSync(f.path).mtimeMs > statSync(`${D}/vitb32.safetensors`).mtimeMs) continue;
  execFileSync(BIN, ["--device", "cpu", "convert", "--model", "ViT-B-32", "--weights", `${D}/vitb32.safetensors`, "--dtype", f.dtype, "--out", f.path], { stdio: "inherit" });
}
for (const f of FILES) f.bytes = statSync(f.path).size;
const f32Bytes = FILES[1].bytes;

const { server, url } = await startServer();
const report = {};

/** A fresh browser (its own profile unless `userDataDir`) on the test page; closed after `fn`. */
async function onPage({ gpu = false, userDataDir } = {}, fn) {
  const { context } = await launch({ gpu, userDataDir });
  try {
    const { page } = await openPage(context, url);
    page.on("console", (m) => m.type() === "error" && console.error(m.text()));
    return await fn(page);
  } finally {
    await context.close();
  }
}

// ---- load: first visit (download + store) and second visit (Cache Storage) ------------------
async function timedLoad(page, f) {
  return page.evaluate(async ({ path, model }) => {
    const t0 = performance.now();
    const clip = await clipBurn.Clip.load({ weights: `/${path}`, model, backend: "cpu" });
    const ms = performance.now() - t0;
    const w = { ...clip.stats.weights };
    clip.dispose();
    return { ms, source: w.source, cached: w.cached, reason: w.reason ?? null };
  }, f);
}

if (part("loads")) {
  report.loads = [];
  for (const f of FILES) {
    const profile = mkdtempSync(join(tmpdir(), "clip-burn-bench-"));
    try {
      const first = await onPage({ userDataDir: profile }, (page) => timedLoad(page, f));
      // A new browser on the same profile: a second visit, the weights in Cache Storage on disk.
      const second = await onPage({ userDataDir: profile }, (page) => timedLoad(page, f));
      if (first.source !== "network" || !first.cached || second.source !== "cache") {
        throw new Error(`${f.name}: expected a download then a cache hit, got ${JSON.stringify({ first, second })}`);
      }
      console.log(`load ${f.name}: first ${first.ms.toFixed(0)} ms, cached ${second.ms.toFixed(0)} ms`);
      report.loads.push({ name: f.name, first: first.ms, second: second.ms });
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  }
}

// ---- ViT-B-32 image tower on the CPU: int8 against f16 ---------------------------------------
if (part("tower")) {
  report.tower = await onPage({}, (page) => page.evaluate(async ({ files, runs }) => {
    const pixels = new Float32Array(await (await fetch("/target/browser-bench/pixels.f32")).arrayBuffer());
    const out = {};
    for (const [dtype, path] of files) {
      const clip = await clipBurn.Clip.load({ weights: `/${path}`, backend: "cpu", cache: false });
      const t0 = performance.now();
      const ref = await clip.inner.encodePixels(pixels, 1);
      const first = performance.now() - t0;
      const times = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        await clip.inner.encodePixels(pixels, 1);
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      out[dtype] = { first, median: times[Math.floor(times.length / 2)], features: Array.from(ref) };
      clip.dispose();
    }
    const [a, b] = [out.f16.features, out.int8.features];
    const dot = a.reduce((s, v, i) => s + v * b[i], 0);
    out.cosine = dot / Math.hypot(...a) / Math.hypot(...b);
    delete out.f16.features;
    delete out.int8.features;
    return out;
  }, { files: [["f16", FILES[2].path], ["int8", FILES[3].path]], runs: RUNS }));
  console.log(`tower: ${JSON.stringify(report.tower)}`);
}

// ---- 32 images: embedImages (batch sizes) against 32 embedImage calls -----------------------
/** In the page: 32 PNG blobs (the default model's 16 examples, twice), timed both ways. */
async function batched(page, { weights, model, backend, batches }) {
  return page.evaluate(async ({ weights, model, backend, batches }) => {
    const names = ["blue_ring", "blue_triangle", "brown_hexagon", "brown_square", "cyan_ring", "cyan_triangle", "green_diamond", "green_star",
      "pink_diamond", "pink_star", "purple_circle", "purple_cross", "red_circle", "red_cross", "yellow_hexagon", "yellow_square"];
    const blobs = await Promise.all(names.map(async (n) => (await fetch(`/models/synth/examples/${n}.png`)).blob()));
    const images = [...blobs, ...blobs];
    const clip = await clipBurn.Clip.load({ weights, model, backend, cache: false });
    const timed = async (fn) => {
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };
    // Each shape's first pass compiles its kernels (WebGPU) or warms up: not in the timing.
    await clip.embedImage(images[0]);
    const single = await timed(async () => {
      for (const image of images) await clip.embedImage(image);
    });
    const rows = [];
    for (const batchSize of batches) {
      const warm = await timed(() => clip.embedImages(images.slice(0, batchSize), { batchSize }));
      rows.push({ batchSize, warm, ms: await timed(() => clip.embedImages(images, { batchSize })) });
    }
    const result = { backend: clip.backend, single, rows, defaultBatch: clip.batchSize };
    clip.dispose();
    return result;
  }, { weights, model, backend, batches });
}

if (part("batch")) {
  report.batch = [];
  const cases = [
    { what: "ViT-B-32 (f16 burnpack)", gpu: false, weights: `/${FILES[2].path}`, backend: "cpu" },
    { what: "default model (ResNet, 64 px)", gpu: false, weights: "/models/synth/clip-synth.bpk", backend: "cpu" },
    { what: "default model (ResNet, 64 px)", gpu: true, weights: "/models/synth/clip-synth.bpk", backend: "webgpu" },
  ];
  for (const c of cases) {
    const r = await onPage({ gpu: c.gpu }, (page) => batched(page, { ...c, batches: BATCHES }));
    console.log(`batch ${c.what} on ${r.backend}: ${JSON.stringify(r)}`);
    report.batch.push({ what: c.what, ...r });
  }
}
server.close();
if (busy()) console.error("warning: rustc was running at the end: the timings may be skewed");

// ---- the section ----------------------------------------------------------------------------
const mb = (n) => (n / 1e6).toFixed(1);
const s = (ms) => (ms / 1000).toFixed(2);
const chromium = process.env.CHROMIUM_VERSION ?? "Debian chromium";
let cpuModel = cpus()[0].model;
try {
  cpuModel = execFileSync("lscpu", { encoding: "utf8" }).match(/^Model name:\s*(.+)$/m)?.[1] ?? cpuModel;
} catch {}
const lines = [];
if (part("sizes") || part("loads")) {
  lines.push("| file | size | x f32 burnpack | load, first visit | load, cached second visit |", "| --- | --- | --- | --- | --- |");
  for (const f of FILES) {
    const l = report.loads?.find((x) => x.name === f.name);
    lines.push(`| ${f.name} | ${mb(f.bytes)} MB | ${(f.bytes / f32Bytes).toFixed(3)}x | ${l ? `${s(l.first)} s` : "not run"} | ${l ? `${s(l.second)} s` : "not run"} |`);
  }
  lines.push("", "transformers.js's files for the same model ([Xenova/clip-vit-base-patch32, onnx/ at commit 4c1807b]" +
    "(https://huggingface.co/Xenova/clip-vit-base-patch32/tree/4c1807b705b1d015fb032789cc4d221b23025a6f/onnx), Hugging Face's" +
    " file listing as stored by this project's search index; not downloaded here): both towers `model.onnx` 606 MB (f32)," +
    " `model_fp16.onnx` 304 MB, `model_quantized.onnx` (q8) 154 MB, i.e. q8 = 0.254x and fp16 = 0.502x of its f32 file" +
    " (vision tower alone 352 / 176 / 89.1 MB, text tower 254 / 127 / 64.5 MB).", "");
}
if (report.tower) {
  const t = report.tower;
  lines.push(`ViT-B-32 image tower on the CPU path (wasm, one 224x224 image, median of ${RUNS} after a first call): f16 file ` +
    `${t.f16.median.toFixed(0)} ms (first ${t.f16.first.toFixed(0)} ms), int8 file ${t.int8.median.toFixed(0)} ms (first ${t.int8.first.toFixed(0)} ms), ` +
    `${(t.int8.median / t.f16.median).toFixed(2)}x; cosine of the two features ${t.cosine.toFixed(5)}. Both are widened to f32 on load, ` +
    "so the same f32 kernels run: only the download and the Cache Storage entry shrink.", "");
}
if (report.batch) {
  lines.push("32 images (PNG blobs: the default model's 16 examples twice, decoded and preprocessed in the same call) through one " +
    "`embedImages` call at each `batchSize` against 32 `embedImage` calls, after a warm-up call of each shape (ms in all; speed-up = 32 calls / embedImages):", "");
  lines.push(`| model | backend | 32 x embedImage | ${BATCHES.map((b) => `embedImages, batchSize ${b}`).join(" | ")} |`);
  lines.push(`| --- | --- | --- | ${BATCHES.map(() => "---").join(" | ")} |`);
  for (const r of report.batch) {
    lines.push(`| ${r.what} | ${r.backend} | ${r.single.toFixed(0)} ms | ${r.rows.map((x) => `${x.ms.toFixed(0)} ms (${(r.single / x.ms).toFixed(2)}x)`).join(" | ")} |`);
  }
  const defaults = Object.fromEntries(report.batch.map((r) => [r.backend, r.defaultBatch]));
  lines.push("", `The package's defaults (\`DEFAULT_BATCH_SIZE\`, js/index.js, chosen from these rows): ${Object.entries(defaults).map(([b, n]) => `${n} on ${b}`).join(", ")}.`, "");
}
const section = `## Lighter models for the web (issue 30)

Produced by \`scripts/bench-browser.sh\` (tests/browser/bench/weights.js) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} x ${cpuModel}, no GPU
(WebGPU is Chromium's SwiftShader adapter, a CPU emulation), ${chromium} headless. ViT-B-32 is the
random-init open_clip model of tests/browser/bench/inputs.sh; its burnpacks are made by \`clip-burn convert --dtype f32|f16|int8\`.
Load: \`Clip.load\` on the CPU backend from the file's URL on the test server (localhost) to a model ready to run, in a
fresh browser profile (first visit: download, then stored in Cache Storage) and in a new browser on the same profile
(second visit: read from Cache Storage, no request).

${lines.join("\n")}`;

if (ONLY) {
  console.log(section);
  process.exit(0);
}
let md = readFileSync("BENCHMARKS.md", "utf8");
const HEADING = "## Lighter models for the web (issue 30)";
const at = md.indexOf(HEADING);
if (at >= 0) {
  let end = md.indexOf("\n## ", at + 1);
  if (end < 0) end = md.length;
  md = md.slice(0, at) + section.trimEnd() + "\n" + (end < md.length ? md.slice(end) : "");
} else {
  // After the browser section (and its subsections), before the next top-level section.
  const browser = md.indexOf("## Browser:");
  const next = browser >= 0 ? md.indexOf("\n## ", browser + 1) : -1;
  md = next >= 0 ? `${md.slice(0, next + 1)}${section.trimEnd()}\n${md.slice(next)}` : `${md.trimEnd()}\n\n${section}`;
}
writeFileSync("BENCHMARKS.md", md);
console.log(section);
