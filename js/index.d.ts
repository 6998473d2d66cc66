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
  onProgress?: (loaded: number, total: number) => void;
  /** Expected SHA-256 (hex) of the weights; checked before use. */
  sha256?: string;
  /** Where to fetch clip_wasm_bg.wasm from (default: the package's pkg/clip_wasm_bg.wasm, found through import.meta.url). */
  wasmUrl?: string | URL;
}

export interface Ranked {
  label: string;
  score: number;
}

export interface ClassifyOptions {
  /** Prompt templates with `{}` for the label (ensembled), or "imagenet" for OpenAI's 80. Default ["a photo of a {}."]. */
  templates?: string[] | "imagenet";
  topK?: number;
}

export interface Stats {
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
  /** The backend that runs. */
  readonly backend: Backend;
  readonly embedDim: number;
  /** SHA-256 of the weights: the cache key prefix. */
  readonly fingerprint: string;
  /** Why "auto" ended up on the CPU, if it did. */
  readonly fallbackReason: string | null;
  readonly config: ModelConfig;
  readonly cache: TextCache;
  readonly stats: Stats;
  /** True once dispose() was called; the properties above keep their last values, every method throws "this Clip was disposed". */
  readonly disposed: boolean;
  /** L2-normalised image embedding. */
  embedImage(image: ImageInput): Promise<Float32Array>;
  /** L2-normalised text embeddings (cached: the same text is never encoded twice). */
  embedText(text: string): Promise<Float32Array>;
  embedText(texts: string[]): Promise<Float32Array[]>;
  /** The [labels, dim] prompt-ensembled classifier, built once per label set and templates. */
  classifier(labels: string[], templates?: string[] | "imagenet"): Promise<Float32Array>;
  /** Ranked labels with probabilities, best first. */
  classify(image: ImageInput, labels: string[], options?: ClassifyOptions): Promise<Ranked[]>;
  /** Frees the model's memory (GPU buffers, wasm heap). */
  dispose(): void;
}

export declare function initWasm(wasmUrl?: string | URL): Promise<unknown>;
export declare function fetchWeights(weights: Weights, onProgress?: (loaded: number, total: number) => void): Promise<Uint8Array>;
export declare function imagenetTemplates(): Promise<string[]>;
export declare function tokenize(texts: string[], contextLength?: number): Promise<number[][]>;
