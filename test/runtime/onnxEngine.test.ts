import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { runEngineSuite } from './engineSuite';
import { modelFixture } from '../support/paths';

// The f32 path against the float64 reference; 8/4-bit weights have their own bounds (blockWeights.test.ts).
runEngineSuite('onnx', (dir, options) => OnnxEngine.load(dir, { ...options, weights: 'f32' }), {
  tolerance: 1e-4,
  quantisedTolerance: { 8: 1e-2, 4: 3e-2, 2: 1e-1 },
});

// The full-precision branch: fp16 with 8/4-bit weights (as many bytes as the fp16 yardstick: nothing saved, nothing
// lost), f32 with f32 weights (twice the yardstick).
test('the full cache is held in fp16 with q8 weights and in f32 with f32 weights', async () => {
  for (const [weights, dtype, savings] of [['q8', 'f16', 0], ['f32', 'f32', -1]] as const) {
    const engine = await OnnxEngine.load(modelFixture('qwen2-v5'), { weights });
    try {
      await engine.prefill([1, 2, 3, 4, 5], { logits: 1 });
      await engine.prefill([6]);
      const memory = engine.memory();
      assert.equal(memory.fullDtype, dtype, weights);
      assert.equal(memory.tokens, 6);
      assert.equal(memory.savings, savings, weights);
    } finally {
      await engine.dispose();
    }
  }
});
