import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readModelConfig } from '../../src/runtime/model/config';
import { ropeFrequencies } from '../../src/runtime/model/rope';
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
