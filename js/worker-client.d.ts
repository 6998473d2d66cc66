import type { Backend, BatchOptions, CachedWeights, ClassifyOptions, ImageInput, LoadOptions, Ranked, Stats } from "./index.js";

export interface ClipWorkerLoadOptions extends LoadOptions {
  /**
   * Where the worker script is (default: the package's worker.js, which bundlers find on their
   * own). For a bundler that does not, the URL of the `clip-burn/worker-script` entry.
   */
  workerUrl?: string | URL;
}

/** The Clip API with the model in a Web Worker. */
export declare class ClipWorker {
  /** Starts the worker and loads the model in it. Relative `weights` and the `*WasmUrl`s are resolved against the page. */
  static load(options: ClipWorkerLoadOptions): Promise<ClipWorker>;
  /** Entries of the weights cache (the page's and the worker's Cache Storage are the same). */
  static cachedWeights(): Promise<CachedWeights[]>;
  /** Deletes all cached weights, or those of `url` (relative to the page); resolves to whether anything was deleted. */
  static clearWeightsCache(url?: string | URL): Promise<boolean>;
  readonly backend: Backend;
  readonly embedDim: number;
  readonly fingerprint: string;
  /** As Clip's, `weights` included (a copy taken after the last call). */
  readonly stats: Stats;
  /** Why "auto" ended up on the CPU, if it did. */
  readonly fallbackReason: string | null;
  /** As Clip's: the pool's workers are started from this worker. */
  readonly threads: number;
  readonly threadsReason: string | null;
  readonly cache: { readonly size: number; clear(): Promise<void> };
  /** As Clip's (known after load). */
  readonly batchSize: number;
  embedImage(image: ImageInput): Promise<Float32Array>;
  /** As Clip's: elements and canvases cross to the worker as ImageBitmaps (transferred), Blobs and ImageData are copied. */
  embedImages(images: Iterable<ImageInput>, options?: BatchOptions): Promise<Float32Array[]>;
  embedText(text: string, options?: BatchOptions): Promise<Float32Array>;
  embedText(texts: string[], options?: BatchOptions): Promise<Float32Array[]>;
  classifier(labels: string[], templates?: string[] | "imagenet", options?: BatchOptions): Promise<Float32Array>;
  classify(image: ImageInput, labels: string[], options?: ClassifyOptions): Promise<Ranked[]>;
  classify(images: Iterable<ImageInput>, labels: string[], options?: ClassifyOptions): Promise<Ranked[][]>;
  /** True once dispose() was called; the properties keep their last values, every method rejects with "this ClipWorker was disposed". */
  readonly disposed: boolean;
  /** Frees the model and stops the worker. */
  dispose(): void;
}
