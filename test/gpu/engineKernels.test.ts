// The CUDA engine's own kernels against their float64 references (test/gpu/reference.ts), on the GPU machine:
// attention over both cache branches (one split and many, GQA, sliding window, compressed rows), the fused decode
// and prefill attention against their C++ float64 references (pages at 16/8/4/2 bits, rebuilt on chip), and the
// device sampler. Skipped with the reason where no usable GPU is found. Fresh random inputs each run (the seed is
// printed; CSKV_KERNEL_SEED repeats it); outputs are poisoned before every launch (native/src/deviceBuffer.h).
// With CSKV_ENGINE_KERNEL_REPORT set, the measured errors are written there as JSON.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, test } from 'node:test';
import { type AttentionKernelArgs, type FusedAttentionKernelArgs, type NativeAddon } from '../../src/runtime/backends/nativeAddon';
import { mulberry32 } from '../../src/runtime/random';
import { attentionReference, sampleBoundaryDistance, sampleReference } from './reference';
import { type FusedAttentionCase, asStoredOnDevice, buildFusedCase, relativeError } from '../support/fusedAttentionCases';
import { kernelGpu, kernelSeed, normalStreams, roundToBf16 } from '../support/gpuKernels';

/** bf16 storage of keys, values and the output: 1e-2 relative, as issue 11 sets for bf16 kernels. */
const BF16_TOLERANCE = 1e-2;

let addon: NativeAddon | undefined;
let skipReason = 'no GPU';
const seed = kernelSeed;
const random = mulberry32(seed);
const report: Record<string, unknown>[] = [];

before(async () => {
  const gpu = await kernelGpu();
  addon = gpu.addon;
  if (!addon) skipReason = gpu.skipReason;
});

after(() => {
  if (process.env.CSKV_ENGINE_KERNEL_REPORT && addon) fs.writeFileSync(process.env.CSKV_ENGINE_KERNEL_REPORT, JSON.stringify({ seed, results: report }, null, 2));
});

// Inputs of the attention and sampler tests; the fused kernels' cases draw theirs from normalStreams(seed) and (seed + 1).
const normals = normalStreams(seed + 2);
const asBf16 = (a: Float32Array): Float32Array => Float32Array.from(a, roundToBf16);

interface AttentionCase { name: string; heads: number; kvHeads: number; headDim: number; start: number; queries: number; compressed: number; sliding: number; sms: number }

const CASES: AttentionCase[] = [
  { name: 'decode, GQA 7:1, head 128, many splits', heads: 28, kvHeads: 4, headDim: 128, start: 3000, queries: 1, compressed: 0, sliding: 0, sms: 132 },
  { name: 'decode over both branches', heads: 28, kvHeads: 4, headDim: 128, start: 2047, queries: 1, compressed: 1984, sliding: 0, sms: 132 },
  { name: 'prefill chunk over both branches, one split', heads: 8, kvHeads: 2, headDim: 64, start: 640, queries: 37, compressed: 608, sliding: 0, sms: 4 },
  { name: 'head dim 16 (fixtures), MHA', heads: 4, kvHeads: 4, headDim: 16, start: 5, queries: 9, compressed: 0, sliding: 0, sms: 132 },
  { name: 'head dim 32, sliding window', heads: 6, kvHeads: 2, headDim: 32, start: 300, queries: 4, compressed: 0, sliding: 100, sms: 132 },
  { name: 'head dim 256', heads: 2, kvHeads: 1, headDim: 256, start: 200, queries: 2, compressed: 128, sliding: 0, sms: 16 },
];

test('attention kernel against float64, both branches', (t) => {
  if (!addon) return t.skip(skipReason);
  t.diagnostic(`seed ${seed}`);
  for (const c of CASES) {
    const D = c.kvHeads * c.headDim;
    const ringRows = Math.ceil((c.start + c.queries - c.compressed) / 64) * 64 + 64;
    const args: AttentionKernelArgs = {
      q: normals(c.queries * c.heads * c.headDim), kRing: normals(ringRows * D), vRing: normals(ringRows * D), ringRows,
      compressedTokens: c.compressed, invFreq: Float64Array.from({ length: c.headDim / 2 }, (_, i) => 1e6 ** (-2 * i / c.headDim)),
      attentionFactor: 1.1, start: c.start, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, slidingWindow: c.sliding, multiprocessors: c.sms,
    };
    if (c.compressed > 0) Object.assign(args, { kRebuilt: normals(c.compressed * D), vRebuilt: normals(c.compressed * D), kMean: normals(D, 0.3), vMean: normals(D, 0.3) });
    const got = addon.kernels.attention(args);
    // The reference sees what the device stores: bf16 keys, values and rebuilt rows.
    const want = attentionReference({ ...args, kRing: asBf16(args.kRing), vRing: asBf16(args.vRing),
      ...(c.compressed > 0 ? { kRebuilt: asBf16(args.kRebuilt!), vRebuilt: asBf16(args.vRebuilt!) } : {}) });
    const plan = addon.attentionPlan(c.queries, c.start + c.queries, c.heads, c.sms);
    checkAgainstReference('attention', c.name, got, want, plan.splits);
  }
});

/** Reports a kernel's error relative to its float64 reference, then fails on a NaN or an error over bf16's tolerance. */
function checkAgainstReference(kernel: string, name: string, got: ArrayLike<number>, want: ArrayLike<number>, splits?: number): void {
  const { error, nan } = relativeError(got, want);
  report.push({ kernel, case: name, ...(splits === undefined ? {} : { splits }), relativeError: error, nan });
  const where = splits === undefined ? name : `${name} (${splits} splits)`;
  assert.ok(!nan, `${where}: NaN outputs (unwritten or poisoned), seed ${seed}`);
  assert.ok(error < BF16_TOLERANCE, `${where}: relative error ${error.toExponential(3)}, seed ${seed}`);
}

/** A fused kernel on each case against its C++ float64 reference fed with what the device stores. */
function checkFusedKernel(
  kernel: 'fusedAttention' | 'fusedPrefillAttention', cases: FusedAttentionCase[], inputSeed: number,
  run: (a: NativeAddon, args: FusedAttentionKernelArgs, c: FusedAttentionCase) => { got: ArrayLike<number>; want: ArrayLike<number>; splits?: number },
): void {
  const fusedNormals = normalStreams(inputSeed);
  for (const c of cases) {
    const { args } = buildFusedCase(addon!, c, fusedNormals);
    const { got, want, splits } = run(addon!, args, c);
    checkAgainstReference(kernel, c.name, got, want, splits);
  }
}

// The 7B shape (GQA 7:1, head 128) at every width, large ranks (over 48 KiB of shared memory: the opt-in path),
// MHA, a sliding window that starts inside the pages, the fixtures' head dim with CSKV off, head dims whose rotary
// pairs do not divide the block (48: the untiled key rebuild) or make one-key runs (8), head dim 256.
const FUSED_CASES: FusedAttentionCase[] = [
  { name: '7B decode, 16 bits, many splits', heads: 28, kvHeads: 4, headDim: 128, start: 2080, queries: 1, compressed: 2048, window: 32, bits: 16, kRank: 64, vRank: 96, ringRows: 64 },
  { name: '7B decode, 4 bits, ranks 256/200', heads: 28, kvHeads: 4, headDim: 128, start: 600, queries: 1, compressed: 576, window: 32, bits: 4, kRank: 256, vRank: 200, ringRows: 64 },
  { name: 'MHA head 64, 2 bits', heads: 4, kvHeads: 4, headDim: 64, start: 1000, queries: 1, compressed: 960, window: 32, bits: 2, kRank: 40, vRank: 33, ringRows: 96 },
  { name: 'GQA 3:1 head 32, 8 bits, sliding window into the pages, 4 queries', heads: 6, kvHeads: 2, headDim: 32, start: 700, queries: 4, compressed: 672, window: 32, bits: 8, kRank: 16, vRank: 16, ringRows: 64, sliding: 200 },
  { name: 'head dim 16 (fixtures), CSKV off, 8 queries', heads: 4, kvHeads: 2, headDim: 16, start: 40, queries: 8, compressed: 0, window: 1, bits: 16, kRank: 0, vRank: 0, ringRows: 64 },
  { name: 'head dim 48 (the untiled rebuild), 16 bits', heads: 2, kvHeads: 1, headDim: 48, start: 200, queries: 2, compressed: 192, window: 16, bits: 16, kRank: 12, vRank: 9, ringRows: 32, multiprocessors: 8 },
  { name: 'head dim 8, 4 bits, a tile across the branch boundary, 3 queries', heads: 4, kvHeads: 1, headDim: 8, start: 110, queries: 3, compressed: 104, window: 8, bits: 4, kRank: 5, vRank: 6, ringRows: 16 },
  { name: 'head dim 256, few splits', heads: 2, kvHeads: 1, headDim: 256, start: 300, queries: 1, compressed: 256, window: 32, bits: 16, kRank: 32, vRank: 32, ringRows: 64, multiprocessors: 1 },
];

test('fused decode attention against its float64 reference, pages at 16/8/4/2 bits', (t) => {
  if (!addon) return t.skip(skipReason);
  t.diagnostic(`seed ${seed}`);
  checkFusedKernel('fusedAttention', FUSED_CASES, seed, (a, args, c) => ({
    got: a.kernels.fusedAttention(args),
    want: a.kernels.fusedAttentionReference(asStoredOnDevice(args)),
    splits: a.attentionPlan(c.queries, c.start + c.queries, c.kvHeads, args.multiprocessors).splits,
  }));
});

// Prefill chunks: the 7B shape (7 query heads per kv head, 64-row tiles that cut queries apart) at 16 and 4 bits
// with large ranks (the opt-in shared memory), the first chunk with CSKV off, a sliding window into the pages, a
// chunk that starts inside the last block, MHA, head dims 8 and 256.
const FUSED_PREFILL_CASES: FusedAttentionCase[] = [
  { name: '7B prefill chunk, 16 bits', heads: 28, kvHeads: 4, headDim: 128, start: 1024, queries: 128, compressed: 1024, window: 32, bits: 16, kRank: 64, vRank: 96, ringRows: 192 },
  { name: '7B prefill chunk, 4 bits, ranks 256/200', heads: 28, kvHeads: 4, headDim: 128, start: 600, queries: 77, compressed: 576, window: 32, bits: 4, kRank: 256, vRank: 200, ringRows: 128 },
  { name: 'first chunk, CSKV off, head 16', heads: 4, kvHeads: 2, headDim: 16, start: 0, queries: 200, compressed: 0, window: 1, bits: 16, kRank: 0, vRank: 0, ringRows: 256 },
  { name: 'GQA 3:1 head 32, 8 bits, sliding window into the pages', heads: 6, kvHeads: 2, headDim: 32, start: 700, queries: 50, compressed: 672, window: 32, bits: 8, kRank: 16, vRank: 16, ringRows: 96, sliding: 200 },
  { name: 'MHA head 64, 2 bits, a chunk from inside the last block', heads: 4, kvHeads: 4, headDim: 64, start: 980, queries: 40, compressed: 960, window: 32, bits: 2, kRank: 40, vRank: 33, ringRows: 96 },
  { name: 'head dim 8, 4 bits', heads: 4, kvHeads: 1, headDim: 8, start: 104, queries: 33, compressed: 104, window: 8, bits: 4, kRank: 5, vRank: 6, ringRows: 48 },
  { name: 'head dim 256, 16 bits', heads: 2, kvHeads: 1, headDim: 256, start: 256, queries: 40, compressed: 256, window: 32, bits: 16, kRank: 32, vRank: 32, ringRows: 64 },
];

test('fused prefill attention against its float64 reference, pages at 16/8/4/2 bits', (t) => {
  if (!addon) return t.skip(skipReason);
  t.diagnostic(`seed ${seed}`);
  checkFusedKernel('fusedPrefillAttention', FUSED_PREFILL_CASES, seed + 1, (a, args) => ({
    got: a.kernels.fusedPrefillAttention(args),
    want: a.kernels.fusedPrefillAttentionReference(asStoredOnDevice(args)),
  }));
});

test('device sampler against float64: greedy, top-k, top-p, temperature', (t) => {
  if (!addon) return t.skip(skipReason);
  for (const vocab of [1, 7, 1000, 152064]) {
    for (let trial = 0; trial < 12; trial++) {
      const logits = normals(vocab, 3);
      const request = {
        greedy: trial === 0, temperature: 0.3 + random() * 1.2, topK: trial % 3 === 1 ? 1 + Math.floor(random() * 60) : 0,
        topP: trial % 2 === 1 ? 0.5 + random() * 0.49 : 1, u: random(),
      };
      const got = addon.kernels.sample(logits, request);
      const want = sampleReference(logits, request).token;
      // A token next to the one wanted passes only when u * mass sits within rounding of their shared boundary.
      const ok = got === want || sampleBoundaryDistance(logits, request, got) < 1e-9;
      report.push({ kernel: 'sample', vocab, request, got, want });
      assert.ok(ok, `vocab ${vocab} ${JSON.stringify(request)}: device ${got}, reference ${want}, seed ${seed}`);
    }
  }
});
