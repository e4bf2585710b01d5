// The CUDA engine's host side, on any machine: the cache layout and attention plan (native arithmetic), the
// capacity plan, the page <-> snapshot block conversion, and a clean typed failure where no GPU is present.
// Its numerics (kernels and the whole engine against the fixtures) are test/gpu/'s business.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blocksToPages, CudaEngine, cudaAttentionPath, pagesToBlocks, tensorRoles } from '../../src/runtime/backends/cudaEngine';
import { DEVICE_MARGIN_BYTES, deviceScratchBytes, deviceWeightBytes, planCapacity } from '../../src/runtime/backends/cudaMemoryPlan';
import { type NativeAddon, type NativeCacheSpec, type NativeModelSpec, loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import type { CacheShape, CompressedBlock } from '../../src/runtime/cache/biBranchCache';
import { blockBytes, quantiseKeys, quantiseValues } from '../../src/runtime/cache/quantizer';
import { RuntimeError } from '../../src/runtime/errors';
import { readModelConfig } from '../../src/runtime/model/config';
import { ModelWeights } from '../../src/runtime/model/weights';
import { mulberry32 } from '../../src/runtime/random';
import { modelFixture } from '../support/paths';
import { nvidiaDriverPresent } from './expectations';

function addon(): NativeAddon {
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  return load.addon;
}

const spec = (over: Partial<NativeCacheSpec> = {}): NativeCacheSpec => ({
  layers: 2, kvDim: 64, window: 32, bits: 4, kRanks: [8, 16], vRanks: [24, 8], capacityTokens: 4096, chunkTokens: 512, ...over,
});

test('cache layout: pages are the quantiser\'s block bytes for aligned shapes, and aligned, disjoint parts for any shape', () => {
  const a = addon();
  for (const bits of [16, 8, 4, 2] as const) {
    const layout = a.cacheLayout(spec({ bits }));
    layout.layers.forEach((l, i) => assert.equal(l.page.bytes, blockBytes(32, [8, 16][i]!, [24, 8][i]!, bits), `bits ${bits} layer ${i}`));
  }
  const random = mulberry32(7);
  for (let trial = 0; trial < 200; trial++) {
    const W = 1 + Math.floor(random() * 40), rk = 1 + Math.floor(random() * 64), rv = 1 + Math.floor(random() * 64);
    const bits = ([16, 8, 4, 2] as const)[trial % 4]!;
    const { page } = a.cacheLayout(spec({ layers: 1, window: W, bits, kRanks: [rk], vRanks: [rv], capacityTokens: 10 * W })).layers[0]!;
    const what = `W ${W} rk ${rk} rv ${rv} bits ${bits}`;
    assert.equal(page.bytes % 16, 0, what);
    assert.ok(page.bytes >= blockBytes(W, rk, rv, bits), what);
    if (bits === 16) {
      assert.equal(page.vData, W * rk * 2, what);
      continue;
    }
    assert.equal(page.kScaleZero % 4, 0, what);
    assert.equal(page.vScaleZero % 4, 0, what);
    assert.ok(page.kScaleZero >= Math.ceil((W * rk * bits) / 8) && page.vData >= page.kScaleZero + rk * 4, what);
    assert.ok(page.vScaleZero >= page.vData + Math.ceil((W * rv * bits) / 8), what);
    assert.ok(page.bytes >= page.vScaleZero + W * Math.ceil(rv / 32) * 4, what);
  }
});

test('cache layout: the full-precision ring holds the window plus a chunk; capacity is whole blocks; reserved bytes add up', () => {
  const a = addon();
  for (const [W, chunk] of [[32, 512], [3, 3], [32, 10], [64, 4096], [5, 17]] as const) {
    const layout = a.cacheLayout(spec({ window: W, chunkTokens: chunk, capacityTokens: 100_003 }));
    const largestChunk = Math.max(W, Math.floor(chunk / W) * W);
    assert.ok(layout.fullCapacity >= largestChunk + W - 1, `W ${W} chunk ${chunk}`);
    assert.equal(layout.fullCapacity % W, 0, 'blocks never wrap around the ring');
    assert.equal(layout.capacityTokens % W, 0);
    assert.equal(layout.maxBlocks, layout.capacityTokens / W);
    const sum = layout.layers.reduce((s, l) => s + l.fullReservedBytes + l.compressedReservedBytes, 0);
    assert.equal(layout.reservedBytes, sum);
    layout.layers.forEach((l, i) => {
      assert.equal(l.fullReservedBytes, layout.fullCapacity * (2 * 64 * 2 + (l.kRank + l.vRank) * 4));
      assert.equal(l.compressedReservedBytes, layout.maxBlocks * l.page.bytes, `layer ${i}`);
    });
  }
  const off = a.cacheLayout(spec({ kRanks: undefined, vRanks: undefined, capacityTokens: 1000 }));
  assert.equal(off.fullCapacity, 1000);
  assert.equal(off.maxBlocks, 0);
  assert.equal(off.reservedBytes, 2 * 1000 * 2 * 64 * 2);
});

test('cache layout: a bad spec is refused naming the field', () => {
  const a = addon();
  const bad = (over: Partial<NativeCacheSpec>, pattern: RegExp): void =>
    assert.throws(() => a.cacheLayout(spec(over)), (e: unknown) => e instanceof RuntimeError && e.code === 'BAD_ARGUMENT' && pattern.test(e.message));
  bad({ bits: 3 as never }, /bits must be 16, 8, 4 or 2/);
  bad({ window: 0 }, /window must be at least 1/);
  bad({ kRanks: [8] , vRanks: [8] }, /ranks are given for 1 layers, the model has 2/);
  bad({ kRanks: [8, 65] }, /layer 1 ranks must be in 1\.\.64/);
  bad({ capacityTokens: 31 }, /at least one block/);
});

test('attention plan: every key covered in whole tiles, decode split across the GPU, prefill not, scratch bounded', () => {
  const a = addon();
  for (const queries of [1, 2, 7, 64, 512]) {
    for (const keys of [1, 63, 64, 65, 4096, 32768, 131072]) {
      if (keys < queries) continue;
      for (const [heads, sms] of [[28, 132], [4, 1], [32, 108], [2, 16]] as const) {
        const p = a.attentionPlan(queries, keys, heads, sms);
        const what = `${queries} queries, ${keys} keys, ${heads} heads, ${sms} SMs`;
        assert.equal(p.keysPerSplit % p.keyTile, 0, what);
        assert.ok(p.splits * p.keysPerSplit >= keys, what);
        assert.ok((p.splits - 1) * p.keysPerSplit < keys, `${what}: no empty split`);
        assert.equal(p.partialRows, queries * heads * p.splits);
        assert.ok(p.partialRows <= p.maxPartialRows, what);
      }
    }
  }
  assert.ok(a.attentionPlan(1, 32768, 28, 132).splits > 8, 'decode fills the GPU');
  assert.equal(a.attentionPlan(512, 32768, 28, 132).splits, 1, 'a prefill chunk fills it already');
});

test('capacity plan: the wanted context when it fits, shrunk in whole blocks when it does not, refused when the weights alone do not fit', () => {
  const a = addon();
  const shape = { hidden: 3584, layers: 28, qDim: 3584, kvDim: 512, intermediate: 18944, vocab: 152064, headDim: 128, tiedEmbeddings: false };
  const cache = { layers: 28, kvDim: 512, window: 32, bits: 4 as const, kRanks: Array(28).fill(102), vRanks: Array(28).fill(102), chunkTokens: 512 };
  const weights = deviceWeightBytes(shape);
  assert.ok(weights > 14e9 && weights < 16e9, `Qwen2.5-7B in bf16 is ~15 GB, got ${weights}`);
  const roomy = planCapacity({ shape, cache, wantedTokens: 131072, freeBytes: 140 * 1024 ** 3, layoutOf: (s) => a.cacheLayout(s) });
  assert.equal(roomy.capacityTokens, 131072);
  assert.equal(roomy.shrunk, undefined);
  const free = weights + DEVICE_MARGIN_BYTES + 0.5 * 1024 ** 3;
  const tight = planCapacity({ shape, cache, wantedTokens: 131072, freeBytes: free, layoutOf: (s) => a.cacheLayout(s) });
  assert.ok(tight.capacityTokens > 0 && tight.capacityTokens < 131072 && tight.capacityTokens % 32 === 0, String(tight.capacityTokens));
  assert.ok(weights + tight.cacheBytes + tight.scratchBytes <= free - DEVICE_MARGIN_BYTES);
  // The full cache of the same model fits fewer tokens in the same memory: CSKV's point.
  const full = planCapacity({ shape, cache: { ...cache, kRanks: undefined, vRanks: undefined }, wantedTokens: 131072, freeBytes: free, layoutOf: (s) => a.cacheLayout(s) });
  assert.ok(full.capacityTokens < tight.capacityTokens, `full ${full.capacityTokens} vs cskv-4 ${tight.capacityTokens}`);
  assert.match(tight.shrunk ?? '', /limited to \d+ tokens/);
  const none = planCapacity({ shape, cache, wantedTokens: 131072, freeBytes: 8 * 1024 ** 3, layoutOf: (s) => a.cacheLayout(s) });
  assert.equal(none.capacityTokens, 0);
  assert.match(none.shrunk ?? '', /weights alone/);
  assert.ok(deviceScratchBytes(shape, 512, 131072, 102) > deviceScratchBytes(shape, 512, 131072, 0), 'CSKV rebuild scratch is counted');
});

test('pages <-> snapshot blocks: the quantiser\'s blocks survive the device layout bit for bit', () => {
  const a = addon();
  const random = mulberry32(11);
  for (const bits of [16, 8, 4, 2] as const) {
    const W = 5, kRanks = [3, 7], vRanks = [33, 2];
    const layout = a.cacheLayout({ layers: 2, kvDim: 40, window: W, bits, kRanks, vRanks, capacityTokens: 40, chunkTokens: 10 });
    const shape: CacheShape = { layers: 2, kvDim: 40, window: W, bits, ranks: { k: kRanks, v: vRanks } };
    for (let layer = 0; layer < 2; layer++) {
      const blocks: CompressedBlock[] = [];
      for (let b = 0; b < 3; b++) {
        const rows = (r: number): Float32Array => Float32Array.from({ length: W * r }, () => random() * 4 - 2);
        const k = rows(kRanks[layer]!), v = rows(vRanks[layer]!);
        blocks.push(bits === 16
          ? { k: Uint16Array.from(k, (x) => Math.round(x * 1000) & 0xffff), v: Uint16Array.from(v, (x) => Math.round(x * 1000) & 0xffff) }
          : { k: quantiseKeys(k, W, kRanks[layer]!, bits), v: quantiseValues(v, W, vRanks[layer]!, bits) });
      }
      const pages = blocksToPages(blocks, layout, layer, shape);
      assert.equal(pages.length, 3 * layout.layers[layer]!.page.bytes);
      assert.deepEqual(pagesToBlocks(pages, layout, layer, shape), blocks, `bits ${bits} layer ${layer}`);
    }
  }
});

test('decode and prefill attention: rebuild unless the option or CSKV_CUDA_DECODE/PREFILL_ATTENTION asks for the fused kernel', () => {
  for (const [phase, variable] of [['decode', 'CSKV_CUDA_DECODE_ATTENTION'], ['prefill', 'CSKV_CUDA_PREFILL_ATTENTION']] as const) {
    const other = phase === 'decode' ? 'CSKV_CUDA_PREFILL_ATTENTION' : 'CSKV_CUDA_DECODE_ATTENTION';
    assert.equal(cudaAttentionPath(phase, undefined, {}), 'rebuild');
    assert.equal(cudaAttentionPath(phase, undefined, { [variable]: 'fused' }), 'fused');
    assert.equal(cudaAttentionPath(phase, undefined, { [other]: 'fused' }), 'rebuild', `${phase} reads only ${variable}`);
    assert.equal(cudaAttentionPath(phase, 'rebuild', { [variable]: 'fused' }), 'rebuild');
    assert.throws(() => cudaAttentionPath(phase, undefined, { [variable]: 'flash' }),
      (e: unknown) => e instanceof RuntimeError && e.code === 'BAD_ARGUMENT' && new RegExp(`^CUDA engine: ${phase} attention .*\\(${variable}\\), got "flash"$`).test(e.message));
  }
});

test('every checkpoint tensor the engine takes exists in each fixture, under a role the addon knows', () => {
  for (const name of ['llama-bias', 'qwen2-v5', 'mistral-linear', 'llama-yarn-sharded']) {
    const config = readModelConfig(modelFixture(name));
    const weights = ModelWeights.open(modelFixture(name));
    try {
      for (const [, , tensor] of tensorRoles(config)) assert.ok(weights.has(tensor), `${name}: ${tensor}`);
    } finally {
      weights.close();
    }
  }
});

test('a model spec the engine cannot run is refused naming the field, before any device work', () => {
  const a = addon();
  const good: NativeModelSpec = {
    hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 128, vocab: 100, rmsNormEps: 1e-6, qkvBias: true, outputBias: false,
    mlpBias: false, tiedEmbeddings: true, slidingWindow: 0, invFreq: new Float64Array(8).fill(0.5), attentionFactor: 1, device: 0,
    cache: { layers: 2, kvDim: 32, window: 4, bits: 16, capacityTokens: 64, chunkTokens: 8 },
  };
  const refused = (over: Partial<NativeModelSpec>, pattern: RegExp): void =>
    assert.throws(() => new a.CudaEngine({ ...good, ...over }), (e: unknown) => e instanceof RuntimeError && e.code === 'BAD_ARGUMENT' && pattern.test(e.message));
  refused({ heads: 3 }, /heads must be a positive multiple of kvHeads/);
  refused({ decodeAttention: 'flash' as never }, /^CudaEngine: decodeAttention must be "rebuild" or "fused"$/);
  refused({ prefillAttention: 'flash' as never }, /^CudaEngine: prefillAttention must be "rebuild" or "fused"$/);
  refused({ weights: 'q5' as never }, /^CudaEngine: weights must be "bf16", "q8" or "q4"$/);
  refused({ headDim: 512, invFreq: new Float64Array(256) }, /headDim must be even and in 2\.\.256/);
  refused({ invFreq: new Float64Array(3) }, /invFreq must have headDim \/ 2 entries/);
  refused({ vocab: 1.5 }, /vocab must be an integer/);
  refused({ cache: { ...good.cache, kvDim: 64 } }, /the cache's layers and kvDim must be the model's/);
  if (!nvidiaDriverPresent()) {
    // A valid spec reaches the device, which is not there: a typed error naming the step, not a crash.
    assert.throws(() => new a.CudaEngine(good), (e: unknown) =>
      e instanceof RuntimeError && (e.code === 'CUDA' || e.code === 'BACKEND') && /^createEngine: /.test(e.message));
    // q4 weights are a valid spec too: the same error from the device, not an argument error.
    assert.throws(() => new a.CudaEngine({ ...good, weights: 'q4' }), (e: unknown) =>
      e instanceof RuntimeError && (e.code === 'CUDA' || e.code === 'BACKEND') && /^createEngine: /.test(e.message));
  }
});

test('CudaEngine.load without a GPU: RuntimeError BACKEND with the reason', { skip: nvidiaDriverPresent() && 'an NVIDIA driver is present' }, async () => {
  await assert.rejects(CudaEngine.load(modelFixture('qwen2-v5')), (e: unknown) =>
    e instanceof RuntimeError && e.code === 'BACKEND' && /^CUDA engine: (cannot read the GPU's memory: deviceMemory: cudaSetDevice|.*built without CUDA)/.test(e.message));
  await assert.rejects(CudaEngine.load(modelFixture('qwen2-v5'), { nativeLibrary: '/nonexistent/cskv_native.node' }), (e: unknown) =>
    e instanceof RuntimeError && e.code === 'BACKEND' && /does not exist/.test(e.message));
});
