import type { Backend, ClassifyOptions, ImageInput, LoadOptions, Ranked, Stats } from "./index.js";

/** The Clip API with the model in a Web Worker. */
export declare class ClipWorker {
  static load(options: LoadOptions & { workerUrl?: string | URL }): Promise<ClipWorker>;
  readonly backend: Backend;
  readonly embedDim: number;
  readonly fingerprint: string;
  readonly stats: Stats;
  /** Why "auto" ended up on the CPU, if it did. */
  readonly fallbackReason: string | null;
  readonly cache: { readonly size: number; clear(): Promise<void> };
  embedImage(image: ImageInput): Promise<Float32Array>;
  embedText(text: string): Promise<Float32Array>;
  embedText(texts: string[]): Promise<Float32Array[]>;
  classifier(labels: string[], templates?: string[] | "imagenet"): Promise<Float32Array>;
  classify(image: ImageInput, labels: string[], options?: ClassifyOptions): Promise<Ranked[]>;
  dispose(): void;
}
