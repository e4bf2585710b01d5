import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { generate } from '../../src/runtime/generate';
import { modelFixture } from '../support/paths';
import { expected } from './engineSuite';

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
