// What every consumer app does with clip-burn, as a user would write it: the default model's
// weights by a URL relative to the page, 4 example pictures as HTMLImageElement and as Blob,
// classified with Clip (on the page) and with ClipWorker (in a Web Worker). The Vite app does the
// same in TypeScript (vite/src/main.ts). The page shows the result as JSON in <pre id="result">
// and in window.appResult (or window.appError) for tests/apps/apps.test.js.
import { Clip } from "clip-burn";
import { ClipWorker } from "clip-burn/worker";

const PICTURES = ["red_cross", "green_star", "cyan_ring", "brown_hexagon"];

async function lines(url) {
  return (await (await fetch(url)).text()).split("\n").map((l) => l.trim()).filter(Boolean);
}

async function pictures() {
  return Promise.all(PICTURES.map(async (name) => {
    const url = `examples/${name}.png`;
    const image = new Image();
    image.src = url;
    await image.decode();
    const blob = await (await fetch(url)).blob();
    return { name, image, blob };
  }));
}

async function classifyAll(model, pics, labels, templates) {
  const out = [];
  for (const p of pics) {
    for (const [kind, input] of [["image", p.image], ["blob", p.blob]]) {
      const [best] = await model.classify(input, labels, { templates });
      out.push({ picture: p.name, kind, label: best.label, score: best.score });
    }
  }
  return out;
}

export async function run() {
  const [labels, templates, pics] = await Promise.all([lines("classnames.txt"), lines("templates.txt"), pictures()]);
  const clip = await Clip.load({ weights: "clip-synth.bpk" });
  const inPage = await classifyAll(clip, pics, labels, templates);
  const backend = clip.backend;
  const threads = { page: clip.threads, pageReason: clip.threadsReason };
  clip.dispose();
  const afterDispose = { backend: clip.backend, disposed: clip.disposed, error: await clip.embedText("a star").then(() => "no error", (e) => e.message) };
  const worker = await ClipWorker.load({ weights: "clip-synth.bpk" });
  const inWorker = await classifyAll(worker, pics, labels, templates);
  const workerBackend = worker.backend;
  Object.assign(threads, { worker: worker.threads, workerReason: worker.threadsReason });
  worker.dispose();
  return { backend, workerBackend, threads, inPage, inWorker, afterDispose };
}

export function show(promise) {
  const pre = document.getElementById("result");
  promise.then(
    (result) => {
      pre.textContent = JSON.stringify(result, null, 2);
      window.appResult = result;
    },
    (e) => {
      pre.textContent = `error: ${e?.message ?? e}`;
      window.appError = String(e?.message ?? e);
    },
  );
}
