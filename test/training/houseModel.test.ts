// The committed house model (models/house): it loads, its tokenizer round-trips code it was not trained on, and the
// main job runs on it without --model, as a user's first `cskv-code ask` does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { fixturesDir, repoRoot } from '../support/paths';

const house = path.join(repoRoot, 'models', 'house');

test('the house model is committed with its card and training report', () => {
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'README.md', 'train_report.json']) {
    assert.ok(fs.existsSync(path.join(house, f)), `models/house/${f}`);
  }
  const report = JSON.parse(fs.readFileSync(path.join(house, 'train_report.json'), 'utf8'));
  assert.ok(report.training.steps > 0);
  assert.ok(report.heldout.loss < report.training.history[0].loss, 'held-out loss below the first training loss');
  const config = JSON.parse(fs.readFileSync(path.join(house, 'config.json'), 'utf8'));
  assert.equal(config.max_position_embeddings, report.heldout.length, 'the context it claims is the context it was scored at');
});

test('the house tokenizer round-trips code it was not trained on', () => {
  const tok = ModelTokenizer.load(house);
  for (const file of ['src/geometry.py', 'src/format.js', 'README.md']) {
    const text = fs.readFileSync(path.join(fixturesDir, 'workspace', file), 'utf8');
    const ids = tok.encode(text, { addSpecialTokens: false, literal: true });
    assert.equal(tok.decode(ids), text, file);
    assert.ok(ids.length < text.length / 2, `${file}: ${ids.length} tokens for ${text.length} characters`);
  }
});

test('cskv-code ask without --model answers over a workspace with the house model', () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'cskv-code.js'), 'ask', '--workspace', path.join(fixturesDir, 'workspace'),
    '--no-save', '--max-new-tokens', '24', '--json', 'What does geometry.py compute?'], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { answer: string; residentFiles: { path: string }[]; residentTokens: number; memory: { savings: number } };
  assert.ok(json.residentFiles.some((f) => f.path.endsWith('geometry.py')), JSON.stringify(json.residentFiles));
  assert.ok(json.memory.savings > 0.5, `the shipped CSKV factors save most of the KV cache (${json.memory.savings})`);
  assert.ok(json.residentTokens > 0);
  assert.equal(typeof json.answer, 'string');
  assert.ok(json.answer.length > 0, 'the model says something');
});
