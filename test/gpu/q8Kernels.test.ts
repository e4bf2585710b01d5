// The CUDA engine's q8 linear kernels (native/src/kernels/q8Linear.cuh) against their C++ float64 references
// (native/src/reference/q8Reference.h), on the GPU machine; skipped where no usable GPU is found. Weights are
// the CPU engine's own 8-bit blocks of seeded random matrices (deviceQ8 of quantiseBlockwise), activations are
// rounded to bf16 before the reference sees them (as the kernel does), every output is poisoned before the
// kernel runs (kernelRunners.cc). With CSKV_Q8_KERNEL_REPORT set, the measured errors are written there as JSON.
// Tolerances: the GEMV accumulates in f32 from exact int8 × f32 products: 1e-4 relative; the dequantised tile
// is rounded once to bf16: 2^-8 relative per element; the embedding lookup (kernels/embedding.cuh) too.
import * as fs from 'node:fs';
import { after, before, test } from 'node:test';
import { deviceQ8 } from '../../src/runtime/backends/cudaQ8Weights';
import { type NativeAddon, type Q8WeightArrays } from '../../src/runtime/backends/nativeAddon';
import { quantiseBlockwise } from '../../src/runtime/onnx/blockQuantizer';
import { type KernelResult, checkKernelOutput, kernelGpu, kernelSeed, normalStreams, roundToBf16 as bf16 } from '../support/gpuKernels';

let addon: NativeAddon | undefined;
let skipReason = '';
let device = '';
const seed = kernelSeed;
const normals = normalStreams(seed);
const report: KernelResult[] = [];

before(async () => {
  ({ addon, device, skipReason } = await kernelGpu());
});

after(() => {
  if (process.env.CSKV_Q8_KERNEL_REPORT && addon) fs.writeFileSync(process.env.CSKV_Q8_KERNEL_REPORT, JSON.stringify({ device, seed, results: report }, null, 2));
});

function weight(n: number, k: number): Q8WeightArrays {
  return deviceQ8(quantiseBlockwise(normals(n * k, 0.05), n, k, 8));
}

const compare = checkKernelOutput(report, seed);

// Decode shapes of Qwen2.5-7B (the whole qkv; slices of o, gate/up, down: the kernel's work per row is the same,
// and the host's random inputs and float64 reference stay a few seconds), odd ones (k not a multiple of 8 or
// 32: the scalar and padded paths), and every row count 1..8.
const GEMV_SHAPES: [rows: number, n: number, k: number][] = [
  [1, 4608, 3584], [1, 1024, 3584], [1, 1024, 18944], [2, 512, 18944], [8, 1000, 3584], [3, 37, 100], [5, 64, 61], [4, 9, 7], [6, 129, 4096 + 32], [7, 33, 40],
];

test('q8 GEMV against its float64 reference (bf16 activations, f32 out), rows 1..8', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  t.diagnostic(`seed ${seed} (repeat with CSKV_KERNEL_SEED=${seed})`);
  for (const [rows, n, k] of GEMV_SHAPES) {
    const w = weight(n, k);
    const x = normals(rows * k);
    const args = { ...w, x, rows };
    const want = addon.kernels.q8LinearReference({ ...args, x: Float32Array.from(x, bf16) });
    compare('q8Gemv', `${rows}x${n}x${k}`, addon.kernels.q8Gemv(args), want, 1e-4);
  }
});

test('q8 GEMV accumulates into its output (beta = 1: the residual adds)', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  for (const [rows, n, k] of [[1, 3584, 3584], [4, 300, 96]] as const) {
    const w = weight(n, k);
    const x = normals(rows * k);
    const accumulate = normals(rows * n, 3);
    const want = addon.kernels.q8LinearReference({ ...w, x: Float32Array.from(x, bf16), rows, accumulate });
    compare('q8Gemv+accumulate', `${rows}x${n}x${k}`, addon.kernels.q8Gemv({ ...w, x, rows, accumulate }), want, 1e-4);
  }
});

test('q8 dequantised tile (the prefill path) against its float64 reference', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  for (const [n, k, first, count] of [[4608, 3584, 0, 4608], [600, 18944, 333, 200], [70, 61, 7, 63], [5, 32, 4, 1]] as const) {
    const w = weight(n, k);
    const want = addon.kernels.q8DequantiseReference({ ...w, first, count });
    compare('q8DequantiseRows', `${n}x${k}[${first}+${count}]`, addon.kernels.q8DequantiseRows({ ...w, first, count }), want, 2 ** -8);
  }
});

test('q8 embedding lookup (--weights q8) against the float64 dequantisation of the looked-up rows', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  // A vocabulary-wide table at the 7B width (a slice of the rows), odd widths; tokens repeated, first and last row.
  for (const [n, k] of [[4096, 3584], [70, 61], [5, 32]] as const) {
    const w = weight(n, k);
    const tokens = Int32Array.from({ length: 37 }, (_, i) => (i * 7919 + (i % 3 === 0 ? 0 : n - 1)) % n);
    const want = new Float64Array(tokens.length * k);
    tokens.forEach((token, i) => want.set(addon!.kernels.q8DequantiseReference({ ...w, first: token, count: 1 }), i * k));
    // Rounded once to bf16, as the dequantised tile.
    compare('q8Embedding', `${n}x${k}, ${tokens.length} tokens`, addon.kernels.q8Embedding(w, tokens), want, 2 ** -8);
  }
});
