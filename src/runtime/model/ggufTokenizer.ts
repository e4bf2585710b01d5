// The tokenizer a GGUF file carries (tokenizer.ggml.* metadata), rebuilt as the tokenizer.json and
// tokenizer_config.json a Hugging Face directory would hold, so the one tokenizer path (@huggingface/tokenizers
// behind ModelTokenizer) serves both formats. Two vocabularies exist in GGUF:
// - "gpt2": byte-level BPE with merges; the pre-tokenizer regex is named by tokenizer.ggml.pre (qwen2, llama-bpe, ...).
// - "llama": SentencePiece BPE with per-token scores and no merges; the merges are derived from the scores the way
//   transformers' SentencePiece converter does (every split of a token into two vocabulary pieces, ranked by the
//   score of the merged token), with byte fallback for characters outside the vocabulary.
import { ModelFormatError, UnsupportedError } from '../errors';
import type { GgufFile, GgufValue } from './ggufFile';

type JsonObject = Record<string, unknown>;

/** llama.cpp's token types (llama_token_type). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

// The split regexes of the byte-level BPE pre-tokenizers, as the models' own tokenizer.json files write them.
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
export const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface ByteLevelFlavour {
  regex: string;
  normalizer: JsonObject | null;
  ignoreMerges: boolean;
}

/** tokenizer.ggml.pre values whose pre-tokenizer is known here. */
const BYTE_LEVEL_FLAVOURS: Readonly<Record<string, ByteLevelFlavour>> = {
  qwen2: { regex: QWEN2_REGEX, normalizer: { type: 'NFC' }, ignoreMerges: false },
  'llama-bpe': { regex: LLAMA3_REGEX, normalizer: null, ignoreMerges: true },
  llama3: { regex: LLAMA3_REGEX, normalizer: null, ignoreMerges: true },
  default: { regex: GPT2_REGEX, normalizer: null, ignoreMerges: false },
  gpt2: { regex: GPT2_REGEX, normalizer: null, ignoreMerges: false },
};

export interface GgufTokenizerParts {
  tokenizerJson: JsonObject;
  tokenizerConfig: JsonObject;
}

export function ggufTokenizerParts(gguf: GgufFile): GgufTokenizerParts {
  const file = gguf.path;
  const model = gguf.string('tokenizer.ggml.model');
  if (model === undefined) throw new ModelFormatError(file, 'has no tokenizer (metadata "tokenizer.ggml.model" is missing)');
  const tokens = stringList(gguf, 'tokenizer.ggml.tokens', true)!;
  const types = numberList(gguf, 'tokenizer.ggml.token_type', tokens.length) ?? tokens.map(() => TOKEN_TYPE.normal);
  const name = (key: string): string | undefined => {
    const id = gguf.number(key);
    if (id === undefined) return undefined;
    if (!Number.isInteger(id) || id < 0 || id >= tokens.length) throw new ModelFormatError(file, `metadata "${key}" ${id} is not a token id (vocabulary of ${tokens.length})`);
    return tokens[id];
  };

  const addedTokens: JsonObject[] = [];
  tokens.forEach((content, id) => {
    const type = types[id];
    if (type === TOKEN_TYPE.control || type === TOKEN_TYPE.userDefined || type === TOKEN_TYPE.unknown) {
      addedTokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type !== TOKEN_TYPE.userDefined });
    }
  });

  let body: JsonObject;
  if (model === 'gpt2') body = byteLevelBpe(gguf, tokens);
  else if (model === 'llama') body = sentencePieceBpe(gguf, tokens, types, name('tokenizer.ggml.unknown_token_id'));
  else throw new UnsupportedError(file, `tokenizer model "${model}" is not supported (supported: gpt2 byte-level BPE, llama SentencePiece)`);

  const tokenizerConfig: JsonObject = {
    bos_token: name('tokenizer.ggml.bos_token_id') ?? null,
    eos_token: name('tokenizer.ggml.eos_token_id') ?? null,
    unk_token: name('tokenizer.ggml.unknown_token_id') ?? null,
    pad_token: name('tokenizer.ggml.padding_token_id') ?? null,
    // llama.cpp's defaults when the file is silent: SentencePiece vocabularies start with BOS, byte-level ones not.
    add_bos_token: gguf.boolean('tokenizer.ggml.add_bos_token') ?? model === 'llama',
    add_eos_token: gguf.boolean('tokenizer.ggml.add_eos_token') ?? false,
    chat_template: gguf.string('tokenizer.chat_template') ?? null,
  };
  return { tokenizerJson: { version: '1.0', truncation: null, padding: null, added_tokens: addedTokens, ...body }, tokenizerConfig };
}

function byteLevelBpe(gguf: GgufFile, tokens: string[]): JsonObject {
  const pre = gguf.string('tokenizer.ggml.pre') ?? 'default';
  const flavour = BYTE_LEVEL_FLAVOURS[pre];
  if (!flavour) {
    throw new UnsupportedError(gguf.path, `byte-level BPE pre-tokenizer "${pre}" (tokenizer.ggml.pre) is not supported (supported: ${Object.keys(BYTE_LEVEL_FLAVOURS).join(', ')})`);
  }
  const merges = stringList(gguf, 'tokenizer.ggml.merges', true)!;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    normalizer: flavour.normalizer,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [{ type: 'Split', pattern: { Regex: flavour.regex }, behavior: 'Isolated', invert: false }, byteLevel],
    },
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: flavour.ignoreMerges,
      vocab: Object.fromEntries(tokens.map((t, id) => [t, id])),
      merges,
    },
  };
}

function sentencePieceBpe(gguf: GgufFile, tokens: string[], types: number[], unknown: string | undefined): JsonObject {
  const scores = numberList(gguf, 'tokenizer.ggml.scores', tokens.length);
  if (!scores) throw new ModelFormatError(gguf.path, 'a SentencePiece ("llama") tokenizer needs "tokenizer.ggml.scores"');
  const addSpacePrefix = gguf.boolean('tokenizer.ggml.add_space_prefix') ?? true;
  const vocab = Object.fromEntries(tokens.map((t, id) => [t, id]));
  return {
    normalizer: {
      type: 'Sequence',
      normalizers: [...(addSpacePrefix ? [{ type: 'Prepend', prepend: '▁' }] : []), { type: 'Replace', pattern: { String: ' ' }, content: '▁' }],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: unknown ?? null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, vocab, merges: mergesFromScores(tokens, types, scores),
    },
  };
}

/**
 * BPE merges of a SentencePiece vocabulary: for every ordinary token, each split into two ordinary tokens is a
 * merge, ranked by the merged token's score (highest first), ties by the ids of merged, left and right token —
 * the order transformers' SentencePieceExtractor produces.
 */
export function mergesFromScores(tokens: readonly string[], types: readonly number[], scores: readonly number[]): string[] {
  const ids = new Map<string, number>();
  tokens.forEach((t, id) => {
    if (types[id] === TOKEN_TYPE.normal) ids.set(t, id);
  });
  const found: Array<[number, number, number]> = [];
  for (const [piece, id] of ids) {
    const chars = [...piece];
    for (let cut = 1; cut < chars.length; cut++) {
      const left = ids.get(chars.slice(0, cut).join(''));
      const right = ids.get(chars.slice(cut).join(''));
      if (left !== undefined && right !== undefined) found.push([id, left, right]);
    }
  }
  found.sort((a, b) => scores[b[0]]! - scores[a[0]]! || a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  return found.map(([, l, r]) => `${tokens[l]} ${tokens[r]}`);
}

function stringList(gguf: GgufFile, key: string, required: boolean): string[] | undefined {
  const list = gguf.array(key);
  if (list === undefined) {
    if (required) throw new ModelFormatError(gguf.path, `tokenizer metadata "${key}" is missing`);
    return undefined;
  }
  if (!list.every((v) => typeof v === 'string')) throw new ModelFormatError(gguf.path, `metadata "${key}" must be a list of strings`);
  return list as string[];
}

function numberList(gguf: GgufFile, key: string, length: number): number[] | undefined {
  const list: GgufValue[] | undefined = gguf.array(key);
  if (list === undefined) return undefined;
  if (list.length !== length || !list.every((v) => typeof v === 'number')) {
    throw new ModelFormatError(gguf.path, `metadata "${key}" must be ${length} numbers (one per token), got ${list.length} entries`);
  }
  return list as number[];
}
