export type Backend = "webgpu" | "cpu";
export type ImageInput = HTMLImageElement | ImageBitmap | ImageData | HTMLCanvasElement | OffscreenCanvas | Blob;
export type Weights = string | URL | ArrayBuffer | ArrayBufferView | Blob;

/** An open_clip model config (`embed_dim`, `quick_gelu`, `vision_cfg`, `text_cfg`) or a Hugging Face CLIPConfig. */
export type ModelConfig = Record<string, unknown>;

export interface LoadOptions {
  /** open_clip model name (e.g. "ViT-B-32-quickgelu"), or a config; not needed for a burnpack. */
  model?: string | ModelConfig;
  /** burnpack (f32/f16), open_clip safetensors or Hugging Face CLIPModel safetensors: a URL (relative to the page), bytes or a Blob. */
  weights: Weights;
  /** "auto" (default) uses WebGPU when an adapter exists and falls back to the CPU. */
  backend?: "auto" | Backend;
  /**
   * Bytes read so far and the total (0 if unknown), and where they come from: "network" (a
   * download), "cache" (Cache Storage, on a later visit) or "memory" (a Blob or File). Called with
   * 0 first; a cached copy that fails its checks is followed by a download from 0 again.
   */
  onProgress?: (loaded: number, total: number, source: WeightsSource) => void;
  /** Expected SHA-256 (64 hex digits) of the weights; checked before use, also on a cached copy. Part of the cache key. */
  sha256?: string;
  /**
   * Keep weights given by URL in the browser's Cache Storage ("clip-burn-weights", keyed by the
   * absolute URL and `sha256`) and read them from there on later loads (default true). false:
   * download every time, store nothing. A cache that cannot be used never fails the load: see
   * `stats.weights.reason`.
   */
  cache?: boolean;
  /**
   * Images (and texts) per forward pass when a call gives none (a positive integer). Default:
   * `DEFAULT_BATCH_SIZE` of the backend that runs.
   */
  batchSize?: number;
  /**
   * Threads for the CPU path (a positive integer). Default: navigator.hardwareConcurrency, at
   * most 8. More than one needs a cross-origin isolated page (README, "Threads"); otherwise, or
   * when the threaded module cannot start, the model runs on one thread and `threadsReason` says why.
   */
  threads?: number;
  /** Where to fetch the WebGPU module's clip_wasm_bg.wasm from (default: the package's pkg/clip_wasm_bg.wasm, found through import.meta.url). */
  wasmUrl?: string | URL;
  /** Where to fetch the single-threaded CPU module's wasm from (default: the package's pkg-cpu/clip_wasm_bg.wasm). */
  cpuWasmUrl?: string | URL;
  /** Where to fetch the threaded module's wasm from (default: the package's pkg-threads/clip_wasm_bg.wasm). */
  threadsWasmUrl?: string | URL;
}

export interface Ranked {
  label: string;
  score: number;
}

export interface BatchOptions {
  /** Images (or texts) per forward pass: a positive integer; default `clip.batchSize`. */
  batchSize?: number;
}

export interface ClassifyOptions extends BatchOptions {
  /** Prompt templates with `{}` for the label (ensembled), or "imagenet" for OpenAI's 80. Default ["a photo of a {}."]. */
  templates?: string[] | "imagenet";
  topK?: number;
}

/** Images (and texts) per forward pass by default, per backend. */
export declare const DEFAULT_BATCH_SIZE: { readonly cpu: number; readonly webgpu: number };

/** Where a load's weights came from: downloaded, read from Cache Storage, or given as bytes/Blob/File. */
export type WeightsSource = "network" | "cache" | "memory";

export interface WeightsInfo {
  source: WeightsSource;
  /** True when the weights are in Cache Storage after this load (read from it, or stored by it). */
  cached: boolean;
  /** Size of the weights in bytes. */
  bytes: number;
  /** The absolute URL, for weights given by URL. */
  url?: string;
  /**
   * For weights given by URL: why the cache was not read or not filled, e.g. "cache: false",
   * "Cache Storage is not available: the page is not a secure context ...", "storing the weights
   * in Cache Storage failed (QuotaExceededError: ...)", "the cached copy failed the integrity
   * check (...): it was dropped and downloaded again". Absent when all went to plan.
   */
  reason?: string;
}

/** An entry of the weights cache. */
export interface CachedWeights {
  /** The absolute URL the weights were downloaded from. */
  url: string;
  /** The expected SHA-256 it was loaded with (part of the key), or null. */
  sha256: string | null;
  /** SHA-256 of the stored bytes. */
  fingerprint: string;
  bytes: number;
  /** ISO 8601 time of storing. */
  storedAt: string;
}

export interface Stats {
  /** Where the weights came from, and whether they are cached. */
  weights: WeightsInfo;
  /** Distinct prompts the text tower encoded. */
  textPromptsEncoded: number;
  /** Distinct prompts answered by the cache (memory or IndexedDB). */
  textCacheHits: number;
  /** Text-tower forward passes. */
  textTowerRuns: number;
}

export declare class TextCache {
  readonly fingerprint: string;
  /** Embeddings held in memory for this model. */
  readonly size: number;
  /** Forgets this model's embeddings, in memory and in IndexedDB. */
  clear(): Promise<void>;
}

export declare class Clip {
  static load(options: LoadOptions): Promise<Clip>;
  /** Entries of the weights cache (shared by Clip and ClipWorker: one per origin). */
  static cachedWeights(): Promise<CachedWeights[]>;
  /** Deletes all cached weights, or those of `url` (any sha256); resolves to whether anything was deleted. */
  static clearWeightsCache(url?: string | URL): Promise<boolean>;
  /** The backend that runs. */
  readonly backend: Backend;
  readonly embedDim: number;
  /** SHA-256 of the weights: the cache key prefix. */
  readonly fingerprint: string;
  /** Why "auto" ended up on the CPU, if it did. */
  readonly fallbackReason: string | null;
  /** Threads a forward pass runs on: the CPU pool's size, or 1. */
  readonly threads: number;
  /** Why `threads` is fewer than asked for (or than the default), or null. */
  readonly threadsReason: string | null;
  readonly config: ModelConfig;
  readonly cache: TextCache;
  readonly stats: Stats;
  /** True once dispose() was called; the properties above keep their last values, every method throws "this Clip was disposed". */
  readonly disposed: boolean;
  /** Images (or texts) per forward pass when a call gives no `batchSize`. */
  readonly batchSize: number;
  /** L2-normalised image embedding. */
  embedImage(image: ImageInput): Promise<Float32Array>;
  /**
   * L2-normalised embeddings of many images, one per image in order, `batchSize` per forward pass.
   * An image that cannot be used rejects with "image N: ..." (its index); `[]` gives `[]`.
   */
  embedImages(images: Iterable<ImageInput>, options?: BatchOptions): Promise<Float32Array[]>;
  /** L2-normalised text embeddings (cached: the same text is never encoded twice; the rest `batchSize` per forward pass). */
  embedText(text: string, options?: BatchOptions): Promise<Float32Array>;
  embedText(texts: string[], options?: BatchOptions): Promise<Float32Array[]>;
  /** The [labels, dim] prompt-ensembled classifier, built once per label set and templates. */
  classifier(labels: string[], templates?: string[] | "imagenet", options?: BatchOptions): Promise<Float32Array>;
  /** Ranked labels with probabilities, best first. */
  classify(image: ImageInput, labels: string[], options?: ClassifyOptions): Promise<Ranked[]>;
  /** One ranking per image, the images encoded `batchSize` per forward pass. */
  classify(images: Iterable<ImageInput>, labels: string[], options?: ClassifyOptions): Promise<Ranked[][]>;
  /** Frees the model's memory (GPU buffers, wasm heap) once no call uses it; calls in flight reject with "this Clip was disposed". */
  dispose(): void;
}

export declare function initWasm(wasmUrl?: string | URL): Promise<unknown>;
/** The weights' bytes (downloaded with no cache, or read from a Blob). */
export declare function fetchWeights(weights: Weights, onProgress?: (loaded: number, total: number, source: WeightsSource) => void): Promise<Uint8Array>;
/** Same as Clip.cachedWeights. */
export declare function cachedWeights(): Promise<CachedWeights[]>;
/** Same as Clip.clearWeightsCache. */
export declare function clearWeightsCache(url?: string | URL): Promise<boolean>;
/** The name of the Cache Storage cache holding the weights: "clip-burn-weights". */
export declare const WEIGHTS_CACHE: string;
export declare function imagenetTemplates(): Promise<string[]>;
export declare function tokenize(texts: string[], contextLength?: number): Promise<number[][]>;
