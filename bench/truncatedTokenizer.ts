// A smaller copy of a byte-level BPE tokenizer (Qwen2.5's), for the quality benchmark's quick run: its first
// `vocab` ids (256 byte symbols, then merges in rank order, merge r making id 256 + r) and its added tokens
// renumbered after them. Same pre-tokenizer, special tokens and chat template; every text still encodes (into
// more, shorter tokens), and a 4k-entry logit row costs 1/37 of a 152k one on the CPU.
import * as fs from 'node:fs';
import * as path from 'node:path';

interface TokenizerJson {
  added_tokens: { id: number; content: string }[];
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
}

/** Writes tokenizer.json and tokenizer_config.json of the first `vocab` ids of `fromDir`'s into `toDir`; returns the vocabulary size with added tokens. */
export function writeTruncatedTokenizer(fromDir: string, toDir: string, vocab: number): number {
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
  fs.writeFileSync(path.join(toDir, 'tokenizer.json'), JSON.stringify(t));
  const config = JSON.parse(fs.readFileSync(path.join(fromDir, 'tokenizer_config.json'), 'utf8')) as { added_tokens_decoder?: Record<string, unknown> };
  if (config.added_tokens_decoder) {
    config.added_tokens_decoder = Object.fromEntries(Object.entries(config.added_tokens_decoder).map(([id, v]) => [String(renumber.get(Number(id)) ?? id), v]));
  }
  fs.writeFileSync(path.join(toDir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
  return vocab + t.added_tokens.length;
}
