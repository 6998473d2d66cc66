// The Web Worker side of ClipWorker (see worker-client.js): hosts a Clip off the main thread.
import { Clip } from "./index.js";

let clip = null;

function state() {
  return clip && { backend: clip.backend, embedDim: clip.embedDim, fingerprint: clip.fingerprint, cacheSize: clip.cache.size, stats: clip.stats, fallbackReason: clip.fallbackReason, batchSize: clip.batchSize, threads: clip.threads, threadsReason: clip.threadsReason };
}

self.onmessage = async ({ data: { id, method, args } }) => {
  try {
    let result;
    if (method === "load") {
      clip?.dispose();
      clip = await Clip.load({ ...args[0], onProgress: (loaded, total, source) => self.postMessage({ id, progress: [loaded, total, source] }) });
    } else if (!clip) {
      throw new Error("the worker has no model: call ClipWorker.load first");
    } else if (method === "cacheClear") {
      await clip.cache.clear();
    } else if (method === "dispose") {
      clip.dispose();
      clip = null;
    } else if (["classify", "classifier", "embedImage", "embedImages", "embedText"].includes(method)) {
      result = await clip[method](...args);
    } else {
      throw new Error(`unknown method ${method}`);
    }
    // Image embeddings are fresh arrays: their buffers move to the page instead of being copied
    // (text embeddings are not: they are the cache's own).
    const transfer = method === "embedImage" ? [result.buffer] : method === "embedImages" ? result.map((v) => v.buffer) : [];
    self.postMessage({ id, result, state: state() }, transfer);
  } catch (e) {
    const message = e instanceof Error ? e.message || e.name : String(e ?? "");
    self.postMessage({ id, error: message || `${method} failed with no message`, state: state() });
  }
};
