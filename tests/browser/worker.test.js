// ClipWorker's contract with the page (issue: the npm package in real web apps): weights given
// as a relative URL or a URL object mean what they mean on the page; a worker that cannot start
// and errors inside the worker reach the caller with their message; Clip and ClipWorker after
// dispose(). Run with scripts/test-browser.sh (it builds pkg/ first).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.js";
import { withPage as onTestPage } from "./browser.js";

let server, base;

before(async () => {
  ({ server, url: base } = await startServer());
});
after(() => server?.close());

const withPage = (fn) => onTestPage(base, { gpu: false }, fn);

test("ClipWorker: relative and URL-object weights are the page's; errors carry their messages; dispose()", async () => {
  await withPage(async (page) => {
    const r = await page.evaluate(async () => {
      // The page is /tests/browser/page.html: these name /tests/fixtures/..., not /js/...
      const model = await (await fetch("../fixtures/vit_quickgelu.json")).text();
      const blob = await (await fetch("../fixtures/images/chelsea.jpg")).blob();
      const labels = ["cat", "dog", "coffee"];
      const relative = await ClipWorker.load({ weights: "../fixtures/vit_quickgelu.safetensors", model, backend: "cpu" });
      const byString = await relative.classify(blob, labels);
      const urlObject = await ClipWorker.load({ weights: new URL("../fixtures/vit_quickgelu.safetensors", location.href), model, backend: "cpu" });
      const byUrl = await urlObject.classify(blob, labels);
      urlObject.dispose();
      relative.dispose();
      const afterDispose = {
        backend: relative.backend,
        embedDim: relative.embedDim,
        disposed: relative.disposed,
        classify: await attempt(() => relative.classify(blob, labels)),
        embedText: await attempt(() => relative.embedText("a cat")),
      };
      relative.dispose(); // twice: nothing happens
      return {
        byString,
        byUrl,
        afterDispose,
        missingWeights: await attempt(() => ClipWorker.load({ weights: "../fixtures/nope.safetensors", model })),
        badModel: await attempt(() => ClipWorker.load({ weights: "../fixtures/vit_quickgelu.safetensors", model: "ViT-Q-99" })),
        noWorkerScript: await attempt(() => ClipWorker.load({ weights: "../fixtures/vit_quickgelu.safetensors", model, workerUrl: "/js/no-such-worker.js" })),
        workerThrows: await attempt(() => ClipWorker.load({ weights: "../fixtures/vit_quickgelu.safetensors", model, workerUrl: URL.createObjectURL(new Blob(["throw new Error('boom at start')"], { type: "text/javascript" })) })),
        notCloneable: await attempt(() => ClipWorker.load({ weights: "../fixtures/vit_quickgelu.safetensors", model: { f() {} } })),
      };
    });
    for (const k of ["missingWeights", "badModel", "noWorkerScript", "workerThrows", "notCloneable"]) console.log(`${k}: ${r[k]}`);
    assert.deepEqual(r.byString.map((x) => x.label), r.byUrl.map((x) => x.label));
    assert.equal(r.byString[0].label, r.byUrl[0].label);
    r.byString.forEach((x, i) => assert.ok(Math.abs(x.score - r.byUrl[i].score) < 1e-6));
    assert.deepEqual(r.afterDispose, {
      backend: "cpu", embedDim: 32, disposed: true,
      classify: "true: this ClipWorker was disposed", embedText: "true: this ClipWorker was disposed",
    });
    assert.match(r.missingWeights, new RegExp(`^true: could not download weights from ${base}/tests/fixtures/nope.safetensors: HTTP 404`), "resolved against the page, the worker's message");
    assert.match(r.badModel, /^true: .*unknown model "ViT-Q-99"/, "the worker's own message");
    assert.match(r.noWorkerScript, /^true: clip-burn worker failed: .*no-such-worker\.js could not be loaded/);
    assert.match(r.workerThrows, /^true: clip-burn worker failed: .*boom at start/);
    assert.match(r.notCloneable, /^true: cannot send load's arguments to the clip-burn worker: /);
    for (const m of Object.values(r).filter((v) => typeof v === "string")) assert.doesNotMatch(m, /undefined/);
  });
});

test("Clip after dispose(): properties keep their values, methods throw a clear error", async () => {
  await withPage(async (page) => {
    const r = await page.evaluate(async () => {
      const model = await (await fetch("../fixtures/vit_quickgelu.json")).text();
      const clip = await clipBurn.Clip.load({ weights: "../fixtures/vit_quickgelu.safetensors", model, backend: "cpu" });
      const before = { backend: clip.backend, embedDim: clip.embedDim, config: clip.config, disposed: clip.disposed };
      clip.dispose();
      clip.dispose();
      return {
        before,
        after: { backend: clip.backend, embedDim: clip.embedDim, config: clip.config, disposed: clip.disposed },
        embedText: await attempt(() => clip.embedText("a cat")),
        embedImage: await attempt(() => clip.embedImage(new ImageData(4, 4))),
        classify: await attempt(() => clip.classify(new ImageData(4, 4), ["cat"])),
      };
    });
    assert.equal(r.before.disposed, false);
    assert.deepEqual(r.after, { ...r.before, disposed: true });
    for (const k of ["embedText", "embedImage", "classify"]) assert.equal(r[k], "true: this Clip was disposed", k);
  });
});

test("dispose() while a WebGPU call is in flight: the call rejects clearly, the model is freed after it, nothing uncaught", async () => {
  await onTestPage(base, { gpu: true }, async (page, _context, errors) => {
    const r = await page.evaluate(async () => {
      const model = await (await fetch("../fixtures/vit_quickgelu.json")).text();
      const clip = await clipBurn.Clip.load({ weights: "../fixtures/vit_quickgelu.safetensors", model, backend: "webgpu" });
      // Dispose right after the wasm call has started: on WebGPU it then waits for the GPU's readback,
      // holding the model (the demo's backend switch does this when a classify is still running).
      const inner = clip.inner;
      const embedTexts = inner.embedTexts.bind(inner);
      let started;
      const running = new Promise((resolve) => (started = resolve));
      inner.embedTexts = (texts) => {
        const out = embedTexts(texts);
        started();
        return out;
      };
      const call = attempt(() => clip.embedText(["a cat", "a dog"]));
      await running;
      const dispose = await attempt(async () => clip.dispose());
      const result = await call;
      // The wasm object is freed once the call has returned: its methods now fail.
      const freed = await attempt(async () => inner.embedDim);
      return { backend: clip.backend, dispose, result, freed };
    });
    assert.equal(r.backend, "webgpu");
    assert.equal(r.dispose, "no error", "dispose() does not throw");
    assert.equal(r.result, "true: this Clip was disposed");
    assert.match(r.freed, /^true: /, "the model is freed once the call in flight has returned");
    assert.deepEqual(errors, [], "no uncaught errors");
  });
});
