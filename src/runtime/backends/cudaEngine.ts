// The CUDA backend: the native engine (native/src/engine/) behind the runtime's one Engine interface. The model's
// tensors go to the GPU one at a time (each read, converted to bf16 on the device, or with --weights q8 / q4 the linear
// layers as 8- or 4-bit blocks (cudaQ8Weights.ts, cudaQ4Weights.ts), dropped), the bi-branch cache
// lives in preallocated device pages, and every layer runs on the GPU; only token ids go in and logits (or one
// sampled id) come out. Chunking, truncation and snapshots follow the onnx backend exactly, so both pass the
// same suite (test/runtime/engineSuite.ts).
import type { GpuMemory, MemoryReport } from '../../protocol';
import { type CacheShape, type CacheState, type CompressedBlock } from '../cache/biBranchCache';
import { type Snapshot, decodeSnapshot, encodeSnapshot } from '../cache/cacheSnapshot';
import { readCskvFile } from '../cskvFile';
import { packedBytes, VALUE_GROUP } from '../cache/quantizer';
import { type Engine, type EngineInfo, type EngineOptions, type PrefillOptions } from '../engine';
import { ModelFormatError, RuntimeError } from '../errors';
import { type ModelConfig, readModelConfig } from '../model/config';
import { modelFingerprint } from '../model/fingerprint';
import { ropeDependsOnLength, ropeFrequencies } from '../model/rope';
import { ModelWeights } from '../model/weights';
import type { SamplingStep } from '../sampler';
import type { DType } from '../safetensors';
import { readDeviceQ4 } from './cudaQ4Weights';
import { readDeviceQ8 } from './cudaQ8Weights';
import { HEAD_ROWS_PER_READ, cudaWeightFormat } from './cudaWeightFormat';
import { prefillInChunks } from './chunkedPrefill';
import { CUDA_DEFAULT_CHUNK, type CapacityPlan, deviceModelShape, planCapacity } from './cudaMemoryPlan';
import {
  type NativeAddon, type NativeCacheLayout, type NativeCudaEngine, type NativeEngineMemory, type NativeLayerState, type NativeModelSpec, loadNativeAddon,
} from './nativeAddon';

export interface CudaEngineOptions extends EngineOptions {
  /** The addon to load instead of the bundled one (the cskv.nativeLibrary setting). */
  nativeLibrary?: string | undefined;
  /** Most tokens of context to reserve; default the model's max_position_embeddings, shrunk to fit the GPU. */
  capacityTokens?: number | undefined;
  device?: number | undefined;
  /** Decode steps' attention; default CSKV_CUDA_DECODE_ATTENTION, else 'rebuild' (see cudaAttentionPath). */
  decodeAttention?: string | undefined;
  /** Prefill chunks' attention; default CSKV_CUDA_PREFILL_ATTENTION, else 'rebuild' (see cudaAttentionPath). */
  prefillAttention?: string | undefined;
  /** libcublasLt to open instead of the soname. */
  cublasLt?: string | undefined;
}

export class CudaEngine implements Engine {
  private readonly history: number[] = [];
  private disposed = false;
  /** True while a forward runs on the addon's worker thread: the native engine then refuses every other call. */
  private forwarding = false;
  /** The native memory figures as of the last time they could be read (the status bar asks whenever it likes). */
  private figures: NativeEngineMemory;

  private constructor(
    readonly info: EngineInfo,
    private readonly native: NativeCudaEngine,
    private readonly layout: NativeCacheLayout,
    private readonly shape: CacheShape,
    private readonly chunkSize: number,
    /** How many tokens the cache holds at most on this GPU, and why it is fewer than asked if it is. */
    readonly capacity: CapacityPlan,
  ) {
    this.figures = native.memory();
  }

  /** Loads the model onto the GPU. RuntimeError BACKEND (with the reason) where the addon or CUDA cannot run. */
  static async load(modelDir: string, options: CudaEngineOptions = {}): Promise<CudaEngine> {
    const addon = cudaAddon(options.nativeLibrary);
    const config = readModelConfig(modelDir);
    const weights = ModelWeights.open(modelDir, config);
    let native: NativeCudaEngine | undefined;
    try {
      const fingerprint = modelFingerprint(config, weights);
      const factors = options.cskv ? readCskvFile(options.cskv, config, fingerprint) : undefined;
      const window = options.window ?? factors?.window ?? 32;
      const bits = options.bits ?? factors?.bits ?? 16;
      const chunkSize = options.chunkSize ?? CUDA_DEFAULT_CHUNK;
      const ranks = factors ? { k: factors.layers.map((l) => l.k.rank), v: factors.layers.map((l) => l.v.rank) } : undefined;
      const device = options.device ?? 0;
      const format = cudaWeightFormat(options.weights);
      const decodeAttention = cudaAttentionPath('decode', options.decodeAttention);
      const prefillAttention = cudaAttentionPath('prefill', options.prefillAttention);
      const cache = { layers: config.layers, kvDim: config.kvDim, window, bits, kRanks: ranks?.k, vRanks: ranks?.v, chunkTokens: chunkSize };
      let freeBytes: number | undefined;
      try {
        freeBytes = addon.deviceMemory(device).freeBytes;
      } catch (err) {
        throw new RuntimeError('BACKEND', `CUDA engine: cannot read the GPU's memory: ${(err as Error).message}`);
      }
      const capacity = planCapacity({
        shape: deviceModelShape(config), cache, freeBytes, layoutOf: (spec) => addon.cacheLayout(spec),
        wantedTokens: Math.min(options.capacityTokens ?? config.maxPositions, config.maxPositions),
        weights: format,
      });
      if (capacity.capacityTokens === 0) throw new RuntimeError('OUT_OF_MEMORY', `CUDA engine: ${capacity.shrunk}`);
      const freqs = ropeFrequencies(config, capacity.capacityTokens);
      const spec: NativeModelSpec = {
        hidden: config.hiddenSize, layers: config.layers, heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim,
        intermediate: config.intermediateSize, vocab: config.vocabSize, rmsNormEps: config.rmsNormEps, qkvBias: config.qkvBias,
        outputBias: config.outputBias, mlpBias: config.mlpBias, tiedEmbeddings: config.tieEmbeddings, weights: format, decodeAttention, prefillAttention, slidingWindow: config.slidingWindow ?? 0,
        invFreq: freqs.invFreq, attentionFactor: freqs.attentionFactor, device,
        cache: { ...cache, capacityTokens: capacity.capacityTokens },
      };
      native = new addon.CudaEngine(spec, options.cublasLt);
      const blockShapes = format === 'bf16' ? undefined : blockTensorShapes(config, format);
      for (const [role, layer, name] of tensorRoles(config)) {
        const blockShape = blockShapes?.[role];
        const rowsPerRead = role === 'lmHead' || role === 'embedding' ? HEAD_ROWS_PER_READ : undefined;
        if (blockShape && format === 'q8') {
          const q8 = readDeviceQ8(weights, name, ...blockShape, rowsPerRead);
          native.loadTensorQ8(role, layer, q8.codes, q8.scales);
        } else if (blockShape) {
          const q4 = readDeviceQ4(weights, name, ...blockShape, rowsPerRead);
          native.loadTensorQ4(role, layer, q4.codes, q4.scaleMin);
        } else {
          native.loadTensor(role, layer, weights.info(name).dtype as DType, weights.readBytes(name));
        }
      }
      factors?.layers.forEach((l, i) => {
        for (const [role, data] of [['kBasis', l.k.basis], ['kMean', l.k.mean], ['vBasis', l.v.basis], ['vMean', l.v.mean]] as const) {
          native!.loadTensor(role, i, 'F32', new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        }
      });
      native.finishLoading();
      const info: EngineInfo = {
        backend: 'cuda', modelDir, config, fingerprint, weights: format,
        cskv: factors && ranks ? { file: factors.file, window, bits, kRanks: ranks.k, vRanks: ranks.v } : null,
      };
      const shape: CacheShape = { layers: config.layers, kvDim: config.kvDim, window, bits, ranks };
      return new CudaEngine(info, native, native.layout(), shape, chunkSize, capacity);
    } catch (err) {
      native?.dispose();
      if (err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && /loadTensor/.test(err.message)) {
        throw new ModelFormatError(weights.describedBy, err.message);
      }
      throw err;
    } finally {
      weights.close();
    }
  }

  get length(): number {
    return this.native.state().tokens;
  }

  async prefill(tokens: readonly number[], options: PrefillOptions = {}): Promise<Float32Array> {
    this.usable();
    if (options.observeKeysValues) throw new RuntimeError('UNSUPPORTED', 'the CUDA engine does not hand keys and values to the host (calibration runs on the onnx backend)');
    return prefillInChunks(tokens, options, {
      vocab: this.info.config.vocabSize, length: this.length, chunkSize: this.chunkSize, window: this.info.cskv?.window ?? this.chunkSize,
    }, (chunk, rows) => this.forward(chunk, rows, true));
  }

  /**
   * One decode step whose next token is chosen on the GPU (Engine.decodeSampled): appends `token` and returns the
   * sampled id, so one integer crosses to the host instead of a row of logits; the host's sampler draws u.
   */
  async decodeSampled(token: number, step: SamplingStep): Promise<number> {
    this.usable();
    const vocab = this.info.config.vocabSize;
    if (!Number.isInteger(token) || token < 0 || token >= vocab) throw new RuntimeError('BAD_ARGUMENT', `token id ${token} is outside the vocabulary (0..${vocab - 1})`);
    await this.forward([token], 1, false);
    return this.native.sample(step);
  }

  private async forward(chunk: readonly number[], logitRows: number, copyLogits: boolean): Promise<Float32Array | null> {
    const start = this.length;
    // Dynamic NTK rotates every key with the frequencies of the current length (as the onnx backend does).
    const invFreq = ropeDependsOnLength(this.info.config) ? ropeFrequencies(this.info.config, start + chunk.length).invFreq : null;
    this.forwarding = true;
    let out: Float32Array | null;
    try {
      out = await this.native.forward(Int32Array.from(chunk), logitRows, copyLogits, invFreq);
    } finally {
      this.forwarding = false;
    }
    this.history.length = start;
    for (const id of chunk) this.history.push(id);
    return out;
  }

  async truncate(length: number): Promise<void> {
    this.usable();
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new RuntimeError('BAD_ARGUMENT', `cannot truncate a cache of ${this.length} tokens to ${length}`);
    }
    const recomputeFrom = this.native.truncate(length);
    const redo = this.history.slice(recomputeFrom, length);
    this.history.length = recomputeFrom;
    if (redo.length > 0) await this.prefill(redo, { logits: 0 });
  }

  memory(): MemoryReport {
    const m = this.nativeMemory();
    const { layers, kvDim, window, bits } = this.shape;
    const fullBytes = m.perLayer.reduce((a, l) => a + l.fullBytes, 0);
    const compressedBytes = m.perLayer.reduce((a, l) => a + l.compressedBytes, 0);
    const totalBytes = fullBytes + compressedBytes;
    const fp16Bytes = m.tokens * 2 * layers * kvDim * 2;
    const compressed = this.shape.ranks !== undefined;
    return {
      tokens: m.tokens, fullTokens: m.tokens - m.compressedTokens, compressedTokens: m.compressedTokens, fullBytes, compressedBytes, totalBytes,
      fp16Bytes, savings: fp16Bytes === 0 ? 0 : 1 - totalBytes / fp16Bytes, perLayer: m.perLayer, fullDtype: 'bf16',
      bits: compressed ? bits : null, window: compressed ? window : null,
    };
  }

  /** The GPU's total and free memory and what this engine holds there, for the status bar and the memory view. */
  deviceMemory(): GpuMemory {
    const m = this.nativeMemory();
    return {
      totalBytes: m.deviceTotalBytes, usedBytes: m.deviceTotalBytes - m.deviceFreeBytes, freeBytes: m.deviceFreeBytes,
      engine: { weightBytes: m.weightBytes, cacheReservedBytes: m.cacheReservedBytes, scratchBytes: m.scratchBytes },
    };
  }

  /** Fresh figures, or during a forward those after the last step: a memory report never waits for the GPU or fails
   * because a forward is running. */
  private nativeMemory(): NativeEngineMemory {
    this.usable();
    if (!this.forwarding) this.figures = this.native.memory();
    return this.figures;
  }

  async snapshot(): Promise<Uint8Array> {
    this.usable();
    const { tokens, compressedTokens } = this.native.state();
    const state: CacheState = {
      tokens, compressedTokens,
      layers: this.layout.layers.map((_, i) => {
        const layer = this.native.exportLayer(i);
        const compressed = this.shape.ranks !== undefined;
        return {
          kFull: bf16ToFloat32(layer.kFull), vFull: bf16ToFloat32(layer.vFull),
          kPending: compressed ? layer.kPending : undefined, vPending: compressed ? layer.vPending : undefined,
          blocks: pagesToBlocks(layer.pages, this.layout, i, this.shape),
        };
      }),
    };
    return encodeSnapshot({ shape: this.shape, history: this.history, state });
  }

  restore(bytes: Uint8Array): void {
    this.usable();
    let snapshot: Snapshot;
    try {
      snapshot = decodeSnapshot(bytes);
    } catch (err) {
      throw new RuntimeError('BAD_ARGUMENT', `cannot restore the cache: ${(err as Error).message}`);
    }
    if (JSON.stringify(snapshot.shape) !== JSON.stringify(this.shape) || snapshot.history.length !== snapshot.state.tokens) {
      throw new RuntimeError('BAD_ARGUMENT', 'cannot restore the cache: the snapshot was taken with another model or other CSKV settings');
    }
    const layers: NativeLayerState[] = snapshot.state.layers.map((l, i) => ({
      kFull: float32ToBf16(l.kFull), vFull: float32ToBf16(l.vFull),
      kPending: l.kPending ?? new Float32Array(0), vPending: l.vPending ?? new Float32Array(0),
      pages: blocksToPages(l.blocks, this.layout, i, this.shape),
    }));
    this.native.importState(snapshot.state.tokens, snapshot.state.compressedTokens, layers);
    this.history.length = 0;
    for (const id of snapshot.history) this.history.push(id); // a spread would overflow the stack on long contexts
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.native.dispose();
  }

  private usable(): void {
    if (this.disposed) throw new RuntimeError('BAD_ARGUMENT', 'the CUDA engine was disposed');
  }
}

/** The addon, when it can run the CUDA engine at all; else RuntimeError BACKEND saying why. */
function cudaAddon(nativeLibrary: string | undefined): NativeAddon {
  const load = loadNativeAddon({ file: nativeLibrary });
  if (!load.loaded) throw new RuntimeError('BACKEND', `CUDA engine: ${load.reason}`);
  if (!load.addon.build.cuda) throw new RuntimeError('BACKEND', `CUDA engine: ${load.file} was built without CUDA (no nvcc at build time)`);
  return load.addon;
}

/** (role, layer, checkpoint tensor) for every tensor of the model the engine takes; layer -1 for the model-wide ones. */
export function tensorRoles(c: ModelConfig): [string, number, string][] {
  const out: [string, number, string][] = [['embedding', -1, 'model.embed_tokens.weight'], ['finalNorm', -1, 'model.norm.weight']];
  if (!c.tieEmbeddings) out.push(['lmHead', -1, 'lm_head.weight']);
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}.`;
    const add = (role: string, name: string, present = true): void => {
      if (present) out.push([role, i, p + name]);
    };
    add('inputNorm', 'input_layernorm.weight');
    add('postNorm', 'post_attention_layernorm.weight');
    for (const x of ['q', 'k', 'v', 'o'] as const) add(x, `self_attn.${x}_proj.weight`);
    for (const x of ['q', 'k', 'v'] as const) add(`${x}Bias`, `self_attn.${x}_proj.bias`, c.qkvBias);
    add('oBias', 'self_attn.o_proj.bias', c.outputBias);
    for (const x of ['gate', 'up', 'down'] as const) {
      add(x, `mlp.${x}_proj.weight`);
      add(`${x}Bias`, `mlp.${x}_proj.bias`, c.mlpBias);
    }
  }
  return out;
}

/** [n, k] of every tensor role that takes blocks with --weights q8 or q4 (an untied output head included; with q8 the embedding too). */
export function blockTensorShapes(c: ModelConfig, format: 'q8' | 'q4'): Partial<Record<string, [number, number]>> {
  const H = c.hiddenSize, Q = c.heads * c.headDim, D = c.kvDim, I = c.intermediateSize;
  return {
    q: [Q, H], k: [D, H], v: [D, H], o: [H, Q], gate: [I, H], up: [I, H], down: [H, I], ...(c.tieEmbeddings ? {} : { lmHead: [c.vocabSize, H] }),
    ...(format === 'q8' ? { embedding: [c.vocabSize, H] } : {}),
  };
}

// bf16 is the top half of an f32: widening is exact; narrowing rounds to nearest even (exact for values that
// came from bf16, as a snapshot's do).
function bf16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
  return new Float32Array(out.buffer);
}

function float32ToBf16(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    out[i] = (w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0 ? 0x7fc0 : ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/**
 * Which attention decode steps (phase 'decode') or prefill chunks ('prefill') run: 'rebuild' (the compressed branch
 * rebuilt into scratch, cuBLASLt, the split attention kernel) or 'fused' (one kernel reads the pages:
 * native/src/kernels/fusedAttention.cuh for decode, fusedPrefillAttention.cuh for prefill). The option, else
 * CSKV_CUDA_DECODE_ATTENTION / CSKV_CUDA_PREFILL_ATTENTION, else 'rebuild': a fused kernel becomes the default once the
 * GPU session has checked it against its reference and the engine suite.
 */
export function cudaAttentionPath(phase: 'decode' | 'prefill', option: string | undefined, env: NodeJS.ProcessEnv = process.env): 'rebuild' | 'fused' {
  const variable = phase === 'decode' ? 'CSKV_CUDA_DECODE_ATTENTION' : 'CSKV_CUDA_PREFILL_ATTENTION';
  const value = option ?? env[variable] ?? 'rebuild';
  if (value !== 'rebuild' && value !== 'fused') {
    throw new RuntimeError('BAD_ARGUMENT', `CUDA engine: ${phase} attention must be "rebuild" or "fused" (${variable}), got "${value}"`);
  }
  return value;
}

/** Device pages [blocks, pageBytes] of one layer as the onnx cache's CompressedBlocks (the snapshot format). */
export function pagesToBlocks(pages: Uint8Array, layout: NativeCacheLayout, layer: number, shape: CacheShape): CompressedBlock[] {
  if (!shape.ranks) return [];
  const { page, kRank, vRank } = layout.layers[layer]!;
  const W = shape.window;
  const blocks: CompressedBlock[] = [];
  for (let b = 0; b * page.bytes < pages.length; b++) {
    const base = pages.byteOffset + b * page.bytes;
    const u16 = (offset: number, count: number): Uint16Array => new Uint16Array(pages.buffer.slice(base + offset, base + offset + count * 2));
    const u8 = (offset: number, count: number): Uint8Array => new Uint8Array(pages.buffer.slice(base + offset, base + offset + count));
    if (shape.bits === 16) {
      blocks.push({ k: u16(page.kData, W * kRank), v: u16(page.vData, W * vRank) });
    } else {
      blocks.push({
        k: { codes: u8(page.kData, packedBytes(W * kRank, shape.bits)), scaleZero: u16(page.kScaleZero, 2 * kRank) },
        v: { codes: u8(page.vData, packedBytes(W * vRank, shape.bits)), scaleZero: u16(page.vScaleZero, 2 * W * Math.ceil(vRank / VALUE_GROUP)) },
      });
    }
  }
  return blocks;
}

/** The inverse of pagesToBlocks: blocks laid into zeroed pages. */
export function blocksToPages(blocks: CompressedBlock[], layout: NativeCacheLayout, layer: number, shape: CacheShape): Uint8Array {
  if (!shape.ranks) return new Uint8Array(0);
  const { page } = layout.layers[layer]!;
  const out = new Uint8Array(blocks.length * page.bytes);
  const put = (at: number, part: Uint8Array | Uint16Array): void => out.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), at);
  blocks.forEach((block, b) => {
    const base = b * page.bytes;
    for (const [part, data, scaleZero] of [[block.k, page.kData, page.kScaleZero], [block.v, page.vData, page.vScaleZero]] as const) {
      if (part instanceof Uint16Array) put(base + data, part);
      else {
        put(base + data, part.codes);
        put(base + scaleZero, part.scaleZero);
      }
    }
  });
  return out;
}
