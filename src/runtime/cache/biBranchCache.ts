// The CSKV bi-branch KV cache of the CPU backend (policy and storage as fixed in docs/cskv.md).
//
// Per layer, the full-precision branch holds pre-RoPE keys and values of the most recent tokens; the compressed
// branch holds the rank-r features of every older token in blocks of W, as fp16 (16 bits) or quantised codes.
// After each forward, every complete block below floor(length / W) * W leaves the full branch. Without factors
// (CSKV off) nothing is ever compressed: an ordinary KV cache.
import { GrowableRows } from './growableRows';
import type { CompressedBits, MemoryReport } from '../../protocol';
import { type QuantisedBlock, blockBytes, dequantiseKeys, dequantiseValues, quantiseKeys, quantiseValues } from './quantizer';
import { floatToHalfBits, halfBitsToFloat } from '../half';

export interface CacheShape {
  layers: number;
  /** Key/value channels per layer (kvHeads × headDim). */
  kvDim: number;
  /** Ranks per layer of the compressed keys and values; undefined for CSKV off. */
  ranks?: { k: readonly number[]; v: readonly number[] } | undefined;
  window: number;
  bits: CompressedBits;
}

export interface CompressedBlock {
  k: Uint16Array | QuantisedBlock;
  v: Uint16Array | QuantisedBlock;
}

class LayerCache {
  readonly kFull: GrowableRows;
  readonly vFull: GrowableRows;
  /** Compressed features of the tokens still in the full branch, ready to be stored when they leave it. */
  readonly kPending: GrowableRows | undefined;
  readonly vPending: GrowableRows | undefined;
  readonly blocks: CompressedBlock[] = [];

  constructor(kvDim: number, readonly kRank: number, readonly vRank: number, compressed: boolean) {
    this.kFull = new GrowableRows(kvDim);
    this.vFull = new GrowableRows(kvDim);
    this.kPending = compressed ? new GrowableRows(kRank) : undefined;
    this.vPending = compressed ? new GrowableRows(vRank) : undefined;
  }
}

export interface CacheState {
  tokens: number;
  compressedTokens: number;
  layers: {
    kFull: Float32Array; vFull: Float32Array; kPending?: Float32Array | undefined; vPending?: Float32Array | undefined;
    blocks: CompressedBlock[];
  }[];
}

export interface LayerInputs {
  kFull: Float32Array;
  vFull: Float32Array;
  fullTokens: number;
  /** Dequantised compressed features [compressedTokens, rank]; absent for CSKV off. */
  kCompressed?: Float32Array;
  vCompressed?: Float32Array;
  compressedTokens: number;
}

export class BiBranchCache {
  private readonly layers: LayerCache[];
  private compressedTokens = 0;
  private tokens = 0;
  private kScratch = new Float32Array(0);
  private vScratch = new Float32Array(0);

  constructor(readonly shape: CacheShape) {
    if (!Number.isInteger(shape.window) || shape.window < 1) throw new RangeError(`window must be a positive integer, got ${shape.window}`);
    const compressed = shape.ranks !== undefined;
    this.layers = Array.from({ length: shape.layers }, (_, i) =>
      new LayerCache(shape.kvDim, shape.ranks?.k[i] ?? 0, shape.ranks?.v[i] ?? 0, compressed));
  }

  get compressed(): boolean {
    return this.shape.ranks !== undefined;
  }

  get length(): number {
    return this.tokens;
  }

  /** First position held at full precision. */
  get fullStart(): number {
    return this.compressedTokens;
  }

  /** The cache of one layer as the next forward reads it. */
  inputs(layer: number): LayerInputs {
    const l = this.layers[layer]!;
    const result: LayerInputs = {
      kFull: l.kFull.view(), vFull: l.vFull.view(), fullTokens: l.kFull.rows, compressedTokens: this.compressedTokens,
    };
    if (this.compressed) {
      const n = this.compressedTokens;
      if (this.kScratch.length < n * l.kRank) this.kScratch = new Float32Array(n * l.kRank * 2);
      if (this.vScratch.length < n * l.vRank) this.vScratch = new Float32Array(n * l.vRank * 2);
      const W = this.shape.window;
      l.blocks.forEach((block, b) => {
        this.readBlock(block.k, W, l.kRank, this.kScratch, b * W * l.kRank, 'k');
        this.readBlock(block.v, W, l.vRank, this.vScratch, b * W * l.vRank, 'v');
      });
      result.kCompressed = this.kScratch.subarray(0, n * l.kRank);
      result.vCompressed = this.vScratch.subarray(0, n * l.vRank);
    }
    return result;
  }

  private readBlock(stored: Uint16Array | QuantisedBlock, tokens: number, rank: number, out: Float32Array, at: number, kind: 'k' | 'v'): void {
    if (stored instanceof Uint16Array) {
      for (let i = 0; i < stored.length; i++) out[at + i] = halfBitsToFloat(stored[i]!);
    } else if (kind === 'k') {
      dequantiseKeys(stored, tokens, rank, this.shape.bits, out, at);
    } else {
      dequantiseValues(stored, tokens, rank, this.shape.bits, out, at);
    }
  }

  /** Adds one layer's keys/values (and compressed features) of a chunk of `count` tokens. */
  append(layer: number, count: number, k: Float32Array, v: Float32Array, kFeatures?: Float32Array, vFeatures?: Float32Array): void {
    const l = this.layers[layer]!;
    l.kFull.append(k, count);
    l.vFull.append(v, count);
    if (l.kPending && l.vPending) {
      if (!kFeatures || !vFeatures) throw new Error('compressed features missing for a CSKV cache');
      l.kPending.append(kFeatures, count);
      l.vPending.append(vFeatures, count);
    }
  }

  /** Records that every layer received `count` more tokens, and moves complete blocks to the compressed branch. */
  commit(count: number): void {
    this.tokens += count;
    if (!this.compressed) return;
    const W = this.shape.window;
    const boundary = Math.floor(this.tokens / W) * W;
    const leaving = boundary - this.compressedTokens;
    if (leaving <= 0) return;
    for (const l of this.layers) {
      for (let b = 0; b < leaving / W; b++) {
        l.blocks.push({
          k: this.storeBlock(l.kPending!.slice(b * W, (b + 1) * W), W, l.kRank, 'k'),
          v: this.storeBlock(l.vPending!.slice(b * W, (b + 1) * W), W, l.vRank, 'v'),
        });
      }
      for (const rows of [l.kFull, l.vFull, l.kPending!, l.vPending!]) rows.dropFront(leaving);
    }
    this.compressedTokens = boundary;
  }

  private storeBlock(rows: Float32Array, tokens: number, rank: number, kind: 'k' | 'v'): Uint16Array | QuantisedBlock {
    const bits = this.shape.bits;
    if (bits === 16) {
      const out = new Uint16Array(rows.length);
      for (let i = 0; i < rows.length; i++) out[i] = floatToHalfBits(rows[i]!);
      return out;
    }
    return kind === 'k' ? quantiseKeys(rows, tokens, rank, bits) : quantiseValues(rows, tokens, rank, bits);
  }

  /**
   * Drops every token at or after `length`. Full-precision copies of tokens already compressed are gone, so when
   * `length` falls inside the compressed branch the cache keeps only whole blocks and returns how many tokens,
   * from the returned `recomputeFrom`, the engine must prefill again to reach `length`.
   */
  truncate(length: number): { recomputeFrom: number } {
    if (length < 0 || length > this.tokens) throw new RangeError(`cannot truncate a cache of ${this.tokens} tokens to ${length}`);
    if (length >= this.compressedTokens) {
      const keep = length - this.compressedTokens;
      for (const l of this.layers) for (const rows of [l.kFull, l.vFull, l.kPending, l.vPending]) rows?.truncate(keep);
      this.tokens = length;
      return { recomputeFrom: length };
    }
    const W = this.shape.window;
    const blocks = Math.floor(length / W);
    for (const l of this.layers) {
      l.blocks.length = blocks;
      for (const rows of [l.kFull, l.vFull, l.kPending, l.vPending]) rows?.truncate(0);
    }
    this.compressedTokens = this.tokens = blocks * W;
    return { recomputeFrom: blocks * W };
  }

  /** Everything the cache holds, for saving; `importState` takes it back into a cache of the same shape. */
  exportState(): CacheState {
    return {
      tokens: this.tokens,
      compressedTokens: this.compressedTokens,
      layers: this.layers.map((l) => ({
        kFull: l.kFull.view(), vFull: l.vFull.view(), kPending: l.kPending?.view(), vPending: l.vPending?.view(),
        blocks: l.blocks,
      })),
    };
  }

  importState(state: CacheState): void {
    const W = this.shape.window;
    const fullTokens = state.tokens - state.compressedTokens;
    if (state.layers.length !== this.layers.length || state.compressedTokens % W !== 0 || fullTokens < 0) {
      throw new RangeError('saved cache does not fit this cache shape');
    }
    state.layers.forEach((saved, i) => {
      const l = this.layers[i]!;
      if (saved.blocks.length * W !== state.compressedTokens) throw new RangeError(`saved cache layer ${i}: block count`);
      for (const [rows, data] of [[l.kFull, saved.kFull], [l.vFull, saved.vFull], [l.kPending, saved.kPending], [l.vPending, saved.vPending]] as const) {
        if (!rows) continue;
        if (!data || data.length !== fullTokens * rows.width) throw new RangeError(`saved cache layer ${i}: full branch size`);
        rows.truncate(0);
        rows.append(data, fullTokens);
      }
      l.blocks.length = 0;
      l.blocks.push(...saved.blocks);
    });
    this.tokens = state.tokens;
    this.compressedTokens = state.compressedTokens;
  }

  memory(): MemoryReport {
    const { kvDim, layers, window, bits } = this.shape;
    const perLayer = this.layers.map((l) => ({
      fullBytes: l.kFull.bytes + l.vFull.bytes + (l.kPending?.bytes ?? 0) + (l.vPending?.bytes ?? 0),
      compressedBytes: l.blocks.length * blockBytes(window, l.kRank, l.vRank, bits),
    }));
    const fullBytes = perLayer.reduce((a, l) => a + l.fullBytes, 0);
    const compressedBytes = perLayer.reduce((a, l) => a + l.compressedBytes, 0);
    const totalBytes = fullBytes + compressedBytes;
    const fp16Bytes = this.tokens * 2 * layers * kvDim * 2;
    return {
      tokens: this.tokens,
      fullTokens: this.tokens - this.compressedTokens,
      compressedTokens: this.compressedTokens,
      fullBytes,
      compressedBytes,
      totalBytes,
      fp16Bytes,
      savings: fp16Bytes === 0 ? 0 : 1 - totalBytes / fp16Bytes,
      perLayer,
      fullDtype: 'f32',
      bits: this.compressed ? bits : null,
      window: this.compressed ? window : null,
    };
  }
}
