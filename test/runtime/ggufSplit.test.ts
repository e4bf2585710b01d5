// A model split by llama-gguf-split (NAME-0000k-of-0000n.gguf) opens from its first part as one model: the same
// config, tokenizer, fingerprint and logits as the unsplit file, whether or not the first part holds tensors.
// A missing part, a later part opened alone and a part count that does not add up are refused by name; discovery
// lists the split model once, with the size of all its parts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { ModelFormatError } from '../../src/runtime/errors';
import { readModelConfig } from '../../src/runtime/model/config';
import { discoverModels } from '../../src/runtime/model/discovery';
import { modelFingerprint } from '../../src/runtime/model/fingerprint';
import { ModelWeights } from '../../src/runtime/model/weights';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { expected } from './engineSuite';
import { byteTokenizerMetadata, convertToGguf } from '../support/ggufWriter';
import { modelFixture, tempDir } from '../support/paths';

const FIXTURE = 'llama-v4';

async function prefillLogits(model: string, prompt: number[]): Promise<Float32Array> {
  const engine = await OnnxEngine.load(model, { weights: 'f32' });
  try {
    return await engine.prefill(prompt, { logits: prompt.length });
  } finally {
    await engine.dispose();
  }
}

function fingerprintOf(model: string): string {
  const weights = ModelWeights.open(model);
  try {
    return modelFingerprint(readModelConfig(model), weights);
  } finally {
    weights.close();
  }
}

describe('split GGUF models', () => {
  const dir = tempDir('cskv-gguf-split-');
  const whole = path.join(dir, 'tiny-F16.gguf');
  convertToGguf(modelFixture(FIXTURE), whole, 'F16', { metadata: byteTokenizerMetadata() });

  for (const firstPartTensors of [undefined, 0]) {
    test(`three parts (${firstPartTensors === 0 ? 'metadata alone in the first part, as --no-tensor-first-split' : 'tensors in every part'}) load as the unsplit file`, async () => {
      const first = path.join(tempDir('cskv-gguf-split-'), 'tiny-F16-00001-of-00003.gguf');
      convertToGguf(modelFixture(FIXTURE), first, 'F16', { metadata: byteTokenizerMetadata(), split: { parts: 3, firstPartTensors } });
      for (const k of [2, 3]) assert.ok(fs.existsSync(first.replace('00001-of', `0000${k}-of`)));
      assert.deepEqual({ ...readModelConfig(first), file: '' }, { ...readModelConfig(whole), file: '' });
      assert.equal(fingerprintOf(first), fingerprintOf(whole));
      const text = 'def main():\n    return 42\n';
      assert.deepEqual(ModelTokenizer.load(first).encode(text), ModelTokenizer.load(whole).encode(text));
      const prompt = expected(FIXTURE).prompt_ids;
      assert.deepEqual(await prefillLogits(first, prompt), await prefillLogits(whole, prompt));
    });
  }

  test('a missing part, a later part opened alone and a part of another split are refused by name', () => {
    const splitDir = tempDir('cskv-gguf-split-');
    const first = path.join(splitDir, 'tiny-00001-of-00003.gguf');
    convertToGguf(modelFixture(FIXTURE), first, 'F16', { metadata: byteTokenizerMetadata(), split: { parts: 3 } });
    const second = path.join(splitDir, 'tiny-00002-of-00003.gguf');
    const third = path.join(splitDir, 'tiny-00003-of-00003.gguf');

    assert.throws(() => readModelConfig(second), (e: unknown) => e instanceof ModelFormatError && e.file === second
      && e.message.includes(`this is part 2 of 3 of a split model; open its first part, ${first}`));

    // The parts of another split (a different count) under the expected name.
    const stray = tempDir('cskv-gguf-split-');
    convertToGguf(modelFixture(FIXTURE), path.join(stray, 'x-00001-of-00002.gguf'), 'F16', { split: { parts: 2 } });
    fs.copyFileSync(third, `${third}.kept`);
    fs.copyFileSync(path.join(stray, 'x-00002-of-00002.gguf'), third);
    assert.throws(() => readModelConfig(first), (e: unknown) => e instanceof ModelFormatError && e.file === third && /expected part 3 of 3/.test(e.message));
    fs.renameSync(`${third}.kept`, third);

    fs.rmSync(third);
    assert.throws(() => readModelConfig(first), (e: unknown) => e instanceof ModelFormatError && e.file === first
      && e.message.includes(`part 3 of 3 of this split model is missing: ${third}`));
    const found = discoverModels({ folders: [splitDir], env: {}, home: tempDir('cskv-home-') });
    assert.equal(found.length, 1, 'the second part is not listed as a model of its own');
    assert.equal(found[0]!.loadable, false);
    assert.match(found[0]!.reason ?? '', /part 3 of 3 of this split model is missing/);
  });

  test('discovery lists a split model once, with the size of all its parts, as loadable', () => {
    const splitDir = tempDir('cskv-gguf-split-');
    const parts = [1, 2, 3].map((k) => path.join(splitDir, `tiny-0000${k}-of-00003.gguf`));
    convertToGguf(modelFixture(FIXTURE), parts[0]!, 'F16', { metadata: byteTokenizerMetadata(), split: { parts: 3 } });
    const found = discoverModels({ folders: [splitDir], env: {}, home: tempDir('cskv-home-') });
    assert.equal(found.length, 1);
    assert.equal(found[0]!.path, parts[0]);
    assert.equal(found[0]!.loadable, true, found[0]!.reason);
    assert.equal(found[0]!.sizeBytes, parts.reduce((sum, p) => sum + fs.statSync(p).size, 0));
  });
});
