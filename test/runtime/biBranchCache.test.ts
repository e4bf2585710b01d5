import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BiBranchCache } from '../../src/runtime/cache/biBranchCache';
import { nextChunkEnd } from '../../src/runtime/cache/cachePolicy';
import { halfBitsToFloat } from '../../src/runtime/half';

const D = 4, RK = 2, RV = 3, W = 4;

function feed(cache: BiBranchCache, from: number, count: number): void {
  // Token t carries the value t in every channel, so what comes back shows which tokens are where.
  const rows = (width: number): Float32Array => Float32Array.from({ length: count * width }, (_, i) => from + Math.floor(i / width));
  for (let l = 0; l < cache.shape.layers; l++) cache.append(l, count, rows(D), rows(D), rows(RK), rows(RV));
  cache.commit(count);
}

function cskvCache(bits: 16 | 8 | 4 | 2 = 16): BiBranchCache {
  return new BiBranchCache({ layers: 2, kvDim: D, window: W, bits, ranks: { k: [RK, RK], v: [RV, RV] } });
}

test('tokens below floor(n / W) * W move to the compressed branch in blocks of W', () => {
  const cache = cskvCache();
  feed(cache, 0, 3);
  assert.equal(cache.fullStart, 0);
  feed(cache, 3, 1); // 4 tokens: one whole block leaves
  assert.equal(cache.fullStart, 4);
  feed(cache, 4, 9); // 13 tokens: compressed [0, 12), full [12, 13)
  assert.equal(cache.fullStart, 12);
  const inputs = cache.inputs(1);
  assert.equal(inputs.fullTokens, 1);
  assert.deepEqual(Array.from(inputs.kFull), [12, 12, 12, 12]);
  assert.equal(inputs.compressedTokens, 12);
  // 16-bit storage, handed out as the fp16 rows themselves: small integers survive fp16 exactly, in token order.
  assert.ok(inputs.kCompressed instanceof Uint16Array);
  const asFloats = (rows: Float32Array | Uint16Array): number[] => Array.from(rows, (h) => halfBitsToFloat(h));
  assert.deepEqual(asFloats(inputs.kCompressed), Array.from({ length: 12 * RK }, (_, i) => Math.floor(i / RK)));
  assert.deepEqual(asFloats(inputs.vCompressed!).slice(-RV), [11, 11, 11]);
});

test('memory accounting by branch and layer, against a full fp16 cache', () => {
  const cache = cskvCache();
  feed(cache, 0, 13);
  const m = cache.memory();
  assert.equal(m.tokens, 13);
  assert.equal(m.compressedTokens, 12);
  assert.equal(m.fullTokens, 1);
  // full branch f32: k + v (4 ch) + pending features (2 + 3) for one token, per layer (the rows kept of the 12 that
  // left it are not the cache's tokens)
  assert.deepEqual(m.perLayer[0], { fullBytes: (4 + 4 + 2 + 3) * 4, compressedBytes: 12 * (RK + RV) * 2 });
  assert.equal(m.totalBytes, 2 * ((4 + 4 + 2 + 3) * 4 + 12 * (RK + RV) * 2));
  assert.equal(m.fp16Bytes, 13 * 2 * 2 * D * 2);
  assert.equal(m.savings, 1 - m.totalBytes / m.fp16Bytes);
});

test('without factors the cache never compresses', () => {
  const cache = new BiBranchCache({ layers: 1, kvDim: D, window: W, bits: 16 });
  cache.append(0, 9, new Float32Array(9 * D).fill(1), new Float32Array(9 * D).fill(2));
  cache.commit(9);
  assert.equal(cache.fullStart, 0);
  assert.equal(cache.inputs(0).fullTokens, 9);
  assert.equal(cache.memory().totalBytes, 9 * 2 * D * 4);
});

test('truncate inside the full branch is exact; inside the compressed branch it asks for a recompute', () => {
  const cache = cskvCache();
  feed(cache, 0, 14); // compressed [0,12), full [12,14)
  assert.deepEqual(cache.truncate(13), { recomputeFrom: 13 });
  assert.equal(cache.length, 13);
  assert.deepEqual(Array.from(cache.inputs(0).kFull), [12, 12, 12, 12]);
  assert.deepEqual(cache.truncate(6), { recomputeFrom: 4 });
  assert.equal(cache.length, 4);
  assert.equal(cache.fullStart, 4);
  assert.equal(cache.inputs(0).fullTokens, 0);
  assert.deepEqual(cache.truncate(4), { recomputeFrom: 4 });
  assert.throws(() => cache.truncate(5), /cannot truncate/);
});

test('a truncation into a block that left the window puts its kept rows back, unless a chunk entered the block midway', () => {
  for (const bits of [16, 4] as const) {
    const cache = cskvCache(bits);
    feed(cache, 0, 12); // one chunk [0, 12): it entered blocks 1 and 2 midway
    feed(cache, 12, 3); // [12, 15): starts on block 3's start
    feed(cache, 15, 6); // [15, 21): compressed [0, 20), block 4 entered midway
    const before = cache.memory();
    assert.equal(before.compressedTokens, 20);
    // Block 3 was started by its own chunk and its rows are kept: they come back, nothing is recomputed.
    assert.deepEqual(cache.truncationPlan(14), { compressedTokens: 12, fullTokens: 2, recomputeFrom: 14, restored: true });
    assert.deepEqual(cache.truncate(14), { recomputeFrom: 14 });
    assert.equal(cache.length, 14);
    assert.equal(cache.fullStart, 12);
    const restored = cache.inputs(1);
    assert.deepEqual(Array.from(restored.kFull), [12, 12, 12, 12, 13, 13, 13, 13]);
    assert.deepEqual(Array.from(restored.vFull), [12, 12, 12, 12, 13, 13, 13, 13]);
    assert.equal(restored.compressedTokens, 12);
    // The pending features came back too: they leave with the block again, as a fresh prefill would have them.
    feed(cache, 14, 2);
    assert.equal(cache.fullStart, 16);
    // Block 2 was entered midway by the first chunk: a recompute from its start.
    assert.deepEqual(cache.truncate(9), { recomputeFrom: 8 });
    assert.equal(cache.length, 8);
    assert.equal(cache.memory().compressedTokens, 8);
  }
});

test('a cache restored from its saved state keeps no rows: a truncation into its saved blocks recomputes', () => {
  const cache = cskvCache();
  feed(cache, 0, 4);
  feed(cache, 4, 2); // compressed [0, 4), the block's rows kept, full [4, 6)
  feed(cache, 6, 4);
  assert.deepEqual(cache.truncationPlan(5), { compressedTokens: 4, fullTokens: 1, recomputeFrom: 5, restored: true });
  const copy = cskvCache();
  copy.importState(cache.exportState());
  assert.deepEqual(copy.memory(), cache.memory());
  // Nothing is known of the saved rows' chunks, and the kept rows are not saved.
  feed(copy, 10, 4);
  assert.deepEqual(copy.truncate(5), { recomputeFrom: 4 });
});

test('quantised blocks come back within one quantisation step', () => {
  for (const bits of [8, 4, 2] as const) {
    const cache = cskvCache(bits);
    feed(cache, 0, 8);
    const c = cache.inputs(0);
    const levels = 2 ** bits - 1;
    // keys per channel over a block of 4 tokens spanning 3: step 3/levels
    c.kCompressed!.forEach((x, i) => assert.ok(Math.abs(x - Math.floor(i / RK)) <= 3 / levels / 2 + 1e-3, `${bits}-bit key ${i}`));
    // values: one token's channels are equal, so they come back exactly
    c.vCompressed!.forEach((x, i) => assert.equal(x, Math.floor(i / RV)));
    assert.ok(cache.memory().compressedBytes < 8 * (RK + RV) * 2 * 2 || bits === 8);
  }
});

test('prefill chunks: absolute multiples of the chunk size, W-aligned, the call\'s last partial block alone', () => {
  assert.equal(nextChunkEnd(0, 100, 64, 32), 64);
  assert.equal(nextChunkEnd(64, 100, 64, 32), 96); // the partial block [96, 100) comes alone
  assert.equal(nextChunkEnd(96, 100, 64, 32), 100);
  assert.equal(nextChunkEnd(50, 200, 64, 32), 64); // finish the partial block first
  assert.equal(nextChunkEnd(64, 200, 64, 32), 128);
  assert.equal(nextChunkEnd(96, 200, 64, 32), 128); // back on the absolute grid
  assert.equal(nextChunkEnd(64, 70, 64, 32), 70);
  assert.equal(nextChunkEnd(0, 100, 50, 32), 32); // chunk size rounds down to a multiple of W
  assert.equal(nextChunkEnd(0, 100, 10, 32), 32); // ... but never below W
});

test('compressedBlocks hands out the stored blocks from a block start on, as a snapshot holds them', () => {
  for (const bits of [16, 4] as const) {
    const cache = cskvCache(bits);
    feed(cache, 0, 13); // blocks [0, 4), [4, 8), [8, 12)
    for (let layer = 0; layer < 2; layer++) {
      const saved = cache.exportState().layers[layer]!.blocks;
      assert.deepEqual(cache.compressedBlocks(layer, 4), saved.slice(1));
      assert.deepEqual(cache.compressedBlocks(layer, 12), []);
    }
    // Token t carries the value t: the first block handed out from 8 is tokens 8..11.
    const k = cache.compressedBlocks(0, 8)[0]!.k;
    if (k instanceof Uint16Array) assert.deepEqual(Array.from(k, halfBitsToFloat), Array.from({ length: W * RK }, (_, i) => 8 + Math.floor(i / RK)));
    assert.throws(() => cache.compressedBlocks(0, 2), /not a block start/);
    assert.throws(() => cache.compressedBlocks(0, 16), /not a block start/);
  }
});

test('reserve: a cache sized for its final length holds, reads and compresses what one grown chunk by chunk does, in the buffers it reserved', () => {
  const heads = { kvHeads: 2, headDim: D / 2, half: true };
  for (const shape of [{ layers: 2, kvDim: D, window: W, bits: 16 as const, ranks: { k: [RK, RK], v: [RV, RV] } }, { layers: 2, kvDim: D, window: W, bits: 16 as const }]) {
    const what = shape.ranks ? 'CSKV 16-bit' : 'full cache';
    const reserved = new BiBranchCache(shape, heads);
    const grown = new BiBranchCache(shape, heads);
    feed(reserved, 0, 5);
    feed(grown, 0, 5);
    reserved.reserve(303);
    const before = reserved.inputs(1);
    for (let from = 5; from < 303; from += 42) {
      const count = Math.min(42, 303 - from);
      feed(reserved, from, count);
      feed(grown, from, count);
      const [r, g] = [reserved.inputs(1), grown.inputs(1)];
      assert.equal(r.capacity, g.capacity, `${what}, ${reserved.length} tokens: the capacity attention reads`);
      // The buffer that grows with the length (the full branch without CSKV, the compressed rows with it) is the one reserved.
      assert.equal((shape.ranks ? r.kCompressed! : r.kFull).buffer, (shape.ranks ? before.kCompressed! : before.kFull).buffer, `${what}, ${reserved.length} tokens: reallocated`);
    }
    assert.deepEqual(reserved.exportState(), grown.exportState(), what);
    assert.deepEqual(reserved.truncate(150), grown.truncate(150));
    assert.deepEqual(reserved.exportState(), grown.exportState(), `${what}, truncated`);
  }
});
