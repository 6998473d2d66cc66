// ClipWorker: the Clip API (promises) with the model in a Web Worker, so encoding never
// blocks the page. Usage:
//   import { ClipWorker } from "clip-burn/worker";
//   const clip = await ClipWorker.load({ model: "ViT-B-32-quickgelu", weights: url });
//   const ranked = await clip.classify(imgElement, ["cat", "dog"]);
import { cachedWeights, clearWeightsCache } from "./weights-cache.js";

async function transferable(image) {
  // Blobs and ImageData are cloned as they are (Blobs are then decoded by the same Rust code as
  // natively); elements and canvases become ImageBitmaps, which can cross to the worker.
  if ((typeof Blob !== "undefined" && image instanceof Blob) || (typeof ImageData !== "undefined" && image instanceof ImageData)) return [image, []];
  if (typeof HTMLImageElement !== "undefined" && image instanceof HTMLImageElement && !image.complete) await image.decode();
  const bitmap = await createImageBitmap(image);
  return [bitmap, [bitmap]];
}

/**
 * An array of images as they cross to the worker, with what can be transferred (the ImageBitmaps
 * made here). An image that cannot be sent fails with "image N: ..." (its index).
 */
async function transferables(images) {
  if (images == null || typeof images === "string" || typeof images[Symbol.iterator] !== "function") {
    throw new TypeError(`expected an array of images, got ${images === null ? "null" : typeof images}`);
  }
  const list = Array.from(images);
  const sent = await Promise.all(list.map(async (image, i) => {
    if (image == null || typeof image !== "object") throw new TypeError(`image ${i}: cannot embed ${Object.prototype.toString.call(image)}`);
    try {
      return await transferable(image);
    } catch (e) {
      throw new Error(`image ${i}: ${e?.message ?? e}`);
    }
  }));
  return [sent.map(([img]) => img), sent.flatMap(([, t]) => t)];
}

/** The page's base URL: relative URLs given to ClipWorker mean what they mean on the page. */
function pageBase() {
  if (typeof document !== "undefined" && document.baseURI) return document.baseURI;
  return globalThis.location?.href;
}

/** A URL string or `URL` as an absolute URL string (a `URL` object cannot be posted to a worker). */
function absolute(url) {
  if (url instanceof URL) return url.href;
  if (typeof url !== "string") return url;
  try {
    return new URL(url, pageBase()).href;
  } catch {
    return url; // not a URL the page could fetch either: Clip.load's fetch reports it
  }
}

/** The worker, started from `workerUrl` or else from the package's worker.js. */
function startWorker(workerUrl) {
  if (workerUrl != null) return [new Worker(absolute(workerUrl), { type: "module" }), absolute(workerUrl)];
  // Written in the one form bundlers (Vite, webpack 5, Rollup, Parcel, esbuild-based tools)
  // recognise as a worker entry and bundle with its imports: keep it literal.
  const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  return [worker, "the clip-burn worker script (clip-burn/worker-script)"];
}

function workerFailure(event, where) {
  // A script that does not load (404, wrong MIME type, a bundler that left its imports unresolved)
  // fires a bare Event with no message; an exception in the worker's top level an ErrorEvent.
  const detail = event?.message
    ? `${event.message}${event.filename ? ` (${event.filename}${event.lineno ? `:${event.lineno}` : ""})` : ""}`
    : `${where} could not be loaded or failed to start (a missing file, a wrong MIME type, or a bundler that did not bundle it: pass workerUrl, see the README's "Using it from a bundler")`;
  return new Error(`clip-burn worker failed: ${detail}`);
}

export class ClipWorker {
  /** Same options as Clip.load, plus `workerUrl` (defaults to the package's worker.js). */
  static async load(options = {}) {
    const { workerUrl, onProgress, ...rest } = options;
    if (rest.weights != null) rest.weights = absolute(rest.weights);
    if (rest.wasmUrl != null) rest.wasmUrl = absolute(rest.wasmUrl);
    if (rest.threadsWasmUrl != null) rest.threadsWasmUrl = absolute(rest.threadsWasmUrl);
    if (rest.cpuWasmUrl != null) rest.cpuWasmUrl = absolute(rest.cpuWasmUrl);
    const [worker, where] = startWorker(workerUrl);
    const client = new ClipWorker(worker, where);
    try {
      await client._call("load", [rest], [], onProgress);
    } catch (e) {
      client._close(e);
      throw e;
    }
    return client;
  }

  /**
   * Entries of the weights cache. The page and its workers share the origin's Cache Storage, so
   * this (and clearWeightsCache) run on the page, with no worker.
   */
  static cachedWeights() {
    return cachedWeights();
  }

  /** Deletes cached weights: all, or those of `url` (relative to the page). Resolves to whether anything was deleted. */
  static clearWeightsCache(url) {
    return clearWeightsCache(url);
  }

  constructor(worker, where = "the clip-burn worker") {
    this.worker = worker;
    this.nextId = 0;
    this.pending = new Map();
    this.state = null;
    this._failure = null;
    this._disposed = false;
    const self = this;
    this.cache = {
      get size() {
        return self.state?.cacheSize ?? 0;
      },
      clear: () => this._call("cacheClear", []),
    };
    worker.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      if (data.progress) return p.onProgress?.(...data.progress);
      this.pending.delete(data.id);
      if (data.state) this.state = data.state;
      if (data.error !== undefined) p.reject(new Error(data.error || "clip-burn worker failed with an empty message"));
      else p.resolve(data.result);
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      this._close(workerFailure(e, where));
    };
    worker.onmessageerror = () => {
      this._close(new Error("clip-burn worker failed: a message from the worker could not be deserialised"));
    };
  }

  /** Stops the worker and rejects every call in flight, and every later one, with `error`. */
  _close(error) {
    this._failure ??= error;
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(this._failure);
    this.pending.clear();
  }

  _call(method, args, transfer = [], onProgress) {
    if (this._failure) return Promise.reject(this._failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      try {
        this.worker.postMessage({ id, method, args }, transfer);
      } catch (e) {
        // DataCloneError: something in the arguments cannot cross to a worker.
        this.pending.delete(id);
        reject(new Error(`cannot send ${method}'s arguments to the clip-burn worker: ${e?.message ?? e}`));
      }
    });
  }

  /** True once dispose() was called. */
  get disposed() {
    return this._disposed;
  }
  /** The backend the model ran on (kept after dispose()). */
  get backend() {
    return this.state?.backend;
  }
  get embedDim() {
    return this.state?.embedDim;
  }
  get fingerprint() {
    return this.state?.fingerprint;
  }
  get stats() {
    return this.state?.stats;
  }
  get fallbackReason() {
    return this.state?.fallbackReason ?? null;
  }
  get threads() {
    return this.state?.threads;
  }
  get threadsReason() {
    return this.state?.threadsReason ?? null;
  }
  /** Images (or texts) per forward pass when a call gives no `batchSize`. */
  get batchSize() {
    return this.state?.batchSize;
  }

  /** One ranking for an image; for an array of images, one per image (batched as embedImages). */
  async classify(image, labels, options) {
    if (this._failure) throw this._failure;
    const many = image != null && typeof image !== "string" && typeof image[Symbol.iterator] === "function";
    const [img, transfer] = many ? await transferables(image) : await transferable(image);
    return this._call("classify", [img, labels, options], transfer);
  }
  async embedImage(image) {
    if (this._failure) throw this._failure;
    const [img, transfer] = await transferable(image);
    return this._call("embedImage", [img], transfer);
  }
  /** One Float32Array per image, `batchSize` images per forward pass in the worker. */
  async embedImages(images, options) {
    if (this._failure) throw this._failure;
    const [imgs, transfer] = await transferables(images);
    return this._call("embedImages", [imgs, options], transfer);
  }
  embedText(texts, options) {
    return this._call("embedText", options === undefined ? [texts] : [texts, options]);
  }
  classifier(labels, templates, options) {
    return this._call("classifier", options === undefined ? [labels, templates] : [labels, templates, options]);
  }
  /** Frees the model and stops the worker; later calls reject with "this ClipWorker was disposed". */
  dispose() {
    if (this._disposed) return;
    this._disposed = true;
    const disposed = new Error("this ClipWorker was disposed");
    if (this._failure) return;
    this._call("dispose", []).then(
      () => this._close(disposed),
      () => this._close(disposed),
    );
    this._failure = disposed; // calls after dispose() reject at once; the dispose call itself is in flight
  }
}
