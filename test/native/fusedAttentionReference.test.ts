// The fused decode attention's C++ float64 reference (native/src/reference/fusedAttentionReference.h), on any
// machine: its split-and-merge decomposition (tiles with a running max, compressed values summed in rank space and
// projected once per split) equals one pass for any split length, and it equals the rebuild path's attention
// reference (test/gpu/reference.ts) fed with keys and values rebuilt from the runtime's own dequantiser. The GPU
// kernel is checked against this reference in test/gpu/engineKernels.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RuntimeError } from '../../src/runtime/errors';
import { attentionReference } from '../gpu/reference';
import { normalStreams } from '../support/gpuKernels';
import { loadedAddon } from '../support/loadedAddon';
import { type FusedAttentionCase, buildFusedCase, relativeError } from '../support/fusedAttentionCases';

const CASES: FusedAttentionCase[] = [
  { name: 'GQA 2:1, head 32, 16 bits, two value groups', heads: 4, kvHeads: 2, headDim: 32, start: 120, queries: 1, compressed: 96, window: 8, bits: 16, kRank: 5, vRank: 37, ringRows: 48 },
  { name: 'GQA 2:1, head 16, 8 bits, three queries', heads: 4, kvHeads: 2, headDim: 16, start: 130, queries: 3, compressed: 128, window: 8, bits: 8, kRank: 9, vRank: 20, ringRows: 24, multiprocessors: 4 },
  { name: 'MHA, head 32, 4 bits, sliding window into the pages', heads: 3, kvHeads: 3, headDim: 32, start: 175, queries: 2, compressed: 160, window: 16, bits: 4, kRank: 11, vRank: 7, ringRows: 32, sliding: 50 },
  { name: 'GQA 7:1, head 64, 2 bits', heads: 7, kvHeads: 1, headDim: 64, start: 300, queries: 1, compressed: 288, window: 32, bits: 2, kRank: 20, vRank: 12, ringRows: 64 },
  { name: 'CSKV off (ring only), ring wraps', heads: 6, kvHeads: 2, headDim: 8, start: 70, queries: 2, compressed: 0, window: 1, bits: 16, kRank: 0, vRank: 0, ringRows: 100 },
];

test('fused attention reference: several splits merged equal one pass, for any split length', (t) => {
  const a = loadedAddon();
  const normals = normalStreams(20261201);
  let worst = 0;
  for (const c of CASES) {
    const { args } = buildFusedCase(a, c, normals);
    const onePass = a.kernels.fusedAttentionReference(args);
    const keys = c.start + c.queries;
    // The engine's plan on this GPU size, and lengths from one tile to more than every key (a single split).
    const planned = a.attentionPlan(c.queries, keys, c.kvHeads, args.multiprocessors).keysPerSplit;
    for (const keysPerSplit of [32, 64, 96, planned, Math.ceil(keys / 32) * 32 + 32]) {
      const split = a.kernels.fusedAttentionReference({ ...args, keysPerSplit });
      const { error, nan } = relativeError(split, onePass);
      assert.ok(!nan && error < 1e-12, `${c.name}, ${keysPerSplit} keys per split: ${error}`);
      worst = Math.max(worst, error);
    }
  }
  t.diagnostic(`largest relative difference, splits against one pass: ${worst.toExponential(2)}`);
});

test('fused attention reference equals the rebuild path\'s reference on the runtime\'s dequantised features', (t) => {
  const a = loadedAddon();
  const normals = normalStreams(7);
  let worst = 0;
  for (const c of CASES) {
    const { args, kRebuilt, vRebuilt } = buildFusedCase(a, c, normals);
    const fused = a.kernels.fusedAttentionReference({ ...args, keysPerSplit: 64 });
    // attentionReference only indexes its arrays: the float64 rows keep the comparison free of f32 rounding.
    const rebuildPath = attentionReference({
      ...args, kRebuilt: kRebuilt as unknown as Float32Array, vRebuilt: vRebuilt as unknown as Float32Array,
      kMean: args.kMean, vMean: args.vMean,
    });
    const { error, nan } = relativeError(fused, rebuildPath);
    assert.ok(!nan && error < 1e-9, `${c.name}: ${error}`);
    worst = Math.max(worst, error);
  }
  t.diagnostic(`largest relative difference from the rebuild path's reference: ${worst.toExponential(2)}`);
});

test('fused attention reference: a wrong page, basis or mean changes the output (the check has teeth)', () => {
  const a = loadedAddon();
  const c = CASES[2]!;
  const { args } = buildFusedCase(a, c, normalStreams(3));
  const base = a.kernels.fusedAttentionReference(args);
  const pages = args.pages!.slice();
  const lastBlock = pages.length - pages.length / (c.compressed / c.window);
  pages[lastBlock + 3]! ^= 0x11;  // a code of the last block's keys (the sliding window hides the first blocks)
  const mean = args.vMean!.slice();
  mean[0]! += 0.5;
  const basis = args.kBasis!.slice();
  basis[1]! += 0.5;
  for (const [what, changed] of [['page byte', { ...args, pages }], ['value mean', { ...args, vMean: mean }], ['key basis', { ...args, kBasis: basis }]] as const) {
    assert.ok(relativeError(a.kernels.fusedAttentionReference(changed), base).error > 1e-6, what);
  }
});

test('fused attention arguments are checked before any work, naming the field', () => {
  const a = loadedAddon();
  const { args } = buildFusedCase(a, CASES[0]!, normalStreams(1));
  const bad = (pattern: RegExp) => (err: unknown): boolean => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && pattern.test(err.message);
  for (const run of [a.kernels.fusedAttention, a.kernels.fusedAttentionReference]) {
    const name = run === a.kernels.fusedAttention ? 'fusedAttention' : 'fusedAttentionReference';
    assert.throws(() => run({ ...args, pages: args.pages!.subarray(1) }), bad(new RegExp(`^${name}: pages\\.length must be compressedTokens / window pages of \\d+ bytes$`)));
    assert.throws(() => run({ ...args, compressedTokens: 95 }), bad(new RegExp(`^${name}: compressedTokens must be whole blocks of window$`)));
    assert.throws(() => run({ ...args, bits: 3 as never }), bad(new RegExp(`^${name}: bits must be 16, 8, 4 or 2$`)));
    assert.throws(() => run({ ...args, vMean: new Float32Array(3) }), bad(new RegExp(`^${name}: kMean/vMean must be kvDim$`)));
    assert.throws(() => run({ ...args, heads: 5 }), bad(new RegExp(`^${name}: heads must be a multiple of kvHeads`)));
  }
  assert.throws(() => a.kernels.fusedAttentionReference({ ...args, keysPerSplit: 48 }), bad(/^fusedAttentionReference: keysPerSplit must be whole tiles of 32$/));
});
