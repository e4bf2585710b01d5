// The cache policy apart from storage: branch boundaries, truncation plans and bytes, as cskv.md fixes them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blocksEnteredMidChunk, blocksLeaving, compressedLength, cutWithoutRecompute, fp16CacheBytes, layerBytes, truncation } from '../../src/runtime/cache/cachePolicy';

const cskv = { window: 32, compressed: true };
const off = { window: 32, compressed: false };

test('positions below floor(n / W) * W are compressed; without CSKV none are', () => {
  assert.equal(compressedLength(cskv, 31), 0);
  assert.equal(compressedLength(cskv, 32), 32);
  assert.equal(compressedLength(cskv, 100), 96);
  assert.equal(compressedLength(off, 100), 0);
  assert.equal(blocksLeaving(cskv, 32, 100), 2);
  assert.equal(blocksLeaving(cskv, 96, 100), 0);
  assert.equal(blocksLeaving(off, 0, 100), 0);
});

test('truncation cuts the window in place and keeps only whole compressed blocks, recomputing the rest', () => {
  assert.deepEqual(truncation(cskv, 96, 100, 98), { compressedTokens: 96, fullTokens: 2, recomputeFrom: 98 });
  assert.deepEqual(truncation(cskv, 96, 100, 96), { compressedTokens: 96, fullTokens: 0, recomputeFrom: 96 });
  assert.deepEqual(truncation(cskv, 96, 100, 70), { compressedTokens: 64, fullTokens: 0, recomputeFrom: 64 });
  assert.deepEqual(truncation(off, 0, 100, 70), { compressedTokens: 0, fullTokens: 70, recomputeFrom: 70 });
  assert.throws(() => truncation(cskv, 96, 100, 101), /cannot truncate a cache of 100 tokens to 101/);
});

test('a truncation inside the compressed branch takes the cut block back from kept rows only where they may stand in for a recompute', () => {
  const asked: number[] = [];
  const restorable = (start: number): boolean => {
    asked.push(start);
    return start >= 64;
  };
  assert.deepEqual(truncation(cskv, 96, 100, 70, restorable), { compressedTokens: 64, fullTokens: 6, recomputeFrom: 70, restored: true });
  assert.deepEqual(truncation(cskv, 96, 100, 40, restorable), { compressedTokens: 32, fullTokens: 0, recomputeFrom: 32 });
  // A cut on a block's start keeps whole blocks: nothing to restore or recompute.
  assert.deepEqual(truncation(cskv, 96, 100, 64, restorable), { compressedTokens: 64, fullTokens: 0, recomputeFrom: 64 });
  assert.deepEqual(asked, [64, 32]);
  assert.equal(cutWithoutRecompute(32, 70, 0), 64);
  assert.equal(cutWithoutRecompute(32, 70, 66), 70);
});

test('a chunk enters every block after the one it starts in midway', () => {
  assert.deepEqual(blocksEnteredMidChunk(cskv, 0, 128), [1, 2, 3]);
  assert.deepEqual(blocksEnteredMidChunk(cskv, 30, 3), [1]);
  assert.deepEqual(blocksEnteredMidChunk(cskv, 32, 32), []);
  assert.deepEqual(blocksEnteredMidChunk(cskv, 33, 1), []);
});

test('bytes by branch: the window with its pending features, the compressed blocks, the fp16 yardstick', () => {
  const sizes = { kvDim: 128, kRank: 26, vRank: 26, bits: 16 as const, fullElementBytes: 4 };
  assert.deepEqual(layerBytes(sizes, cskv, 4, 96), { full: 4 * (256 + 52) * 4, compressed: 96 * 52 * 2 });
  assert.deepEqual(layerBytes({ ...sizes, kRank: 0, vRank: 0 }, off, 100, 0), { full: 100 * 256 * 4, compressed: 0 });
  assert.equal(fp16CacheBytes(100, 24, 128), 100 * 2 * 24 * 128 * 2);
});
