// The quantised compressed features as the WebGPU graphs keep them (packed in f32, dequantised in the graph),
// checked on the CPU provider against the JS dequantisation the CPU backend uses: the same graph nodes run on
// WebGPU in the engine suite (webgpuEngine.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ort } from '../../src/runtime/onnx/ort';
import { GraphBuilder } from '../../src/runtime/onnx/graphBuilder';
import { type FeatureKind, type QuantisedBits, dequantisedFeatures, packBlock, packedColumns, packedInputNames, scaleColumns } from '../../src/runtime/onnx/packedCodes';
import { dequantiseKeys, dequantiseValues, quantiseKeys, quantiseValues } from '../../src/runtime/cache/quantizer';
import { mulberry32 } from '../../src/runtime/random';

async function dequantiseInGraph(kind: FeatureKind, rank: number, bits: QuantisedBits, window: number, inputs: Float32Array[], tokens: number): Promise<ort.Tensor> {
  const g = new GraphBuilder('dequantise');
  g.output(dequantisedFeatures(g, kind, rank, bits, window), 'y', ['Sc', rank]);
  const graph = g.finish();
  const session = await ort.InferenceSession.create(graph.model, { executionProviders: ['cpu'], externalData: graph.externalData });
  try {
    const [codes, scales, zeros] = packedInputNames(kind);
    const scaleRows = kind === 'k' ? tokens / window : tokens;
    const out = await session.run({
      [codes]: new ort.Tensor('float32', inputs[0]!, [tokens, packedColumns(kind, rank, bits)]),
      [scales]: new ort.Tensor('float32', inputs[1]!, [scaleRows, scaleColumns(kind, rank)]),
      [zeros]: new ort.Tensor('float32', inputs[2]!, [scaleRows, scaleColumns(kind, rank)]),
    });
    return out.y as ort.Tensor;
  } finally {
    await session.release();
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

for (const bits of [8, 4, 2] as const) {
  for (const [kind, rank] of [['k', 13], ['v', 45]] as const) {
    test(`${bits}-bit ${kind === 'k' ? 'keys' : 'values'} (rank ${rank}) packed in f32 dequantise in the graph to the JS cache's values`, async () => {
      const window = 4, blocks = 3, tokens = window * blocks;
      const random = mulberry32(bits * 100 + rank);
      const features = Float32Array.from({ length: tokens * rank }, () => (random() - 0.5) * 8);
      const expected = new Float32Array(tokens * rank);
      const packed = [];
      for (let b = 0; b < blocks; b++) {
        const rows = features.subarray(b * window * rank, (b + 1) * window * rank);
        const block = kind === 'k' ? quantiseKeys(rows, window, rank, bits) : quantiseValues(rows, window, rank, bits);
        (kind === 'k' ? dequantiseKeys : dequantiseValues)(block, window, rank, bits, expected, b * window * rank);
        packed.push(packBlock(block, kind, window, rank, bits));
      }
      const y = await dequantiseInGraph(kind, rank, bits, window, [concat(packed.map((p) => p.codes)), concat(packed.map((p) => p.scales)), concat(packed.map((p) => p.zeros))], tokens);
      assert.deepEqual(y.dims, [tokens, rank]);
      const got = y.data as Float32Array;
      // code * scale + zero rounds twice in f32 here, once in the JS: one unit in the last place apart at most.
      for (let i = 0; i < expected.length; i++) {
        assert.ok(Math.abs(got[i]! - expected[i]!) <= 2 ** -20 * Math.max(1, Math.abs(expected[i]!)), `element ${i}: ${got[i]} against ${expected[i]}`);
      }
      // Not a degenerate case (say, every code 0): each (scale, zero) pair spreads its values over several levels.
      const pairs = packed.reduce((n, p) => n + p.scales.length, 0);
      assert.ok(new Set(Array.from(expected)).size > 2 * pairs);
    });
  }
}

test('an empty compressed branch dequantises to zero rows', async () => {
  for (const [kind, rank] of [['k', 6], ['v', 12]] as const) {
    const y = await dequantiseInGraph(kind, rank, 4, 4, [new Float32Array(0), new Float32Array(0), new Float32Array(0)], 0);
    assert.deepEqual(y.dims, [0, rank]);
  }
});
