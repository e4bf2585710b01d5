// How files become one token sequence: a repo header, then one segment per file in the model's repo-level format
// (Qwen2.5-Coder's <|repo_name|> / <|file_sep|> where the tokenizer has them, a plain header otherwise).
import { createHash } from 'node:crypto';
import type { ModelTokenizer } from '../runtime/tokenizer';

export interface Segment {
  /** Workspace-relative path; '' for the repo header. */
  readonly path: string;
  readonly tokens: readonly number[];
  /** Hash of the segment's text: equal hashes mean equal tokens. */
  readonly hash: string;
}

export interface RepoFormat {
  readonly repoLevelTokens: boolean;
  header(repoName: string): string;
  fileHeader(path: string): string;
}

export function repoFormat(tokenizer: ModelTokenizer): RepoFormat {
  if (tokenizer.tokenId('<|repo_name|>') !== undefined && tokenizer.tokenId('<|file_sep|>') !== undefined) {
    return { repoLevelTokens: true, header: (name) => `<|repo_name|>${name}\n`, fileHeader: (path) => `<|file_sep|>${path}\n` };
  }
  return { repoLevelTokens: false, header: (name) => `Repository: ${name}\n\n`, fileHeader: (path) => `\n===== ${path} =====\n` };
}

/** The file's segment: the header (special tokens allowed) then its content as literal text. */
export function fileSegment(tokenizer: ModelTokenizer, format: RepoFormat, path: string, text: string): Segment {
  const content = text.endsWith('\n') ? text : `${text}\n`;
  const header = format.fileHeader(path);
  const tokens = [...tokenizer.encode(header, { addSpecialTokens: false }), ...tokenizer.encode(content, { addSpecialTokens: false, literal: true })];
  return { path, tokens, hash: hashText(header, content) };
}

export function headerSegment(tokenizer: ModelTokenizer, format: RepoFormat, repoName: string): Segment {
  const text = format.header(repoName);
  // BOS, where the model wants one, starts the whole sequence.
  return { path: '', tokens: tokenizer.encode(text, { addSpecialTokens: true }), hash: hashText(text) };
}

function hashText(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 32);
}
