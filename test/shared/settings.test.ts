// The shared defaults are the ones the editor shows: package.json's configuration repeats them for VS Code.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { COMPRESSED_BITS, isCompressedBits } from '../../src/protocol';
import { BACKENDS, DEFAULTS, checkModelFolder } from '../../src/shared/settings';
import { repoRoot, tempDir } from '../support/paths';

test("package.json's setting defaults and choices are the shared ones", () => {
  const properties = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).contributes.configuration.properties;
  assert.equal(properties['cskv.compression.density'].default, DEFAULTS.density);
  assert.equal(properties['cskv.context.tokenBudget'].default, DEFAULTS.contextTokenBudget);
  assert.equal(properties['cskv.completions.debounceMs'].default, DEFAULTS.completionDebounceMs);
  assert.equal(properties['cskv.chat.maxAnswerTokens'].default, DEFAULTS.answerTokens);
  assert.equal(properties['cskv.backend'].default, DEFAULTS.backend);
  assert.deepEqual(properties['cskv.backend'].enum, BACKENDS);
  assert.equal(properties['cskv.compression.factors'].default, DEFAULTS.cskv);
  assert.deepEqual(properties['cskv.compression.bits'].enum, [null, ...COMPRESSED_BITS]);
});

test('the bit widths guard takes exactly the four widths', () => {
  for (const bits of [16, 8, 4, 2]) assert.equal(isCompressedBits(bits), true);
  for (const bits of [0, 1, 3, 32, '16', null, undefined, 16.5]) assert.equal(isCompressedBits(bits), false);
});

test('a model folder needs config.json and tokenizer.json; the check names what is missing; a file may be GGUF', () => {
  const dir = tempDir('cskv-model-');
  assert.match(checkModelFolder(path.join(dir, 'nope'))!, /does not exist/);
  fs.writeFileSync(path.join(dir, 'config.json'), '{}');
  assert.equal(checkModelFolder(path.join(dir, 'config.json')), undefined, 'a file is taken as a GGUF model; its reader judges it');
  assert.equal(checkModelFolder(dir), `"${dir}" is not a model folder: tokenizer.json not found.`);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  assert.equal(checkModelFolder(dir), undefined);
});
