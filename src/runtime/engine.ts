// The one engine interface every backend implements (onnx on the CPU or WebGPU, cuda in native/). An engine owns a model and
// its cache; tokens are always appended at the end of the cache, so positions are implicit.
import type { CompressedBits, GpuMemory, MemoryReport, WebGpuMemory } from '../protocol';
import type { ModelConfig } from './model/config';
import type { SamplingStep } from './sampler';
import type { WeightFormat } from './model/weightFormat';

export interface EngineOptions {
  /** A cskv.safetensors file, or undefined for an ordinary KV cache. */
  cskv?: string | undefined;
  /** Overrides the window W recorded in the cskv file. */
  window?: number | undefined;
  /** Overrides the compressed-branch bits recorded in the cskv file. */
  bits?: CompressedBits | undefined;
  /** Longest prefill chunk, in tokens (rounded down to a multiple of W). */
  chunkSize?: number | undefined;
  /** How the weights of linear layers and the output head are held (default DEFAULT_WEIGHT_FORMAT). */
  weights?: WeightFormat | undefined;
  /** Compute threads (default: the backend's own choice, one per core). */
  threads?: number | undefined;
}

export interface PrefillOptions {
  /** How many of the last positions to return logits for (default 1; 0 for none). */
  logits?: number;
  /**
   * Runs the call as one forward pass where it fits in one chunk, across the window's block boundaries (a completion's
   * prompt: its first token one pass sooner). The blocks it enters after its first cannot be put back by a later
   * truncation, which recomputes them instead (cachePolicy blocksEnteredMidChunk).
   */
  onePass?: boolean;
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
  /** How the backend holds the linear layers' and output head's weights (the CUDA engine: bf16 or q8 on the device). */
  readonly weights: WeightFormat | 'bf16';
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
  /**
   * Whether truncate(length) runs a forward pass again (part of a compressed block recomputed). Engines without it
   * are taken to recompute wherever `length` falls inside the compressed branch (cachePolicy truncation).
   */
  truncationRecomputes?(length: number): boolean;
  /**
   * One decode step whose next token the engine picks where its logits are (the CUDA engine: on the GPU, so one id
   * crosses instead of a row of logits): appends `token` and returns the token pickToken(logits, step) would give,
   * up to the engine's arithmetic. Engines without their own sampler leave it out; generate() then samples on the host.
   */
  decodeSampled?(token: number, step: SamplingStep): Promise<number>;
  memory(): MemoryReport;
  /** The GPU's memory and this engine's share of it: only backends on a device that reports it (CUDA) have it. */
  deviceMemory?(): GpuMemory;
  /** What the WebGPU backend holds on the GPU, by its own count (WebGPU reports no usage); undefined elsewhere. */
  webgpuMemory?(): WebGpuMemory | undefined;
  /** The cache (both branches and the token ids) as bytes, to save and restore across runs. */
  snapshot(): Promise<Uint8Array>;
  /** Replaces the cache with a snapshot taken from an engine of the same model and CSKV settings. */
  restore(snapshot: Uint8Array): void;
  dispose(): Promise<void>;
}
