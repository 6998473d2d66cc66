// ClipWorker: the Clip API (promises) with the model in a Web Worker, so encoding never
// blocks the page. Usage:
//   import { ClipWorker } from "clip-burn/worker";
//   const clip = await ClipWorker.load({ model: "ViT-B-32-quickgelu", weights: url });
//   const ranked = await clip.classify(imgElement, ["cat", "dog"]);

async function transferable(image) {
  // Blobs and ImageData are cloned as they are (Blobs are then decoded by the same Rust code as
  // natively); elements and canvases become ImageBitmaps, which can cross to the worker.
  if ((typeof Blob !== "undefined" && image instanceof Blob) || (typeof ImageData !== "undefined" && image instanceof ImageData)) return [image, []];
  if (typeof HTMLImageElement !== "undefined" && image instanceof HTMLImageElement && !image.complete) await image.decode();
  const bitmap = await createImageBitmap(image);
  return [bitmap, [bitmap]];
}

export class ClipWorker {
  /** Same options as Clip.load, plus `workerUrl` (defaults to worker.js next to this file). */
  static async load(options = {}) {
    const { workerUrl, onProgress, ...rest } = options;
    const worker = new Worker(workerUrl ?? new URL("./worker.js", import.meta.url), { type: "module" });
    const client = new ClipWorker(worker);
    await client._call("load", [rest], [], onProgress);
    return client;
  }

  constructor(worker) {
    this.worker = worker;
    this.nextId = 0;
    this.pending = new Map();
    this.state = null;
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
      if (data.state !== undefined) this.state = data.state;
      if (data.error !== undefined) p.reject(new Error(data.error));
      else p.resolve(data.result);
    };
    worker.onerror = (e) => {
      for (const p of this.pending.values()) p.reject(new Error(`clip-burn worker failed: ${e.message}`));
      this.pending.clear();
    };
  }

  _call(method, args, transfer = [], onProgress) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, method, args }, transfer);
    });
  }

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

  async classify(image, labels, options) {
    const [img, transfer] = await transferable(image);
    return this._call("classify", [img, labels, options], transfer);
  }
  async embedImage(image) {
    const [img, transfer] = await transferable(image);
    return this._call("embedImage", [img], transfer);
  }
  embedText(texts) {
    return this._call("embedText", [texts]);
  }
  classifier(labels, templates) {
    return this._call("classifier", [labels, templates]);
  }
  dispose() {
    this._call("dispose", []).finally(() => this.worker.terminate());
  }
}
