// The npm package in real headless Chromium (Debian's, driven by playwright-core): parity with
// open_clip's fixture outputs on the CPU (wasm) and WebGPU (SwiftShader) backends, classify,
// the prompt cache across a reload, the CPU fallback, the worker, every image input type, and
// the error messages. Run with `scripts/test-browser.sh` (it builds pkg/ first).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.js";
import { withPage as onTestPage } from "./browser.js";

const F = "/tests/fixtures";
let server, base;

before(async () => {
  ({ server, url: base } = await startServer());
});
after(() => server?.close());

const withPage = (opts, fn) => onTestPage(base, opts, fn);

/** Runs the fixture models in the page and returns max abs differences to open_clip. */
async function parity(page, backend, threads) {
  return page.evaluate(async ({ F, backend, threads }) => {
    const out = {};
    const cases = [
      ["vit_quickgelu", "vit_quickgelu.safetensors", "vit_quickgelu.json", "vit_quickgelu_io"],
      ["vit_quickgelu_hf", "vit_quickgelu_hf.safetensors", "vit_quickgelu_hf_config.json", "vit_quickgelu_io"],
      ["vit_gelu", "vit_gelu.safetensors", "vit_gelu.json", "vit_gelu_io"],
      ["rn", "rn.safetensors", "rn.json", "rn_io"],
    ];
    for (const [name, weights, config, io] of cases) {
      const model = await (await fetch(`${F}/${config}`)).text();
      const clip = await clipBurn.Clip.load({ weights: `${F}/${weights}`, model, backend, threads });
      const ref = await readSafetensors(`${F}/${io}.safetensors`);
      const px = ref.pixel_values, ids = ref.input_ids;
      const img = await clip.inner.encodePixels(px.data, px.shape[0]);
      const txt = await clip.inner.encodeIds(Int32Array.from(ids.data, Number), ids.shape[0]);
      out[name] = { image: maxDiff(img, ref.image_features.data), text: maxDiff(txt, ref.text_features.data), backend: clip.backend, threads: clip.threads };
      clip.dispose();
    }
    return out;
  }, { F, backend, threads });
}

test("CPU (wasm) backend matches open_clip within 1e-4: the single-threaded module and the threaded one (2 workers)", async () => {
  await withPage({ gpu: false }, async (page) => {
    for (const threads of [1, 2]) {
      const result = await parity(page, "cpu", threads);
      for (const [name, r] of Object.entries(result)) {
        assert.equal(r.backend, "cpu");
        assert.equal(r.threads, threads, `${name}: the page is cross-origin isolated, the machine has 2 cores`);
        assert.ok(r.image <= 1e-4 && r.text <= 1e-4, `${name} (${threads} threads): ${JSON.stringify(r)}`);
      }
    }
  });
});

test("WebGPU backend (SwiftShader) matches open_clip within 1e-3", { timeout: 900_000 }, async () => {
  await withPage({ gpu: true }, async (page) => {
    const result = await parity(page, "webgpu");
    for (const [name, r] of Object.entries(result)) {
      assert.equal(r.backend, "webgpu");
      assert.ok(r.image <= 1e-3 && r.text <= 1e-3, `${name}: ${JSON.stringify(r)}`);
    }
  });
});

test("classify ranks labels; the text tower runs once per distinct prompt, and not at all after a reload", async () => {
  await withPage({ gpu: false }, async (page) => {
    const load = () => page.evaluate(async (F) => {
      const clip = await clipBurn.Clip.load({ weights: `${F}/vit_quickgelu.safetensors`, model: await (await fetch(`${F}/vit_quickgelu.json`)).text() });
      window.clip = clip;
      return clip.backend;
    }, F);
    assert.equal(await load(), "cpu", "auto falls back to the CPU without an adapter");
    const labels = ["cat", "dog", "car", "tree", "boat", "house", "bird", "cup", "moon", "rocket"];
    const first = await page.evaluate(async ({ F, labels }) => {
      const blob = await (await fetch(`${F}/images/astronaut_crop_37x91.png`)).blob();
      let ranked;
      for (let i = 0; i < 100; i++) ranked = await clip.classify(blob, labels);
      return { ranked, stats: { ...clip.stats }, size: clip.cache.size, batchSize: clip.batchSize };
    }, { F, labels });
    assert.equal(first.ranked.length, 10);
    assert.deepEqual(first.ranked.map((r) => r.label).sort(), [...labels].sort());
    for (let i = 1; i < 10; i++) assert.ok(first.ranked[i - 1].score >= first.ranked[i].score, "ranked best first");
    assert.ok(Math.abs(first.ranked.reduce((s, r) => s + r.score, 0) - 1) < 1e-4, "probabilities sum to 1");
    assert.equal(first.stats.textPromptsEncoded, 10, "each distinct prompt encoded once");
    assert.equal(first.stats.textTowerRuns, Math.ceil(10 / first.batchSize), "the 10 prompts in chunks of batchSize, once");
    assert.equal(first.size, 10);

    await page.reload();
    await page.waitForFunction(() => window.ready === true);
    await load();
    const second = await page.evaluate(async ({ F, labels }) => {
      const blob = await (await fetch(`${F}/images/astronaut_crop_37x91.png`)).blob();
      const ranked = await clip.classify(blob, labels);
      return { ranked, stats: { ...clip.stats } };
    }, { F, labels });
    assert.equal(second.stats.textPromptsEncoded, 0, "after a reload every prompt comes from IndexedDB");
    assert.equal(second.stats.textCacheHits, 10);
    assert.deepEqual(second.ranked, first.ranked);

    // Another model (other fingerprint) must not reuse these entries; clear() forgets them.
    const other = await page.evaluate(async ({ F, labels }) => {
      const c = await clipBurn.Clip.load({ weights: `${F}/vit_quickgelu_hf.safetensors`, model: await (await fetch(`${F}/vit_quickgelu_hf_config.json`)).text() });
      await c.embedText(labels.map((l) => `a photo of a ${l}.`));
      const encoded = c.stats.textPromptsEncoded;
      await clip.cache.clear();
      const sizeAfterClear = clip.cache.size;
      await clip.embedText("a photo of a cat.");
      return { encoded, sizeAfterClear, reencoded: clip.stats.textPromptsEncoded };
    }, { F, labels });
    assert.equal(other.encoded, 10, "different weights, different cache entries");
    assert.equal(other.sizeAfterClear, 0);
    assert.equal(other.reencoded, 1);
  });
});

test("every image input type gives the same embedding; a PNG Blob matches preprocessing exactly", async () => {
  await withPage({ gpu: false }, async (page) => {
    const r = await page.evaluate(async (F) => {
      const clip = await clipBurn.Clip.load({ weights: `${F}/vit_quickgelu.safetensors`, model: await (await fetch(`${F}/vit_quickgelu.json`)).text() });
      const url = `${F}/images/coffee_wide_500x120.png`;
      const blob = await (await fetch(url)).blob();
      const img = new Image();
      img.src = url;
      await img.decode();
      const bitmap = await createImageBitmap(blob);
      const canvas = document.createElement("canvas");
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
      canvas.getContext("2d").drawImage(bitmap, 0, 0);
      const off = new OffscreenCanvas(bitmap.width, bitmap.height);
      off.getContext("2d").drawImage(bitmap, 0, 0);
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      const ref = await clip.embedImage(blob);
      const diffs = {};
      for (const [name, input] of Object.entries({ img, bitmap, canvas, off, data })) diffs[name] = maxDiff(await clip.embedImage(input), ref);
      let norm = 0;
      for (const v of ref) norm += v * v;
      return { diffs, norm };
    }, F);
    assert.ok(Math.abs(r.norm - 1) < 1e-5, "embedImage is L2-normalised");
    for (const [name, d] of Object.entries(r.diffs)) assert.ok(d < 1e-5, `${name}: ${d}`);
  });
});

test("the worker gives the same answers off the main thread", async () => {
  await withPage({ gpu: false }, async (page) => {
    const r = await page.evaluate(async (F) => {
      const opts = { weights: `${F}/vit_quickgelu.safetensors`, model: await (await fetch(`${F}/vit_quickgelu.json`)).text(), backend: "cpu" };
      const blob = await (await fetch(`${F}/images/chelsea.jpg`)).blob();
      const labels = ["cat", "dog", "coffee"];
      const inPage = await (await clipBurn.Clip.load(opts)).classify(blob, labels);
      const worker = await ClipWorker.load(opts);
      const inWorker = await worker.classify(blob, labels);
      const text = await worker.embedText(["a cat"]);
      const size = worker.cache.size;
      const classifier = await worker.classifier(labels, "imagenet");
      return { inPage, inWorker, backend: worker.backend, size, dim: text[0].length, classifier: classifier.length, fallbackReason: worker.fallbackReason };
    }, F);
    assert.equal(r.backend, "cpu");
    assert.deepEqual(r.inWorker.map((x) => x.label), r.inPage.map((x) => x.label));
    r.inWorker.forEach((x, i) => assert.ok(Math.abs(x.score - r.inPage[i].score) < 1e-6));
    assert.equal(r.dim, 32);
    assert.equal(r.size, 4);
    assert.equal(r.classifier, 3 * 32, "a [labels, dim] classifier from OpenAI's templates");
    assert.equal(r.fallbackReason, null, "the CPU was asked for");
  });
});

test("failures reach JS as Errors with clear messages", async () => {
  await withPage({ gpu: false }, async (page) => {
    const messages = await page.evaluate(async (F) => {
      const model = await (await fetch(`${F}/vit_quickgelu.json`)).text();
      const full = new Uint8Array(await (await fetch(`${F}/vit_quickgelu.safetensors`)).arrayBuffer());
      const clip = await clipBurn.Clip.load({ weights: full, model });
      return {
        truncated: await attempt(() => clipBurn.Clip.load({ weights: full.slice(0, 100000), model })),
        unknownModel: await attempt(() => clipBurn.Clip.load({ weights: full, model: "ViT-Q-99" })),
        wrongModel: await attempt(() => clipBurn.Clip.load({ weights: full, model: "ViT-B-32" })),
        wrongFormat: await attempt(async () => clipBurn.Clip.load({ weights: await (await fetch(`${F}/images/camera.png`)).arrayBuffer(), model })),
        missingUrl: await attempt(() => clipBurn.Clip.load({ weights: `${F}/nope.safetensors`, model })),
        sha: await attempt(() => clipBurn.Clip.load({ weights: full, model, sha256: "00".repeat(32) })),
        noWebgpu: await attempt(() => clipBurn.Clip.load({ weights: full, model, backend: "webgpu" })),
        badImage: await attempt(() => clip.embedImage(new Blob([new Uint8Array([1, 2, 3, 4])]))),
        notAnImage: await attempt(() => clip.embedImage({ width: 3 })),
        badTemplate: await attempt(() => clip.classify(new ImageData(4, 4), ["cat"], { templates: ["no placeholder"] })),
      };
    }, F);
    const expect = {
      truncated: /cannot load weights.*(truncated|incomplete)/,
      unknownModel: /unknown model "ViT-Q-99"/,
      wrongModel: /weights do not fit the model.*missing/,
      wrongFormat: /unrecognised weights format/,
      missingUrl: /could not download weights .*nope.safetensors.*404/,
      sha: /integrity check/,
      noWebgpu: /WebGPU is not available/,
      badImage: /cannot decode image/,
      notAnImage: /expected an HTMLImageElement/,
      badTemplate: /no \{\} placeholder/,
    };
    for (const [k, re] of Object.entries(expect)) {
      assert.match(messages[k], /^true: /, `${k} is not an Error: ${messages[k]}`);
      assert.match(messages[k], re, k);
    }
  });
});
