// The model, off the main thread in the package's Web Worker (ClipWorker): loading it and
// classifying with timings of each part, and how many prompts the text cache answered.
import { ClipWorker } from "clip-burn/worker";

/**
 * Loads weights (URL, File) with `model` (name, config JSON text, or nothing for a burnpack).
 * URL weights are kept in the browser's Cache Storage by the package: `clip.stats.weights` says
 * whether they came from there ({ source: "network" | "cache" | "memory", cached, reason? }).
 */
export async function loadModel({ weights, model, backend, sha256 }, onProgress) {
  const start = performance.now();
  const clip = await ClipWorker.load({ weights, model, backend, sha256, onProgress });
  return { clip, loadMs: performance.now() - start };
}

/** Deletes the cached weights; resolves to the megabytes freed. */
export async function forgetCachedWeights() {
  const entries = await ClipWorker.cachedWeights();
  await ClipWorker.clearWeightsCache();
  return entries.reduce((sum, e) => sum + e.bytes, 0);
}

// Prompts per classifier already built (the package reuses it without touching the text cache).
const promptCounts = new WeakMap();

/**
 * Classifies `image` with the prompt-ensembled classifier of `labels` x `templates`, timing the
 * text side (building the classifier) and the image side (decoding, preprocessing, encoding).
 * Returns { ranked, textMs, imageMs, prompts, fromCache }.
 */
export async function classifyTimed(clip, image, labels, templates) {
  const before = clip.stats;
  const t0 = performance.now();
  await clip.classifier(labels, templates);
  const t1 = performance.now();
  const ranked = await clip.classify(image, labels, { templates });
  const t2 = performance.now();

  const after = clip.stats;
  const encoded = after.textPromptsEncoded - before.textPromptsEncoded;
  const cached = after.textCacheHits - before.textCacheHits;
  if (!promptCounts.has(clip)) promptCounts.set(clip, new Map());
  const counts = promptCounts.get(clip);
  const key = JSON.stringify([labels, templates]);
  if (encoded + cached > 0) counts.set(key, encoded + cached);
  const prompts = counts.get(key) ?? 0;
  return { ranked, textMs: t1 - t0, imageMs: t2 - t1, prompts, fromCache: prompts - encoded };
}
