// clip-burn: CLIP zero-shot classification in the browser (WebGPU or CPU), with a persistent
// prompt-embedding cache. The model math runs in Rust (clip-model compiled to WebAssembly);
// this file loads the model, turns images into bytes or pixels, and caches text embeddings
// (weights-cache.js fetches the weights and keeps them in Cache Storage).
// Three modules, of which a model loads one (their JS glue is small; a .wasm is fetched only when
// its module is initialised): pkg/ with WebGPU, pkg-cpu/ the CPU path on one thread (less than
// half of pkg/'s download), pkg-threads/ (threads.js) the CPU path on a pool of workers.
import init, * as wasm from "../pkg/clip_wasm.js";
import initCpu, * as cpuWasm from "../pkg-cpu/clip_wasm.js";
import { cachedWeights, clearWeightsCache, fetchWeights, obtainWeights, WEIGHTS_CACHE } from "./weights-cache.js";
import { checkThreads, instantiateOnce, startThreads, threadPlan } from "./threads.js";

let wasmReady = null;

/**
 * Loads the WebGPU module (pkg/) once. `wasmUrl` overrides where its clip_wasm_bg.wasm is fetched
 * from. (Clip.load loads the module it needs by itself.)
 */
export function initWasm(wasmUrl) {
  wasmReady ??= init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  return wasmReady;
}

/** Loads the single-threaded CPU module (pkg-cpu/) once; `cpuWasmUrl` as initWasm's `wasmUrl`. */
const initCpuWasm = instantiateOnce(initCpu, cpuWasm);

const DB_NAME = "clip-burn";
const STORE = "text-embeddings";

function toError(e) {
  return e instanceof Error ? e : new Error(String(e));
}

async function webgpuUsable() {
  if (typeof navigator === "undefined" || !navigator.gpu) return "navigator.gpu is missing";
  try {
    const adapter = await navigator.gpu.requestAdapter();
    return adapter ? null : "no WebGPU adapter was found";
  } catch (e) {
    return `requesting a WebGPU adapter failed: ${toError(e).message}`;
  }
}

function openDb() {
  if (typeof indexedDB === "undefined") return Promise.resolve(null);
  return new Promise((resolve) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null); // private mode etc.: the cache stays in memory
  });
}

function idb(db, mode, fn) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const result = fn(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(result.value);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** Text embeddings keyed by model fingerprint + exact prompt, in memory and in IndexedDB. */
export class TextCache {
  constructor(fingerprint, db) {
    this.fingerprint = fingerprint;
    this.db = db;
    this.memory = new Map();
  }

  /** Embeddings held in memory for this model. */
  get size() {
    return this.memory.size;
  }

  async getMany(prompts) {
    const found = new Map();
    const missing = [];
    for (const p of prompts) {
      const v = this.memory.get(p);
      if (v) found.set(p, v);
      else missing.push(p);
    }
    if (this.db && missing.length) {
      const values = await idb(this.db, "readonly", (store) => {
        const out = { value: new Map() };
        for (const p of missing) {
          const req = store.get([this.fingerprint, p]);
          req.onsuccess = () => req.result && out.value.set(p, req.result);
        }
        return out;
      });
      for (const [p, v] of values) {
        this.memory.set(p, v);
        found.set(p, v);
      }
    }
    return found;
  }

  async putMany(entries) {
    for (const [p, v] of entries) this.memory.set(p, v);
    if (this.db) {
      await idb(this.db, "readwrite", (store) => {
        for (const [p, v] of entries) store.put(v, [this.fingerprint, p]);
        return {};
      }).catch(() => {}); // quota exceeded: keep the memory copy
    }
  }

  /** Forgets this model's embeddings, in memory and persisted. */
  async clear() {
    this.memory.clear();
    if (this.db) {
      await idb(this.db, "readwrite", (store) => {
        store.delete(IDBKeyRange.bound([this.fingerprint], [this.fingerprint, []]));
        return {};
      });
    }
  }
}

async function imageBytes(image) {
  return new Uint8Array(await image.arrayBuffer());
}

function rgbaOf(image) {
  if (typeof ImageData !== "undefined" && image instanceof ImageData) return image;
  const w = image.naturalWidth || image.videoWidth || image.width;
  const h = image.naturalHeight || image.videoHeight || image.height;
  if (!w || !h) throw new Error("the image has no pixels yet (is the <img> loaded? await img.decode() first)");
  const canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(w, h) : Object.assign(document.createElement("canvas"), { width: w, height: h });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(image, 0, 0);
  return ctx.getImageData(0, 0, w, h);
}

/**
 * The wasm model on `backend` ("auto": WebGPU if it works, else the CPU, and why): { inner, wasm
 * (the module it lives in), fallbackReason, threadsReason, exited (the pool's workers' end) }. The
 * CPU path takes the threaded module when the page allows it (threads.js), else the
 * single-threaded one.
 */
async function buildModel(bytes, model, backend, { threads, wasmUrl, cpuWasmUrl, threadsWasmUrl }) {
  let chosen = backend;
  let fallbackReason = null;
  if (backend !== "cpu") {
    const problem = await webgpuUsable();
    if (problem && backend === "webgpu") throw new Error(`WebGPU is not available: ${problem}`);
    if (problem) [chosen, fallbackReason] = ["cpu", problem];
    else chosen = "webgpu";
  }
  if (chosen === "webgpu") {
    await initWasm(wasmUrl);
    try {
      return { inner: await wasm.ClipModel.load(bytes, model, "webgpu"), wasm, fallbackReason, threadsReason: "the model runs on WebGPU (threads are the CPU path's)" };
    } catch (e) {
      if (backend !== "auto") throw toError(e);
      fallbackReason = toError(e).message;
    }
  }
  return { ...(await cpuModel(bytes, model, threads, { cpuWasmUrl, threadsWasmUrl })), fallbackReason };
}

/** The model on the CPU: threaded when the plan says so and it starts, else single-threaded. */
async function cpuModel(bytes, model, requested, { cpuWasmUrl, threadsWasmUrl }) {
  let { threads, reason } = threadPlan(requested);
  if (threads > 1) {
    let started;
    try {
      started = await startThreads(threads, threadsWasmUrl);
      const inner = await started.wasm.ClipModel.load(bytes, model, "cpu");
      inner.usePool(started.pool);
      return { inner, wasm: started.wasm, threadsReason: reason, exited: started.exited };
    } catch (e) {
      // Once the pool runs, an error is the model's (weights, config): one thread would fail the same.
      if (started) throw toError(e);
      reason = `the threaded module could not start (${toError(e).message}): running on one thread`;
    } finally {
      started?.pool.free(); // the model holds the pool now (or nothing does: its workers exit)
    }
  }
  try {
    await initCpuWasm(cpuWasmUrl);
    return { inner: await cpuWasm.ClipModel.load(bytes, model, "cpu"), wasm: cpuWasm, threadsReason: reason };
  } catch (e) {
    const err = toError(e);
    if (threads > 1 && reason) err.message = `${err.message} (after ${reason})`;
    throw err;
  }
}

const SUPPORTED = "an HTMLImageElement, ImageBitmap, ImageData, HTMLCanvasElement, OffscreenCanvas or Blob";
const IMAGE_TYPES = ["HTMLImageElement", "ImageBitmap", "ImageData", "HTMLCanvasElement", "OffscreenCanvas", "HTMLVideoElement", "SVGImageElement"];

/**
 * Images (and texts) per forward pass when `batchSize` is not given, per backend. Measured with
 * tests/browser/bench/weights.js (BENCHMARKS.md, "Lighter models for the web"; 2 cores, headless
 * Chromium, 32 images): on WebGPU (SwiftShader) the default model took 1.5 s an image one at a
 * time, and batches of 4 / 8 / 16 / 32 were 3.3x / 6.0x / 8.2x / 10.8x faster: 16 keeps most of
 * that while a large model's activations stay moderate (ViT-L-14-336's attention scores at 16
 * images are ~340 MB). On the CPU (wasm) the default model gained 3.2x / 4.0x / 3.7x / 5.2x, while
 * ViT-B-32 gained nothing at any size (its matrices already fill the cores): 8 takes most of the
 * small-model gain for a quarter of batch 32's memory in the 4 GB wasm32 heap.
 */
export const DEFAULT_BATCH_SIZE = { cpu: 8, webgpu: 16 };

function checkBatchSize(value, where) {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${where}: batchSize must be a positive integer (images or texts per forward pass), got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`);
  }
  return value;
}

/** `list` in consecutive slices of at most `size`, with the index of each slice's first item. */
function* chunks(list, size) {
  for (let start = 0; start < list.length; start += size) yield [start, list.slice(start, start + size)];
}

/** Whether `e` is about an input image ("image N: ..."), not the device: no CPU fallback for it. */
function isImageError(e) {
  return /^image \d+: /.test(toError(e).message);
}

function isImage(image) {
  return (typeof Blob !== "undefined" && image instanceof Blob) || IMAGE_TYPES.some((t) => typeof globalThis[t] !== "undefined" && image instanceof globalThis[t]);
}

/** The array of images `embedImages` and `classify` take (any iterable), or a TypeError. */
function imageList(images, method) {
  if (images == null || typeof images === "string" || typeof images[Symbol.iterator] !== "function") {
    throw new TypeError(`${method} takes an array of images (each ${SUPPORTED}), got ${images === null ? "null" : typeof images}`);
  }
  return Array.from(images);
}

/** One image as `raw.ClipModel.embedImages` takes it: encoded-file bytes, or RGBA pixels. */
async function imageItem(image, index) {
  try {
    if (image == null || !isImage(image)) throw new TypeError(`cannot embed ${Object.prototype.toString.call(image)}: expected ${SUPPORTED}`);
    if (typeof Blob !== "undefined" && image instanceof Blob) return await imageBytes(image);
    const { width, height, data } = rgbaOf(image);
    return { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    const err = toError(e);
    throw new (err instanceof TypeError ? TypeError : Error)(`image ${index}: ${err.message}`);
  }
}

export class Clip {
  /**
   * @param {object} options
   * @param {string|object} [options.model] open_clip model name, or a config (object or JSON text); not needed for a burnpack
   * @param {string|URL|ArrayBuffer|ArrayBufferView|Blob} options.weights
   * @param {"auto"|"webgpu"|"cpu"} [options.backend]
   * @param {(loaded:number,total:number,source:"network"|"cache"|"memory")=>void} [options.onProgress]
   * @param {string} [options.sha256] expected SHA-256 (hex) of the weights
   * @param {boolean} [options.cache] keep URL weights in Cache Storage and read them from there (default true)
   * @param {string|URL} [options.wasmUrl]
   * @param {number} [options.batchSize] images (texts) per forward pass by default (DEFAULT_BATCH_SIZE per backend)
   */
  static async load(options = {}) {
    const { weights, onProgress, sha256, wasmUrl, cpuWasmUrl, threadsWasmUrl } = options;
    const batchSize = checkBatchSize(options.batchSize, "Clip.load");
    const threads = checkThreads(options.threads, "Clip.load");
    const backend = options.backend ?? "auto";
    if (!["auto", "webgpu", "cpu"].includes(backend)) throw new Error(`unknown backend "${backend}": use "auto", "webgpu" or "cpu"`);
    if (weights == null) throw new Error("Clip.load needs `weights`: a URL, an ArrayBuffer, a Blob or a File");
    const model = options.model == null ? undefined : typeof options.model === "string" ? options.model : JSON.stringify(options.model);
    const cache = options.cache ?? true;
    if (typeof cache !== "boolean") throw new TypeError(`cache must be true or false, got ${JSON.stringify(cache)}`);
    const got = await obtainWeights(weights, { sha256, cache, onProgress });
    const { bytes, fingerprint } = got;
    // Stored while the model is built; taken out again if the model does not load from them
    // (an HTML error page served with 200, the wrong file at that URL).
    const storing = got.store?.();
    let built;
    try {
      built = await buildModel(bytes, model, backend, { threads, wasmUrl, cpuWasmUrl, threadsWasmUrl });
    } catch (e) {
      await storing;
      await got.forget?.();
      throw e;
    }
    await storing;
    const db = await openDb();
    return new Clip(built, { bytes: backend === "auto" ? bytes : null, model, fingerprint, db, weights: { ...got.info }, batchSize });
  }

  /** Entries of the weights cache (Cache Storage "clip-burn-weights"): [{ url, sha256, fingerprint, bytes, storedAt }]. */
  static cachedWeights() {
    return cachedWeights();
  }

  /** Deletes cached weights: all, or those of `url`. Resolves to whether anything was deleted. */
  static clearWeightsCache(url) {
    return clearWeightsCache(url);
  }

  constructor({ inner, wasm, fallbackReason, threadsReason, exited }, { bytes, model, fingerprint, db, weights, batchSize }) {
    this.inner = inner;
    this._wasm = wasm; // the module `inner` lives in: pkg/ or the threaded pkg-threads/
    this.fingerprint = fingerprint;
    this.fallbackReason = fallbackReason;
    /** Why `threads` is fewer than asked for (or than the default), or null. */
    this.threadsReason = threadsReason ?? null;
    // Resolves when the CPU pool's workers have ended (after dispose()); undefined without a pool.
    this._poolExited = exited;
    this.cache = new TextCache(fingerprint, db);
    // `weights`: where this load's weights came from ({ source, cached, bytes, url?, reason? }).
    this.stats = { textPromptsEncoded: 0, textCacheHits: 0, textTowerRuns: 0, weights: weights ?? { source: "memory", cached: false, bytes: bytes?.length ?? 0 } };
    this._bytes = bytes; // kept in "auto" mode to reload on the CPU if the GPU is lost
    this._model = model;
    this._classifiers = new Map();
    this._inFlight = 0; // _run calls between their start and their end
    this._retired = []; // models to free once no call is in flight
    this._batchSize = batchSize; // Clip.load's; undefined: DEFAULT_BATCH_SIZE of the backend that runs
  }

  /** Images (or texts) per forward pass when a call gives no `batchSize`. */
  get batchSize() {
    return this._batchSize ?? DEFAULT_BATCH_SIZE[this.backend];
  }

  /** The threads a forward pass runs on: the threaded module's pool size, or 1 (`threadsReason` says why). */
  get threads() {
    return this.inner ? this.inner.threads : this._last.threads;
  }

  /** "webgpu" or "cpu": the backend that runs (after dispose(), the one that ran). */
  get backend() {
    return this.inner ? this.inner.backend : this._last.backend;
  }
  get embedDim() {
    return this.inner ? this.inner.embedDim : this._last.embedDim;
  }
  get config() {
    return JSON.parse(this.inner ? this.inner.config : this._last.config);
  }
  /** True once dispose() was called: the model's memory is freed and every method throws. */
  get disposed() {
    return !this.inner;
  }

  _alive() {
    if (!this.inner) throw new Error("this Clip was disposed");
  }

  /**
   * Runs `fn` on the wasm model. A call in flight when dispose() runs rejects with "this Clip was
   * disposed" once it returns; the model is freed then, not under it (on WebGPU a call holds the
   * model across awaits, and freeing it there would fail).
   */
  async _run(fn) {
    this._alive();
    this._inFlight += 1;
    try {
      const out = await this._runOnce(fn);
      this._alive();
      return out;
    } finally {
      this._inFlight -= 1;
      this._freeRetired();
    }
  }

  async _runOnce(fn) {
    const inner = this.inner;
    try {
      return await fn(inner);
    } catch (e) {
      if (!this._bytes || inner.backend !== "webgpu" || isImageError(e)) throw toError(e);
      // WebGPU failed (device lost, out of memory): continue on the CPU.
      const reason = toError(e).message;
      const cpu = await this._wasm.ClipModel.load(this._bytes, this._model, "cpu");
      if (this.inner !== inner) {
        // Disposed meanwhile, or another call in flight moved to the CPU first.
        cpu.free();
        this._alive();
        return fn(this.inner);
      }
      this.fallbackReason = reason;
      this._retired.push(inner);
      this.inner = cpu;
      return fn(cpu);
    }
  }

  /** Frees the models given up (dispose(), a move to the CPU) once no call uses them. */
  _freeRetired() {
    if (this._inFlight > 0) return;
    for (const m of this._retired.splice(0)) m.free();
  }

  /** L2-normalised image embedding (Float32Array). */
  async embedImage(image) {
    this._alive();
    if (image == null) throw new TypeError(`embedImage needs ${SUPPORTED}`);
    if (typeof Blob !== "undefined" && image instanceof Blob) {
      const bytes = await imageBytes(image);
      return Float32Array.from(await this._run((m) => m.embedImageFiles([bytes])));
    }
    if (!isImage(image)) throw new TypeError(`cannot embed ${Object.prototype.toString.call(image)}: expected ${SUPPORTED}`);
    const { width, height, data } = rgbaOf(image);
    return Float32Array.from(await this._run((m) => m.embedImageRgba(width, height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength))));
  }

  /**
   * L2-normalised embeddings of many images, one Float32Array each, in order: `batchSize` images
   * (default `clip.batchSize`) per forward pass. An image that cannot be used fails the call with
   * "image N: ..." (N its index in `images`).
   */
  async embedImages(images, options = {}) {
    this._alive();
    const size = checkBatchSize(options?.batchSize, "embedImages") ?? this.batchSize;
    const list = imageList(images, "embedImages");
    const d = this.embedDim;
    const out = [];
    for (const [start, chunk] of chunks(list, size)) {
      // One chunk's pixels at a time: a long list never holds more than `size` decoded images.
      const items = await Promise.all(chunk.map((image, i) => imageItem(image, start + i)));
      const flat = await this._run((m) => m.embedImages(items, start));
      for (let i = 0; i < chunk.length; i++) out.push(Float32Array.from(flat.subarray(i * d, (i + 1) * d)));
    }
    return out;
  }

  /**
   * L2-normalised text embeddings, one Float32Array per text (a single one for a string). Cached;
   * the texts not in the cache go through the text tower `batchSize` at a time.
   */
  async embedText(texts, options = {}) {
    this._alive();
    const size = checkBatchSize(options?.batchSize, "embedText") ?? this.batchSize;
    const single = typeof texts === "string";
    const list = single ? [texts] : Array.from(texts ?? []);
    if (list.some((t) => typeof t !== "string")) throw new TypeError("embedText takes a string or an array of strings");
    const found = await this.cache.getMany(list);
    this.stats.textCacheHits += [...new Set(list)].filter((t) => found.has(t)).length;
    const missing = [...new Set(list.filter((t) => !found.has(t)))];
    const d = this.embedDim;
    for (const [, chunk] of chunks(missing, size)) {
      const flat = await this._run((m) => m.embedTexts(chunk));
      this.stats.textTowerRuns += 1;
      this.stats.textPromptsEncoded += chunk.length;
      const entries = chunk.map((t, i) => [t, Float32Array.from(flat.subarray(i * d, (i + 1) * d))]);
      await this.cache.putMany(entries);
      for (const [t, v] of entries) found.set(t, v);
    }
    const out = list.map((t) => found.get(t));
    return single ? out[0] : out;
  }

  /** A [labels, dim] classifier: per label the re-normalised mean over its templates (or "imagenet"). Built once per label set. */
  async classifier(labels, templates = ["a photo of a {}."], options = {}) {
    this._alive();
    if (!Array.isArray(labels) || labels.length === 0) throw new Error("classify needs a non-empty array of labels");
    if (templates === "imagenet") templates = this._wasm.imagenetTemplates();
    const bad = templates.find((t) => !t.includes("{}"));
    if (bad !== undefined) throw new Error(`template "${bad}" has no {} placeholder for the label`);
    const key = JSON.stringify([labels, templates]);
    let w = this._classifiers.get(key);
    if (!w) {
      const prompts = labels.flatMap((l) => templates.map((t) => t.replaceAll("{}", l)));
      const feats = await this.embedText(prompts, { batchSize: options?.batchSize });
      const flat = new Float32Array(prompts.length * this.embedDim);
      feats.forEach((f, i) => flat.set(f, i * this.embedDim));
      w = Float32Array.from(this._wasm.ensemble(flat, labels.length, templates.length, this.embedDim));
      this._classifiers.set(key, w);
    }
    return w;
  }

  /**
   * Ranked labels with probabilities: [{label, score}], best first. For an array of images, one
   * ranking per image, the images encoded `batchSize` at a time (as embedImages).
   */
  async classify(image, labels, options = {}) {
    // No image type is iterable: an array, a FileList or any iterable is a list of images.
    const many = image != null && typeof image !== "string" && typeof image[Symbol.iterator] === "function";
    checkBatchSize(options.batchSize, "classify");
    const w = await this.classifier(labels, options.templates, options);
    const feats = many ? await this.embedImages(image, options) : [await this.embedImage(image)];
    this._alive(); // dispose() may have run while the images were encoded
    if (!feats.length) return [];
    const d = this.embedDim;
    const flat = new Float32Array(feats.length * d);
    feats.forEach((f, i) => flat.set(f, i * d));
    const probs = this._wasm.probabilities(flat, feats.length, w, labels.length, d, this.inner.temperature);
    const rankings = feats.map((_, n) => {
      const ranked = labels.map((label, i) => ({ label, score: probs[n * labels.length + i] })).sort((a, b) => b.score - a.score);
      return options.topK ? ranked.slice(0, options.topK) : ranked;
    });
    return many ? rankings : rankings[0];
  }

  /** Frees the model's memory (GPU buffers, wasm heap); calls in flight reject with "this Clip was disposed". */
  dispose() {
    if (!this.inner) return;
    this._last = { backend: this.inner.backend, embedDim: this.inner.embedDim, config: this.inner.config, threads: this.inner.threads };
    this._retired.push(this.inner);
    this.inner = null;
    this._freeRetired();
    this._bytes = null;
    this._classifiers.clear();
  }
}

/** The 80 OpenAI ImageNet prompt templates. */
export async function imagenetTemplates() {
  return (await anyModule()).imagenetTemplates();
}

/** A module for the functions every module has: one already loaded, else the small CPU one. */
async function anyModule() {
  if (wasmReady) {
    await wasmReady;
    return wasm;
  }
  await initCpuWasm();
  return cpuWasm;
}

/** CLIP token ids, one array of `contextLength` per text. */
export async function tokenize(texts, contextLength = 77) {
  const flat = (await anyModule()).tokenize(texts, contextLength);
  return texts.map((_, i) => Array.from(flat.slice(i * contextLength, (i + 1) * contextLength)));
}

export { wasm as raw, fetchWeights, cachedWeights, clearWeightsCache, WEIGHTS_CACHE };
