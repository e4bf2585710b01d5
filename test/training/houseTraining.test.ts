// Training and inference agree: a few steps of a tiny house-shaped model, trained by training/ on the project's
// own sources (on every machine; the gathered corpus is not), saved in the Hugging Face layout and loaded by the
// runtime, give the training module's own logits (f32) and greedy tokens. Needs Debian's python3-torch (.ci/run
// installs it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { generate } from '../../src/runtime/generate';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { repoRoot, tempDir } from '../support/paths';

/** Debian's python3 (where apt puts torch); another python3 may come first on PATH. */
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const training = (script: string): string => path.join(repoRoot, 'training', script);

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
}

let work = '';
let model = '';

before(() => {
  try {
    run(PYTHON, ['-c', 'import torch, numpy']);
  } catch {
    throw new Error(`${PYTHON} has no torch: install Debian's python3-torch and python3-numpy (apt-get install python3-torch), as .ci/run does`);
  }
  work = tempDir('cskv-house-');
  const data = path.join(work, 'data');
  model = path.join(work, 'model');
  run(PYTHON, [training('source_corpus.py'), '--out', path.join(work, 'corpus'), path.join(repoRoot, 'src', 'runtime'), path.join(repoRoot, 'src', 'extension')]);
  run(PYTHON, [training('build_documents.py'), '--corpus', path.join(work, 'corpus'), '--data', data, '--seq-len', '128']);
  run(process.execPath, [path.join(repoRoot, 'out', 'training', 'tokenizeDocuments.js'), '--data', data]);
  run(PYTHON, [training('train_house_model.py'), '--data', data, '--out', model, '--shape', 'tiny', '--seq-len', '128',
    '--batch-tokens', '512', '--steps', '12', '--minutes', '5', '--warmup-steps', '4', '--save-dtype', 'f32',
    '--autocast', 'off', '--eval-windows', '2', '--threads', '1', '--log-every', '4']);
});

test('the saved directory has the Hugging Face layout and a report', () => {
  for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'README.md', 'train_report.json']) {
    assert.ok(fs.existsSync(path.join(model, f)), `${f} written`);
  }
  const report = JSON.parse(fs.readFileSync(path.join(model, 'train_report.json'), 'utf8'));
  assert.equal(report.training.steps, 12);
  const first = report.training.history[0].loss;
  const last = report.training.history.at(-1).loss;
  assert.ok(last < first, `loss falls over 12 steps (${first} -> ${last})`);
  assert.equal(report.reload_check.max_abs_logit_diff, 0);
  assert.ok(Number.isFinite(report.heldout.loss));
});

test('the runtime gives the training module\'s logits (f32, within 1e-4) and greedy tokens', async () => {
  const tok = ModelTokenizer.load(model);
  const code = fs.readFileSync(path.join(repoRoot, 'src', 'extension', 'format.ts'), 'utf8').slice(0, 600);
  const ids = [tok.tokenId('<|file_sep|>')!, ...tok.encode('format.ts\n' + code, { addSpecialTokens: false, literal: true })].slice(0, 96);
  const reference = JSON.parse(run(PYTHON, [training('reference_logits.py'), '--model', model, '--ids', ids.join(','), '--last', '4', '--greedy', '8'])) as { logits: number[][]; greedy: number[] };
  const engine = await OnnxEngine.load(model, { cskv: undefined, weights: 'f32' });
  try {
    const flat = await engine.prefill(ids, { logits: 4 });
    const vocab = engine.info.config.vocabSize;
    let worst = 0;
    let scale = 0;
    for (let r = 0; r < 4; r += 1) {
      for (let i = 0; i < vocab; i += 1) {
        worst = Math.max(worst, Math.abs(flat[r * vocab + i]! - reference.logits[r]![i]!));
        scale = Math.max(scale, Math.abs(reference.logits[r]![i]!));
      }
    }
    assert.ok(worst <= 1e-4 * Math.max(1, scale), `max |runtime - training| = ${worst} at logit scale ${scale}`);
    await engine.truncate(0);
    const greedy = await generate(engine, ids, { greedy: true, maxNewTokens: 8, stopTokens: [...tok.eosTokenIds] });
    assert.deepEqual(greedy.tokens, reference.greedy);
  } finally {
    await engine.dispose();
  }
});

test('the house tokenizer round-trips held-out code and renders the chat template', () => {
  const tok = ModelTokenizer.load(model);
  const text = fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'workspace', 'src', 'geometry.py'), 'utf8') + '  ünïcode ✓ 1234\n';
  assert.equal(tok.decode(tok.encode(text, { addSpecialTokens: false, literal: true })), text);
  assert.deepEqual([...tok.eosTokenIds].sort(), [tok.tokenId('<|endoftext|>'), tok.tokenId('<|im_end|>')].sort());
  const prompt = tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
  assert.ok(prompt.endsWith('<|im_start|>assistant\n'), prompt);
});
