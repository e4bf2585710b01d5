import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { MemoryReport } from '../../src/protocol';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import type { Engine, PrefillOptions } from '../../src/runtime/engine';
import { generate } from '../../src/runtime/generate';
import type { SamplingStep } from '../../src/runtime/sampler';
import { sampleReference } from '../gpu/reference';
import { modelFixture } from '../support/paths';
import { expected } from './engineSuite';

/**
 * The onnx engine given a sampler of its own, as the CUDA engine has one: decodeSampled runs the step and picks with
 * the float64 mirror of the CUDA sampling kernel (test/gpu/reference.ts). It tests generate's use of the capability
 * on the CPU; the CUDA engine's own is tested on the GPU (test/gpu/cudaEngine.test.ts).
 */
class WithEngineSampler implements Engine {
  prefills = 0;
  engineSteps = 0;
  constructor(private readonly inner: Engine) {}
  get info(): Engine['info'] { return this.inner.info; }
  get length(): number { return this.inner.length; }
  prefill(tokens: readonly number[], options?: PrefillOptions): Promise<Float32Array> {
    this.prefills++;
    return this.inner.prefill(tokens, options);
  }
  async decodeSampled(token: number, step: SamplingStep): Promise<number> {
    this.engineSteps++;
    return sampleReference(await this.inner.prefill([token], { logits: 1 }), step).token;
  }
  truncate(length: number): Promise<void> { return this.inner.truncate(length); }
  memory(): MemoryReport { return this.inner.memory(); }
  snapshot(): Promise<Uint8Array> { return this.inner.snapshot(); }
  restore(snapshot: Uint8Array): void { this.inner.restore(snapshot); }
  dispose(): Promise<void> { return this.inner.dispose(); }
}

const exp = expected('llama-v4');
let engine: OnnxEngine;
before(async () => {
  engine = await OnnxEngine.load(modelFixture('llama-v4'));
});
after(() => engine.dispose());

test('a stop token ends generation and is returned', async () => {
  await engine.truncate(0);
  const stopAt = exp.greedy_tokens[3]!;
  const r = await generate(engine, exp.prompt_ids, { greedy: true, maxNewTokens: 10, stopTokens: [stopAt] });
  assert.equal(r.stopReason, 'stop-token');
  assert.deepEqual(r.tokens, exp.greedy_tokens.slice(0, exp.greedy_tokens.indexOf(stopAt) + 1));
});

test('cancellation stops between tokens, and before the prompt when already aborted', async () => {
  await engine.truncate(0);
  const abort = new AbortController();
  let seen = 0;
  const r = await generate(engine, exp.prompt_ids, {
    greedy: true, maxNewTokens: 10, signal: abort.signal,
    onToken: () => { if (++seen === 3) abort.abort(); },
  });
  assert.equal(r.stopReason, 'cancelled');
  assert.deepEqual(r.tokens, exp.greedy_tokens.slice(0, 3));
  await engine.truncate(0);
  const r2 = await generate(engine, exp.prompt_ids, { greedy: true, signal: AbortSignal.abort() });
  assert.equal(r2.stopReason, 'cancelled');
  assert.deepEqual(r2.tokens, []);
  assert.equal(engine.length, 0, 'an aborted prefill leaves nothing half-written in the cache');
});

test('sampling with a seed is reproducible and differs from greedy at a high temperature', async () => {
  const sample = async (seed: number): Promise<number[]> => {
    await engine.truncate(0);
    return (await generate(engine, exp.prompt_ids, { temperature: 5, topP: 1, seed, maxNewTokens: 10 })).tokens;
  };
  const a = await sample(1), b = await sample(1), c = await sample(2);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.notDeepEqual(a, exp.greedy_tokens);
});

test('max tokens is honoured and the cache holds prompt plus all but the last token', async () => {
  await engine.truncate(0);
  const r = await generate(engine, exp.prompt_ids, { greedy: true, maxNewTokens: 4 });
  assert.equal(r.stopReason, 'max-tokens');
  assert.equal(r.tokens.length, 4);
  assert.equal(engine.length, exp.prompt_ids.length + 3);
});

test('a stop on the generated text ends generation as "stop-text", with the text decoded as it came', async () => {
  await engine.truncate(0);
  // A stand-in decode (the fixture has no tokenizer.json): each id as "<id>", so the text counts the tokens.
  const tokenizer = { decode: (ids: readonly number[]) => ids.map((id) => `<${id}>`).join('') };
  const pieces: string[] = [];
  const r = await generate(engine, exp.prompt_ids, {
    greedy: true, maxNewTokens: 10, tokenizer, onText: (p) => pieces.push(p),
    stopWhen: (text) => text.split('>').length > 3,
  });
  assert.equal(r.stopReason, 'stop-text');
  assert.deepEqual(r.tokens, exp.greedy_tokens.slice(0, 3));
  assert.equal(r.text, tokenizer.decode(r.tokens));
  assert.equal(pieces.join(''), r.text);
  await engine.truncate(0);
  await assert.rejects(generate(engine, exp.prompt_ids, { stopWhen: () => true }), /stopWhen needs a tokenizer/);
});

test('an engine with its own sampler picks every token after the first: the same greedy tokens, and with a seed the same draws', async () => {
  const sampling = new WithEngineSampler(engine);
  await engine.truncate(0);
  const greedy = await generate(sampling, exp.prompt_ids, { greedy: true, maxNewTokens: exp.greedy_tokens.length });
  assert.deepEqual(greedy.tokens, exp.greedy_tokens);
  assert.equal(sampling.prefills, 1, 'the prompt only: no row of logits per step');
  assert.equal(sampling.engineSteps, exp.greedy_tokens.length - 1);
  assert.equal(engine.length, exp.prompt_ids.length + exp.greedy_tokens.length - 1);
  const sampled: number[][] = [];
  for (const [seed, options] of [[1, { temperature: 1.5 }], [2, { temperature: 1, topK: 20 }], [3, { temperature: 2, topP: 0.9 }], [4, { temperature: 1.2, topK: 50, topP: 0.8 }]] as const) {
    await engine.truncate(0);
    const host = await generate(engine, exp.prompt_ids, { ...options, seed, maxNewTokens: 12 });
    await engine.truncate(0);
    const onEngine = await generate(sampling, exp.prompt_ids, { ...options, seed, maxNewTokens: 12 });
    assert.deepEqual(onEngine.tokens, host.tokens, `seed ${seed} ${JSON.stringify(options)}`);
    sampled.push(host.tokens.slice(0, exp.greedy_tokens.length));
  }
  assert.ok(sampled.some((tokens) => tokens.join() !== exp.greedy_tokens.join()), 'the sampled runs are not all greedy');
});
