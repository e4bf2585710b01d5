// How files become one token sequence: a repo header, then one segment per file in the model's repo-level format
// (Qwen2.5-Coder's <|repo_name|> / <|file_sep|> where the tokenizer has them, a plain header otherwise).
import { createHash } from 'node:crypto';
import { type ModelTokenizer, type PromptPart, promptText } from '../runtime/tokenizer';

export interface Segment {
  /** Workspace-relative path; '' for the repo header. */
  readonly path: string;
  readonly tokens: readonly number[];
  /** Hash of the segment's text: equal hashes mean equal tokens. */
  readonly hash: string;
}

/** Headers as prompt parts: the format's own markers are template text, the names in them are literal. */
export interface RepoFormat {
  readonly repoLevelTokens: boolean;
  header(repoName: string): PromptPart[];
  fileHeader(path: string): PromptPart[];
}

export function repoFormat(tokenizer: ModelTokenizer): RepoFormat {
  if (tokenizer.tokenId('<|repo_name|>') !== undefined && tokenizer.tokenId('<|file_sep|>') !== undefined) {
    return {
      repoLevelTokens: true,
      header: (name) => [{ template: '<|repo_name|>' }, { literal: `${name}\n` }],
      fileHeader: (path) => [{ template: '<|file_sep|>' }, { literal: `${path}\n` }],
    };
  }
  return {
    repoLevelTokens: false,
    header: (name) => [{ literal: `Repository: ${name}\n\n` }],
    fileHeader: (path) => [{ literal: `\n===== ${path} =====\n` }],
  };
}

/** The file's segment: the header (its name never yields special ids) then its content as literal text. */
export function fileSegment(tokenizer: ModelTokenizer, format: RepoFormat, path: string, text: string): Segment {
  const content = text.endsWith('\n') ? text : `${text}\n`;
  const header = format.fileHeader(path);
  const tokens = tokenizer.encodeParts([...header, { literal: content }]);
  return { path, tokens, hash: hashText(promptText(header), content) };
}

export function headerSegment(tokenizer: ModelTokenizer, format: RepoFormat, repoName: string): Segment {
  const parts = format.header(repoName);
  // BOS, where the model wants one, starts the whole sequence.
  return { path: '', tokens: tokenizer.encodeParts(parts, { addSpecialTokens: true }), hash: hashText(promptText(parts)) };
}

function hashText(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 32);
}
