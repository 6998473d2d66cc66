// int8 burnpacks in the npm package (issue 30, item 1): the default model converted by the native
// CLI (`clip-burn convert --dtype int8`, made here) loads in headless Chromium on the CPU (wasm)
// and on WebGPU (SwiftShader), classifies the bundled held-out examples right, and gives the
// native CLI's `embed` features of the same file (L2-normalised, within 1e-4).
// Run with scripts/test-browser.sh (it exports CLIP_BURN_BIN).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./server.js";
import { withPage as onTestPage } from "./browser.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const MODEL = join(ROOT, "models/synth");
const SLOW = 900_000; // SwiftShader compiles every shader on first use
const EXAMPLES = readdirSync(join(MODEL, "examples")).filter((f) => f.endsWith(".png")).sort();
const TEXTS = ["a photo of a red cross.", "a drawing of a blue ring.", "a green star"];

let server, base, dir, url, native;

function clipBurn() {
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/clip-burn/target");
  const bin = process.env.CLIP_BURN_BIN ?? join(target, "debug/clip-burn");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/test-browser.sh, or set CLIP_BURN_BIN`);
  return bin;
}

const normalised = (rows) => rows.map((r) => {
  const n = Math.hypot(...r);
  return r.map((v) => v / n);
});

before(async () => {
  // Under the repository root, which the test server serves; target/ is ignored by git.
  mkdirSync(join(ROOT, "target"), { recursive: true });
  dir = mkdtempSync(join(ROOT, "target/browser-int8-"));
  const file = join(dir, "clip-synth-int8.bpk");
  execFileSync(clipBurn(), ["--device", "cpu", "convert", "--weights", join(MODEL, "clip-synth.bpk"), "--dtype", "int8", "--out", file], { stdio: "pipe" });
  url = `/${relative(ROOT, file)}`;
  const out = JSON.parse(execFileSync(clipBurn(), ["--device", "cpu", "embed", "--weights", file,
    ...EXAMPLES.flatMap((f) => ["--image", join(MODEL, "examples", f)]), ...TEXTS.flatMap((t) => ["--text", t])], { encoding: "utf8", maxBuffer: 1 << 26 }));
  native = { image: normalised(out.image_features), text: normalised(out.text_features) };
  ({ server, url: base } = await startServer());
});
after(() => {
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// The default model's 49408-token embedding (int8) is most of it; its ResNet image tower stays f16.
test("the int8 file is at most 0.7x of the f16 file", () => {
  const f16 = statSync(join(MODEL, "clip-synth.bpk")).size;
  const int8 = statSync(join(ROOT, url)).size;
  console.log(`default model: f16 ${f16} bytes, int8 ${int8} bytes (${(int8 / f16).toFixed(3)}x)`);
  assert.ok(int8 < 0.7 * f16, `${int8} vs ${f16}`);
});

async function run(page, backend) {
  return page.evaluate(async ({ url, backend, examples, texts }) => {
    const lines = async (u) => (await (await fetch(u)).text()).split("\n").map((l) => l.trim()).filter(Boolean);
    const labels = await lines("/models/synth/classnames.txt");
    const templates = await lines("/models/synth/templates.txt");
    const clip = await clipBurn.Clip.load({ weights: url, backend });
    const f16 = await clipBurn.Clip.load({ weights: "/models/synth/clip-synth.bpk", backend });
    const images = await Promise.all(examples.map(async (f) => (await fetch(`/models/synth/examples/${f}`)).blob()));
    const ranked = await clip.classify(images, labels, { templates });
    const image = (await clip.embedImages(images)).map((v) => Array.from(v));
    const text = (await clip.embedText(texts)).map((v) => Array.from(v));
    const ofF16 = await f16.embedImages(images);
    const cosine = Math.min(...ofF16.map((v, i) => v.reduce((s, x, j) => s + x * image[i][j], 0)));
    const result = { backend: clip.backend, top: ranked.map((r) => r[0].label), image, text, cosineToF16: cosine, fingerprints: [clip.fingerprint, f16.fingerprint] };
    clip.dispose();
    f16.dispose();
    return result;
  }, { url, backend, examples: EXAMPLES, texts: TEXTS });
}

function check(r, backend) {
  assert.equal(r.backend, backend);
  assert.notEqual(r.fingerprints[0], r.fingerprints[1], "a file of its own");
  assert.deepEqual(r.top, EXAMPLES.map((f) => f.replace(/\.png$/, "").replaceAll("_", " ")), "every bundled example top-1 right");
  const diff = (a, b) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));
  const image = diff(r.image, native.image);
  const text = diff(r.text, native.text);
  console.log(`int8 on ${backend}: max |browser - native| image ${image.toExponential(2)}, text ${text.toExponential(2)}; min cosine to the f16 file's image features ${r.cosineToF16.toFixed(5)}`);
  assert.ok(image <= 1e-4 && text <= 1e-4, `image ${image}, text ${text}`);
  assert.ok(r.cosineToF16 >= 0.99, `cosine ${r.cosineToF16}`);
}

test("CPU (wasm): an int8 burnpack loads, classifies the examples right and matches native embed within 1e-4", async () => {
  await onTestPage(base, { gpu: false }, async (page) => check(await run(page, "cpu"), "cpu"));
});

test("WebGPU (SwiftShader): an int8 burnpack loads, classifies the examples right and matches native embed within 1e-4", { timeout: SLOW }, async () => {
  await onTestPage(base, { gpu: true }, async (page) => check(await run(page, "webgpu"), "webgpu"));
});
