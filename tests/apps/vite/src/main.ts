// The Vite app (TypeScript, checked with tsc --strict): what tests/apps/shared/app.js does, typed.
import { Clip, type Ranked } from "clip-burn";
import { ClipWorker } from "clip-burn/worker";
// The overrides README shows, for tools that do not find the files: the worker bundled with its
// imports, the .wasm as an asset (used when the page's URL has ?override).
import workerUrl from "clip-burn/worker-script?worker&url";
import wasmUrl from "clip-burn/clip_wasm_bg.wasm?url";

interface Row {
  picture: string;
  kind: "image" | "blob";
  label: string;
  score: number;
}

interface Picture {
  name: string;
  image: HTMLImageElement;
  blob: Blob;
}

declare global {
  interface Window {
    appResult?: unknown;
    appError?: string;
  }
}

const PICTURES = ["red_cross", "green_star", "cyan_ring", "brown_hexagon"];

async function lines(url: string): Promise<string[]> {
  return (await (await fetch(url)).text()).split("\n").map((l) => l.trim()).filter(Boolean);
}

async function pictures(): Promise<Picture[]> {
  return Promise.all(PICTURES.map(async (name) => {
    const url = `examples/${name}.png`;
    const image = new Image();
    image.src = url;
    await image.decode();
    const blob = await (await fetch(url)).blob();
    return { name, image, blob };
  }));
}

async function classifyAll(model: Clip | ClipWorker, pics: Picture[], labels: string[], templates: string[]): Promise<Row[]> {
  const out: Row[] = [];
  for (const p of pics) {
    for (const [kind, input] of [["image", p.image], ["blob", p.blob]] as const) {
      const ranked: Ranked[] = await model.classify(input, labels, { templates });
      const best = ranked[0];
      if (!best) throw new Error("classify returned no labels");
      out.push({ picture: p.name, kind, label: best.label, score: best.score });
    }
  }
  return out;
}

async function run() {
  const overrides = new URLSearchParams(location.search).has("override") ? { workerUrl, wasmUrl } : {};
  const [labels, templates, pics] = await Promise.all([lines("classnames.txt"), lines("templates.txt"), pictures()]);
  const clip = await Clip.load({ weights: "clip-synth.bpk", wasmUrl: overrides.wasmUrl });
  const inPage = await classifyAll(clip, pics, labels, templates);
  const backend: "webgpu" | "cpu" = clip.backend;
  const page: number = clip.threads;
  const pageReason: string | null = clip.threadsReason;
  clip.dispose();
  const error = await clip.embedText("a star").then(() => "no error", (e: unknown) => (e instanceof Error ? e.message : String(e)));
  const afterDispose = { backend: clip.backend, disposed: clip.disposed, error };
  const worker = await ClipWorker.load({ weights: "clip-synth.bpk", ...overrides, onProgress: (loaded: number, total: number) => void [loaded, total] });
  const inWorker = await classifyAll(worker, pics, labels, templates);
  const workerBackend = worker.backend;
  const threads = { page, pageReason, worker: worker.threads, workerReason: worker.threadsReason };
  worker.dispose();
  return { backend, workerBackend, threads, inPage, inWorker, afterDispose, overrides };
}

const pre = document.getElementById("result");
run().then(
  (result) => {
    if (pre) pre.textContent = JSON.stringify(result, null, 2);
    window.appResult = result;
  },
  (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    if (pre) pre.textContent = `error: ${message}`;
    window.appError = message;
  },
);
