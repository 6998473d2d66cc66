// Batched embedding (issue 30, item 4): embedImages and classify over arrays give what per-image
// calls give (within 1e-5) on the CPU (wasm) and WebGPU (SwiftShader) backends, for every image
// input type, in chunks of batchSize; embedText goes through the text tower in chunks too; a bad
// image names its index; [] gives []; batchSize is checked. The worker API does the same.
// Run with scripts/test-browser.sh (it builds pkg/ first).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.js";
import { withPage as onTestPage } from "./browser.js";

const SLOW = 900_000; // SwiftShader compiles every shader on first use
let server, base;

before(async () => {
  ({ server, url: base } = await startServer());
});
after(() => server?.close());

const withPage = (opts, fn) => onTestPage(base, opts, fn);

/** Defines window.inputs(): 7 images of the default model's examples, as every input type. */
async function defineInputs(page) {
  await page.evaluate(() => {
    window.inputs = async () => {
      const url = (name) => `/models/synth/examples/${name}.png`;
      const blob = async (name) => (await fetch(url(name))).blob();
      const bitmap = await createImageBitmap(await blob("green_star"));
      const canvas = document.createElement("canvas");
      Object.assign(canvas, { width: bitmap.width, height: bitmap.height });
      canvas.getContext("2d").drawImage(bitmap, 0, 0);
      const off = new OffscreenCanvas(bitmap.width, bitmap.height);
      off.getContext("2d").drawImage(await createImageBitmap(await blob("cyan_ring")), 0, 0);
      const img = new Image();
      img.src = url("pink_star");
      await img.decode();
      const data = off.getContext("2d").getImageData(0, 0, off.width, off.height);
      return [await blob("red_cross"), bitmap, canvas, img, await blob("blue_ring"), data, off, new File([await blob("yellow_square")], "y.png")];
    };
  });
}

/** embedImages/classify over arrays against per-image calls on `backend`; the largest differences. */
async function compare(page, backend) {
  await defineInputs(page);
  return page.evaluate(async (backend) => {
    const clip = await clipBurn.Clip.load({ weights: "/models/synth/clip-synth.bpk", backend });
    const labels = (await (await fetch("/models/synth/classnames.txt")).text()).split("\n").map((l) => l.trim()).filter(Boolean);
    const templates = (await (await fetch("/models/synth/templates.txt")).text()).split("\n").map((l) => l.trim()).filter(Boolean);
    const images = await inputs();
    const single = [];
    for (const image of images) single.push(await clip.embedImage(image));
    const diff = (a, b) => Math.max(...a.map((v, i) => maxDiff(v, b[i])));
    const batched3 = await clip.embedImages(images, { batchSize: 3 }); // chunks of 3, 3, 2
    const batchedDefault = await clip.embedImages(images); // one chunk of clip.batchSize
    const one = await clip.embedImages(images, { batchSize: 1 });
    const rankedMany = await clip.classify(images, labels, { templates, batchSize: 3, topK: 5 });
    const rankedSingle = [];
    for (const image of images) rankedSingle.push(await clip.classify(image, labels, { templates, topK: 5 }));
    let scoreDiff = 0;
    rankedMany.forEach((r, n) => r.forEach((x, i) => {
      if (x.label !== rankedSingle[n][i].label) scoreDiff = Infinity;
      scoreDiff = Math.max(scoreDiff, Math.abs(x.score - rankedSingle[n][i].score));
    }));
    const result = {
      backend: clip.backend, defaultBatch: clip.batchSize, count: batched3.length, dims: batched3.map((v) => v.length),
      batched3: diff(batched3, single), batchedDefault: diff(batchedDefault, single), one: diff(one, single),
      scoreDiff, top: rankedMany.map((r) => r[0].label), singleShape: Array.isArray(rankedSingle[0]) && !Array.isArray(rankedSingle[0][0]),
      manyShape: rankedMany.length,
    };
    clip.dispose();
    return result;
  }, backend);
}

function checkCompare(r, backend) {
  assert.equal(r.backend, backend);
  assert.equal(r.count, 8);
  assert.deepEqual(r.dims, Array(8).fill(64), "the default model's embedDim");
  for (const k of ["batched3", "batchedDefault", "one", "scoreDiff"]) assert.ok(r[k] <= 1e-5, `${k}: ${r[k]}`);
  assert.deepEqual(r.top, ["red cross", "green star", "green star", "pink star", "blue ring", "cyan ring", "cyan ring", "yellow square"]);
  assert.ok(r.singleShape, "one image: one ranking, as before");
  assert.equal(r.manyShape, 8);
}

test("CPU: embedImages and classify over arrays equal per-image calls within 1e-5, for every input type", async () => {
  await withPage({ gpu: false }, async (page) => {
    const r = await compare(page, "cpu");
    console.log(`cpu: ${JSON.stringify(r)}`);
    checkCompare(r, "cpu");
    assert.equal(r.defaultBatch, 8);
  });
});

test("WebGPU (SwiftShader): embedImages and classify over arrays equal per-image calls within 1e-5", { timeout: SLOW }, async () => {
  await withPage({ gpu: true }, async (page) => {
    const r = await compare(page, "webgpu");
    console.log(`webgpu: ${JSON.stringify(r)}`);
    checkCompare(r, "webgpu");
    assert.equal(r.defaultBatch, 16);
  });
});

test("embedText encodes the texts the cache lacks in chunks of batchSize, with the same results", async () => {
  await withPage({ gpu: false }, async (page) => {
    const r = await page.evaluate(async () => {
      const clip = await clipBurn.Clip.load({ weights: "/models/synth/clip-synth.bpk", backend: "cpu" });
      const texts = ["red", "green", "blue", "yellow", "purple", "pink", "cyan", "brown", "white", "black"].map((c) => `a photo of a ${c} star.`);
      await clip.cache.clear();
      const whole = await clip.embedText(texts, { batchSize: 100 });
      const runsWhole = clip.stats.textTowerRuns;
      await clip.cache.clear();
      const first = await clip.embedText(texts.slice(0, 3), { batchSize: 4 }); // 3 encoded, one run
      const chunked = await clip.embedText(texts, { batchSize: 4 }); // 3 from the cache, 7 encoded in runs of 4 and 3
      const stats = { ...clip.stats };
      clip.dispose();
      return {
        runsWhole, runs: stats.textTowerRuns - runsWhole, encoded: stats.textPromptsEncoded, hits: stats.textCacheHits,
        diff: Math.max(...chunked.map((v, i) => maxDiff(v, whole[i]))), firstSame: first.every((v, i) => maxDiff(v, chunked[i]) === 0),
      };
    });
    assert.equal(r.runsWhole, 1);
    assert.equal(r.runs, 3, "1 run for 3 texts, then 2 runs for the 7 missing");
    assert.equal(r.encoded, 10 + 3 + 7);
    assert.equal(r.hits, 3);
    assert.ok(r.diff <= 1e-5, `max diff ${r.diff}`);
    assert.ok(r.firstSame);
  });
});

test("bad input: a bad image names its index, [] gives [], batchSize must be a positive integer", async () => {
  await withPage({ gpu: false }, async (page) => {
    await defineInputs(page);
    const r = await page.evaluate(async () => {
      const clip = await clipBurn.Clip.load({ weights: "/models/synth/clip-synth.bpk", backend: "cpu" });
      const images = await inputs();
      const notAnImage = new Blob([new Uint8Array([1, 2, 3, 4])], { type: "image/png" });
      const unloaded = new Image(); // no src: no pixels
      const badBatch = {};
      for (const [k, v] of Object.entries({ zero: 0, negative: -2, fraction: 1.5, text: "4", nan: NaN })) {
        badBatch[k] = await attempt(() => clip.embedImages(images, { batchSize: v }));
      }
      return {
        undecodable: await attempt(() => clip.embedImages([...images.slice(0, 4), notAnImage, ...images.slice(4)], { batchSize: 3 })),
        undecodableFirstChunk: await attempt(() => clip.embedImages([images[0], notAnImage], { batchSize: 8 })),
        unloaded: await attempt(() => clip.embedImages([images[0], images[1], unloaded], { batchSize: 2 })),
        notImage: await attempt(() => clip.embedImages([images[0], { width: 2 }, images[1]])),
        classifyBad: await attempt(() => clip.classify([images[0], images[1], images[2], notAnImage], ["red cross", "green star"])),
        notArray: await attempt(() => clip.embedImages(images[0])),
        emptyEmbed: await clip.embedImages([]),
        emptyClassify: await clip.classify([], ["red cross"]),
        badBatch,
        badLoadBatch: await attempt(() => clipBurn.Clip.load({ weights: "/models/synth/clip-synth.bpk", backend: "cpu", batchSize: 0 })),
        badClassifyBatch: await attempt(() => clip.classify(images, ["red cross"], { batchSize: -1 })),
        badTextBatch: await attempt(() => clip.embedText(["a"], { batchSize: 2.5 })),
        stillWorks: (await clip.embedImages(images.slice(0, 2))).length,
        fromSet: (await clip.classify(new Set(images.slice(0, 3)), ["red cross", "green star"])).map((r) => r.length),
        backend: clip.backend,
      };
    });
    console.log(JSON.stringify(r, null, 1));
    assert.match(r.undecodable, /^true: image 4: cannot decode image/, "index in the whole array, not in its chunk");
    assert.match(r.undecodableFirstChunk, /^true: image 1: cannot decode image/);
    assert.match(r.unloaded, /^true: image 2: the image has no pixels yet/);
    assert.match(r.notImage, /^true: image 1: cannot embed \[object Object\]: expected an HTMLImageElement/);
    assert.match(r.classifyBad, /^true: image 3: cannot decode image/);
    assert.match(r.notArray, /^true: embedImages takes an array of images/);
    assert.deepEqual(r.emptyEmbed, []);
    assert.deepEqual(r.emptyClassify, []);
    for (const [k, m] of Object.entries(r.badBatch)) assert.match(m, /^true: embedImages: batchSize must be a positive integer/, k);
    assert.match(r.badBatch.text, /got "4"/);
    assert.match(r.badLoadBatch, /^true: Clip\.load: batchSize must be a positive integer .*got 0/);
    assert.match(r.badClassifyBatch, /^true: classify: batchSize must be a positive integer .*got -1/);
    assert.match(r.badTextBatch, /^true: embedText: batchSize must be a positive integer .*got 2\.5/);
    assert.equal(r.stillWorks, 2);
    assert.deepEqual(r.fromSet, [2, 2, 2], "any iterable of images is a list: one ranking each");
  });
});

test("ClipWorker: embedImages and classify over arrays equal the page's per-image calls; errors name the index", async () => {
  await withPage({ gpu: false }, async (page) => {
    await defineInputs(page);
    const r = await page.evaluate(async () => {
      const opts = { weights: "/models/synth/clip-synth.bpk", backend: "cpu" };
      const labels = ["red cross", "green star", "pink star", "blue ring", "cyan ring", "yellow square"];
      const clip = await clipBurn.Clip.load(opts);
      const single = [];
      for (const image of await inputs()) single.push(await clip.embedImage(image));
      const rankedSingle = [];
      for (const image of await inputs()) rankedSingle.push(await clip.classify(image, labels));
      const worker = await ClipWorker.load({ ...opts, batchSize: 3 });
      const batched = await worker.embedImages(await inputs());
      const ranked = await worker.classify(await inputs(), labels, { batchSize: 5 });
      const one = await worker.classify((await inputs())[0], labels);
      const bad = new Blob([new Uint8Array(10)]);
      const errors = {
        undecodable: await attempt(async () => worker.embedImages([...(await inputs()).slice(0, 5), bad])),
        notImage: await attempt(async () => worker.embedImages([(await inputs())[0], 42])),
        batchSize: await attempt(async () => worker.embedImages(await inputs(), { batchSize: 0 })),
      };
      const result = {
        batchSize: worker.batchSize,
        diff: Math.max(...batched.map((v, i) => maxDiff(v, single[i]))),
        isFloat32: batched.every((v) => v instanceof Float32Array),
        scoreDiff: Math.max(...ranked.flatMap((r, n) => r.map((x, i) => (x.label === rankedSingle[n][i].label ? Math.abs(x.score - rankedSingle[n][i].score) : Infinity)))),
        oneShape: Array.isArray(one) && typeof one[0].label === "string",
        errors,
        empty: await worker.embedImages([]),
      };
      worker.dispose();
      clip.dispose();
      return result;
    });
    assert.equal(r.batchSize, 3);
    assert.ok(r.isFloat32);
    assert.ok(r.diff <= 1e-5, `max diff ${r.diff}`);
    assert.ok(r.scoreDiff <= 1e-5, `max score diff ${r.scoreDiff}`);
    assert.ok(r.oneShape);
    assert.match(r.errors.undecodable, /^true: image 5: cannot decode image/);
    assert.match(r.errors.notImage, /^true: image 1: cannot embed \[object Number\]/);
    assert.match(r.errors.batchSize, /^true: embedImages: batchSize must be a positive integer/);
    assert.deepEqual(r.empty, []);
  });
});
