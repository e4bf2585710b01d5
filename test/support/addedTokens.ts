import * as fs from 'node:fs';

/** Ids of a tokenizer.json's added tokens (control and FIM tokens, whether marked special or not). */
export function addedTokenIds(tokenizerJson: string): Set<number> {
  const json = JSON.parse(fs.readFileSync(tokenizerJson, 'utf8')) as { added_tokens: Array<{ id: number; content: string }> };
  return new Set(json.added_tokens.filter((t) => t.content.length > 1).map((t) => t.id));
}
