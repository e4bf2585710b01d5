// Blockwise 8/4-bit weights (MatMulNBits): the packing against its own dequantisation, the operator against an
// f32 MatMul over the dequantised weights, and the whole engine's logit error against the float64 reference
// fixtures, bounded per format.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ort } from '../../src/runtime/onnx/ort';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import type { WeightFormat } from '../../src/runtime/model/weightFormat';
import { dequantiseBlockwise, quantiseBlockwise } from '../../src/runtime/onnx/blockQuantizer';
import { GraphBuilder } from '../../src/runtime/onnx/graphBuilder';
import { positiveUniform } from '../../src/runtime/random';
import { relativeError } from './engineSuite';
import { runWeightFormatSuite } from './weightFormatSuite';
import { modelFixture } from '../support/paths';

function randomWeights(n: number, seed: number): Float32Array {
  const u = positiveUniform(seed);
  return Float32Array.from({ length: n }, () => u() * 2 - 1);
}

for (const bits of [8, 4] as const) {
  test(`${bits}-bit blocks: every weight within half a step of its block's scale, partial blocks padded with zero`, () => {
    const N = 5, K = 80; // 80 = two whole blocks of 32 and a partial one of 16
    const w = randomWeights(N * K, bits);
    w[3] = 0; // a zero inside a block stays exact
    w.fill(0, K, K + 32); // an all-zero block: scale 0, no division by zero
    const q = quantiseBlockwise(w, N, K, bits);
    assert.equal(q.blocksPerRow, 3);
    assert.equal(q.codes.length, N * 3 * 32 * bits / 8);
    const back = dequantiseBlockwise(q);
    for (let row = 0; row < N; row++) {
      for (let col = 0; col < K; col++) {
        const scale = q.scales[row * 3 + Math.floor(col / 32)]!;
        const err = Math.abs(back[row * K + col]! - w[row * K + col]!);
        assert.ok(err <= scale / 2 + 1e-7, `row ${row} col ${col}: error ${err} at scale ${scale}`);
      }
    }
    assert.equal(back[3], 0);
    assert.equal(q.scales[3], 0);
    // The largest magnitude of a block is exact: the scale is chosen from it.
    let at = 0;
    for (let c = 1; c < 32; c++) if (Math.abs(w[c]!) > Math.abs(w[at]!)) at = c;
    assert.ok(Math.abs(back[at]! - w[at]!) < 1e-6);
  });

  test(`${bits}-bit MatMulNBits computes x W^T of the dequantised weights (int8 activations: ~1% error)`, async () => {
    const N = 48, K = 96, T = 3;
    const w = randomWeights(N * K, 10 + bits);
    const x = randomWeights(T * K, 20 + bits);
    const q = quantiseBlockwise(w, N, K, bits);
    const g = new GraphBuilder('linear');
    const input = g.input('x', ['T', K]);
    const codes = g.bytesWeight('codes', q.codes, [N, q.blocksPerRow, 32 * bits / 8]);
    const scales = g.weight('scales', q.scales, [q.scales.length]);
    g.output(g.contribOp('MatMulNBits', [input, codes, scales], { K, N, bits, block_size: 32, accuracy_level: 4 }), 'y', ['T', N]);
    const graph = g.finish();
    const session = await ort.InferenceSession.create(graph.model, { externalData: graph.externalData });
    try {
      const y = (await session.run({ x: new ort.Tensor('float32', x, [T, K]) })).y!.data as Float32Array;
      const wq = dequantiseBlockwise(q);
      const reference = new Float32Array(T * N);
      for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += x[t * K + k]! * wq[n * K + k]!;
        reference[t * N + n] = s;
      }
      const err = relativeError(y, reference);
      assert.ok(err < 2e-2, `relative error ${err}`);
    } finally {
      await session.release();
    }
  });
}

runWeightFormatSuite('onnx', (dir, options) => OnnxEngine.load(dir, options));

test('an unknown weight format is refused by name', async () => {
  await assert.rejects(OnnxEngine.load(modelFixture('llama-v4'), { weights: 'q3' as WeightFormat }),
    (e: Error & { code?: string }) => e.code === 'BAD_ARGUMENT' && /weights must be one of f32, q8, q4, f16, got "q3"/.test(e.message));
});

test('f16 weights are refused on the CPU backend, saying where they run', async () => {
  await assert.rejects(OnnxEngine.load(modelFixture('llama-v4'), { weights: 'f16' }),
    (e: Error & { code?: string }) => e.code === 'BAD_ARGUMENT' && /f16 weights need the webgpu backend/.test(e.message));
});
