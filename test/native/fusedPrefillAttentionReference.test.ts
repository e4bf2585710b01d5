// The fused prefill attention's C++ float64 reference (native/src/reference/fusedAttentionReference.h:
// FusedPrefillAttentionReference), on any machine: its decomposition (each kv head's (query, head) rows in tiles, each
// row folded over key tiles counted from the tile's first visible key, masked, compressed values summed in rank
// space and projected once) equals one pass of the same attention for any row tiling, including the kernel's; the
// causal and sliding-window masks and the pages have teeth. The GPU kernel is checked against this reference in
// test/gpu/engineKernels.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RuntimeError } from '../../src/runtime/errors';
import { normalStreams } from '../support/gpuKernels';
import { loadedAddon } from '../support/loadedAddon';
import { type FusedAttentionCase, buildFusedCase, relativeError } from '../support/fusedAttentionCases';

// Prefill chunks: many queries after the compressed branch, their own keys in the ring.
const CASES: FusedAttentionCase[] = [
  { name: 'GQA 2:1, head 32, 16 bits, two row tiles', heads: 4, kvHeads: 2, headDim: 32, start: 100, queries: 40, compressed: 96, window: 8, bits: 16, kRank: 5, vRank: 37, ringRows: 48 },
  { name: 'GQA 7:1, head 64, 2 bits, three row tiles', heads: 7, kvHeads: 1, headDim: 64, start: 130, queries: 20, compressed: 128, window: 32, bits: 2, kRank: 20, vRank: 12, ringRows: 32 },
  { name: 'MHA, head 16, 4 bits, sliding window into the pages', heads: 3, kvHeads: 3, headDim: 16, start: 170, queries: 30, compressed: 160, window: 16, bits: 4, kRank: 11, vRank: 7, ringRows: 48, sliding: 50 },
  { name: 'GQA 3:1, head 8, 8 bits, a chunk across the branch boundary', heads: 6, kvHeads: 2, headDim: 8, start: 64, queries: 25, compressed: 64, window: 16, bits: 8, kRank: 9, vRank: 14, ringRows: 32 },
  { name: 'CSKV off, the first chunk (start 0), sliding window', heads: 4, kvHeads: 2, headDim: 16, start: 0, queries: 70, compressed: 0, window: 1, bits: 16, kRank: 0, vRank: 0, ringRows: 80, sliding: 24 },
];

test('fused prefill attention reference equals one pass of the same attention, for any row tiling', (t) => {
  const a = loadedAddon();
  const normals = normalStreams(20261202);
  let worst = 0;
  for (const c of CASES) {
    const { args } = buildFusedCase(a, c, normals);
    const onePass = a.kernels.fusedAttentionReference(args);
    const rows = c.queries * (c.heads / c.kvHeads);
    // The kernel's tiling (the default), single rows, tiles that cut a query's heads apart, and every row in one tile.
    for (const rowsPerTile of [undefined, 1, 5, rows]) {
      const tiled = a.kernels.fusedPrefillAttentionReference({ ...args, rowsPerTile });
      const { error, nan } = relativeError(tiled, onePass);
      assert.ok(!nan && error < 1e-12, `${c.name}, ${rowsPerTile ?? 'default'} rows per tile: ${error}`);
      worst = Math.max(worst, error);
    }
  }
  t.diagnostic(`largest relative difference, row tiles against one pass: ${worst.toExponential(2)}`);
});

test('fused prefill attention reference: the masks and the pages have teeth', () => {
  const a = loadedAddon();
  const c = CASES[2]!;
  const { args } = buildFusedCase(a, c, normalStreams(5));
  const base = a.kernels.fusedPrefillAttentionReference(args);
  const Q = c.heads * c.headDim, D = c.kvHeads * c.headDim;
  const rowOf = (out: Float64Array, t: number): Float64Array => out.subarray(t * Q, (t + 1) * Q);

  // Causal: the last query's own key and value (ring row of its position) move only the last query's output.
  const last = c.start + c.queries - 1;
  const kRing = args.kRing.slice(), vRing = args.vRing.slice();
  for (let ch = 0; ch < D; ch++) {
    kRing[(last % c.ringRows) * D + ch]! += 1;
    vRing[(last % c.ringRows) * D + ch]! += 1;
  }
  const future = a.kernels.fusedPrefillAttentionReference({ ...args, kRing, vRing });
  for (let t = 0; t < c.queries - 1; t++) assert.deepEqual(rowOf(future, t), rowOf(base, t), `query ${t} saw a later key`);
  assert.ok(relativeError(rowOf(future, c.queries - 1), rowOf(base, c.queries - 1)).error > 1e-6, 'the last query ignored its own key');

  // Sliding window: a wider window moves the output; the first page (outside every query's window) does not.
  assert.ok(relativeError(a.kernels.fusedPrefillAttentionReference({ ...args, slidingWindow: 80 }), base).error > 1e-6, 'sliding window');
  const pages = args.pages!.slice();
  const pageBytes = pages.length / (c.compressed / c.window);
  pages[3]! ^= 0x11;  // block 0 (positions 0..15): outside the window of the first query (170 - 50 + 1 = 121)
  assert.deepEqual(a.kernels.fusedPrefillAttentionReference({ ...args, pages }), base, 'a key outside the window was read');
  pages[(c.compressed / c.window - 1) * pageBytes + 3]! ^= 0x11;  // a code of the last block's keys (positions 144..159)
  assert.ok(relativeError(a.kernels.fusedPrefillAttentionReference({ ...args, pages }), base).error > 1e-6, 'page byte');
});

test('fused prefill attention arguments are checked before any work, naming the field', () => {
  const a = loadedAddon();
  const { args } = buildFusedCase(a, CASES[0]!, normalStreams(1));
  const bad = (pattern: RegExp) => (err: unknown): boolean => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && pattern.test(err.message);
  for (const [name, run] of [['fusedPrefillAttention', a.kernels.fusedPrefillAttention], ['fusedPrefillAttentionReference', a.kernels.fusedPrefillAttentionReference]] as const) {
    assert.throws(() => run({ ...args, pages: args.pages!.subarray(1) }), bad(new RegExp(`^${name}: pages\\.length must be compressedTokens / window pages of \\d+ bytes$`)));
    assert.throws(() => run({ ...args, ringRows: 40, kRing: args.kRing.subarray(0, 40 * 64), vRing: args.vRing.subarray(0, 40 * 64) }),
      bad(new RegExp(`^${name}: the full-precision keys must fit the ring$`)));
    assert.throws(() => run({ ...args, heads: 5 }), bad(new RegExp(`^${name}: heads must be a multiple of kvHeads`)));
  }
  assert.throws(() => a.kernels.fusedPrefillAttentionReference({ ...args, rowsPerTile: 0 }), bad(/^fusedPrefillAttentionReference: rowsPerTile/));
});
