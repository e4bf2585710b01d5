// The block-window policy exists twice: in src/runtime/cache/cachePolicy.ts (the runtime: the onnx cache, chunked
// prefill for every backend, truncation plans) and in native/src/engine/cacheLayout.h (the CUDA engine: which
// positions it holds compressed, what it keeps on truncation, how many rows its full-precision ring and its chunk
// scratch have). These tests fail when the two disagree: on the rule itself, on truncation, and on whether every
// chunk the runtime's nextChunkEnd produces (with truncations and recomputes between calls) fits the engine's ring
// and chunk limits. No GPU needed: the native side is the addon's pure arithmetic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type NativeAddon, type NativeCacheSpec, loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { type CachePolicy, compressedLength, nextChunkEnd, truncation } from '../../src/runtime/cache/cachePolicy';
import { mulberry32 } from '../../src/runtime/random';

function addon(): NativeAddon {
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  return load.addon;
}

function specOf(window: number, compressed: boolean, chunkTokens: number, capacityTokens: number): NativeCacheSpec {
  return { layers: 1, kvDim: 8, window, bits: 4, kRanks: compressed ? [3] : undefined, vRanks: compressed ? [5] : undefined, capacityTokens, chunkTokens };
}

test('the block-window rule: the engine compresses exactly the positions the runtime does', () => {
  const a = addon();
  const random = mulberry32(5);
  for (let trial = 0; trial < 300; trial++) {
    const window = 1 + Math.floor(random() * 64), compressed = trial % 3 !== 0;
    const policy: CachePolicy = { window, compressed };
    const spec = specOf(window, compressed, 512, 4096);
    for (const tokens of [0, 1, window - 1, window, window + 1, Math.floor(random() * 4096)]) {
      assert.equal(a.compressedLength(spec, tokens), compressedLength(policy, tokens), `W ${window} compressed ${compressed} tokens ${tokens}`);
    }
  }
});

test('truncation: the engine keeps and recomputes what the runtime plans', () => {
  const a = addon();
  const random = mulberry32(6);
  for (let trial = 0; trial < 500; trial++) {
    const window = 1 + Math.floor(random() * 40), compressed = trial % 4 !== 0;
    const policy: CachePolicy = { window, compressed };
    const tokens = Math.floor(random() * 2000);
    const held = compressedLength(policy, tokens);
    const length = trial % 5 === 0 ? held - (held > 0 ? 1 : 0) : Math.floor(random() * (tokens + 1));
    assert.deepEqual(a.truncationPlan(specOf(window, compressed, 512, 4096), held, length), truncation(policy, held, tokens, length),
      `W ${window} compressed ${compressed} tokens ${tokens} (compressed ${held}) to ${length}`);
  }
});

test('every chunk the runtime\'s nextChunkEnd makes fits the engine\'s ring and chunk limits, across truncations', () => {
  const a = addon();
  const random = mulberry32(7);
  for (let trial = 0; trial < 300; trial++) {
    const window = 1 + Math.floor(random() * 48), compressed = trial % 4 !== 0;
    const chunkTokens = 1 + Math.floor(random() * (trial % 2 === 0 ? 40 : 700));
    const spec = specOf(window, compressed, chunkTokens, 3000);
    const layout = a.cacheLayout(spec);
    // The block window CudaEngine.prefill gives nextChunkEnd: the cache's W, or the chunk size with CSKV off.
    const chunkWindow = compressed ? window : chunkTokens;
    let length = 0, held = 0;
    const what = (): string => `W ${window} compressed ${compressed} chunk ${chunkTokens} at ${length} (compressed ${held})`;
    // The forward checks of native/src/engine/deviceEngine.cc: count <= maxChunk, and the ring holds the tokens
    // not yet compressed plus the chunk.
    const prefillTo = (total: number): void => {
      while (length < total) {
        const end = nextChunkEnd(length, total, chunkTokens, chunkWindow);
        assert.ok(end > length && end - length <= layout.maxChunkTokens, `${what()}: a chunk of ${end - length}, the engine takes ${layout.maxChunkTokens}`);
        assert.ok(end - held <= layout.fullCapacity, `${what()}: ${end - held} full-precision rows, the ring has ${layout.fullCapacity}`);
        length = end;
        held = a.compressedLength(spec, length);
      }
    };
    for (let call = 0; call < 12; call++) {
      if (call > 0 && random() < 0.3) {
        // Truncated to `to`: the engine keeps [0, recomputeFrom) and the runtime prefills the rest again.
        const to = Math.floor(random() * (length + 1));
        const plan = a.truncationPlan(spec, held, to);
        assert.equal(plan.compressedTokens + plan.fullTokens, plan.recomputeFrom, what());
        held = plan.compressedTokens;
        length = plan.recomputeFrom;
        prefillTo(to);
      }
      prefillTo(Math.min(layout.capacityTokens, length + 1 + Math.floor(random() * (random() < 0.5 ? 3 : 400))));
    }
  }
});

test('the engine\'s limits themselves: the chunk size the runtime rounds to, the ring that holds it', () => {
  const a = addon();
  for (const [window, chunkTokens] of [[32, 512], [3, 3], [32, 10], [64, 4096], [5, 17], [1, 1]] as const) {
    const layout = a.cacheLayout(specOf(window, true, chunkTokens, 100_000));
    assert.equal(layout.maxChunkTokens, Math.max(chunkTokens, window));
    // nextChunkEnd's longest chunk: the chunk size rounded down to whole blocks (at least one), from a block start.
    assert.equal(nextChunkEnd(0, 1e9, chunkTokens, window), Math.max(window, Math.floor(chunkTokens / window) * window));
  }
  assert.equal(a.cacheLayout(specOf(8, false, 100, 1000)).maxChunkTokens, 100);
});
