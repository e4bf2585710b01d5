// The CUDA engine's 4-bit weights, host side (no GPU needed): the device layout against the CPU engine's 4-bit
// blocks and against GGUF Q4_0 / Q4_K as the file stores them (exact, or the error the f16 (scale, min) adds,
// measured and compared with the alternative of requantising), the C++ float64 references, the memory arithmetic.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { planCapacity } from '../../src/runtime/backends/cudaMemoryPlan';
import { deviceQ4, deviceQ4FromQ4_0, deviceQ4FromQ4_K, deviceQ4WeightBytes, dequantiseDeviceQ4, q4Bytes, readDeviceQ4 } from '../../src/runtime/backends/cudaQ4Weights';
import { readDeviceQ8 } from '../../src/runtime/backends/cudaQ8Weights';
import { type NativeAddon, loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { RuntimeError } from '../../src/runtime/errors';
import { floatToHalfBits, halfBitsToFloat } from '../../src/runtime/half';
import { readModelConfig } from '../../src/runtime/model/config';
import { dequantise } from '../../src/runtime/model/ggmlDequant';
import { ggmlType } from '../../src/runtime/model/ggmlTypes';
import { GgufFile } from '../../src/runtime/model/ggufFile';
import { ModelWeights } from '../../src/runtime/model/weights';
import { dequantiseBlockwise, quantiseBlockwise } from '../../src/runtime/onnx/blockQuantizer';
import { mulberry32 as random } from '../../src/runtime/random';
import { convertToGguf } from '../support/ggufWriter';
import { modelFixture, tempDir } from '../support/paths';
import { writeRandomModel } from '../support/randomModel';

function addon(): NativeAddon {
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  return load.addon;
}

function normals(count: number, seed: number, scale = 1): Float32Array {
  const next = random(seed);
  return Float32Array.from({ length: count }, () => scale * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()));
}

/** Largest |a − b| over the largest |b|, and the RMS of a − b over the RMS of b. */
function error(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; rms: number } {
  let maxDiff = 0, maxRef = 0, sumDiff = 0, sumRef = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i]! - b[i]!;
    maxDiff = Math.max(maxDiff, Math.abs(d));
    maxRef = Math.max(maxRef, Math.abs(b[i]!));
    sumDiff += d * d;
    sumRef += b[i]! * b[i]!;
  }
  return { max: maxDiff / maxRef, rms: Math.sqrt(sumDiff / sumRef) };
}

const SHAPES: [number, number][] = [[7, 64], [5, 100], [3, 31], [16, 3584 / 8], [2, 33]];

test('q4 device layout from the CPU engine\'s blocks: the same code bytes, the scale rounded to f16, min = 8 · scale', () => {
  for (const [n, k] of SHAPES) {
    const cpu = quantiseBlockwise(normals(n * k, n * 31 + k, 0.02), n, k, 4);
    const gpu = deviceQ4(cpu);
    assert.equal(gpu.codes.length, n * Math.ceil(k / 32) * 16);
    assert.deepEqual(gpu.codes, cpu.codes);
    for (let b = 0; b < cpu.scales.length; b++) {
      assert.equal(gpu.scaleMin[2 * b], floatToHalfBits(cpu.scales[b]!));
      assert.equal(halfBitsToFloat(gpu.scaleMin[2 * b + 1]!), 8 * halfBitsToFloat(gpu.scaleMin[2 * b]!));
    }
    // The CPU engine's numbers up to the f16 rounding of each scale: at most 2^-11 of 8 · scale per weight.
    const cpuValues = dequantiseBlockwise(cpu), gpuValues = dequantiseDeviceQ4(gpu);
    for (let i = 0; i < cpuValues.length; i++) {
      const scale = cpu.scales[Math.floor(i / k) * Math.ceil(k / 32) + Math.floor((i % k) / 32)]!;
      assert.ok(Math.abs(gpuValues[i]! - cpuValues[i]!) <= 8 * scale * 2 ** -11 + 1e-12, `[${n}, ${k}] element ${i}`);
    }
  }
  assert.throws(() => deviceQ4(quantiseBlockwise(new Float32Array(64), 1, 64, 8)), /4-bit blocks of 32/);
  assert.throws(() => deviceQ4(quantiseBlockwise(Float32Array.of(...new Array(32).fill(1e6)), 1, 32, 4)), /does not fit an f16/);
});

test('q4 device layout from a Q4_0 tensor: the file\'s values exactly', () => {
  const n = 3, k = 96, blocks = n * (k / 32);
  const raw = new Uint8Array(blocks * 18);
  const next = random(11);
  for (let b = 0; b < blocks; b++) {
    raw[b * 18] = Math.floor(next() * 256); raw[b * 18 + 1] = 0x18 + b; // f16 d around 1e-3..1e-2
    for (let j = 0; j < 16; j++) raw[b * 18 + 2 + j] = Math.floor(next() * 256);
  }
  const file = dequantise(ggmlType('Q4_0'), raw, n * k);
  assert.deepEqual(Array.from(dequantiseDeviceQ4(deviceQ4FromQ4_0(raw, n, k))), Array.from(file));
  assert.throws(() => deviceQ4FromQ4_0(raw, n, k - 32), /has 108 bytes, got 162/);
  const nan = raw.slice();
  nan[18] = 0xff; nan[19] = 0x7f;
  assert.throws(() => deviceQ4FromQ4_0(nan, n, k), /Q4_0 block 1 has a scale of NaN/);
  // Through ModelWeights: a Q4_0 tensor arrives as its blocks.
  const stored = { readStoredBlocks: () => ({ type: 'Q4_0', bytes: raw }) } as unknown as ModelWeights;
  assert.deepEqual(readDeviceQ4(stored, 'w', n, k), deviceQ4FromQ4_0(raw, n, k));
});

/** Random Q4_K super-blocks: f16 d and dmin of real checkpoints' magnitudes, random 6-bit scales and mins, random codes. */
function randomQ4_K(supers: number, seed: number): Uint8Array {
  const raw = new Uint8Array(supers * 144);
  const next = random(seed);
  for (let s = 0; s < supers; s++) {
    const at = s * 144;
    const d = floatToHalfBits(2e-4 * (0.5 + next())), dmin = floatToHalfBits(3e-4 * (0.5 + next()));
    raw[at] = d & 255; raw[at + 1] = d >> 8; raw[at + 2] = dmin & 255; raw[at + 3] = dmin >> 8;
    for (let i = 4; i < 144; i++) raw[i + at] = Math.floor(next() * 256);
  }
  return raw;
}

test('q4 device layout from Q4_K: the file\'s codes, (d·sc, dmin·m) rounded once to f16; the error that adds against requantising', () => {
  // Real-shaped: 64 rows of Qwen2.5-7B's down projection (k = 18944) and of its q projection (k = 3584).
  const report: string[] = [];
  for (const [n, k] of [[64, 18944], [64, 3584]] as const) {
    const raw = randomQ4_K(n * (k / 256), k);
    const file = dequantise(ggmlType('Q4_K'), raw, n * k);
    const kept = error(dequantiseDeviceQ4(deviceQ4FromQ4_K(raw, n, k)), file);
    const requantised = error(dequantiseBlockwise(quantiseBlockwise(file, n, k, 4)), file);
    report.push(`random Q4_K [${n}, ${k}]: kept max ${kept.max.toExponential(2)} rms ${kept.rms.toExponential(2)}; requantised max ${requantised.max.toExponential(2)} rms ${requantised.rms.toExponential(2)}`);
    assert.ok(kept.max < 2 ** -10, `f16 (scale, min) adds at most ~2^-11 of the range: ${kept.max}`);
    assert.ok(kept.rms * 50 < requantised.rms, `keeping Q4_K is far closer to the file than requantising: ${kept.rms} vs ${requantised.rms}`);
  }
  // A converted GGUF: a random model with rows of whole super-blocks (the fixtures' rows of 64 and 128 are not),
  // written in Q4_K by the project's writer (a plain min/max rule, not llama.cpp's search). Errors against the
  // checkpoint's own bf16 weights: the file's, kept in the device layout, requantised, and quantised at load.
  const dir = path.join(tempDir(), 'q4-random-model');
  writeRandomModel(dir, { hidden: 512, layers: 1, heads: 4, kvHeads: 1, headDim: 128, intermediate: 1024, vocab: 256 }, 7);
  const file = path.join(tempDir(), 'q4-random-model-q4_k.gguf');
  const hfNames = convertToGguf(dir, file, 'Q4_K').map((t) => t.hfName);
  const checkpoint = ModelWeights.open(dir);
  const ggufModel = ModelWeights.open(file);
  const gguf = GgufFile.open(file);
  const worst = { file: 0, kept: 0, requantised: 0, atLoad: 0, cpuAtLoad: 0 };
  let tensors = 0;
  try {
    for (const tensor of gguf.tensors.values()) {
      // q/k rows are permuted in the file (llama.cpp's converter); the other linear weights are as stored.
      if (tensor.type.name !== 'Q4_K' || !/ffn_(gate|up|down)|attn_(v|output)/.test(tensor.name)) continue;
      const [n, k] = tensor.shape as [number, number];
      const hf = hfNames.find((name) => name.endsWith(tensor.name.includes('ffn_gate') ? 'gate_proj.weight' : tensor.name.includes('ffn_up') ? 'up_proj.weight'
        : tensor.name.includes('ffn_down') ? 'down_proj.weight' : tensor.name.includes('attn_v') ? 'v_proj.weight' : 'o_proj.weight'))!;
      const original = checkpoint.readFloat32(hf, [n, k]);
      const raw = gguf.readBytes(tensor);
      const values = dequantise(tensor.type, raw, n * k);
      const measure = (key: keyof typeof worst, got: ArrayLike<number>): void => {
        worst[key] = Math.max(worst[key], error(got, original).rms);
      };
      measure('file', values);
      measure('kept', dequantiseDeviceQ4(deviceQ4FromQ4_K(raw, n, k)));
      // What the engine loads (readDeviceQ4 through ModelWeights): the file's own blocks.
      assert.deepEqual(readDeviceQ4(ggufModel, hf, n, k), deviceQ4FromQ4_K(raw, n, k), hf);
      measure('requantised', dequantiseBlockwise(quantiseBlockwise(values, n, k, 4)));
      measure('atLoad', dequantiseDeviceQ4(deviceQ4(quantiseBlockwise(original, n, k, 4))));
      measure('cpuAtLoad', dequantiseBlockwise(quantiseBlockwise(original, n, k, 4)));
      tensors++;
    }
  } finally {
    gguf.close();
    ggufModel.close();
    checkpoint.close();
  }
  report.push(`converted random model (hidden 512, intermediate 1024) in Q4_K, ${tensors} tensors, rms error against its bf16 weights: ` +
    Object.entries(worst).map(([key, value]) => `${key} ${value.toExponential(3)}`).join(', '));
  console.log(report.join('\n'));
  assert.equal(tensors, 5, 'gate, up, down, v and o of the one layer');
  assert.ok(worst.kept <= worst.file * 1.01, `the device layout keeps the file's error: ${worst.kept} vs ${worst.file}`);
  assert.ok(worst.requantised > worst.file * 1.1, `requantising Q4_K adds a second rounding: ${worst.requantised} vs ${worst.file}`);
  assert.ok(Math.abs(worst.atLoad - worst.cpuAtLoad) <= worst.cpuAtLoad * 0.01, `quantised at load: the CPU engine's error: ${worst.atLoad} vs ${worst.cpuAtLoad}`);
  assert.throws(() => deviceQ4FromQ4_K(new Uint8Array(144), 1, 128), /whole super-blocks of 256/);
});

test('readDeviceQ4: the whole tensor, or (the output head) row batch by row batch, the same blocks', () => {
  const n = 11, k = 96;
  const values = normals(n * k, 9, 0.2);
  let rowReads = 0;
  const weights = {
    readRows: (_name: string, first: number, count: number) => {
      rowReads++;
      return values.slice(first * k, (first + count) * k);
    },
    readFloat32: () => values,
    readStoredBlocks: () => undefined,
  } as unknown as ModelWeights;
  const got = readDeviceQ4(weights, 'w', n, k, 4);
  const want = deviceQ4(quantiseBlockwise(values, n, k, 4));
  assert.deepEqual(got.codes, want.codes);
  assert.deepEqual(got.scaleMin, want.scaleMin);
  assert.equal(rowReads, 3, 'rows read in batches of 4, each once');
  assert.deepEqual(readDeviceQ4(weights, 'w', n, k), want);
  assert.equal(rowReads, 3, 'read whole: no row reads');
});

test('q4 C++ float64 references: dequantisation equals the layout\'s values, the linear layer equals a float64 product', () => {
  const a = addon();
  for (const [n, k] of SHAPES) {
    const w = deviceQ4(quantiseBlockwise(normals(n * k, 3 * n + k, 0.1), n, k, 4));
    // An asymmetric block too (as Q4_K gives): min not 8 · scale.
    w.scaleMin[1] = floatToHalfBits(-0.03);
    const dense = dequantiseDeviceQ4(w);
    const first = Math.min(1, n - 1), count = n - first;
    const deq = a.kernels.q4DequantiseReference({ ...w, first, count });
    for (let i = 0; i < count * k; i++) assert.equal(deq[i], dense[first * k + i], `element ${i} of [${n}, ${k}]`);
    const rows = 3;
    const x = normals(rows * k, 77 + k);
    const accumulate = normals(rows * n, 78 + k);
    const out = a.kernels.q4LinearReference({ ...w, x, rows, accumulate });
    const full = a.kernels.q4DequantiseReference({ ...w, first: 0, count: n });
    for (let m = 0; m < rows; m++) {
      for (let r = 0; r < n; r++) {
        let sum = accumulate[m * n + r]!;
        for (let c = 0; c < k; c++) sum += x[m * k + c]! * full[r * k + c]!;
        assert.ok(Math.abs(out[m * n + r]! - sum) <= 1e-9 * (1 + Math.abs(sum)), `out[${m}, ${r}] of [${n}, ${k}]: ${out[m * n + r]} vs ${sum}`);
      }
    }
    // Teeth: one flipped code moves the output.
    const flipped = { ...w, codes: w.codes.slice() };
    flipped.codes[0] = flipped.codes[0]! ^ 0x0f;
    assert.notEqual(a.kernels.q4LinearReference({ ...flipped, x, rows })[0], a.kernels.q4LinearReference({ ...w, x, rows })[0]);
  }
  const bad = (pattern: RegExp) => (err: unknown) => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && pattern.test(err.message);
  assert.throws(() => a.kernels.q4LinearReference({ codes: new Uint8Array(15), scaleMin: new Uint16Array(2), n: 1, k: 32, x: new Float32Array(32), rows: 1 }), bad(/^q4LinearReference: codes\.length/));
  assert.throws(() => a.kernels.q4DequantiseReference({ codes: new Uint8Array(16), scaleMin: new Uint16Array(1), n: 1, k: 32, first: 0, count: 1 }), bad(/scaleMin\.length/));
  assert.throws(() => a.kernels.q4Gemv({ codes: new Uint8Array(16), scaleMin: new Float32Array(2) as never, n: 1, k: 32, x: new Float32Array(32), rows: 1 }), bad(/scaleMin must be a Uint16Array/));
  assert.throws(() => a.kernels.q4Gemv({ codes: new Uint8Array(16), scaleMin: new Uint16Array(2), n: 1, k: 32, x: new Float32Array(9 * 32), rows: 9 }), bad(/rows must be at most 8/));
});

test('q4 bytes: 16 bytes of codes and two f16 per block of 32', () => {
  assert.equal(q4Bytes(2, 33), 2 * 2 * 20);
  assert.equal(q4Bytes(3584, 18944), 3584 * 592 * 20);
});

test('q4 memory by hand for Qwen2.5-7B: ~5.6 GB; on an 8 GiB GPU q8 is refused (weights alone), q4 plans ≥ 16k tokens', () => {
  const shape = { hidden: 3584, layers: 28, qDim: 3584, kvDim: 512, intermediate: 18944, vocab: 152064, headDim: 128, tiedEmbeddings: false };
  const linearPerLayer = 3584 * (3584 + 1024) + 3584 * 3584 + 3 * 18944 * 3584; // 233,046,016 weights, all k multiples of 32
  const byHand = 28 * (linearPerLayer * 0.625 + 4 * 3584) + 152064 * 3584 * 0.625 + 2 * (152064 * 3584 + 3584) + 64 * 1024 ** 2;
  assert.equal(deviceQ4WeightBytes(shape), byHand);
  const a = addon();
  const cache = { layers: 28, kvDim: 512, window: 32, bits: 16 as const, chunkTokens: 512 };
  const plan = (weights: 'q8' | 'q4') => planCapacity({ shape, weights, cache, wantedTokens: 32768, freeBytes: 8 * 1024 ** 3, layoutOf: (s) => a.cacheLayout(s) });
  assert.equal(plan('q8').capacityTokens, 0, 'q8 weights alone exceed 8 GiB less the margin');
  const q4 = plan('q4');
  assert.ok(q4.capacityTokens >= 16384, `q4 leaves room for a long context on 8 GiB: ${q4.capacityTokens}`);
  assert.equal(q4.weightBytes, byHand);
});

test('layer weights are read whole: a llama GGUF\'s q/k (rows permuted by llama.cpp\'s converter) load in q8 and q4 as from safetensors', () => {
  const config = readModelConfig(modelFixture('llama-v4'));
  const file = path.join(tempDir(), 'llama-v4-f32.gguf');
  convertToGguf(modelFixture('llama-v4'), file, 'F32');
  const gguf = ModelWeights.open(file);
  const safetensors = ModelWeights.open(modelFixture('llama-v4'), config);
  try {
    for (const name of ['model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.k_proj.weight']) {
      const [n, k] = safetensors.info(name).shape as [number, number];
      assert.throws(() => gguf.readRows(name, 0, 1), /only read whole/, 'the case this guards: rows of a permuted tensor');
      assert.deepEqual(readDeviceQ4(gguf, name, n, k), readDeviceQ4(safetensors, name, n, k), name);
      assert.deepEqual(readDeviceQ8(gguf, name, n, k), readDeviceQ8(safetensors, name, n, k), name);
    }
  } finally {
    gguf.close();
    safetensors.close();
  }
});
