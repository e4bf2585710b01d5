// The CSKV bi-branch KV cache of the CPU backend: the storage; the policy (what is in which branch, what a
// truncation recomputes, the bytes) is cachePolicy.ts, both as fixed in docs/cskv.md.
//
// Per layer, the full-precision branch holds keys and values of the most recent tokens (keys after RoPE when
// `keysRotated`, so a step rotates only its own keys; before RoPE when the rotation depends on the length); the
// compressed branch holds the rank-r features of every older token, at 16 bits as one contiguous run of fp16 rows
// that onnxruntime reads in place, or quantised in blocks of W. Without factors (CSKV off) nothing is ever
// compressed: an ordinary KV cache.
//
// The full branch is laid out in one of two ways (`FullLayout`): token-major rows that grow (`rows`: what the
// WebGPU backend re-feeds and keeps on the device, and what unrotated keys need, since every step rotates them all),
// or head-major buffers with room to grow (`heads`, headMajorRows.ts: the CPU graph reads them in place and a step
// writes only its own tokens). Snapshots hold token-major rows either way.
//
// The full-precision rows of the last blocks to leave the window are kept (RETAINED_TOKENS), so that a truncation
// into them (a keystroke's completion cutting back to the cursor after its prompt and answer pushed the cursor's
// block out of the window) puts them back instead of recomputing the block in a forward pass.
import { type CachePolicy, type TruncationPlan, blocksEnteredMidChunk, blocksLeaving, checkPolicy, compressedLength, fp16CacheBytes, layerBytes, truncation } from './cachePolicy';
import { GrowableRows } from './growableRows';
import { HeadMajorRows } from './headMajorRows';
import type { CompressedBits, MemoryReport } from '../../protocol';
import { type QuantisedBlock, dequantiseKeys, dequantiseValues, quantiseKeys, quantiseValues } from './quantizer';
import { floatToHalfBits } from '../half';

export interface CacheShape {
  layers: number;
  /** Key/value channels per layer (kvHeads × headDim). */
  kvDim: number;
  /** Ranks per layer of the compressed keys and values; undefined for CSKV off. */
  ranks?: { k: readonly number[]; v: readonly number[] } | undefined;
  window: number;
  bits: CompressedBits;
  /** Full-branch keys are stored after RoPE (a storage fact: snapshots of the two kinds do not mix). */
  keysRotated?: boolean | undefined;
}

/** How the full-precision branch is stored: see the top of this file. */
export type FullLayout = 'rows' | 'heads';

/** The heads layout's kv heads and head size (their product is kvDim), and whether it holds fp16 (else f32). */
export interface HeadMajorLayout {
  kvHeads: number;
  headDim: number;
  half?: boolean;
}

/**
 * Full-precision rows kept of the tokens that left the window last: about what a completion's FIM tail and answer
 * push out of it before the next keystroke cuts back to the cursor (a multi-line answer is 96 tokens at most). At a
 * 7B model's shape (28 layers, 4 kv heads of 128, fp16) 256 tokens are 15 MB. A bounded copy, like a step's scratch,
 * so the memory report leaves it out: it counts what the cache's tokens hold (a small workspace's savings would
 * otherwise look eaten by a constant).
 */
export const RETAINED_TOKENS = 256;

export interface CompressedBlock {
  k: Uint16Array | QuantisedBlock;
  v: Uint16Array | QuantisedBlock;
}

class LayerCache {
  /** Rows layout: keys and values token-major. */
  readonly kFull: GrowableRows | undefined;
  readonly vFull: GrowableRows | undefined;
  /** Heads layout. */
  readonly full: HeadMajorRows | undefined;
  /** Compressed features of the tokens still in the full branch, ready to be stored when they leave it. */
  readonly kPending: GrowableRows | undefined;
  readonly vPending: GrowableRows | undefined;
  /** Quantised branch (8/4/2 bits): one entry per block of W tokens. */
  readonly blocks: CompressedBlock[] = [];
  /** 16-bit branch: fp16 rows of every compressed token. */
  readonly kHalf: GrowableRows<Uint16Array> | undefined;
  readonly vHalf: GrowableRows<Uint16Array> | undefined;
  /** Full-precision keys/values and pending features of the last tokens to leave the window, token-major. */
  readonly retained: { k: GrowableRows<Float32Array | Uint16Array>; v: GrowableRows<Float32Array | Uint16Array>; kPending: GrowableRows; vPending: GrowableRows } | undefined;

  constructor(kvDim: number, readonly kRank: number, readonly vRank: number, compressed: boolean, half: boolean, heads: HeadMajorLayout | undefined) {
    this.kFull = heads ? undefined : new GrowableRows(kvDim);
    this.vFull = heads ? undefined : new GrowableRows(kvDim);
    this.full = heads ? new HeadMajorRows(heads.kvHeads, heads.headDim, heads.half === true) : undefined;
    this.kPending = compressed ? new GrowableRows(kRank) : undefined;
    this.vPending = compressed ? new GrowableRows(vRank) : undefined;
    this.kHalf = compressed && half ? GrowableRows.half(kRank) : undefined;
    this.vHalf = compressed && half ? GrowableRows.half(vRank) : undefined;
    const fullRows = (): GrowableRows<Float32Array | Uint16Array> => (heads?.half ? GrowableRows.half(kvDim) : new GrowableRows(kvDim));
    this.retained = compressed ? { k: fullRows(), v: fullRows(), kPending: new GrowableRows(kRank), vPending: new GrowableRows(vRank) } : undefined;
  }

  /** The first `count` full-branch tokens token-major, in the branch's own element type. */
  fullFront(count: number): { k: Float32Array | Uint16Array; v: Float32Array | Uint16Array } {
    return this.full ? this.full.tokenMajorRaw(count) : { k: this.kFull!.slice(0, count), v: this.vFull!.slice(0, count) };
  }

  appendFull(k: Float32Array | Uint16Array, v: Float32Array | Uint16Array, count: number): void {
    if (this.full) {
      this.full.append(k, v, count);
    } else {
      if (!(k instanceof Float32Array) || !(v instanceof Float32Array)) throw new TypeError('the rows layout holds f32');
      this.kFull!.append(k, count);
      this.vFull!.append(v, count);
    }
  }

  /** The full branch token-major: views for the rows layout, copies for the heads layout. */
  fullRows(): { k: Float32Array; v: Float32Array } {
    return this.full ? this.full.tokenMajor() : { k: this.kFull!.view(), v: this.vFull!.view() };
  }

  /** Room for `full` tokens in the full branch (and their pending features) and `compressed` in the 16-bit rows. */
  reserve(full: number, compressed: number): void {
    for (const rows of [this.full, this.kFull, this.vFull, this.kPending, this.vPending]) rows?.reserve(full);
    for (const rows of [this.kHalf, this.vHalf]) rows?.reserve(compressed);
  }

  dropFullFront(count: number): void {
    this.full?.dropFront(count);
    this.kFull?.dropFront(count);
    this.vFull?.dropFront(count);
  }

  truncateFull(rows: number): void {
    this.full?.truncate(rows);
    this.kFull?.truncate(rows);
    this.vFull?.truncate(rows);
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
  /**
   * Rows layout: keys and values [fullTokens, kvDim]. Heads layout: the whole buffers, keys [kvHeads, headDim,
   * capacity] and values [kvHeads, capacity, headDim], of which slots [0, fullTokens) hold tokens; f32, or fp16
   * bits where the layout holds fp16.
   */
  kFull: Float32Array | Uint16Array;
  vFull: Float32Array | Uint16Array;
  fullTokens: number;
  /** Heads layout: the slots per kv head. */
  capacity?: number;
  /** Compressed features [compressedTokens, rank]: fp16 bits at 16 bits, else dequantised; absent for CSKV off. */
  kCompressed?: Float32Array | Uint16Array;
  vCompressed?: Float32Array | Uint16Array;
  compressedTokens: number;
}

export class BiBranchCache {
  private readonly layers: LayerCache[];
  private compressedTokens = 0;
  private tokens = 0;
  /** Tokens [compressedTokens - retainedTokens, compressedTokens) have their full-precision rows kept. */
  private retainedTokens = 0;
  /** Blocks (by index) whose rows a chunk entered after its first block (cachePolicy blocksEnteredMidChunk). */
  private readonly enteredMidChunk = new Set<number>();
  private kScratch = new Float32Array(0);
  private vScratch = new Float32Array(0);

  private readonly policy: CachePolicy;

  readonly fullLayout: FullLayout;

  /** `heads`: the head-major layout; without it, the rows layout. */
  constructor(readonly shape: CacheShape, heads?: HeadMajorLayout) {
    this.policy = { window: shape.window, compressed: shape.ranks !== undefined };
    checkPolicy(this.policy);
    if (heads && heads.kvHeads * heads.headDim !== shape.kvDim) throw new RangeError(`${heads.kvHeads} kv heads of ${heads.headDim} channels are not ${shape.kvDim}`);
    this.layers = Array.from({ length: shape.layers }, (_, i) =>
      new LayerCache(shape.kvDim, shape.ranks?.k[i] ?? 0, shape.ranks?.v[i] ?? 0, this.policy.compressed, shape.bits === 16, heads));
    this.fullLayout = heads ? 'heads' : 'rows';
    this.fullElementBytes = heads?.half ? 2 : 4;
  }

  /** Bytes per element of the full branch: 2 where it holds fp16. */
  readonly fullElementBytes: 2 | 4;

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
    const result: LayerInputs = l.full
      ? { kFull: l.full.keys, vFull: l.full.values, fullTokens: l.full.rows, capacity: l.full.capacity, compressedTokens: this.compressedTokens }
      : { kFull: l.kFull!.view(), vFull: l.vFull!.view(), fullTokens: l.kFull!.rows, compressedTokens: this.compressedTokens };
    if (l.kHalf && l.vHalf) {
      result.kCompressed = l.kHalf.view();
      result.vCompressed = l.vHalf.view();
    } else if (this.compressed) {
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
    if (stored instanceof Uint16Array) throw new Error('16-bit features are stored as rows, not blocks');
    if (kind === 'k') {
      dequantiseKeys(stored, tokens, rank, this.shape.bits, out, at);
    } else {
      dequantiseValues(stored, tokens, rank, this.shape.bits, out, at);
    }
  }

  /**
   * Adds one layer's keys/values (and compressed features) of a chunk of `count` tokens. Keys/values are f32, or
   * fp16 bits for a heads layout that holds fp16.
   */
  append(layer: number, count: number, k: Float32Array | Uint16Array, v: Float32Array | Uint16Array, kFeatures?: Float32Array, vFeatures?: Float32Array): void {
    const l = this.layers[layer]!;
    l.appendFull(k, v, count);
    if (l.kPending && l.vPending) {
      if (!kFeatures || !vFeatures) throw new Error('compressed features missing for a CSKV cache');
      l.kPending.append(kFeatures, count);
      l.vPending.append(vFeatures, count);
    }
  }

  /**
   * Room for the branches as they will be once `tokens` tokens are cached, so that a prefill which knows its final
   * length allocates each buffer once instead of once per growth (the quantised blocks are allocated one by one
   * anyway). Dropping rows (truncation, the window's blocks leaving) gives back room the tokens do not use.
   */
  reserve(tokens: number): void {
    const compressed = compressedLength(this.policy, tokens);
    for (const l of this.layers) l.reserve(tokens - compressed, compressed);
  }

  /** Records that every layer received `count` more tokens, and moves complete blocks to the compressed branch. */
  commit(count: number): void {
    if (this.compressed) for (const b of blocksEnteredMidChunk(this.policy, this.tokens, count)) this.enteredMidChunk.add(b);
    this.tokens += count;
    const blocks = blocksLeaving(this.policy, this.compressedTokens, this.tokens);
    if (blocks === 0) return;
    const W = this.shape.window, leaving = blocks * W;
    const kept = Math.min(leaving, RETAINED_TOKENS);
    const retained = Math.min(RETAINED_TOKENS, this.retainedTokens + leaving);
    for (const l of this.layers) {
      const r = l.retained!;
      const front = l.fullFront(leaving);
      r.k.append(front.k.subarray((leaving - kept) * this.shape.kvDim), kept);
      r.v.append(front.v.subarray((leaving - kept) * this.shape.kvDim), kept);
      r.kPending.append(l.kPending!.slice(leaving - kept, leaving), kept);
      r.vPending.append(l.vPending!.slice(leaving - kept, leaving), kept);
      for (const rows of [r.k, r.v, r.kPending, r.vPending]) rows.dropFront(rows.rows - retained);
      if (l.kHalf && l.vHalf) {
        l.kHalf.append(toHalf(l.kPending!.slice(0, leaving)), leaving);
        l.vHalf.append(toHalf(l.vPending!.slice(0, leaving)), leaving);
      } else {
        for (let b = 0; b < blocks; b++) {
          l.blocks.push({
            k: quantiseKeys(l.kPending!.slice(b * W, (b + 1) * W), W, l.kRank, this.shape.bits as Exclude<CompressedBits, 16>),
            v: quantiseValues(l.vPending!.slice(b * W, (b + 1) * W), W, l.vRank, this.shape.bits as Exclude<CompressedBits, 16>),
          });
        }
      }
      l.dropFullFront(leaving);
      for (const rows of [l.kPending!, l.vPending!]) rows.dropFront(leaving);
    }
    this.compressedTokens = compressedLength(this.policy, this.tokens);
    this.retainedTokens = retained;
    for (const b of this.enteredMidChunk) if (b * W < this.compressedTokens - retained) this.enteredMidChunk.delete(b);
  }

  /**
   * What truncate(length) would do: where `length` falls inside the compressed branch, only whole blocks stay, and
   * the cut block's tokens before `length` come back from their kept rows (a block no chunk entered midway, still
   * kept) or are recomputed by the engine from the plan's `recomputeFrom`.
   */
  truncationPlan(length: number): TruncationPlan {
    return truncation(this.policy, this.compressedTokens, this.tokens, length,
      (blockStart) => blockStart >= this.compressedTokens - this.retainedTokens && !this.enteredMidChunk.has(blockStart / this.shape.window));
  }

  /**
   * Drops every token at or after `length` (truncationPlan) and returns from where the engine must prefill the
   * history again to reach `length` (`length` itself where nothing is recomputed).
   */
  truncate(length: number): { recomputeFrom: number } {
    const plan = this.truncationPlan(length);
    // Kept rows of the blocks still compressed stay kept.
    const retained = Math.max(0, this.retainedTokens - (this.compressedTokens - plan.compressedTokens));
    const restoredFrom = retained; // the cut block's first kept row
    for (const l of this.layers) {
      const r = l.retained;
      if (plan.restored) {
        l.truncateFull(0);
        l.appendFull(r!.k.slice(restoredFrom, restoredFrom + plan.fullTokens), r!.v.slice(restoredFrom, restoredFrom + plan.fullTokens), plan.fullTokens);
        l.kPending!.truncate(0);
        l.vPending!.truncate(0);
        l.kPending!.append(r!.kPending.slice(restoredFrom, restoredFrom + plan.fullTokens), plan.fullTokens);
        l.vPending!.append(r!.vPending.slice(restoredFrom, restoredFrom + plan.fullTokens), plan.fullTokens);
      } else {
        l.truncateFull(plan.fullTokens);
        for (const rows of [l.kPending, l.vPending]) rows?.truncate(plan.fullTokens);
      }
      if (r) for (const rows of [r.k, r.v, r.kPending, r.vPending]) rows.truncate(retained);
      l.kHalf?.truncate(plan.compressedTokens);
      l.vHalf?.truncate(plan.compressedTokens);
      l.blocks.length = Math.min(l.blocks.length, plan.compressedTokens / this.shape.window);
    }
    this.compressedTokens = plan.compressedTokens;
    this.tokens = plan.compressedTokens + plan.fullTokens;
    this.retainedTokens = retained;
    // Blocks with no rows left are computed anew, by whatever chunks come next.
    for (const b of this.enteredMidChunk) if (b * this.shape.window >= this.tokens) this.enteredMidChunk.delete(b);
    return { recomputeFrom: plan.recomputeFrom };
  }

  /**
   * Layer `layer`'s compressed blocks from position `from` (a multiple of W) on, as stored: what a device copy
   * appends when blocks leave the window, without compressing them a second time.
   */
  compressedBlocks(layer: number, from: number): CompressedBlock[] {
    const W = this.shape.window;
    if (from % W !== 0 || from > this.compressedTokens) throw new RangeError(`compressed blocks from ${from}: not a block start within ${this.compressedTokens} compressed tokens`);
    const l = this.layers[layer]!;
    if (l.kHalf && l.vHalf) return halfBlocks(l.kHalf, l.vHalf, W, from / W);
    return l.blocks.slice(from / W);
  }

  /** Everything the cache holds, for saving; `importState` takes it back into a cache of the same shape. */
  exportState(): CacheState {
    return {
      tokens: this.tokens,
      compressedTokens: this.compressedTokens,
      layers: this.layers.map((l) => {
        const full = l.fullRows();
        return {
          kFull: full.k, vFull: full.v, kPending: l.kPending?.view(), vPending: l.vPending?.view(),
          blocks: l.kHalf && l.vHalf ? halfBlocks(l.kHalf, l.vHalf, this.shape.window) : l.blocks,
        };
      }),
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
      if (saved.kFull.length !== fullTokens * this.shape.kvDim || saved.vFull.length !== fullTokens * this.shape.kvDim) throw new RangeError(`saved cache layer ${i}: full branch size`);
      l.truncateFull(0);
      l.appendFull(saved.kFull, saved.vFull, fullTokens);
      for (const [rows, data] of [[l.kPending, saved.kPending], [l.vPending, saved.vPending]] as const) {
        if (!rows) continue;
        if (!data || data.length !== fullTokens * rows.width) throw new RangeError(`saved cache layer ${i}: full branch size`);
        rows.truncate(0);
        rows.append(data, fullTokens);
      }
      l.blocks.length = 0;
      l.kHalf?.truncate(0);
      l.vHalf?.truncate(0);
      for (const block of saved.blocks) {
        if (l.kHalf && l.vHalf) {
          if (!(block.k instanceof Uint16Array) || !(block.v instanceof Uint16Array)) throw new RangeError(`saved cache layer ${i}: quantised block in a 16-bit cache`);
          l.kHalf.append(block.k, W);
          l.vHalf.append(block.v, W);
        } else {
          l.blocks.push(block);
        }
      }
    });
    this.tokens = state.tokens;
    this.compressedTokens = state.compressedTokens;
    // Nothing of the saved rows' chunks is known: none of the window's blocks stands in for a recompute.
    this.retainedTokens = 0;
    for (const l of this.layers) for (const rows of Object.values(l.retained ?? {})) rows.truncate(0);
    this.enteredMidChunk.clear();
    for (let b = state.compressedTokens / W; b * W < state.tokens; b++) this.enteredMidChunk.add(b);
  }

  /**
   * The bytes of the cache's tokens, or of `held` tokens of the same shape (a GPU backend's copies, which run
   * ahead of this record between flushes).
   */
  memory(held = { tokens: this.tokens, compressedTokens: this.compressedTokens }): MemoryReport {
    const { kvDim, layers, window, bits } = this.shape;
    const { tokens, compressedTokens } = held;
    const fullTokens = tokens - compressedTokens;
    const perLayer = this.layers.map((l) => {
      const bytes = layerBytes({ kvDim, kRank: l.kRank, vRank: l.vRank, bits, fullElementBytes: this.fullElementBytes, pendingElementBytes: 4 }, this.policy, fullTokens, compressedTokens);
      return { fullBytes: bytes.full, compressedBytes: bytes.compressed };
    });
    const fullBytes = perLayer.reduce((a, l) => a + l.fullBytes, 0);
    const compressedBytes = perLayer.reduce((a, l) => a + l.compressedBytes, 0);
    const totalBytes = fullBytes + compressedBytes;
    const fp16Bytes = fp16CacheBytes(tokens, layers, kvDim);
    return {
      tokens,
      fullTokens,
      compressedTokens,
      fullBytes,
      compressedBytes,
      totalBytes,
      fp16Bytes,
      savings: fp16Bytes === 0 ? 0 : 1 - totalBytes / fp16Bytes,
      perLayer,
      fullDtype: this.fullElementBytes === 2 ? 'f16' : 'f32',
      bits: this.compressed ? bits : null,
      window: this.compressed ? window : null,
    };
  }
}

function toHalf(rows: Float32Array): Uint16Array {
  const out = new Uint16Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = floatToHalfBits(rows[i]!);
  return out;
}

/** The 16-bit rows from block `first` on, cut into blocks of W (the snapshot format's unit). */
function halfBlocks(k: GrowableRows<Uint16Array>, v: GrowableRows<Uint16Array>, W: number, first = 0): CompressedBlock[] {
  return Array.from({ length: k.rows / W - first }, (_, i) => {
    const b = first + i;
    return { k: k.slice(b * W, (b + 1) * W).slice(), v: v.slice(b * W, (b + 1) * W).slice() };
  });
}
