// The blockwise 8/4-bit weights (MatMulNBits) of a backend against the float64 reference fixtures: every
// backend that holds q8/q4 weights runs this beside runEngineSuite (which checks f32 weights to 1e-4).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WeightFormat } from '../../src/runtime/model/weightFormat';
import { modelFixture } from '../support/paths';
import { type EngineLoader, MODEL_FIXTURES, expected, relativeError } from './engineSuite';

// Measured on the fixtures (hidden 64, so each row is only two blocks), CPU: f32 <= 1.5e-6, q8 2.1e-2 .. 4.5e-2,
// q4 0.25 .. 0.5 relative to the logit scale; WebGPU on lavapipe (f32 activations, no int8): q8 <= 4.0e-2,
// q4 <= 0.48. q8 keeps the greedy choice at nearly every position.
// f16 (WebGPU with shader-f16: half-precision products), measured on lavapipe: 2.0e-3 .. 4.4e-3, greedy choice kept.
const BOUNDS: Record<Exclude<WeightFormat, 'f32'>, { logits: number; top1: number; beyondF32: number }> = {
  q8: { logits: 7e-2, top1: 0.85, beyondF32: 1e-3 },
  q4: { logits: 0.7, top1: 0.4, beyondF32: 1e-3 },
  f16: { logits: 1e-2, top1: 0.95, beyondF32: 1e-5 },
};

export function runWeightFormatSuite(backend: string, load: EngineLoader, formats: readonly Exclude<WeightFormat, 'f32'>[] = ['q8', 'q4']): void {
  for (const format of formats) {
    test(`${backend}, ${format} weights: prompt logits of every fixture within ${BOUNDS[format].logits} of the reference, and further than f32`, async () => {
      let agree = 0, positions = 0;
      for (const name of MODEL_FIXTURES) {
        const exp = expected(name);
        const engine = await load(modelFixture(name), { weights: format });
        try {
          assert.equal(engine.info.weights, format);
          const V = engine.info.config.vocabSize;
          const all = await engine.prefill(exp.prompt_ids, { logits: exp.prompt_ids.length });
          let worst = 0;
          exp.logits.forEach((row, t) => {
            const actual = all.subarray(t * V, (t + 1) * V);
            worst = Math.max(worst, relativeError(actual, row));
            agree += Number(argmax(actual) === argmax(row));
            positions++;
          });
          assert.ok(worst <= BOUNDS[format].logits, `${name}: relative error ${worst}`);
          assert.ok(worst > BOUNDS[format].beyondF32, `${name}: ${format} logits are as close as f32 (${worst}): are the weights really in ${format}?`);
          console.log(`${backend} ${format} ${name}: worst relative error ${worst.toExponential(2)}`);
        } finally {
          await engine.dispose();
        }
      }
      assert.ok(agree / positions >= BOUNDS[format].top1, `greedy choice kept at ${agree} of ${positions} positions`);
    });
  }
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}
