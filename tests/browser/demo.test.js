// The demo page (web/) in headless Chromium, built and served as scripts/demo.sh does: it loads
// with no request beyond its own server; it classifies the default model's held-out examples
// (top-1 right on at least 9 of 10) on the CPU (GPU disabled) and on WebGPU (SwiftShader);
// every image input (examples, file picker, paste, drop, drawing with the mouse and with the
// keyboard), labels as free text, the template choice, keyboard use, a phone-sized viewport;
// "own weights" from local files gives the native `clip-burn classify` probabilities; the int8
// weights choice loads and classifies. Saves a
// screenshot to artifacts/demo.png.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "../../web/build.js";
import { serve } from "../../web/serve.js";
import { launch } from "./browser.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const FIXTURES = join(ROOT, "tests/fixtures");
const EXAMPLES = join(ROOT, "models/synth/examples");
const ARTIFACTS = join(ROOT, "artifacts");
const SLOW = 600_000; // SwiftShader compiles every shader on first use

let server, base;
const served = []; // paths the server was asked for
before(async () => {
  ({ server, url: base } = await serve(await build(), 0, { onRequest: (req) => served.push(new URL(req.url, "http://x").pathname) }));
});
after(() => server?.close());

/** The native CLI (built by scripts/test-browser.sh when missing). */
function clipBurn() {
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/clip-burn/target");
  const bin = process.env.CLIP_BURN_BIN ?? join(target, "debug/clip-burn");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/test-browser.sh, or set CLIP_BURN_BIN`);
  return bin;
}

/** Opens the page with every request outside its own origin blocked and recorded. */
async function openDemo(gpu) {
  const { context } = await launch({ gpu });
  const foreign = [];
  const own = (url) => url.startsWith(`${base}/`) || url.startsWith("data:") || url.startsWith("blob:");
  context.on("request", (r) => own(r.url()) || foreign.push(r.url()));
  await context.route("**/*", (route) => (own(route.request().url()) ? route.continue() : route.abort()));
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${base}/`);
  await page.waitForSelector("body[data-ready]", { state: "attached", timeout: SLOW });
  return { context, page, foreign, errors };
}

/** Runs `act`, waits for the page's next result (or error) and returns it. */
async function resultOf(page, act) {
  await page.evaluate(() => {
    document.getElementById("ranking").replaceChildren();
    document.getElementById("error").hidden = true;
  });
  await act();
  await page.waitForFunction(() => {
    const done = document.querySelector("#ranking li") && document.getElementById("result").getAttribute("aria-busy") === "false";
    return done || !document.getElementById("error").hidden;
  }, null, { timeout: SLOW });
  return page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent;
    const error = document.getElementById("error");
    return {
      error: error.hidden ? null : error.textContent,
      ranked: [...document.querySelectorAll("#ranking li")].map((li) => ({ label: li.dataset.label, score: Number(li.dataset.score) })),
      source: text("result-source"),
      backend: document.getElementById("t-backend").dataset.backend,
      timings: { backend: text("t-backend"), weights: text("t-weights"), image: text("t-image"), text: text("t-text"), prompts: text("t-prompts") },
    };
  });
}

const truth = (file) => file.replace(/\.png$/, "").replaceAll("_", " ");

/** Clicks the example buttons (the first `n`) and counts top-1 hits. */
async function classifyExamples(page, n) {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".png")).sort().slice(0, n);
  const rows = [];
  for (const [i, file] of files.entries()) {
    const r = await resultOf(page, () => page.locator("#examples button").nth(i).click());
    assert.equal(r.error, null);
    assert.equal(r.source, `example ${truth(file)}`);
    rows.push({ truth: truth(file), top: r.ranked[0].label, score: r.ranked[0].score, timings: r.timings });
  }
  return rows;
}

function reportExamples(name, rows) {
  const right = rows.filter((r) => r.top === r.truth).length;
  console.log(`${name}: ${right}/${rows.length} examples top-1 right; first ${JSON.stringify(rows[0].timings)}; last ${JSON.stringify(rows.at(-1).timings)}`);
  for (const r of rows) if (r.top !== r.truth) console.log(`  ${r.truth} -> ${r.top} (${r.score.toFixed(3)})`);
  return right;
}

/** Picks the single template `text` in the template select. */
async function singleTemplate(page, text) {
  const value = await page.$eval("#template", (s, t) => [...s.options].find((o) => o.text === `Single: ${t}`).value, text);
  await page.selectOption("#template", value);
}

/** Loads tests/fixtures' tiny ViT as "own weights" from local files, then classifies a photo. */
async function ownWeights(page) {
  await page.click("#own-weights summary");
  await page.setInputFiles("#weights-file", join(FIXTURES, "vit_quickgelu.safetensors"));
  await page.setInputFiles("#config-file", join(FIXTURES, "vit_quickgelu.json"));
  await page.click("#load-own");
  await page.waitForFunction(() => document.getElementById("model-status").textContent.startsWith("Ready: vit_quickgelu.safetensors"), null, { timeout: SLOW });
  const labels = ["cat", "dog", "coffee", "rocket"];
  await page.fill("#labels", labels.join(", "));
  await singleTemplate(page, "a photo of a {}.");
  const photo = join(FIXTURES, "images/chelsea.jpg");
  const page_ = await resultOf(page, () => page.setInputFiles("#image-file", photo));
  assert.equal(page_.error, null);
  const native = JSON.parse(execFileSync(clipBurn(), ["--device", "cpu", "classify", "--model", join(FIXTURES, "vit_quickgelu.json"),
    "--weights", join(FIXTURES, "vit_quickgelu.safetensors"), "--image", photo, "--labels", labels.join(","),
    "--template", "a photo of a {}.", "--top", String(labels.length), "--json"], { encoding: "utf8" }))[0].labels;
  assert.deepEqual(page_.ranked.map((r) => r.label), native.map((r) => r.label), "same ranking as clip-burn classify");
  const diff = Math.max(...native.map((n) => Math.abs(n.score - page_.ranked.find((r) => r.label === n.label).score)));
  console.log(`own weights on ${page_.backend}: page ${JSON.stringify(page_.ranked)}; max |page - native| = ${diff.toExponential(2)}`);
  return { diff, backend: page_.backend };
}

describe("demo page, WebGPU disabled (CPU fallback)", () => {
  let context, page, foreign, errors;
  before(async () => {
    ({ context, page, foreign, errors } = await openDemo(false));
  });
  after(() => context?.close());

  test("loads offline: the default model from the page's own server, with progress, on the CPU", async () => {
    assert.equal(await page.$eval("#weights-progress", (p) => p.value), 1);
    assert.match(await page.textContent("#model-status"), /^Ready: the default model \(synth\).*9\.\d MB loaded in .* running on the CPU on [2-8] threads\.$/, "the test server isolates the page: the threaded module");
    assert.deepEqual(foreign, [], "no request beyond the page's server");
  });

  test("classifies the held-out examples: top-1 right on at least 9 of 10", { timeout: SLOW }, async () => {
    const rows = await classifyExamples(page, 16);
    assert.ok(reportExamples("CPU", rows) >= 9 * rows.length / 10);
    const [first, second] = rows;
    assert.match(first.timings.backend, /^CPU \(WebAssembly\); WebGPU unavailable: /);
    assert.match(first.timings.weights, /^\d+(\.\d+)? m?s \(9\.\d MB\)$/);
    assert.match(first.timings.image, /^\d+(\.\d+)? m?s$/);
    assert.equal(first.timings.prompts, "80 (0 from the cache, 80 encoded)", "16 labels x 5 templates");
    assert.equal(second.timings.prompts, "80 (80 from the cache, 0 encoded)");
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "demo.png"), fullPage: true });
    console.log(`screenshot: ${join(ARTIFACTS, "demo.png")}`);
  });

  test("file picker, paste and drop classify the file; a non-image shows the decoder's error", async () => {
    const picked = await resultOf(page, () => page.setInputFiles("#image-file", join(EXAMPLES, "red_cross.png")));
    assert.equal(picked.source, "red_cross.png");
    assert.equal(picked.ranked[0].label, "red cross");
    const viaEvent = (type, name) => resultOf(page, () => page.evaluate(async ({ type, name }) => {
      const blob = await (await fetch(`models/synth/examples/${name}`)).blob();
      const data = new DataTransfer();
      data.items.add(new File([blob], name, { type: "image/png" }));
      const event = type === "paste" ? new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true })
        : new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true });
      (type === "paste" ? document.body : document.getElementById("dropzone")).dispatchEvent(event);
    }, { type, name }));
    const pasted = await viaEvent("paste", "green_star.png");
    assert.equal(pasted.source, "pasted image");
    assert.equal(pasted.ranked[0].label, "green star");
    const dropped = await viaEvent("drop", "cyan_ring.png");
    assert.equal(dropped.source, "dropped file cyan_ring.png");
    assert.equal(dropped.ranked[0].label, "cyan ring");
    const bad = await resultOf(page, () => page.setInputFiles("#image-file", join(FIXTURES, "vit_quickgelu.json")));
    assert.match(bad.error, /^Could not classify vit_quickgelu\.json: .*cannot decode image/);
  });

  test("labels as free text (comma- or line-separated) and the template choice", { timeout: SLOW }, async () => {
    await page.fill("#labels", "blue ring, red cross\n green star,, red cross");
    const picked = await resultOf(page, () => page.locator("#examples button").nth(13).click()); // red_cross.png
    assert.deepEqual(picked.ranked.map((r) => r.label).sort(), ["blue ring", "green star", "red cross"]);
    assert.equal(picked.ranked[0].label, "red cross");
    assert.equal(picked.timings.prompts, "15 (15 from the cache, 0 encoded)", "the 16-label ensemble encoded them");
    const single = await resultOf(page, () => singleTemplate(page, "a drawing of a {}."));
    assert.equal(single.timings.prompts, "3 (3 from the cache, 0 encoded)", "its prompts were part of the ensemble");
    const imagenet = await resultOf(page, () => page.selectOption("#template", "imagenet"));
    assert.match(imagenet.timings.prompts, /^240 \(\d+ from the cache, \d+ encoded\)$/, "3 labels x OpenAI's 80 templates");
    assert.equal(imagenet.ranked[0].label, "red cross");
    await page.selectOption("#template", "ensemble");
  });

  test("the drawing canvas: a red disc drawn with the mouse, and a stroke drawn with the keyboard", { timeout: SLOW }, async () => {
    await page.fill("#labels", (await page.$eval("#examples", (e) => [...e.querySelectorAll("img")].map((i) => i.alt.replace("example ", "")))).join("\n"));
    await page.check('input[name="colour"][value="red"]');
    await page.check('input[name="tool"][value="brush"]');
    const box = await page.locator("#canvas").boundingBox();
    const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
    const outline = await resultOf(page, async () => {
      await page.mouse.move(...at(0.8, 0.5));
      await page.mouse.down();
      for (let a = 0; a <= 64; a++) await page.mouse.move(...at(0.5 + 0.3 * Math.cos((a / 32) * Math.PI), 0.5 + 0.3 * Math.sin((a / 32) * Math.PI)));
      await page.mouse.up();
    });
    assert.equal(outline.source, "your drawing");
    await page.check('input[name="tool"][value="fill"]');
    const disc = await resultOf(page, () => page.mouse.click(...at(0.5, 0.5)));
    console.log(`drawing: outline -> ${outline.ranked[0].label} (${outline.ranked[0].score.toFixed(3)}), filled disc -> ${disc.ranked[0].label} (${disc.ranked[0].score.toFixed(3)})`);
    assert.equal(disc.ranked[0].label, "red circle");

    await page.click("#clear-drawing");
    await page.check('input[name="tool"][value="brush"]');
    await page.check('input[name="colour"][value="blue"]');
    await page.focus("#canvas");
    const stroke = await resultOf(page, async () => {
      await page.keyboard.press("Space");
      for (const key of ["ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp"]) for (let i = 0; i < 6; i++) await page.keyboard.press(key);
      await page.keyboard.press("Space");
    });
    assert.equal(stroke.source, "your drawing");
    assert.match(stroke.ranked[0].label, /^blue /, "a blue stroke is something blue");
  });

  test("keyboard: controls are reachable with Tab, visibly focused, and work with Enter and Space", async () => {
    await page.fill("#labels", (await page.$eval("#examples", (e) => [...e.querySelectorAll("img")].map((i) => i.alt.replace("example ", "")))).join(", "));
    await page.mouse.click(2, 2); // Tab from the top of the page
    const reached = [];
    while (reached.at(-1)?.id !== "classify" && reached.length < 60) {
      await page.keyboard.press("Tab");
      reached.push(await page.evaluate(() => {
        const e = document.activeElement;
        return { id: e.id || e.name || e.tagName, outline: getComputedStyle(e).outlineStyle, example: e.closest("#examples") !== null };
      }));
    }
    const ids = new Set(reached.map((r) => r.id));
    for (const id of ["backend", "SUMMARY", "image-file", "colour", "tool", "brush-size", "canvas", "clear-drawing", "classify-drawing", "labels", "template", "classify"]) {
      assert.ok(ids.has(id), `Tab reaches ${id}: ${[...ids].join(" ")}`);
    }
    assert.ok(reached.filter((r) => r.example).length >= 10, "Tab reaches the example buttons");
    assert.ok(reached.every((r) => r.outline !== "none"), "focus is visible");

    await page.locator("#examples button").nth(2).focus(); // brown_hexagon.png
    const enter = await resultOf(page, () => page.keyboard.press("Enter"));
    assert.equal(enter.source, "example brown hexagon");
    assert.equal(enter.ranked[0].label, "brown hexagon");
    await page.focus("#classify");
    const space = await resultOf(page, () => page.keyboard.press("Space"));
    assert.equal(space.source, "example brown hexagon");
    await page.click("#own-weights summary");
    assert.equal(await page.$eval("#own-weights", (d) => d.open), true);
    await page.focus("#own-weights summary");
    await page.keyboard.press("Enter");
    assert.equal(await page.$eval("#own-weights", (d) => d.open), false, "Enter toggles the own-weights form");
  });

  test("readable on a phone-sized viewport: no horizontal overflow", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: innerWidth }));
    assert.ok(scroll <= width, `page is ${scroll}px wide in a ${width}px viewport`);
    await page.screenshot({ path: join(ARTIFACTS, "demo-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test("own weights from local files match native clip-burn classify within 1e-4; bad weights show the package's error", { timeout: SLOW }, async () => {
    const { diff, backend } = await ownWeights(page);
    assert.equal(backend, "cpu");
    assert.ok(diff <= 1e-4, `max diff ${diff}`);
    await page.setInputFiles("#weights-file", join(FIXTURES, "images/camera.png"));
    await page.setInputFiles("#config-file", []);
    await page.fill("#model-name", "ViT-B-32");
    await page.click("#load-own");
    await page.waitForFunction(() => !document.getElementById("error").hidden);
    assert.match(await page.textContent("#error"), /^Could not load camera\.png: .*unrecognised weights format/);
    assert.match(await page.textContent("#model-status"), /^Still using vit_quickgelu\.safetensors/);
  });

  test("forcing WebGPU without an adapter says why and keeps the model", async () => {
    await page.selectOption("#backend", "webgpu");
    await page.waitForFunction(() => !document.getElementById("error").hidden && !document.getElementById("backend").disabled);
    assert.match(await page.textContent("#error"), /^Could not load vit_quickgelu\.safetensors: WebGPU is not available: /);
    assert.equal(await page.$eval("#backend", (s) => s.value), "auto", "the selector shows the backend choice in use");
    assert.deepEqual(foreign, [], "no request beyond the page's server");
    assert.deepEqual(errors, [], "no uncaught errors");
  });
});

describe("demo page, the int8 weights choice (WebGPU disabled)", () => {
  let context, page, foreign, errors;
  before(async () => {
    ({ context, page, foreign, errors } = await openDemo(false));
  });
  after(() => context?.close());

  test("lists f16 and int8 with their sizes; int8 loads, is at most 0.7x of the f16 download, and classifies the held-out examples", { timeout: SLOW }, async () => {
    const options = await page.$$eval("#default-weights option", (os) => os.map((o) => ({ value: o.value, text: o.textContent, selected: o.selected })));
    assert.deepEqual(options.map((o) => o.value), ["f16", "int8"]);
    assert.match(options[0].text, /^Default model, f16 \(9\.\d MB\)$/);
    assert.match(options[1].text, /^Default model, int8 \((5|6)\.\d MB\)$/);
    assert.ok(options[0].selected, "f16 is loaded on start");
    served.length = 0;
    await page.selectOption("#default-weights", "int8");
    await page.waitForFunction(() => /int8/.test(document.getElementById("model-status").textContent) && /^Ready/.test(document.getElementById("model-status").textContent), null, { timeout: SLOW });
    const status = await page.textContent("#model-status");
    assert.match(status, /^Ready: the default model \(synth\).*int8 weights.* (5|6)\.\d MB loaded in .* running on the CPU on \d+ threads\.$/);
    assert.ok(served.includes("/models/synth/clip-synth-int8.bpk"), "the int8 file was downloaded");
    const rows = await classifyExamples(page, 16);
    assert.match(rows[0].timings.weights, /\((5|6)\.\d MB\)$/);
    assert.equal(rows[0].timings.prompts, "80 (0 from the cache, 80 encoded)", "other weights, other prompt embeddings");
    assert.ok(reportExamples("CPU, int8", rows) >= 9 * rows.length / 10);
    console.log(`int8: ${status}`);
    await page.selectOption("#default-weights", "f16");
    await page.waitForFunction(() => /f16 weights/.test(document.getElementById("model-status").textContent), null, { timeout: SLOW });
    assert.deepEqual(foreign, [], "no request beyond the page's server");
    assert.deepEqual(errors, [], "no uncaught errors");
  });
});

describe("demo page, weights cached across visits (WebGPU disabled)", () => {
  const WEIGHTS = "/models/synth/clip-synth.bpk";
  const downloads = () => served.splice(0).filter((p) => p === WEIGHTS).length;
  let context, page, errors;
  before(async () => {
    served.length = 0;
    ({ context, page, errors } = await openDemo(false));
  });
  after(() => context?.close());

  const shown = () => page.evaluate(() => ({
    status: document.getElementById("model-status").textContent,
    source: document.getElementById("t-weights-source").dataset.source,
    from: document.getElementById("t-weights-source").textContent,
    hint: document.getElementById("weights-cache").textContent,
  }));
  const reload = async () => {
    await page.reload();
    await page.waitForSelector("body[data-ready]", { state: "attached", timeout: SLOW });
  };

  test("the first visit downloads the weights and says they are cached; after a reload they come from the cache, with no request", { timeout: SLOW }, async () => {
    const first = await shown();
    assert.equal(downloads(), 1);
    assert.equal(first.source, "network");
    assert.equal(first.from, "the network; now cached for the next visit");
    assert.match(first.status, /^Ready: the default model \(synth\).* 9\.\d MB loaded in .* from the network, running on the CPU on \d+ threads\.$/);
    assert.match(first.hint, /^Weights are kept in this browser's Cache Storage/);

    await reload();
    const second = await shown();
    assert.equal(downloads(), 0, "no request for the weights");
    assert.equal(second.source, "cache");
    assert.equal(second.from, "this browser's cache (no download)");
    assert.match(second.status, /^Ready: the default model \(synth\).* 9\.\d MB loaded in .* from this browser's cache, running on the CPU on \d+ threads\.$/);
    const r = await resultOf(page, () => page.locator("#examples button").first().click());
    assert.equal(r.error, null);
    assert.match(r.timings.weights, /\(9\.\d MB\)$/);
    console.log(`weights: first visit "${first.status}"; after a reload "${second.status}"`);
  });

  test("'Forget cached weights' deletes them: the next visit downloads again", { timeout: SLOW }, async () => {
    await page.click("#clear-weights");
    await page.waitForFunction(() => /^Deleted /.test(document.getElementById("weights-cache").textContent));
    const cleared = await shown();
    assert.match(cleared.hint, /^Deleted 9\.\d MB of cached weights: the next visit downloads them again\.$/);
    assert.equal(cleared.from, "this browser's cache (no download); the cached copy was deleted");
    assert.deepEqual(await page.evaluate(() => caches.keys()), []);
    await reload();
    assert.equal(downloads(), 1);
    assert.equal((await shown()).source, "network");
    assert.deepEqual(errors, [], "no uncaught errors");
  });
});

describe("demo page, WebGPU (SwiftShader)", () => {
  let context, page, foreign, errors;
  before(async () => {
    ({ context, page, foreign, errors } = await openDemo(true));
  });
  after(() => context?.close());

  test("loads offline and runs on WebGPU; top-1 right on at least 9 of 10 held-out examples", { timeout: SLOW }, async () => {
    assert.match(await page.textContent("#model-status"), /running on WebGPU/);
    const rows = await classifyExamples(page, 10);
    assert.equal(rows[0].timings.backend, "WebGPU");
    assert.ok(reportExamples("WebGPU", rows) >= 9);
    assert.deepEqual(foreign, [], "no request beyond the page's server");
  });

  test("own weights match native clip-burn classify within 1e-3", { timeout: SLOW }, async () => {
    const { diff, backend } = await ownWeights(page);
    assert.equal(backend, "webgpu");
    assert.ok(diff <= 1e-3, `max diff ${diff}`);
  });

  test("the backend selector moves the model to the CPU", { timeout: SLOW }, async () => {
    await page.selectOption("#backend", "cpu");
    await page.waitForFunction(() => /running on the CPU/.test(document.getElementById("model-status").textContent), null, { timeout: SLOW });
    const r = await resultOf(page, () => page.click("#classify"));
    assert.equal(r.backend, "cpu");
    assert.equal(r.timings.backend, "CPU (WebAssembly)", "chosen, not a fallback");
    assert.deepEqual(foreign, [], "no request beyond the page's server");
    assert.deepEqual(errors, [], "no uncaught errors");
  });
});
