// The CPU path on several threads (issue: browser CPU path on every core): in a cross-origin
// isolated page the package loads the threaded module (pkg-threads/) with a pool of Web Workers;
// without isolation, or when the threaded module or a worker cannot start, the single-threaded
// CPU module (pkg-cpu/), and `threadsReason` says why; the CPU path never fetches the WebGPU
// module (pkg/). Parity of both with open_clip is in clip.test.js.
// Run with scripts/test-browser.sh (it builds the modules first).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.js";
import { withPage as onTestPage } from "./browser.js";

let isolated, plain;
const requests = { isolated: [], plain: [] };

before(async () => {
  isolated = await startServer({ onRequest: (req) => requests.isolated.push(req.url) });
  plain = await startServer({ isolated: false, onRequest: (req) => requests.plain.push(req.url) });
});
after(() => {
  isolated?.server.close();
  plain?.server.close();
});

const MODEL = "/models/synth/clip-synth.bpk";

/** In the page: while `window.poolWorkersBlocked`, `new Worker` of the pool's script throws (a page's CSP, say). */
function blockablePoolWorkers() {
  const RealWorker = Worker;
  window.Worker = class extends RealWorker {
    constructor(url, options) {
      if (window.poolWorkersBlocked && String(url).includes("pool-worker")) throw new Error("blocked by the test");
      super(url, options);
    }
  };
}

test("an isolated page runs the CPU path on a pool of workers; threads and threadsReason say so; the answers are the single-threaded module's", async () => {
  await onTestPage(isolated.url, { gpu: false }, async (page, _context, errors) => {
    const r = await page.evaluate(async (MODEL) => {
      const blob = await (await fetch("/models/synth/examples/blue_triangle.png")).blob();
      const labels = ["red circle", "blue square", "blue triangle"];
      const threaded = await clipBurn.Clip.load({ weights: MODEL, backend: "cpu" });
      const one = await clipBurn.Clip.load({ weights: MODEL, backend: "cpu", threads: 1 });
      const out = {
        isolated: crossOriginIsolated,
        cores: navigator.hardwareConcurrency,
        threaded: { threads: threaded.threads, reason: threaded.threadsReason },
        one: { threads: one.threads, reason: one.threadsReason },
        a: await threaded.classify(blob, labels),
        b: await one.classify(blob, labels),
        ea: Array.from(await threaded.embedText("a red circle")),
        eb: Array.from(await one.embedText("a red circle")),
      };
      threaded.dispose();
      one.dispose();
      return out;
    }, MODEL);
    assert.equal(r.isolated, true);
    assert.equal(r.threaded.threads, Math.min(r.cores, 8), "default: every core, at most 8");
    assert.equal(r.threaded.reason, null);
    assert.deepEqual(r.one, { threads: 1, reason: "threads: 1 was asked for" });
    assert.deepEqual(r.a.map((x) => x.label), r.b.map((x) => x.label));
    r.a.forEach((x, i) => assert.ok(Math.abs(x.score - r.b[i].score) < 1e-5, `${x.label}: ${x.score} vs ${r.b[i].score}`));
    assert.ok(Math.max(...r.ea.map((v, i) => Math.abs(v - r.eb[i]))) < 1e-5);
    // The threaded module for the default load, the single-threaded CPU one for `threads: 1`;
    // never the WebGPU module (no adapter here).
    assert.deepEqual([...new Set(requests.isolated.filter((u) => u.endsWith(".wasm")))].sort(), ["/pkg-cpu/clip_wasm_bg.wasm", "/pkg-threads/clip_wasm_bg.wasm"]);
    assert.deepEqual(errors, []);
  });
});

// The default model is small: 16 of its images gained 1.1-1.35x from a second thread, 64 gained
// 1.38x-1.78x (ViT-B-32's image tower about 1.5x, BENCHMARKS.md); the bar, 0.85 of the time, is below that.
test("the threaded module really runs on more than one thread: 2 threads encode a batch faster than one", async () => {
  await onTestPage(isolated.url, { gpu: false }, async (page) => {
    const r = await page.evaluate(async (MODEL) => {
      const time = async (threads) => {
        const clip = await clipBurn.Clip.load({ weights: MODEL, backend: "cpu", threads });
        const s = clip.inner.imageSize;
        const n = 64;
        const px = Float32Array.from({ length: n * 3 * s * s }, (_, i) => Math.sin(i) * 0.5);
        await clip.inner.encodePixels(px, n); // warm-up
        const runs = [];
        for (let k = 0; k < 5; k++) {
          const t0 = performance.now();
          await clip.inner.encodePixels(px, n);
          runs.push(performance.now() - t0);
        }
        const threadsUsed = clip.threads;
        clip.dispose();
        return { ms: runs.sort((a, b) => a - b)[2], threads: threadsUsed };
      };
      // Alternating, best of three medians each: a busy moment on the machine does not decide it
      // (with two, one CI run of this 2-core machine measured 1.11x where others measure 1.6-1.8x).
      const one = [], two = [];
      for (let round = 0; round < 3; round++) {
        one.push(await time(1));
        two.push(await time(2));
      }
      return { one: Math.min(...one.map((x) => x.ms)), two: Math.min(...two.map((x) => x.ms)), threads: two[0].threads, cores: navigator.hardwareConcurrency };
    }, MODEL);
    console.log(`64 images of the default model: 1 thread ${r.one.toFixed(1)} ms, 2 threads ${r.two.toFixed(1)} ms (${(r.one / r.two).toFixed(2)}x), ${r.cores} cores`);
    assert.ok(r.cores >= 2, "this test needs 2 cores");
    assert.equal(r.threads, 2);
    assert.ok(r.two < 0.85 * r.one, `2 threads ${r.two} ms vs 1 thread ${r.one} ms`);
  });
});

test("dispose() ends the pool's workers; a ClipWorker's pool runs in its worker and ends with it", async () => {
  await onTestPage(isolated.url, { gpu: false }, async (page, _context, errors) => {
    const r = await page.evaluate(async (MODEL) => {
      const clip = await clipBurn.Clip.load({ weights: MODEL, backend: "cpu", threads: 2 });
      await clip.embedText("a red circle");
      const exited = clip._poolExited;
      clip.dispose();
      const ended = await Promise.race([exited.then(() => "ended"), new Promise((r) => setTimeout(() => r("still running after 10 s"), 10_000))]);
      const worker = await ClipWorker.load({ weights: MODEL, backend: "cpu", threads: 2 });
      const inWorker = { threads: worker.threads, reason: worker.threadsReason, ranked: (await worker.classify(new ImageData(64, 64), ["red", "blue"])).length };
      worker.dispose();
      return { ended, inWorker };
    }, MODEL);
    assert.equal(r.ended, "ended");
    assert.deepEqual(r.inWorker, { threads: 2, reason: null, ranked: 2 });
    assert.deepEqual(errors, []);
  });
});

test("a page that is not cross-origin isolated loads the single-threaded module, classifies, and says why", async () => {
  await onTestPage(plain.url, { gpu: false }, async (page, _context, errors) => {
    const r = await page.evaluate(async (MODEL) => {
      const clip = await clipBurn.Clip.load({ weights: MODEL, backend: "cpu", threads: 4 });
      const ranked = await clip.classify(new ImageData(64, 64), ["red", "blue"]);
      return { isolated: crossOriginIsolated, threads: clip.threads, reason: clip.threadsReason, ranked: ranked.length };
    }, MODEL);
    assert.equal(r.isolated, false);
    assert.equal(r.threads, 1);
    assert.match(r.reason, /^the page is not cross-origin isolated \(serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp/);
    assert.equal(r.ranked, 2);
    // The CPU path fetches the CPU module only: not the threaded one, not the WebGPU one.
    const wasmFetched = requests.plain.filter((u) => u.endsWith(".wasm"));
    assert.deepEqual(wasmFetched, ["/pkg-cpu/clip_wasm_bg.wasm"]);
    assert.deepEqual(errors, []);
  });
});

// More threads than cores get every core (and the reason), not one thread: what a page asking for
// 16 on a 4-core laptop wants.
test("bad thread counts, more threads than cores, no SharedArrayBuffer, a worker that cannot start, a module that does not compile: a clear error, or the cores there are / the single-threaded module with the reason", async () => {
  await onTestPage(isolated.url, { gpu: false }, async (page) => {
    await page.evaluate(blockablePoolWorkers);
    const r = await page.evaluate(async (MODEL) => {
      const load = (options) => clipBurn.Clip.load({ weights: MODEL, backend: "cpu", ...options });
      const described = async (options) => {
        const clip = await load(options);
        const out = { threads: clip.threads, reason: clip.threadsReason, ranked: (await clip.classify(new ImageData(8, 8), ["a", "b"])).length };
        clip.dispose();
        return out;
      };
      // First: the threaded module is instantiated once per page, from the first load's URL.
      const notWasm = await described({ threadsWasmUrl: "/tests/fixtures/vit_quickgelu.json" });
      const out = {
        notWasm,
        zero: await attempt(() => load({ threads: 0 })),
        fraction: await attempt(() => load({ threads: 1.5 })),
        text: await attempt(() => load({ threads: "4" })),
        tooMany: await described({ threads: 1000 }),
      };
      // Pool workers that cannot be created (a page's CSP, say).
      window.poolWorkersBlocked = true;
      out.noWorkers = await described({});
      window.poolWorkersBlocked = false;
      // A browser without SharedArrayBuffer (isolated or not).
      const SAB = window.SharedArrayBuffer;
      delete window.SharedArrayBuffer;
      out.noSab = await described({});
      window.SharedArrayBuffer = SAB;
      out.cores = navigator.hardwareConcurrency;
      return out;
    }, MODEL);
    for (const k of ["zero", "fraction", "text"]) assert.match(r[k], /^true: Clip\.load: threads must be a positive integer/, k);
    assert.deepEqual(r.tooMany, { threads: r.cores, reason: `1000 threads were asked for, navigator.hardwareConcurrency is ${r.cores}`, ranked: 2 });
    assert.equal(r.notWasm.threads, 1);
    assert.match(r.notWasm.reason, /^the threaded module could not start \(the threaded WebAssembly module failed to load: .*\): running on one thread$/);
    assert.equal(r.notWasm.ranked, 2);
    assert.equal(r.noWorkers.threads, 1);
    assert.match(r.noWorkers.reason, /^the threaded module could not start \(a pool worker could not be created: blocked by the test\): running on one thread$/);
    assert.deepEqual(r.noSab, { threads: 1, reason: "this browser has no SharedArrayBuffer", ranked: 2 });
  });
  // Both modules fail: the error names both (a pool whose workers cannot start, then a
  // single-threaded module that is not there). A fresh page: each module is instantiated once.
  await onTestPage(isolated.url, { gpu: false }, async (page) => {
    await page.evaluate(blockablePoolWorkers);
    const both = await page.evaluate(async (MODEL) => {
      window.poolWorkersBlocked = true;
      return attempt(() => clipBurn.Clip.load({ weights: MODEL, backend: "cpu", cpuWasmUrl: "/tests/fixtures/nope.wasm" }));
    }, MODEL);
    assert.match(both, /^true: .*\(after the threaded module could not start \(a pool worker could not be created: blocked by the test\): running on one thread\)$/);
  });
});
