// The one engine interface every backend implements (onnx on the CPU or WebGPU, cuda in native/). An engine owns a model and
// its cache; tokens are always appended at the end of the cache, so positions are implicit.
import type { MemoryReport } from './cache/biBranchCache';
import type { CompressedBits } from './cache/quantizer';
import type { ModelConfig } from './model/config';

export interface EngineOptions {
  /** A cskv.safetensors file, or undefined for an ordinary KV cache. */
  cskv?: string | undefined;
  /** Overrides the window W recorded in the cskv file. */
  window?: number | undefined;
  /** Overrides the compressed-branch bits recorded in the cskv file. */
  bits?: CompressedBits | undefined;
  /** Longest prefill chunk, in tokens (rounded down to a multiple of W). */
  chunkSize?: number | undefined;
}

export interface PrefillOptions {
  /** How many of the last positions to return logits for (default 1; 0 for none). */
  logits?: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
  /** Receives every layer's pre-RoPE keys and values of each chunk, row-major [tokens, kvDim] (calibration). */
  observeKeysValues?: ((layer: number, keys: Float32Array, values: Float32Array, tokens: number) => void) | undefined;
}

export interface EngineInfo {
  readonly backend: 'onnx' | 'webgpu' | 'cuda';
  readonly modelDir: string;
  readonly config: ModelConfig;
  readonly fingerprint: string;
  /** CSKV settings in effect, or null when the cache is uncompressed. */
  readonly cskv: { file: string; window: number; bits: CompressedBits; kRanks: number[]; vRanks: number[] } | null;
}

export interface Engine {
  readonly info: EngineInfo;
  /** Tokens held in the cache. */
  readonly length: number;
  /** Appends tokens to the cache and returns the logits of the last `options.logits` positions, row-major [N, vocab]. */
  prefill(tokens: readonly number[], options?: PrefillOptions): Promise<Float32Array>;
  /** Drops every token at or after `length`. */
  truncate(length: number): Promise<void>;
  memory(): MemoryReport;
  /** The cache (both branches and the token ids) as bytes, to save and restore across runs. */
  snapshot(): Uint8Array;
  /** Replaces the cache with a snapshot taken from an engine of the same model and CSKV settings. */
  restore(snapshot: Uint8Array): void;
  dispose(): Promise<void>;
}

/**
 * Where the prefill chunk starting at `start` ends, for a call that prefills up to `total`. Chunk boundaries fall
 * at absolute multiples of the chunk size (rounded to W) and never cross a multiple of W unless the chunk starts
 * on one, so every query in a chunk sees the same split between compressed and full-precision history
 * (cskv.md's block-window rule). The call's last partial block [floor(total/W)*W, total) is always a chunk of its
 * own: truncating back to `total` later recomputes exactly that chunk, which makes the result bit-equal to the
 * state the original call left (see BiBranchCache.truncate).
 */
export function nextChunkEnd(start: number, total: number, chunkSize: number, window: number): number {
  const size = Math.max(window, Math.floor(chunkSize / window) * window);
  let end = start % window === 0 ? (Math.floor(start / size) + 1) * size : Math.ceil(start / window) * window;
  const tailStart = Math.floor(total / window) * window;
  if (start < tailStart && end > tailStart) end = tailStart;
  return Math.min(end, total);
}
