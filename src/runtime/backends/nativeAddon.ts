// Finds and loads the native addon (native/, a .node file): from an explicit path (the cskv.nativeLibrary
// setting), else from the package's own dist/native/ (beside the bundle) or its source tree's native/build/. Loading is the only
// thing this file does; whether CUDA can run is cudaAvailability.ts's question.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../../shared/defaultModel';
import { RuntimeError } from '../errors';

/** The export shape this runtime was written against (native/src/addon.cc, kAddonAbi). */
export const NATIVE_ADDON_ABI = 6;
export const NATIVE_ADDON_FILE = 'cskv_native.node';

export interface NativeLibraryStatus {
  loaded: boolean;
  /** The file that opened, or every candidate tried. */
  path: string;
  error?: string;
  missingSymbols: string[];
  version?: string;
}

export interface NativeDevice {
  index: number;
  name: string;
  totalBytes: number;
  freeBytes: number;
  /** "9.0" for an H100. */
  computeCapability: string;
  multiprocessors: number;
  /** False when this build cannot use the GPU; `problem` says why. */
  supported: boolean;
  problem?: string;
}

export interface NativeProbe {
  available: boolean;
  /** Why CUDA cannot be used, when `available` is false. */
  reason?: string;
  /** The newest CUDA version the installed driver supports, e.g. "13.0". */
  driverCudaVersion?: string;
  /** The CUDA runtime linked into the addon. */
  runtimeCudaVersion?: string;
  devices: NativeDevice[];
  libraries: { cudaDriver: NativeLibraryStatus; cublasLt: NativeLibraryStatus };
}

export interface NativeProbeOptions {
  /** Loads this file instead of libcuda.so.1. */
  libcuda?: string;
  /** Loads this file instead of libcublasLt.so.<CUDA major>. */
  cublasLt?: string;
}

export interface NativeAddon {
  readonly abi: number;
  /** How the addon was compiled: with CUDA kernels (nvcc present) or CPU-only. */
  readonly build: { cuda: boolean; cudaVersion?: string; architectures?: string };
  /** Never rejects because CUDA is missing: that is reported as `available: false` with a reason. */
  probe(options?: NativeProbeOptions): Promise<NativeProbe>;
  /** cudaMemGetInfo of one GPU; throws RuntimeError CUDA, or BACKEND in a CPU-only build. */
  deviceMemory(device: number): { totalBytes: number; freeBytes: number };
  /** Native errors are built as `new errorClass(code, message)` from then on. */
  setErrorClass(errorClass: typeof RuntimeError): void;
  readonly kernels: NativeKernels;
  /** The CUDA engine (native/src/engineOps.h); constructing it in a CPU-only build throws BACKEND. */
  readonly CudaEngine: new (spec: NativeModelSpec, cublasLtPath?: string) => NativeCudaEngine;
  /** The cache layout the engine would reserve (pure arithmetic, works without a GPU). */
  cacheLayout(spec: NativeCacheSpec): NativeCacheLayout;
  /** How attention of `queries` over `keys` is split (pure arithmetic, works without a GPU). */
  attentionPlan(queries: number, keys: number, heads: number, multiprocessors: number): NativeAttentionPlan;
  /** The engine's block-window rule: positions held compressed with `tokens` cached (pure, works without a GPU). */
  compressedLength(spec: NativeCacheSpec, tokens: number): number;
  /** What the engine keeps and recomputes when truncated to `length` (pure; cachePolicy.ts's TruncationPlan). */
  truncationPlan(spec: NativeCacheSpec, compressedTokens: number, length: number): { compressedTokens: number; fullTokens: number; recomputeFrom: number };
}

export interface NativeCacheSpec {
  layers: number;
  kvDim: number;
  window: number;
  bits: 16 | 8 | 4 | 2;
  /** Omitted for CSKV off. */
  kRanks?: number[] | undefined;
  vRanks?: number[] | undefined;
  capacityTokens: number;
  chunkTokens: number;
}

export interface NativePageLayout {
  kData: number;
  kScaleZero: number;
  vData: number;
  vScaleZero: number;
  bytes: number;
}

export interface NativeCacheLayout {
  capacityTokens: number;
  fullCapacity: number;
  /** The longest forward chunk the engine takes. */
  maxChunkTokens: number;
  maxBlocks: number;
  reservedBytes: number;
  layers: { kRank: number; vRank: number; page: NativePageLayout; fullReservedBytes: number; compressedReservedBytes: number }[];
}

export interface NativeAttentionPlan {
  splits: number;
  keysPerSplit: number;
  partialRows: number;
  maxPartialRows: number;
  keyTile: number;
}

export interface NativeModelSpec {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  rmsNormEps: number;
  qkvBias: boolean;
  outputBias: boolean;
  mlpBias: boolean;
  tiedEmbeddings: boolean;
  /** Linear layers and an untied output head in bf16 (default), 8-bit blocks (loadTensorQ8) or 4-bit blocks (loadTensorQ4). */
  weights?: 'bf16' | 'q8' | 'q4';
  /** Decode steps' attention: 'rebuild' (default: compressed rows rebuilt into scratch, cuBLASLt) or 'fused'. */
  decodeAttention?: 'rebuild' | 'fused';
  /** Prefill chunks' attention: 'rebuild' (default) or 'fused' (native/src/kernels/fusedPrefillAttention.cuh). */
  prefillAttention?: 'rebuild' | 'fused';
  /** 0: full attention. */
  slidingWindow: number;
  invFreq: Float64Array;
  attentionFactor: number;
  device: number;
  cache: NativeCacheSpec;
}

export interface NativeLayerState {
  kFull: Uint16Array;
  vFull: Uint16Array;
  kPending: Float32Array;
  vPending: Float32Array;
  pages: Uint8Array;
}

export interface NativeEngineMemory {
  tokens: number;
  compressedTokens: number;
  perLayer: { fullBytes: number; compressedBytes: number }[];
  cacheReservedBytes: number;
  weightBytes: number;
  scratchBytes: number;
  deviceTotalBytes: number;
  deviceFreeBytes: number;
}

export interface NativeSampleRequest {
  greedy: boolean;
  temperature: number;
  topK: number;
  topP: number;
  /** Uniform in [0, 1), drawn by the host's seeded generator. */
  u: number;
}

/** One CUDA engine on the device: weights, cache and scratch reserved at construction. */
export interface NativeCudaEngine {
  loadTensor(role: string, layer: number, dtype: 'F32' | 'F16' | 'BF16', bytes: Uint8Array): void;
  /** A linear layer's weight as 8-bit blocks, for an engine made with weights 'q8'. */
  loadTensorQ8(role: string, layer: number, codes: Int8Array, scales: Float32Array): void;
  /** A linear layer's weight as 4-bit blocks (codes, f16 (scale, min) pairs), for an engine made with weights 'q4'. */
  loadTensorQ4(role: string, layer: number, codes: Uint8Array, scaleMin: Uint16Array): void;
  finishLoading(): void;
  /** Appends a chunk; resolves the last `logitRows` rows of logits, or null when copyLogits is false. */
  forward(tokens: Int32Array, logitRows: number, copyLogits: boolean, invFreq: Float64Array | null): Promise<Float32Array | null>;
  sample(request: NativeSampleRequest): number;
  /** Returns the position from which the caller must prefill again. */
  truncate(length: number): number;
  state(): { tokens: number; compressedTokens: number };
  memory(): NativeEngineMemory;
  layout(): NativeCacheLayout;
  exportLayer(layer: number): NativeLayerState;
  importState(tokens: number, compressedTokens: number, layers: NativeLayerState[]): void;
  dispose(): void;
}

export type KernelDType = 'f32' | 'bf16';

export interface QuantisedBlockArrays {
  codes: Uint8Array;
  scaleZero: Uint16Array;
}

/**
 * Each CUDA kernel on host arrays, synchronously, for checks against a float64 reference (test/gpu/). Inputs are
 * f32 and, for dtype 'bf16', rounded to bf16 on the device before the kernel, whose bf16 output is widened back.
 * Outputs are poisoned (NaN / 0xff) before every launch. Throws RuntimeError BAD_ARGUMENT, CUDA or OUT_OF_MEMORY
 * (naming the kernel), or BACKEND in a CPU-only build.
 */
export interface NativeKernels {
  rmsNorm(x: Float32Array, weight: Float32Array, eps: number, dtype: KernelDType): Float32Array;
  rope(x: Float32Array, positions: Int32Array, invFreq: Float64Array, attentionFactor: number, heads: number, dtype: KernelDType): Float32Array;
  swiglu(gate: Float32Array, up: Float32Array, dtype: KernelDType): Float32Array;
  f32ToBf16(x: Float32Array): Uint16Array;
  bf16ToF32(x: Uint16Array): Float32Array;
  f16ToBf16(x: Uint16Array): Uint16Array;
  quantiseKeys(rows: Float32Array, tokens: number, channels: number, bits: 8 | 4 | 2): QuantisedBlockArrays;
  quantiseValues(rows: Float32Array, tokens: number, channels: number, bits: 8 | 4 | 2): QuantisedBlockArrays;
  dequantiseKeys(codes: Uint8Array, scaleZero: Uint16Array, tokens: number, channels: number, bits: 8 | 4 | 2): Float32Array;
  dequantiseValues(codes: Uint8Array, scaleZero: Uint16Array, tokens: number, channels: number, bits: 8 | 4 | 2): Float32Array;
  /** Attention over both cache branches (native/src/kernels/attention.cuh); keys and values rounded to bf16 first. */
  attention(args: AttentionKernelArgs): Float32Array;
  /** The fused decode attention (native/src/kernels/fusedAttention.cuh) and its merge: [queries, heads * headDim]. */
  fusedAttention(args: FusedAttentionKernelArgs): Float32Array;
  /**
   * Its C++ float64 reference (native/src/reference/fusedAttentionReference.h), in every build: keysPerSplit 0 or
   * absent is one pass with each compressed key and value rebuilt; otherwise the kernel's splits and tiles, merged.
   */
  fusedAttentionReference(args: FusedAttentionKernelArgs & { keysPerSplit?: number }): Float64Array;
  /** The fused prefill attention (native/src/kernels/fusedPrefillAttention.cuh), one launch: [queries, heads * headDim]. */
  fusedPrefillAttention(args: FusedAttentionKernelArgs): Float32Array;
  /**
   * Its C++ float64 reference, in every build: each kv head's (query, head) rows in tiles of rowsPerTile (default
   * the kernel's 64), each row folded over key tiles with its causal and sliding-window mask.
   */
  fusedPrefillAttentionReference(args: FusedAttentionKernelArgs & { rowsPerTile?: number }): Float64Array;
  /** The device sampler (native/src/kernels/sampling.cuh) on one row of logits. */
  sample(logits: Float32Array, request: NativeSampleRequest): number;
  /** The q8 decode GEMV (native/src/kernels/q8Linear.cuh): [rows, n], x rounded to bf16 on the device. */
  q8Gemv(args: Q8GemvArgs): Float32Array;
  /** The q8 prefill path's dequantisation of weight rows [first, first + count) to bf16, widened: [count, k]. */
  q8DequantiseRows(args: Q8RowsArgs): Float32Array;
  /** The q8 embedding lookup (native/src/kernels/embedding.cuh, --weights q8): rows of the table in f32, [tokens, k]. */
  q8Embedding(table: Q8WeightArrays, tokens: Int32Array): Float32Array;
  /** The C++ float64 references of those two (native/src/reference/q8Reference.h); in every build. */
  q8LinearReference(args: Q8GemvArgs): Float64Array;
  q8DequantiseReference(args: Q8RowsArgs): Float64Array;
  /** The same four for q4 weights (native/src/kernels/q4Linear.cuh, native/src/reference/q4Reference.h). */
  q4Gemv(args: Q4GemvArgs): Float32Array;
  q4DequantiseRows(args: Q4RowsArgs): Float32Array;
  q4LinearReference(args: Q4GemvArgs): Float64Array;
  q4DequantiseReference(args: Q4RowsArgs): Float64Array;
}

/** A q4 weight [n, k] in the CUDA engine's layout (native/src/kernels/q4Layout.h). */
export interface Q4WeightArrays {
  /** [n, ceil(k / 32) * 16]: channel 2i in the low nibble of byte i, 2i + 1 in the high one. */
  codes: Uint8Array;
  /** f16 bits [n, ceil(k / 32), 2]: (scale, min) per block; W = code * scale - min. */
  scaleMin: Uint16Array;
  n: number;
  k: number;
}

export type Q4GemvArgs = Q4WeightArrays & Omit<Q8GemvArgs, keyof Q8WeightArrays>;
export type Q4RowsArgs = Q4WeightArrays & Omit<Q8RowsArgs, keyof Q8WeightArrays>;

/** A q8 weight [n, k] in the CUDA engine's layout (native/src/kernels/q8Layout.h). */
export interface Q8WeightArrays {
  /** int8 [n, ceil(k / 32) * 32] */
  codes: Int8Array;
  /** f32 [n, ceil(k / 32)] */
  scales: Float32Array;
  n: number;
  k: number;
}

export interface Q8GemvArgs extends Q8WeightArrays {
  /** [rows, k] */
  x: Float32Array;
  rows: number;
  /** [rows, n]: the output starts from it (beta = 1); absent: written from scratch. */
  accumulate?: Float32Array;
}

export interface Q8RowsArgs extends Q8WeightArrays {
  first: number;
  count: number;
}

export interface AttentionKernelArgs {
  /** [queries, heads * headDim], pre-RoPE. */
  q: Float32Array;
  /** [ringRows, kvDim]: position p (>= compressedTokens) at row p % ringRows, pre-RoPE. */
  kRing: Float32Array;
  vRing: Float32Array;
  ringRows: number;
  /** [compressedTokens, kvDim] rebuilt rows before the mean; required when compressedTokens > 0. */
  kRebuilt?: Float32Array;
  vRebuilt?: Float32Array;
  kMean?: Float32Array;
  vMean?: Float32Array;
  compressedTokens: number;
  invFreq: Float64Array;
  attentionFactor: number;
  /** Position of the first query. */
  start: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  slidingWindow: number;
  /** Drives the split plan (few: one split; many: flash-decoding splits). */
  multiprocessors: number;
}

/** The fused attention reads the compressed branch from its pages, as the engine keeps them. */
export interface FusedAttentionKernelArgs {
  /** [queries, heads * headDim], pre-RoPE. */
  q: Float32Array;
  /** [ringRows, kvDim]: position p (>= compressedTokens) at row p % ringRows, pre-RoPE (rounded to bf16 on the device). */
  kRing: Float32Array;
  vRing: Float32Array;
  ringRows: number;
  /** Whole blocks of `window`; the fields below are required when it is above 0. */
  compressedTokens: number;
  window?: number;
  bits?: 16 | 8 | 4 | 2;
  kRank?: number;
  vRank?: number;
  /** [compressedTokens / window, page bytes] in the engine's page layout (blocksToPages). */
  pages?: Uint8Array;
  /** [kvDim, rank], as the CSKV factors hold them. */
  kBasis?: Float32Array;
  vBasis?: Float32Array;
  kMean?: Float32Array;
  vMean?: Float32Array;
  invFreq: Float64Array;
  attentionFactor: number;
  start: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  slidingWindow: number;
  /** Drives the split plan (native PlanFusedAttention). */
  multiprocessors: number;
}

export type NativeAddonLoad =
  | { loaded: true; addon: NativeAddon; file: string }
  | { loaded: false; reason: string; tried: string[] };

const loadedByFile = new Map<string, NativeAddon>();

/**
 * Where a built addon may be for code running from `fromDir`: inside the package that code belongs to, never above
 * it (a library planted in a folder above a checkout must not run in it); none outside a package.
 */
export function nativeAddonCandidates(fromDir: string = __dirname): string[] {
  const root = packageRoot(fromDir);
  if (root === undefined) return [];
  return [
    // dist/server.js and dist/cli.js: dist/native/ beside them (what the .vsix ships).
    path.join(fromDir, 'native', NATIVE_ADDON_FILE),
    // out/src/runtime/backends/*.js: a source tree's native/build/Release/.
    path.join(root, 'native', 'build', 'Release', NATIVE_ADDON_FILE),
  ];
}

/**
 * Loads the addon at `options.file` (no fallback: a configured path that fails is reported, not replaced), else
 * the first of nativeAddonCandidates() that exists. Never throws.
 */
export function loadNativeAddon(options: { file?: string | undefined; fromDir?: string } = {}): NativeAddonLoad {
  if (options.file !== undefined && options.file !== '') {
    const file = path.resolve(options.file);
    if (!fs.existsSync(file)) return { loaded: false, reason: `the native addon ${file} (cskv.nativeLibrary) does not exist`, tried: [file] };
    return loadFile(file);
  }
  const tried = nativeAddonCandidates(options.fromDir);
  const file = tried.find((f) => fs.existsSync(f));
  if (file === undefined) {
    return { loaded: false, reason: `the native addon was not built (no ${NATIVE_ADDON_FILE} found; npm run build:native builds it)`, tried };
  }
  return loadFile(file);
}

function loadFile(file: string): NativeAddonLoad {
  const cached = loadedByFile.get(file);
  if (cached) return { loaded: true, addon: cached, file };
  const module = { exports: {} as Record<string, unknown> };
  try {
    // process.dlopen rather than require: the bundler leaves it alone and the loader's own message comes back.
    process.dlopen(module, file);
  } catch (err) {
    return { loaded: false, reason: `could not load the native addon ${file}: ${(err as Error).message}`, tried: [file] };
  }
  const addon = module.exports as unknown as NativeAddon;
  if (typeof addon.probe !== 'function' || typeof addon.setErrorClass !== 'function') {
    return { loaded: false, reason: `${file} is not a cskv-code native addon (it exports no probe/setErrorClass)`, tried: [file] };
  }
  if (addon.abi !== NATIVE_ADDON_ABI) {
    return { loaded: false, reason: `${file} was built for addon ABI ${String(addon.abi)}, this runtime needs ${NATIVE_ADDON_ABI}: rebuild it`, tried: [file] };
  }
  // From here on native errors are RuntimeErrors with a code ('CUDA', 'OUT_OF_MEMORY', 'BAD_ARGUMENT', ...).
  addon.setErrorClass(RuntimeError);
  loadedByFile.set(file, addon);
  return { loaded: true, addon, file };
}
