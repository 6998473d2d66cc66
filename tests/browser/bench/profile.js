// Where clip-burn's single-threaded CPU module spends a forward pass in headless Chromium: a CDP
// sampling profile of ViT-B-32's text or image tower (TOWER=text|image), self time per function
// and inclusive time per clip-model / burn-flex function. Not a timed test; run after
// scripts/bench-browser.sh has made its inputs:
//   node tests/browser/bench/profile.js
// It binds the module build-wasm.sh kept with its names ($CARGO_TARGET_DIR/wasm-modules/pkg-cpu.wasm)
// beside the inputs, so the profile names Rust functions.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "../server.js";
import { launch } from "../browser.js";

const TOWER = process.env.TOWER ?? "text";
const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/clip-burn/target");
const dir = mkdtempSync(join(tmpdir(), "clip-burn-profile-"));
// Bound under the glue's own name so its imports match pkg-cpu/clip_wasm.js.
copyFileSync(join(target, "wasm-modules/pkg-cpu.wasm"), join(dir, "clip_wasm.wasm"));
execFileSync("wasm-bindgen", ["--target", "web", "--out-dir", dir, join(dir, "clip_wasm.wasm")]);
copyFileSync(join(dir, "clip_wasm_bg.wasm"), "target/browser-bench/pkg-cpu-named.wasm");

const { server, url } = await startServer();
const { context } = await launch({ gpu: false });
const page = await context.newPage();
await page.goto(`${url}/tests/browser/bench/bench.html`);
await page.waitForFunction(() => window.ready === true);
await page.evaluate(async (tower) => {
  const D = "/target/browser-bench";
  const { Clip } = await import("/js/index.js");
  const clip = await Clip.load({ weights: `${D}/vitb32.safetensors`, model: "ViT-B-32", backend: "cpu", cache: false, threads: 1, cpuWasmUrl: `${D}/pkg-cpu-named.wasm` });
  const ids = Int32Array.from(new BigInt64Array(await (await fetch(`${D}/ids.i64`)).arrayBuffer()), Number);
  const pixels = new Float32Array(await (await fetch(`${D}/pixels.f32`)).arrayBuffer());
  window.run = () => (tower === "text" ? clip.inner.encodeIds(ids, 1) : clip.inner.encodePixels(pixels, 1));
  for (let i = 0; i < 3; i++) await window.run();
}, TOWER);
const cdp = await context.newCDPSession(page);
await cdp.send("Profiler.enable");
await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
await cdp.send("Profiler.start");
const ms = await page.evaluate(async () => {
  const t = performance.now();
  for (let i = 0; i < 10; i++) await window.run();
  return (performance.now() - t) / 10;
});
const { profile } = await cdp.send("Profiler.stop");
await context.close();
server.close();

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (id) => (byId.get(id).callFrame.functionName || "(anonymous)").replace(/::h[0-9a-f]{16}$/, "");
const total = profile.timeDeltas.reduce((a, b) => a + b, 0);
const self = new Map(), inclusive = new Map();
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  self.set(name(id), (self.get(name(id)) ?? 0) + dt);
  const seen = new Set();
  for (let x = id; x != null; x = parent.get(x)) seen.add(name(x));
  for (const n of seen) inclusive.set(n, (inclusive.get(n) ?? 0) + dt);
});
const top = (map, filter, count) =>
  [...map.entries()].filter(([k]) => filter.test(k)).sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${k.slice(0, 150)}`).join("\n");
console.log(`ViT-B-32 ${TOWER} tower, single-threaded module: ${ms.toFixed(1)} ms a call (while sampled)`);
console.log(`\nself time:\n${top(self, /./, 25)}`);
console.log(`\ninclusive, clip-model and burn-flex:\n${top(inclusive, /^(clip_model|burn_flex)::/, 30)}`);
