import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sampler, argmax, pickToken } from '../../src/runtime/sampler';

const logits = Float32Array.from([1, 3, 2, 0.5, 2.9]);

test('greedy picks the largest logit', () => {
  assert.equal(new Sampler({ greedy: true }).sample(logits), 1);
  assert.equal(new Sampler({ temperature: 0 }).sample(logits), 1);
  assert.equal(argmax(Float32Array.from([-5, -1, -3])), 1);
});

test('top-k 1 is greedy whatever the temperature', () => {
  const s = new Sampler({ topK: 1, temperature: 5, seed: 3 });
  for (let i = 0; i < 20; i++) assert.equal(s.sample(logits), 1);
});

test('top-p keeps the smallest set reaching the mass', () => {
  // At temperature 1 tokens 1 and 4 hold ~0.64 of the mass together; top-p 0.5 leaves only those two.
  const s = new Sampler({ topP: 0.5, seed: 1 });
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) seen.add(s.sample(logits));
  assert.deepEqual([...seen].sort(), [1, 4]);
});

test('a seed reproduces a run and sampling follows the distribution', () => {
  const a = new Sampler({ seed: 42, temperature: 1 });
  const b = new Sampler({ seed: 42, temperature: 1 });
  const runA = Array.from({ length: 50 }, () => a.sample(logits));
  const runB = Array.from({ length: 50 }, () => b.sample(logits));
  assert.deepEqual(runA, runB);
  const counts = new Array(5).fill(0);
  const s = new Sampler({ seed: 7 });
  const n = 20000;
  for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
  const z = Array.from(logits).reduce((acc, l) => acc + Math.exp(l), 0);
  Array.from(logits).forEach((l, i) => assert.ok(Math.abs(counts[i] / n - Math.exp(l) / z) < 0.02, `token ${i}`));
});

test('a step carries the settings and one draw: sampling is pickToken of the next step, greedy draws nothing', () => {
  const a = new Sampler({ seed: 9, temperature: 0.7, topK: 4, topP: 0.9 });
  const b = new Sampler({ seed: 9, temperature: 0.7, topK: 4, topP: 0.9 });
  for (let i = 0; i < 30; i++) {
    const step = b.step();
    assert.deepEqual({ ...step, u: 0 }, { greedy: false, temperature: 0.7, topK: 4, topP: 0.9, u: 0 });
    assert.ok(step.u >= 0 && step.u < 1);
    assert.equal(a.sample(logits), pickToken(logits, step));
  }
  assert.deepEqual(new Sampler({ temperature: 0, seed: 1 }).step(), { greedy: true, temperature: 0, topK: 0, topP: 1, u: 0 });
  // u walks the kept tokens in vocabulary order: the lowest u picks the lowest kept id, the highest the highest.
  const step = { greedy: false, temperature: 1, topK: 0, topP: 1 };
  assert.equal(pickToken(logits, { ...step, u: 0 }), 0);
  assert.equal(pickToken(logits, { ...step, u: 0.999999 }), 4);
});

test('bad settings are refused with the value named', () => {
  assert.throws(() => new Sampler({ topP: 0 }), /top-p/);
  assert.throws(() => new Sampler({ temperature: -1 }), /temperature/);
  assert.throws(() => new Sampler({ topK: 1.5 }), /top-k/);
});
