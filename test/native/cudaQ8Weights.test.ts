// The CUDA engine's 8-bit weights, host side (no GPU needed): the device layout against the CPU engine's blocks
// for the same tensor (quantised at load and straight from Q8_0), the C++ float64 references against the CPU
// quantiser's own dequantisation, the memory arithmetic, and the weight option.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { blockTensorShapes, tensorRoles } from '../../src/runtime/backends/cudaEngine';
import { deviceWeightBytes, planCapacity } from '../../src/runtime/backends/cudaMemoryPlan';
import { deviceQ8, deviceQ8WeightBytes, q8Bytes, readDeviceQ8 } from '../../src/runtime/backends/cudaQ8Weights';
import { cudaWeightFormat } from '../../src/runtime/backends/cudaWeightFormat';
import { type NativeAddon, loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { RuntimeError } from '../../src/runtime/errors';
import { halfBitsToFloat } from '../../src/runtime/half';
import { readModelConfig } from '../../src/runtime/model/config';
import { ModelWeights } from '../../src/runtime/model/weights';
import { blockwiseFromQ8_0, dequantiseBlockwise, quantiseBlockwise } from '../../src/runtime/onnx/blockQuantizer';
import { mulberry32 as random } from '../../src/runtime/random';
import { convertToGguf } from '../support/ggufWriter';
import { modelFixture, tempDir } from '../support/paths';

function addon(): NativeAddon {
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  return load.addon;
}

function normals(count: number, seed: number, scale = 1): Float32Array {
  const next = random(seed);
  return Float32Array.from({ length: count }, () => scale * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()));
}

const SHAPES: [number, number][] = [[7, 64], [5, 100], [3, 31], [16, 3584 / 8], [2, 33]];

test('q8 device layout: the CPU engine\'s blocks, re-centred codes and the same f32 scales, bit for bit', () => {
  for (const [n, k] of SHAPES) {
    const cpu = quantiseBlockwise(normals(n * k, n * 31 + k, 0.1), n, k, 8);
    const gpu = deviceQ8(cpu);
    assert.equal(gpu.codes.length, n * Math.ceil(k / 32) * 32);
    assert.equal(gpu.codes.length, cpu.codes.length);
    for (let i = 0; i < cpu.codes.length; i++) assert.equal(gpu.codes[i], cpu.codes[i]! - 128, `code ${i} of [${n}, ${k}]`);
    assert.deepEqual(new Uint32Array(gpu.scales.buffer, gpu.scales.byteOffset, gpu.scales.length), new Uint32Array(cpu.scales.buffer, cpu.scales.byteOffset, cpu.scales.length));
    // Padding of a partial last block is code 0 (weight 0), as the kernels assume.
    if (k % 32 !== 0) for (let r = 0; r < n; r++) assert.equal(gpu.codes[r * Math.ceil(k / 32) * 32 + k], 0);
  }
  assert.throws(() => deviceQ8(quantiseBlockwise(new Float32Array(64), 1, 64, 4)), /8-bit blocks of 32/);
});

test('q8 device layout from a Q8_0 tensor: the file\'s int8 codes and f16 scales, exactly', () => {
  const n = 3, k = 64, blocks = n * (k / 32);
  const raw = new Uint8Array(blocks * 34);
  const next = random(5);
  for (let b = 0; b < blocks; b++) {
    raw[b * 34] = 0x66; raw[b * 34 + 1] = 0x2e + b; // f16 scales around 0.1
    for (let j = 0; j < 32; j++) raw[b * 34 + 2 + j] = Math.floor(next() * 256);
  }
  const gpu = deviceQ8(blockwiseFromQ8_0(raw, n, k));
  for (let b = 0; b < blocks; b++) {
    assert.equal(gpu.scales[b], halfBitsToFloat(raw[b * 34]! | (raw[b * 34 + 1]! << 8)));
    for (let j = 0; j < 32; j++) assert.equal(gpu.codes[b * 32 + j], (raw[b * 34 + 2 + j]! << 24) >> 24);
  }
});

test('readDeviceQ8: a Q8_0 tensor is taken as stored; any other is quantised row batch by row batch, equal to quantising it whole', () => {
  const n = 11, k = 96;
  const values = normals(n * k, 9, 0.2);
  let rowReads = 0;
  const weights = {
    readQ8Blocks: () => undefined,
    readRows: (_name: string, first: number, count: number) => {
      rowReads++;
      return values.slice(first * k, (first + count) * k);
    },
  } as unknown as ModelWeights;
  const got = readDeviceQ8(weights, 'w', n, k, 4);
  const want = deviceQ8(quantiseBlockwise(values, n, k, 8));
  assert.deepEqual(got.codes, want.codes);
  assert.deepEqual(got.scales, want.scales);
  assert.equal(rowReads, 3, 'rows read in batches of 4, each once');
  const stored = quantiseBlockwise(values, n, k, 8);
  const fromFile = readDeviceQ8({ readQ8Blocks: () => stored } as unknown as ModelWeights, 'w', n, k);
  assert.equal(fromFile.scales, stored.scales);
});

test('C++ float64 references: dequantisation equals the CPU quantiser\'s, the linear layer equals a float64 product', () => {
  const a = addon();
  for (const [n, k] of SHAPES) {
    const cpu = quantiseBlockwise(normals(n * k, 3 * n + k, 0.1), n, k, 8);
    const w = deviceQ8(cpu);
    const dense = dequantiseBlockwise(cpu);
    const first = Math.min(1, n - 1), count = n - first;
    const deq = a.kernels.q8DequantiseReference({ ...w, first, count });
    for (let i = 0; i < count * k; i++) assert.equal(Math.fround(deq[i]!), dense[first * k + i], `element ${i} of [${n}, ${k}]`);
    const rows = 3, stride = Math.ceil(k / 32) * 32;
    const x = normals(rows * k, 77 + k);
    const accumulate = normals(rows * n, 78 + k);
    const out = a.kernels.q8LinearReference({ ...w, x, rows, accumulate });
    for (let m = 0; m < rows; m++) {
      for (let r = 0; r < n; r++) {
        let sum = accumulate[m * n + r]!;
        // The exact products (int8 × f32 fits a double), not the CPU dequantisation's f32 rounding of them.
        for (let c = 0; c < k; c++) sum += x[m * k + c]! * w.codes[r * stride + c]! * w.scales[r * (stride / 32) + (c >> 5)]!;
        assert.ok(Math.abs(out[m * n + r]! - sum) <= 1e-9 * (1 + Math.abs(sum)), `out[${m}, ${r}] of [${n}, ${k}]: ${out[m * n + r]} vs ${sum}`);
      }
    }
  }
  assert.throws(() => a.kernels.q8LinearReference({ codes: new Int8Array(31), scales: new Float32Array(1), n: 1, k: 32, x: new Float32Array(32), rows: 1 }),
    (err: unknown) => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && /codes\.length/.test(err.message));
  assert.throws(() => a.kernels.q8Gemv({ codes: new Int8Array(32), scales: new Float32Array(1), n: 1, k: 32, x: new Float32Array(9 * 32), rows: 9 }),
    (err: unknown) => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && /rows must be at most 8/.test(err.message));
});

test('q8 memory: codes + f32 scales per block, the embedding too, by hand for Qwen2.5-7B; a 12 GiB GPU holds it with context, bf16 does not', () => {
  assert.equal(q8Bytes(2, 33), 2 * 2 * 32 + 2 * 2 * 4);
  const shape = { hidden: 3584, layers: 28, qDim: 3584, kvDim: 512, intermediate: 18944, vocab: 152064, headDim: 128, tiedEmbeddings: false };
  const linearPerLayer = 3584 * (3584 + 1024) + 3584 * 3584 + 3 * 18944 * 3584; // 233,046,016 weights, all k multiples of 32
  // Layers, the output head and the embedding table in q8, the final norm bf16, the 64 MiB prefill tile.
  const byHand = 28 * (linearPerLayer * 1.125 + 4 * 3584) + 2 * 152064 * 3584 * 1.125 + 2 * 3584 + 64 * 1024 ** 2;
  assert.equal(deviceQ8WeightBytes(shape), byHand);
  assert.ok(byHand > 8.6e9 && byHand < 8.7e9, `Qwen2.5-7B in q8 is ~8.6 GB, got ${byHand}`);
  const a = addon();
  const cache = { layers: 28, kvDim: 512, window: 32, bits: 16 as const, chunkTokens: 512 };
  const plan = (weights: 'bf16' | 'q8') => planCapacity({ shape, weights, cache, wantedTokens: 32768, freeBytes: 12 * 1024 ** 3, layoutOf: (s) => a.cacheLayout(s) });
  assert.equal(plan('bf16').capacityTokens, 0, 'bf16 weights alone exceed 12 GiB');
  assert.equal(plan('bf16').weightBytes, deviceWeightBytes(shape));
  const q8 = plan('q8');
  assert.ok(q8.capacityTokens >= 16384, `q8 leaves room for a long context on 12 GiB: ${q8.capacityTokens}`);
  assert.equal(q8.weightBytes, byHand);
});

test('the weight option on the CUDA engine: q8 and q4 select blocks, f32 and none mean bf16', () => {
  assert.equal(cudaWeightFormat('q8'), 'q8');
  assert.equal(cudaWeightFormat('q4'), 'q4');
  assert.equal(cudaWeightFormat(undefined), 'bf16');
  assert.equal(cudaWeightFormat('f32'), 'bf16');
});

test('every q8 tensor role is a linear weight of the fixtures, with the shape the checkpoint stores', () => {
  for (const name of ['qwen2-v5', 'llama-v4']) {
    const config = readModelConfig(modelFixture(name));
    const shapes = blockTensorShapes(config, 'q8');
    const roles = new Set(tensorRoles(config).map(([role]) => role));
    for (const role of Object.keys(shapes)) assert.ok(roles.has(role), `${name}: ${role}`);
    assert.equal('lmHead' in shapes, !config.tieEmbeddings);
    assert.deepEqual(shapes.embedding, [config.vocabSize, config.hiddenSize]);
    assert.ok(!('embedding' in blockTensorShapes(config, 'q4')), 'q4 keeps the embedding bf16');
    assert.deepEqual(shapes.down, [config.hiddenSize, config.intermediateSize]);
  }
});

test('a fixture\'s linear weights on the device: from a Q8_0 GGUF the file\'s own values, from safetensors the CPU engine\'s quantisation', () => {
  for (const name of ['llama-v4', 'qwen2-v5']) {
    const config = readModelConfig(modelFixture(name));
    const shapes = blockTensorShapes(config, 'q8');
    const file = path.join(tempDir(), `${name}-q8_0.gguf`);
    const fileValues = new Map(convertToGguf(modelFixture(name), file, 'Q8_0').map((t) => [t.hfName, t.values]));
    const gguf = ModelWeights.open(file);
    const safetensors = ModelWeights.open(modelFixture(name), config);
    let checked = 0;
    try {
      for (const [role, , tensor] of tensorRoles(config)) {
        const shape = shapes[role];
        if (!shape) continue;
        const [n, k] = shape;
        const fromFile = readDeviceQ8(gguf, tensor, n, k);
        const values = fileValues.get(tensor)!;
        for (let r = 0; r < n; r++) {
          for (let c = 0; c < k; c++) {
            const w = Math.fround(fromFile.codes[r * k + c]! * fromFile.scales[r * (k / 32) + (c >> 5)]!);
            assert.equal(w, values[r * k + c], `${name} ${tensor}[${r}, ${c}]`);
          }
        }
        const quantised = readDeviceQ8(safetensors, tensor, n, k);
        const cpu = deviceQ8(quantiseBlockwise(safetensors.readFloat32(tensor, [n, k]), n, k, 8));
        assert.deepEqual(quantised.codes, cpu.codes, tensor);
        assert.deepEqual(quantised.scales, cpu.scales, tensor);
        checked++;
      }
    } finally {
      gguf.close();
      safetensors.close();
    }
    assert.ok(checked >= 7 * config.layers, `${name}: ${checked} weights`);
  }
});
