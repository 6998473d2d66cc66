// Weights cached across visits (issue 30, item 3), in headless Chromium: Clip.load keeps weights
// given by URL in Cache Storage ("clip-burn-weights", keyed by the absolute URL and the expected
// SHA-256), so a load after a page reload makes no request for them; cached copies are checked
// (the expected SHA-256, their stored digest and length) and dropped and downloaded again when
// they fail; `cache: false` neither reads nor stores; clearWeightsCache() frees the space; a
// missing, refusing or full Cache Storage falls back to the network with the reason in
// clip.stats.weights; a Blob body Cache Storage refuses is stored as a stream; the same through
// ClipWorker. Downloads are counted twice: by the test
// server's own log and by Playwright's request events.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./server.js";
import { launch, openPage } from "./browser.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const F = "/tests/fixtures";
const VIT = `${F}/vit_quickgelu.safetensors`;
const GELU = `${F}/vit_gelu.safetensors`;
const sha = (path) => createHash("sha256").update(readFileSync(`${ROOT}${path}`)).digest("hex");
const VIT_SHA = sha(VIT);
const VIT_BYTES = readFileSync(`${ROOT}${VIT}`).length;

let server, base;
const served = []; // paths the server was asked for, in order

before(async () => {
  ({ server, url: base } = await startServer({ onRequest: (req) => served.push(new URL(req.url, "http://x").pathname) }));
});
after(() => server?.close());
beforeEach(() => {
  served.length = 0;
});

/** Requests the server got for `path` since the last `take` (or the test's start). */
function take(path) {
  const n = served.filter((p) => p === path).length;
  served.length = 0;
  return n;
}

/** A fresh browser profile (empty Cache Storage) and the test page; `seen` counts requests as Playwright sees them. */
async function withPage(fn) {
  const { context } = await launch({ gpu: false });
  try {
    const seen = [];
    context.on("request", (r) => seen.push(new URL(r.url()).pathname));
    const { page, errors } = await openPage(context, base);
    const reload = async () => {
      await page.reload();
      await page.waitForFunction(() => window.ready === true);
    };
    await fn({ page, seen, reload });
    assert.deepEqual(errors, [], "no uncaught errors");
  } finally {
    await context.close();
  }
}

/** Loads `weights` in the page with `opts` (Clip, or ClipWorker with worker: true); returns stats.weights and the progress calls. */
function load(page, weights, opts = {}) {
  return page.evaluate(async ({ F, weights, opts }) => {
    const configs = { "vit_quickgelu.safetensors": "vit_quickgelu.json", "vit_gelu.safetensors": "vit_gelu.json" };
    const name = weights.split("/").pop();
    const model = configs[name] ? await (await fetch(`${F}/${configs[name]}`)).text() : undefined;
    const progress = [];
    const { worker, ...rest } = opts;
    const Kind = worker ? ClipWorker : clipBurn.Clip;
    try {
      const clip = await Kind.load({ weights, model, backend: "cpu", onProgress: (...a) => progress.push(a), ...rest });
      const text = Array.from(await clip.embedText("a photo of a cat."));
      const out = { weights: clip.stats.weights, fingerprint: clip.fingerprint, progress, text };
      clip.dispose();
      return out;
    } catch (e) {
      return { error: `${e instanceof Error}: ${e.message}`, progress };
    }
  }, { F, weights, opts });
}

const entries = (page) => page.evaluate(() => clipBurn.Clip.cachedWeights());

/** Checks the progress calls: all from `source`, rising, ending at the weights' size. */
function assertProgress(progress, source, bytes) {
  assert.ok(progress.length >= 2, `progress was reported: ${JSON.stringify(progress)}`);
  assert.deepEqual(progress[0], [0, bytes, source], "first call: 0 of the total");
  assert.deepEqual(progress.at(-1), [bytes, bytes, source], "last call: all of it");
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0], "loaded never goes back");
  assert.ok(progress.every((p) => p[2] === source), `every call says ${source}`);
}

test("(a) a load after a reload reads the weights from Cache Storage: no request for them, stats say cache", async () => {
  await withPage(async ({ page, seen, reload }) => {
    const first = await load(page, VIT);
    assert.equal(first.error, undefined, first.error);
    assert.deepEqual(first.weights, { source: "network", cached: true, bytes: VIT_BYTES, url: `${base}${VIT}` });
    assert.equal(first.fingerprint, VIT_SHA);
    assertProgress(first.progress, "network", VIT_BYTES);
    assert.equal(take(VIT), 1);
    assert.equal(seen.filter((p) => p === VIT).length, 1, "Playwright sees the download");
    const stored = await entries(page);
    assert.equal(stored.length, 1);
    assert.deepEqual({ ...stored[0], storedAt: undefined }, { url: `${base}${VIT}`, sha256: null, fingerprint: VIT_SHA, bytes: VIT_BYTES, storedAt: undefined });
    assert.ok(Date.now() - Date.parse(stored[0].storedAt) < 600_000, `storedAt is a time: ${stored[0].storedAt}`);
    // What Cache Storage holds: a response of our own, no Vary, no server headers.
    const raw = await page.evaluate(async () => {
      const c = await caches.open("clip-burn-weights");
      const [key] = await c.keys();
      const res = await c.match(key);
      return { key: key.url, headers: [...res.headers.keys()].sort(), vary: res.headers.get("vary"), size: (await res.arrayBuffer()).byteLength };
    });
    assert.equal(raw.key, `https://clip-burn.invalid/weights?url=${encodeURIComponent(`${base}${VIT}`)}`);
    assert.deepEqual(raw.headers, ["content-length", "content-type", "x-clip-burn-sha256", "x-clip-burn-stored", "x-clip-burn-url"]);
    assert.equal(raw.vary, null);
    assert.equal(raw.size, VIT_BYTES);

    await reload();
    seen.length = 0;
    take(VIT);
    // A relative URL names the same file: the key is the absolute URL.
    const second = await load(page, "../fixtures/vit_quickgelu.safetensors");
    assert.equal(second.error, undefined, second.error);
    assert.equal(take(VIT), 0, "the server saw no request for the weights");
    assert.equal(seen.filter((p) => p === VIT).length, 0, "the browser made no request for the weights");
    assert.deepEqual(second.weights, { source: "cache", cached: true, bytes: VIT_BYTES, url: `${base}${VIT}` });
    assert.equal(second.fingerprint, VIT_SHA);
    assertProgress(second.progress, "cache", VIT_BYTES);
    assert.deepEqual(second.text, first.text, "the same model");

    // Weights given as bytes or a Blob: nothing to download, nothing cached.
    const memory = await page.evaluate(async (VIT) => {
      const buffer = await (await fetch(VIT)).arrayBuffer();
      const model = await (await fetch(VIT.replace(".safetensors", ".json"))).text();
      const a = await clipBurn.Clip.load({ weights: buffer, model, backend: "cpu" });
      const progress = [];
      const b = await clipBurn.Clip.load({ weights: new Blob([buffer]), model, backend: "cpu", onProgress: (...p) => progress.push(p) });
      return { a: a.stats.weights, b: b.stats.weights, last: progress.at(-1), entries: (await clipBurn.Clip.cachedWeights()).length };
    }, VIT);
    assert.deepEqual(memory.a, { source: "memory", cached: false, bytes: VIT_BYTES });
    assert.deepEqual(memory.b, { source: "memory", cached: false, bytes: VIT_BYTES });
    assert.deepEqual(memory.last, [VIT_BYTES, VIT_BYTES, "memory"]);
    assert.equal(memory.entries, 1, "still only the URL's entry");
  });
});

test("(b) sha256: part of the key, checked on cached copies; a failing copy is dropped and downloaded again; a failing download fails the load", async () => {
  await withPage(async ({ page, reload }) => {
    const withSha = await load(page, VIT, { sha256: VIT_SHA.toUpperCase() });
    assert.deepEqual(withSha.weights, { source: "network", cached: true, bytes: VIT_BYTES, url: `${base}${VIT}` });
    const without = await load(page, VIT);
    assert.equal(without.weights.source, "network", "another key: the URL without an expected digest");
    assert.equal(take(VIT), 2);
    assert.deepEqual((await entries(page)).map((e) => e.sha256).sort(), [VIT_SHA, null].sort());
    assert.equal((await load(page, VIT, { sha256: VIT_SHA })).weights.source, "cache");
    assert.equal(take(VIT), 0);

    /** Replaces the body of the cached entry with `sha256` (or none) by what `edit` makes of it. */
    const tamper = (expected, edit) => page.evaluate(async ({ expected, edit }) => {
      const c = await caches.open("clip-burn-weights");
      const key = (await c.keys()).find((k) => new URL(k.url).searchParams.get("sha256") === expected);
      const res = await c.match(key);
      const headers = new Headers(res.headers);
      let bytes = new Uint8Array(await res.arrayBuffer());
      if (edit === "flip") bytes[bytes.length - 1] ^= 0xff;
      if (edit === "flip+digest") {
        bytes[bytes.length - 1] ^= 0xff;
        const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
        headers.set("x-clip-burn-sha256", Array.from(d, (b) => b.toString(16).padStart(2, "0")).join(""));
      }
      if (edit === "truncate") bytes = bytes.slice(0, 1000);
      await c.put(key, new Response(bytes, { headers }));
    }, { expected, edit });

    // A copy consistent with its own stored digest but not with the expected one.
    await tamper(VIT_SHA, "flip+digest");
    await reload();
    const bad = await load(page, VIT, { sha256: VIT_SHA });
    assert.equal(bad.error, undefined, bad.error);
    assert.equal(bad.weights.source, "network");
    assert.equal(bad.weights.cached, true, "the good copy replaced it");
    assert.match(bad.weights.reason, new RegExp(`^the cached copy failed the integrity check \\(expected SHA-256 ${VIT_SHA}, got [0-9a-f]{64}\\): it was dropped and downloaded again$`));
    assert.equal(bad.progress.at(-1)[2], "network");
    assert.equal(take(VIT), 1);
    assert.equal((await load(page, VIT, { sha256: VIT_SHA })).weights.source, "cache", "and is read next time");
    assert.equal(take(VIT), 0);

    // Without an expected digest: the digest stored with the copy, and its length, still catch damage.
    await tamper(null, "flip");
    const corrupt = await load(page, VIT);
    assert.equal(corrupt.weights.source, "network");
    assert.match(corrupt.weights.reason, /^the cached copy is corrupt \(SHA-256 [0-9a-f]{64}, [0-9a-f]{64} when stored\): it was dropped and downloaded again$/);
    await tamper(null, "truncate");
    const truncated = await load(page, VIT);
    assert.equal(truncated.weights.source, "network");
    assert.match(truncated.weights.reason, new RegExp(`^the cached copy is truncated \\(1000 of ${VIT_BYTES} bytes\\): it was dropped and downloaded again$`));
    assert.equal(take(VIT), 2);
    assert.equal((await load(page, VIT)).weights.source, "cache");

    // An expected digest the file on the server does not have: the load fails, nothing is stored.
    const wrong = await load(page, VIT, { sha256: "ab".repeat(32) });
    assert.match(wrong.error, new RegExp(`^true: weights failed the integrity check: expected SHA-256 ${"ab".repeat(32)}, got ${VIT_SHA}$`));
    assert.equal((await entries(page)).filter((e) => e.sha256 === "ab".repeat(32)).length, 0);
    // ... also when a cached copy under that digest failed first (put there by hand).
    await page.evaluate(async ({ base, VIT }) => {
      const c = await caches.open("clip-burn-weights");
      const key = `https://clip-burn.invalid/weights?url=${encodeURIComponent(base + VIT)}&sha256=${"ab".repeat(32)}`;
      await c.put(key, new Response(new Uint8Array([1, 2, 3])));
    }, { base, VIT });
    const wrongAgain = await load(page, VIT, { sha256: "ab".repeat(32) });
    assert.match(wrongAgain.error, /^true: weights failed the integrity check: expected SHA-256 (ab)+, got /);
    assert.equal((await entries(page)).filter((e) => e.sha256 === "ab".repeat(32)).length, 0, "the bad copy was dropped");
    assert.equal((await load(page, VIT, { sha256: "not a digest" })).error, 'true: sha256 must be the 64 hexadecimal digits of a SHA-256 digest, got "not a digest"');

    // Bytes that download fine but are no model (an HTML page served with 200): not kept.
    const notAModel = await load(page, "/tests/browser/page.html");
    assert.match(notAModel.error, /^true: .*unrecognised weights format/);
    assert.equal((await entries(page)).filter((e) => e.url.endsWith("page.html")).length, 0, "a file the model did not load from is not kept");
  });
});

test("(c) cache: false downloads every time and stores nothing", async () => {
  await withPage(async ({ page }) => {
    for (let i = 0; i < 2; i++) {
      const r = await load(page, VIT, { cache: false });
      assert.deepEqual(r.weights, { source: "network", cached: false, bytes: VIT_BYTES, url: `${base}${VIT}`, reason: "cache: false" });
      assertProgress(r.progress, "network", VIT_BYTES);
    }
    assert.equal(take(VIT), 2);
    assert.equal(await page.evaluate(() => caches.has("clip-burn-weights")), false, "the cache was not even created");
    assert.equal((await load(page, VIT)).weights.source, "network");
    assert.equal((await load(page, VIT, { cache: false })).weights.source, "network", "a cached copy is not read either");
    assert.equal(take(VIT), 2);
    assert.equal((await entries(page)).length, 1);
    assert.equal((await load(page, VIT, { cache: "yes" })).error, 'true: cache must be true or false, got "yes"');
    // A blob: URL is fetched, but it names nothing a later visit could ask for again.
    const blobUrl = await page.evaluate(async (VIT) => URL.createObjectURL(await (await fetch(VIT)).blob()), VIT);
    const fromBlobUrl = await load(page, blobUrl, { model: readFileSync(`${ROOT}${F}/vit_quickgelu.json`, "utf8") });
    assert.equal(fromBlobUrl.error, undefined, fromBlobUrl.error);
    assert.deepEqual(fromBlobUrl.weights, { source: "network", cached: false, bytes: VIT_BYTES, url: blobUrl, reason: "blob: URLs are not cached" });
    assert.equal((await entries(page)).length, 1);
  });
});

test("(d) clearWeightsCache() frees the space: one URL's entries, or all", async () => {
  await withPage(async ({ page }) => {
    await load(page, VIT);
    await load(page, VIT, { sha256: VIT_SHA });
    await load(page, GELU);
    assert.equal((await entries(page)).length, 3);
    const r = await page.evaluate(async () => {
      const usage = async () => (await navigator.storage.estimate()).usage;
      const before = await usage();
      const one = await clipBurn.Clip.clearWeightsCache("../fixtures/vit_quickgelu.safetensors");
      const left = (await clipBurn.Clip.cachedWeights()).map((e) => e.url);
      const all = await clipBurn.Clip.clearWeightsCache();
      return { before, one, left, all, after: await usage(), again: await clipBurn.Clip.clearWeightsCache(), has: await caches.has("clip-burn-weights") };
    });
    assert.equal(r.one, true, "both entries of the URL (with and without sha256)");
    assert.deepEqual(r.left, [`${base}${GELU}`]);
    assert.equal(r.all, true);
    assert.equal(r.again, false, "nothing left to delete");
    assert.equal(r.has, false);
    assert.ok(r.after < r.before - 4e6, `usage fell from ${r.before} to ${r.after}`);
    assert.deepEqual(await entries(page), []);
    take(VIT);
    assert.equal((await load(page, VIT)).weights.source, "network", "downloaded again");
    assert.equal(take(VIT), 1);
  });
});

test("(e) no Cache Storage, one that refuses, a full one: the load succeeds from the network and says why", async () => {
  await withPage(async ({ page, reload }) => {
    /** Applies `how` to the page's Cache Storage, loads, and reloads the page to undo it. */
    const broken = async (how, opts) => {
      await page.evaluate((how) => {
        const fail = (name) => () => Promise.reject(new DOMException(`simulated ${name}`, name));
        if (how === "missing") Object.defineProperty(window, "caches", { value: undefined, configurable: true });
        if (how === "throws") Object.defineProperty(window, "caches", { get() { throw new DOMException("simulated", "SecurityError"); }, configurable: true });
        if (how === "open") caches.open = fail("SecurityError");
        if (how === "quota") Cache.prototype.put = fail("QuotaExceededError");
        if (how === "match") Cache.prototype.match = fail("UnknownError");
        if (how === "estimate") navigator.storage.estimate = async () => ({ quota: 2e6, usage: 1e6 });
      }, how);
      const r = await load(page, VIT, opts);
      const extra = await page.evaluate(async () => ({ list: await clipBurn.Clip.cachedWeights().then((l) => l.length, (e) => e.message), clear: await clipBurn.Clip.clearWeightsCache().catch((e) => e.message) }));
      await reload();
      return { ...r, ...extra };
    };

    const missing = await broken("missing");
    assert.equal(missing.error, undefined, missing.error);
    assert.deepEqual(missing.weights, { source: "network", cached: false, bytes: VIT_BYTES, url: `${base}${VIT}`, reason: "Cache Storage is not available in this browser" });
    assertProgress(missing.progress, "network", VIT_BYTES);
    assert.deepEqual([missing.list, missing.clear], [0, false], "cachedWeights() and clearWeightsCache() work without it");

    const throws = await broken("throws");
    assert.equal(throws.weights.reason, "Cache Storage is not accessible (SecurityError: simulated)");
    assert.equal(throws.weights.source, "network");

    const refused = await broken("open");
    assert.equal(refused.weights.reason, "Cache Storage could not be opened (SecurityError: simulated SecurityError; private browsing?)");
    assert.equal(refused.weights.cached, false);

    const full = await broken("quota");
    assert.equal(full.error, undefined, full.error);
    assert.deepEqual(full.weights, { source: "network", cached: false, bytes: VIT_BYTES, url: `${base}${VIT}`, reason: "storing the weights in Cache Storage failed (QuotaExceededError: simulated QuotaExceededError)" });
    assert.deepEqual(await entries(page), [], "nothing was stored");

    const small = await broken("estimate");
    assert.match(small.weights.reason, new RegExp(`^storing the weights in Cache Storage failed \\(not enough storage quota: ${(VIT_BYTES / 1e6).toFixed(1)} MB needed, 1\\.0 MB free\\)$`));
    assert.equal(small.weights.cached, false);

    assert.equal((await load(page, VIT)).weights.cached, true);
    const unreadable = await broken("match");
    assert.equal(unreadable.error, undefined, unreadable.error);
    assert.equal(unreadable.weights.source, "network");
    assert.equal(unreadable.weights.reason, "reading the cached copy failed (UnknownError: simulated UnknownError): downloaded again");
    assert.equal(take(VIT), 7, "every load above downloaded");
  });
});

test("(f) ClipWorker: the same cache, relative URLs the page's; progress from the cache; cache: false", async () => {
  await withPage(async ({ page, reload }) => {
    const rel = "../fixtures/vit_quickgelu.safetensors";
    const first = await load(page, rel, { worker: true });
    assert.equal(first.error, undefined, first.error);
    assert.deepEqual(first.weights, { source: "network", cached: true, bytes: VIT_BYTES, url: `${base}${VIT}` });
    assertProgress(first.progress, "network", VIT_BYTES);
    assert.equal(take(VIT), 1);

    await reload();
    take(VIT);
    const second = await load(page, rel, { worker: true });
    assert.equal(second.error, undefined, second.error);
    assert.equal(take(VIT), 0, "the server saw no request for the weights");
    assert.deepEqual(second.weights, { source: "cache", cached: true, bytes: VIT_BYTES, url: `${base}${VIT}` });
    assertProgress(second.progress, "cache", VIT_BYTES);
    assert.deepEqual(second.text, first.text);
    const inPage = await load(page, VIT);
    assert.equal(inPage.weights.source, "cache", "the page and its workers share one Cache Storage");

    const withSha = await load(page, rel, { worker: true, sha256: VIT_SHA });
    assert.equal(withSha.weights.source, "network", "another key");
    const r = await page.evaluate(async () => ({
      list: (await ClipWorker.cachedWeights()).length,
      one: await ClipWorker.clearWeightsCache("../fixtures/vit_quickgelu.safetensors"),
      after: (await ClipWorker.cachedWeights()).length,
    }));
    assert.deepEqual(r, { list: 2, one: true, after: 0 });
    const off = await load(page, rel, { worker: true, cache: false });
    assert.equal(off.weights.reason, "cache: false");
    assert.equal(off.weights.source, "network");
    assert.equal(take(VIT), 2);
    assert.deepEqual(await entries(page), []);
  });
});

test("(g) a Blob body Cache Storage refuses (as Chromium does for a 605 MB one) is stored again as a stream; the next visit reads it", async () => {
  await withPage(async ({ page, reload }) => {
    await page.evaluate(async () => {
      // The CPU path's module (and pool) loaded before Response is wrapped: wasm-bindgen's init
      // checks `instanceof Response`. The page's modules are instantiated once.
      (await clipBurn.Clip.load({ weights: "/models/synth/clip-synth.bpk", backend: "cpu", cache: false })).dispose();
      // The first put fails as Chromium 156's did for ViT-B-32's f32 safetensors; the bodies are recorded.
      window.bodies = [];
      const Original = window.Response;
      window.Response = class extends Original {
        constructor(body, init) {
          super(body, init);
          window.bodies.push(body?.constructor?.name ?? String(body));
        }
      };
      const put = Cache.prototype.put;
      let calls = 0;
      Cache.prototype.put = function (...args) {
        calls += 1;
        return calls === 1 ? Promise.reject(new DOMException("Unexpected internal error.", "UnknownError")) : put.apply(this, args);
      };
    });
    const first = await load(page, VIT);
    assert.equal(first.error, undefined, first.error);
    assert.deepEqual(first.weights, { source: "network", cached: true, bytes: VIT_BYTES, url: `${base}${VIT}` }, "stored, no reason");
    assert.deepEqual(await page.evaluate(() => window.bodies), ["Blob", "ReadableStream"]);
    assert.equal(take(VIT), 1);
    await reload();
    const second = await load(page, VIT);
    assert.equal(second.weights.source, "cache");
    assert.equal(second.fingerprint, VIT_SHA, "the streamed copy holds the same bytes");
    assert.deepEqual(second.text, first.text);
    assert.equal(take(VIT), 0);
  });
});
