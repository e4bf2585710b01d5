import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readModelConfig } from '../../src/runtime/model/config';
import { ropeFrequencies, ropeTableFactors, ropeTables } from '../../src/runtime/model/rope';
import { modelFixture } from '../support/paths';
import { MODEL_FIXTURES, expected } from './engineSuite';

const fixtures = MODEL_FIXTURES.map((name) => ({ name, exp: expected(name) as ReturnType<typeof expected> & { rope_inv_freq: number[]; rope_attention_factor: number } }));

for (const { name, exp } of fixtures) {
  test(`${name}: ${exp.rope_type} RoPE frequencies and attention factor match the reference`, () => {
    const config = readModelConfig(modelFixture(name));
    const f = ropeFrequencies(config, exp.prompt_ids.length);
    assert.equal(f.invFreq.length, exp.rope_inv_freq.length);
    f.invFreq.forEach((x, i) => assert.ok(Math.abs(x - exp.rope_inv_freq[i]!) <= 1e-6 * Math.abs(exp.rope_inv_freq[i]!), `inv_freq[${i}] ${x} vs ${exp.rope_inv_freq[i]}`));
    assert.ok(Math.abs(f.attentionFactor - exp.rope_attention_factor) < 1e-6);
  });
}

test('dynamic NTK frequencies stay put up to max_position_embeddings and fall beyond it', () => {
  const config = readModelConfig(modelFixture('qwen2-dynamic'));
  assert.equal(config.rope.type, 'dynamic');
  const atLimit = ropeFrequencies(config, config.maxPositions).invFreq;
  assert.deepEqual(ropeFrequencies(config, 1).invFreq, atLimit);
  const beyond = ropeFrequencies(config, config.maxPositions * 2).invFreq;
  assert.equal(beyond[0], atLimit[0]);
  assert.ok(beyond[beyond.length - 1]! < atLimit[atLimit.length - 1]!);
});

test('both config spellings are read: rope_theta + rope_scaling (4.x) and rope_parameters (5.x)', () => {
  assert.deepEqual(
    [readModelConfig(modelFixture('llama-yarn-sharded')).rope.type, readModelConfig(modelFixture('llama-v5-llama3')).rope.type, readModelConfig(modelFixture('qwen2-v5')).rope.theta],
    ['yarn', 'llama3', 1e6]);
});

// Only dynamic NTK's tables are composed (its frequencies change with every length past the original context);
// its attention factor is 1, so every value is in [-1, 1], where an f32 rounding is at most 6e-8.
test('dynamic NTK RoPE tables composed from their angle-addition factors in f32 (as the WebGPU backend does) stay within 1.2e-7 of direct ones', () => {
  for (const [name, positions] of [['qwen2-dynamic', 40_000]] as const) {
    const config = readModelConfig(modelFixture(name));
    const hd = config.headDim;
    const freqs = ropeFrequencies(config, positions);
    const direct = ropeTables(freqs, hd, Float64Array.from({ length: positions }, (_, i) => i));
    const { coarse, fine, block } = ropeTableFactors(freqs, hd, positions);
    const f = Math.fround;
    let worst = 0;
    for (let p = 0; p < positions; p++) {
      const [q, r] = [Math.floor(p / block), p % block];
      for (let c = 0; c < hd; c++) {
        const [cc, cs, fc, fs] = [coarse.cos[q * hd + c]!, coarse.sin[q * hd + c]!, fine.cos[r * hd + c]!, fine.sin[r * hd + c]!];
        const cos = f(f(cc * fc) - f(cs * fs));
        const sin = f(f(cs * fc) + f(cc * fs));
        worst = Math.max(worst, Math.abs(cos - direct.cos[p * hd + c]!), Math.abs(sin - direct.sin[p * hd + c]!));
      }
    }
    console.log(`${name}: ${positions} positions, composed vs direct: max abs error ${worst.toExponential(2)}`);
    assert.ok(worst <= 1.2e-7, `${name}: ${worst}`);
    // Whole tables would have sent `positions` rows up; the factors send about 2·sqrt(positions).
    assert.ok(coarse.cos.length / hd + block <= 2 * Math.ceil(Math.sqrt(positions)) + 1);
  }
});
