// The CUDA engine's q4 linear kernels (native/src/kernels/q4Linear.cuh) against their C++ float64 references
// (native/src/reference/q4Reference.h), on the GPU machine; skipped where no usable GPU is found. Weights are the
// CPU engine's own 4-bit blocks of seeded random matrices in the device layout (deviceQ4), with every other block's
// min made asymmetric as Q4_K files give it; activations are rounded to bf16 before the reference sees them (as the
// kernel does); every output is poisoned before the kernel runs (kernelRunners.cc). With CSKV_Q4_KERNEL_REPORT
// set, the measured errors are written there as JSON (device_check.sh folds it into engine-kernels.json).
// Tolerances: the GEMV sums code · x and x per block in f32, then scale · dot − min · sum: 1e-4 relative; the
// dequantised tile is rounded once to bf16: 2^-8 relative per element.
import * as fs from 'node:fs';
import { after, before, test } from 'node:test';
import { deviceQ4 } from '../../src/runtime/backends/cudaQ4Weights';
import { type NativeAddon, type Q4WeightArrays } from '../../src/runtime/backends/nativeAddon';
import { floatToHalfBits, halfBitsToFloat } from '../../src/runtime/half';
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
  if (process.env.CSKV_Q4_KERNEL_REPORT && addon) fs.writeFileSync(process.env.CSKV_Q4_KERNEL_REPORT, JSON.stringify({ device, seed, results: report }, null, 2));
});

function weight(n: number, k: number): Q4WeightArrays {
  const w = deviceQ4(quantiseBlockwise(normals(n * k, 0.05), n, k, 4));
  for (let b = 1; b < w.scaleMin.length / 2; b += 2) w.scaleMin[2 * b + 1] = floatToHalfBits(5 * halfBitsToFloat(w.scaleMin[2 * b]!));
  return w;
}

const compare = checkKernelOutput(report, seed);

// As q8Kernels.test.ts: Qwen2.5-7B decode shapes (slices where the host reference would take long), odd k (the
// element path and padded last blocks), every row count 1..8.
const GEMV_SHAPES: [rows: number, n: number, k: number][] = [
  [1, 4608, 3584], [1, 1024, 3584], [1, 1024, 18944], [2, 512, 18944], [8, 1000, 3584], [3, 37, 100], [5, 64, 61], [4, 9, 7], [6, 129, 4096 + 32], [7, 33, 40],
];

test('q4 GEMV against its float64 reference (bf16 activations, f32 out), rows 1..8', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  t.diagnostic(`seed ${seed} (repeat with CSKV_KERNEL_SEED=${seed})`);
  for (const [rows, n, k] of GEMV_SHAPES) {
    const w = weight(n, k);
    const x = normals(rows * k);
    const want = addon.kernels.q4LinearReference({ ...w, x: Float32Array.from(x, bf16), rows });
    compare('q4Gemv', `${rows}x${n}x${k}`, addon.kernels.q4Gemv({ ...w, x, rows }), want, 1e-4);
  }
});

test('q4 GEMV accumulates into its output (beta = 1: the residual adds)', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  for (const [rows, n, k] of [[1, 3584, 3584], [4, 300, 96]] as const) {
    const w = weight(n, k);
    const x = normals(rows * k);
    const accumulate = normals(rows * n, 3);
    const want = addon.kernels.q4LinearReference({ ...w, x: Float32Array.from(x, bf16), rows, accumulate });
    compare('q4Gemv+accumulate', `${rows}x${n}x${k}`, addon.kernels.q4Gemv({ ...w, x, rows, accumulate }), want, 1e-4);
  }
});

test('q4 dequantised tile (the prefill path) against its float64 reference', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  for (const [n, k, first, count] of [[4608, 3584, 0, 4608], [600, 18944, 333, 200], [70, 61, 7, 63], [5, 33, 4, 1]] as const) {
    const w = weight(n, k);
    const want = addon.kernels.q4DequantiseReference({ ...w, first, count });
    compare('q4DequantiseRows', `${n}x${k}[${first}+${count}]`, addon.kernels.q4DequantiseRows({ ...w, first, count }), want, 2 ** -8);
  }
});
