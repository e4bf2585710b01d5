// The bi-branch cache policy of cskv.md, apart from any storage: which positions a query reads from the
// compressed branch and which from the full-precision window, where prefill chunks may end, what a truncation
// keeps and recomputes, and what bytes each branch holds. Pure functions of lengths and settings, shared by every
// backend (the onnx backend's BiBranchCache today, a CUDA cache later); each backend keeps its own storage.
import type { CompressedBits } from '../../protocol';
import { blockBytes } from './quantizer';

export interface CachePolicy {
  /** W: tokens leave the full-precision branch in blocks of W. */
  window: number;
  /** False for an ordinary KV cache (CSKV off): nothing is ever compressed. */
  compressed: boolean;
}

export function checkPolicy(policy: CachePolicy): void {
  if (!Number.isInteger(policy.window) || policy.window < 1) throw new RangeError(`window must be a positive integer, got ${policy.window}`);
}

/**
 * Positions [0, result) are held (and read) in the compressed branch once `tokens` tokens are cached; the rest
 * are in the full-precision window. The block-window rule: floor(n / W) * W.
 */
export function compressedLength(policy: CachePolicy, tokens: number): number {
  return policy.compressed ? Math.floor(tokens / policy.window) * policy.window : 0;
}

/** Whole blocks that leave the window when the cache grows to `tokens`, given `compressedTokens` already compressed. */
export function blocksLeaving(policy: CachePolicy, compressedTokens: number, tokens: number): number {
  return Math.max(0, compressedLength(policy, tokens) - compressedTokens) / policy.window;
}

export interface TruncationPlan {
  /** Compressed tokens kept (whole blocks). */
  compressedTokens: number;
  /** Full-precision tokens kept after them. */
  fullTokens: number;
  /** The engine prefills the history [recomputeFrom, length) again to reach the requested length. */
  recomputeFrom: number;
  /**
   * The full-precision tokens come back from the copies kept of the block they left the window in (`restorable`),
   * not from the window.
   */
  restored?: true;
}

/**
 * Dropping every token at or after `length`. Inside the window the rows are simply cut. Inside the compressed
 * branch the window's copies of the cut block's tokens are gone, so only whole blocks below `length` stay and the
 * tokens of the cut block before `length` come back: from copies of their full-precision rows where the backend keeps
 * them and `restorable(blockStart)` says they are what a recompute would give; else the engine recomputes them as one
 * chunk of their own, which leaves the state a fresh prefill of the same calls would (nextChunkEnd).
 */
export function truncation(policy: CachePolicy, compressedTokens: number, tokens: number, length: number, restorable?: (blockStart: number) => boolean): TruncationPlan {
  if (!Number.isInteger(length) || length < 0 || length > tokens) throw new RangeError(`cannot truncate a cache of ${tokens} tokens to ${length}`);
  if (length >= compressedTokens) return { compressedTokens, fullTokens: length - compressedTokens, recomputeFrom: length };
  const kept = Math.floor(length / policy.window) * policy.window;
  if (kept < length && restorable?.(kept)) return { compressedTokens: kept, fullTokens: length - kept, recomputeFrom: length, restored: true };
  return { compressedTokens: kept, fullTokens: 0, recomputeFrom: kept };
}

/**
 * Where to cut a cache for a prefill that follows, reusing its first `length` tokens at most and `floor` at least,
 * where cutting at `length` would recompute part of a compressed block in a forward pass of its own (truncation):
 * the cut goes to that block's start instead and the prefill after it takes those tokens in its first chunk: the
 * same tokens computed, one pass fewer. Unless that start is below `floor`: then `length`.
 */
export function cutWithoutRecompute(window: number, length: number, floor: number): number {
  const blockStart = Math.floor(length / window) * window;
  return blockStart >= floor ? blockStart : length;
}

/**
 * Blocks that a chunk [start, start + count) entered after its first: their rows were computed with the chunk's
 * earlier tokens at full precision, where a recompute of the block would read them compressed, so copies of such a
 * block's rows cannot stand in for a recompute (truncation's `restorable`).
 */
export function blocksEnteredMidChunk(policy: CachePolicy, start: number, count: number): number[] {
  const W = policy.window;
  const blocks: number[] = [];
  for (let b = Math.floor(start / W) + 1; b * W < start + count; b++) blocks.push(b);
  return blocks;
}

/**
 * Where the prefill chunk starting at `start` ends, for a call that prefills up to `total`. Chunk boundaries fall
 * at absolute multiples of the chunk size (rounded to W) and never cross a multiple of W unless the chunk starts
 * on one, so every query in a chunk sees the same split between compressed and full-precision history. The
 * call's last partial block [floor(total/W)*W, total) is always a chunk of its own: truncating back to `total`
 * later recomputes exactly that chunk, which makes the result bit-equal to the state the original call left.
 */
export function nextChunkEnd(start: number, total: number, chunkSize: number, window: number): number {
  const size = Math.max(window, Math.floor(chunkSize / window) * window);
  let end = start % window === 0 ? (Math.floor(start / size) + 1) * size : Math.ceil(start / window) * window;
  const tailStart = Math.floor(total / window) * window;
  if (start < tailStart && end > tailStart) end = tailStart;
  return Math.min(end, total);
}

export interface BranchSizes {
  kvDim: number;
  kRank: number;
  vRank: number;
  bits: CompressedBits;
  /** Bytes per element of the full-precision branch's keys and values as the backend stores them. */
  fullElementBytes: number;
  /** Bytes per element of the compressed features the window keeps for its tokens (default: fullElementBytes). */
  pendingElementBytes?: number;
}

/** Bytes one layer holds for `fullTokens` in the window and `compressedTokens` in the compressed branch. */
export function layerBytes(s: BranchSizes, policy: CachePolicy, fullTokens: number, compressedTokens: number): { full: number; compressed: number } {
  // The window also keeps each token's compressed features, ready for when its block leaves.
  const pending = policy.compressed ? s.kRank + s.vRank : 0;
  return {
    full: fullTokens * (2 * s.kvDim * s.fullElementBytes + pending * (s.pendingElementBytes ?? s.fullElementBytes)),
    compressed: compressedTokens === 0 ? 0 : (compressedTokens / policy.window) * blockBytes(policy.window, s.kRank, s.vRank, s.bits),
  };
}

/** What a plain fp16 cache of the same tokens holds: the yardstick every saving is reported against. */
export function fp16CacheBytes(tokens: number, layers: number, kvDim: number): number {
  return tokens * 2 * layers * kvDim * 2;
}
