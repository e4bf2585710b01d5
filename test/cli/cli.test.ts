// The command line as other tools call it: flags, JSON shapes, exit codes and text in / text out with a real
// tokenizer (Qwen's, from node_modules) on a tiny random model of that vocabulary.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { before, test } from 'node:test';
import { main } from '../../src/cli/cli';
import { ASK_OPTIONS } from '../../src/cli/commands/ask';
import { COMPRESS_OPTIONS } from '../../src/cli/commands/compress';
import { GENERATE_OPTIONS } from '../../src/cli/commands/generate';
import { LOGITS_OPTIONS } from '../../src/cli/commands/logits';
import { MODELS_OPTIONS } from '../../src/cli/commands/models';
import { PERPLEXITY_OPTIONS } from '../../src/cli/commands/perplexity';
import { tinyQwenModel } from '../support/tinyQwen';
import { modelFixture, repoRoot, tempDir } from '../support/paths';
import { expected } from '../runtime/engineSuite';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const sink = (append: (s: string) => void): Writable => new Writable({ write(chunk, _enc, done) { append(String(chunk)); done(); } });
  const code = await main(args, sink((s) => (out += s)), sink((s) => (err += s)));
  return { code, out, err };
}

test('generate --json prints the greedy tokens of the reference and the memory report', async () => {
  const exp = expected('llama-v4');
  const r = await run(['generate', '--model', modelFixture('llama-v4'), '--prompt-ids', exp.prompt_ids.join(','),
    '--max-new-tokens', String(exp.greedy_tokens.length), '--greedy', '--json']);
  assert.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out) as { tokens: number[]; text: string; memory: { tokens: number; savings: number } };
  assert.deepEqual(json.tokens, exp.greedy_tokens);
  assert.equal(json.memory.tokens, exp.prompt_ids.length + exp.greedy_tokens.length - 1);
});

test('generate picks up cskv.safetensors beside the model unless --cskv off', async () => {
  const dir = tempDir();
  fs.cpSync(modelFixture('qwen2-cskv'), dir, { recursive: true });
  const exp = expected('qwen2-cskv');
  const args = ['generate', '--model', dir, '--prompt-ids', exp.prompt_ids.join(','), '--max-new-tokens', '10', '--greedy', '--json', '--weights', 'f32'];
  const on = JSON.parse((await run(args)).out) as { tokens: number[]; memory: { compressedTokens: number; bits: number } };
  assert.deepEqual(on.tokens, exp.cskv!['cskv.safetensors']!.greedy_tokens);
  assert.equal(on.memory.bits, 16);
  assert.ok(on.memory.compressedTokens > 0);
  const off = JSON.parse((await run([...args, '--cskv', 'off'])).out) as { tokens: number[]; memory: { compressedTokens: number } };
  assert.deepEqual(off.tokens, exp.greedy_tokens);
  assert.equal(off.memory.compressedTokens, 0);
  const fourBit = JSON.parse((await run([...args, '--cskv', path.join(dir, 'cskv-4bit.safetensors')])).out) as { memory: { bits: number } };
  assert.equal(fourBit.memory.bits, 4);
});

test('logits prints the last N rows of one prefill', async () => {
  const exp = expected('qwen2-v5');
  const r = await run(['logits', '--model', modelFixture('qwen2-v5'), '--prompt-ids', exp.prompt_ids.join(','), '--last', '2', '--weights', 'f32']);
  assert.equal(r.code, 0, r.err);
  const printed = JSON.parse(r.out) as { logits: number[][]; weights: string; backend: string };
  assert.equal(printed.weights, 'f32');
  assert.ok(['onnx', 'webgpu', 'cuda'].includes(printed.backend));
  const rows = printed.logits;
  assert.equal(rows.length, 2);
  const reference = exp.logits.slice(-2);
  rows.forEach((row, i) => row.forEach((x, j) => assert.ok(Math.abs(x - reference[i]![j]!) < 1e-3, `row ${i} logit ${j}`)));
});

test('usage errors exit with 2 and say what is wrong; model errors exit with 1 and name the file', async () => {
  const noModel = await run(['generate', '--prompt-ids', '1']);
  assert.equal(noModel.code, 2);
  assert.match(noModel.err, /--model DIR is required/);
  const both = await run(['generate', '--model', modelFixture('llama-v4'), '--prompt', 'x', '--prompt-ids', '1']);
  assert.equal(both.code, 2);
  assert.match(both.err, /exactly one of --prompt/);
  const badIds = await run(['logits', '--model', modelFixture('llama-v4'), '--prompt-ids', '1,x']);
  assert.equal(badIds.code, 2);
  assert.match(badIds.err, /comma-separated token ids/);
  const badWeights = await run(['logits', '--model', modelFixture('llama-v4'), '--prompt-ids', '1', '--weights', 'int3']);
  assert.equal(badWeights.code, 2);
  assert.match(badWeights.err, /--weights must be f32, q8, q4, f16, got "int3"/);
  const unknown = await run(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command "frobnicate"/);
  const missing = await run(['logits', '--model', path.join(repoRoot, 'no-such-model'), '--prompt-ids', '1']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no-such-model.*config\.json.*\[MODEL_FORMAT\]/s);
  const outOfVocab = await run(['logits', '--model', modelFixture('llama-v4'), '--prompt-ids', '1,99999']);
  assert.equal(outOfVocab.code, 1);
  assert.match(outOfVocab.err, /token id 99999 is outside the vocabulary/);
});

let qwenModel = '';
before(() => {
  qwenModel = tinyQwenModel();
});

test('generate --prompt streams text decoded from the generated ids', async () => {
  const r = await run(['generate', '--model', qwenModel, '--prompt', 'def fibonacci(n):', '--max-new-tokens', '8', '--greedy']);
  assert.equal(r.code, 0, r.err);
  const json = await run(['generate', '--model', qwenModel, '--prompt', 'def fibonacci(n):', '--max-new-tokens', '8', '--greedy', '--json']);
  const parsed = JSON.parse(json.out) as { tokens: number[]; text: string; promptTokens: number };
  assert.equal(parsed.promptTokens, 4); // 'def', ' fibonacci', '(n', '):' as Qwen's BPE splits it
  assert.equal(r.out, `${parsed.text}\n`); // the streamed pieces add up to the decoded text
  assert.match(r.err, /4 prompt tokens .* 8 generated/);
});

test('generate --chat renders the model chat template around the prompt', async () => {
  const r = await run(['generate', '--model', qwenModel, '--prompt', 'hello', '--chat', '--max-new-tokens', '2', '--greedy', '--json']);
  assert.equal(r.code, 0, r.err);
  // <|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n (Qwen3's template adds nothing else here)
  assert.ok((JSON.parse(r.out) as { promptTokens: number }).promptTokens >= 9);
});

test('the CLI module runs as a program too (the extension starts `node dist/cli.js compress ...`)', () => {
  const cli = path.join(repoRoot, 'out', 'src', 'cli', 'cli.js');
  const r = spawnSync(process.execPath, [cli, 'generate', '--prompt-ids', '1'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--model DIR is required/);
  const bundled = path.join(repoRoot, 'dist', 'cli.js');
  if (fs.existsSync(bundled)) assert.equal(spawnSync(process.execPath, [bundled, 'no-such-command'], { encoding: 'utf8' }).status, 2);
});

test('the bin script runs the command in a child with the runtime\'s malloc tunable and passes its exit status on', () => {
  const bin = path.join(repoRoot, 'bin', 'cskv-code.js');
  if (!fs.existsSync(path.join(repoRoot, 'dist', 'runtimeEnv.js'))) return;
  // Every process of the command says what GLIBC_TUNABLES it started with.
  const probe = path.join(tempDir('env-probe'), 'probe.js');
  fs.writeFileSync(probe, 'process.stderr.write(`tunables: ${process.env.GLIBC_TUNABLES ?? "none"}\\n`);\n');
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--require ${probe}` };
  delete env.GLIBC_TUNABLES;
  const r = spawnSync(process.execPath, [bin, 'no-such-command'], { encoding: 'utf8', env });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "no-such-command"/);
  const started = r.stderr.split('\n').filter((l) => l.startsWith('tunables: '));
  assert.deepEqual(started, process.platform === 'linux' ? ['tunables: none', 'tunables: glibc.malloc.hugetlb=1'] : ['tunables: none']);
});

test('numbers on the command line: negative values reach the flag check, token ids are decimal digits only', async () => {
  const model = modelFixture('llama-v4');
  const negative = await run(['logits', '--model', model, '--prompt-ids', '1', '--window', '-4']);
  assert.equal(negative.code, 2);
  assert.match(negative.err, /--window must be a positive integer in decimal digits, got "-4"/);
  assert.doesNotMatch(negative.err, /ambiguous/);
  for (const id of ['0x10', '1e2', '-1', '1.0']) {
    const r = await run(['logits', '--model', model, '--prompt-ids', `1,${id}`]);
    assert.equal(r.code, 2, id);
    assert.match(r.err, new RegExp(`--prompt-ids must be comma-separated token ids in decimal digits, got "1,${id.replace('.', '\\.')}" \\("${id.replace('.', '\\.')}"\\)`));
  }
  const hex = await run(['logits', '--model', model, '--prompt-ids', '1', '--last', '0x1']);
  assert.equal(hex.code, 2);
  assert.match(hex.err, /--last must be a positive integer in decimal digits, got "0x1"/);
});

test('--version prints the package version', async () => {
  const r = await run(['--version']);
  assert.equal(r.code, 0);
  const { version } = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  assert.equal(r.out, `cskv-code ${version}\n`);
});

test('the usage names every flag each command takes', async () => {
  const usage = (await run(['help'])).out;
  const commands = { ask: ASK_OPTIONS, generate: GENERATE_OPTIONS, logits: LOGITS_OPTIONS, compress: COMPRESS_OPTIONS, perplexity: PERPLEXITY_OPTIONS, models: MODELS_OPTIONS };
  for (const [command, options] of Object.entries(commands)) {
    // The command's lines: from "cskv-code <command>" to the next command.
    const section = new RegExp(`cskv-code ${command}\\b([\\s\\S]*?)(?=\\n  cskv-code |\\n\\n)`).exec(usage)?.[1] ?? '';
    for (const flag of Object.keys(options)) assert.ok(section.includes(`--${flag}`), `${command}: the usage does not name --${flag}`);
  }
});

test('ask: --verbose names the resident files; an unwritable cache directory costs the saved context, not the answer', async () => {
  const workspace = tempDir();
  fs.writeFileSync(path.join(workspace, 'adder.py'), 'def add(a, b):\n    return a + b\n');
  // A file where the cache directory should be: nothing can be written under it (EACCES does not stop root).
  const cacheHome = path.join(tempDir(), 'not-a-dir');
  fs.writeFileSync(cacheHome, '');
  const saved = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = cacheHome;
  try {
    const r = await run(['ask', '--workspace', workspace, '--model', qwenModel, '--cskv', path.join(qwenModel, 'cskv-4.safetensors'), '--max-new-tokens', '2', '--verbose', 'what does add do?']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /resident {2}adder\.py \(\d+ tokens\)/);
    assert.match(r.err, new RegExp(`could not save the workspace context to ${cacheHome}/cskv-code/contexts/workspace-[0-9a-f]+\\.cskvctx: ENOTDIR`));
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
  }
});

test('perplexity says how far it is and scores at most --max-tokens, saying what it left out', async () => {
  const file = path.join(tempDir(), 'text.py');
  fs.writeFileSync(file, 'def add(a, b):\n    return a + b\n'.repeat(40));
  const r = await run(['perplexity', '--model', qwenModel, '--cskv', 'off', '--file', file, '--max-tokens', '100', '--chunk', '16', '--json']);
  assert.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out) as { tokens: number; fileTokens: number };
  assert.equal(json.tokens, 99);
  assert.ok(json.fileTokens > 100);
  assert.match(r.err, new RegExp(`scoring the first 100 of the file's ${json.fileTokens} tokens \\(--max-tokens 100\\)`));
});
