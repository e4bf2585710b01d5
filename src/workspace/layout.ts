// How files become one token sequence: a repo header, then one segment per file in the model's repo-level format
// (Qwen2.5-Coder's <|repo_name|> / <|file_sep|> where the tokenizer has them, a plain header otherwise).
//
// The layout's last file is laid out ready for fill-in-the-middle: `<|file_sep|>path\n<|fim_prefix|>content`, the
// repo-level FIM prompt Qwen2.5-Coder is trained on up to the cursor. A completion in that file then continues the
// resident file itself, cut at the cursor, with only `<|fim_suffix|>` + a short suffix + `<|fim_middle|>` after it
// (session.ts), instead of sending a window of the file again after the whole context.
import { createHash } from 'node:crypto';
import { type ModelTokenizer, type PromptPart, promptText } from '../runtime/tokenizer';

export interface Segment {
  /** Workspace-relative path; '' for the repo header. */
  readonly path: string;
  readonly tokens: readonly number[];
  /** Hash of the segment's text: equal hashes mean equal tokens. */
  readonly hash: string;
  /** Laid out for fill-in-the-middle: `<|fim_prefix|>` between the file's header and its content. */
  readonly fim?: boolean;
}

/** The fill-in-the-middle markers (prefix-suffix-middle order), where the tokenizer has all three. */
export interface FimMarkers {
  readonly prefix: string;
  readonly suffix: string;
  readonly middle: string;
}
const FIM_MARKERS: FimMarkers = { prefix: '<|fim_prefix|>', suffix: '<|fim_suffix|>', middle: '<|fim_middle|>' };

/** Headers as prompt parts: the format's own markers are template text, the names in them are literal. */
export interface RepoFormat {
  readonly repoLevelTokens: boolean;
  header(repoName: string): PromptPart[];
  fileHeader(path: string): PromptPart[];
  /** Undefined when the tokenizer lacks them: completions then continue plain text. */
  readonly fim: FimMarkers | undefined;
}

export function repoFormat(tokenizer: ModelTokenizer): RepoFormat {
  const fim = Object.values(FIM_MARKERS).every((t) => tokenizer.tokenId(t) !== undefined) ? FIM_MARKERS : undefined;
  if (tokenizer.tokenId('<|repo_name|>') !== undefined && tokenizer.tokenId('<|file_sep|>') !== undefined) {
    return {
      repoLevelTokens: true,
      header: (name) => [{ template: '<|repo_name|>' }, { literal: `${name}\n` }],
      fileHeader: (path) => [{ template: '<|file_sep|>' }, { literal: `${path}\n` }],
      fim,
    };
  }
  return {
    repoLevelTokens: false,
    header: (name) => [{ literal: `Repository: ${name}\n\n` }],
    fileHeader: (path) => [{ literal: `\n===== ${path} =====\n` }],
    fim,
  };
}

/**
 * The file's segment: the header (its name never yields special ids) then its content as literal text; with `fim`
 * (and a tokenizer that has the markers) the FIM prefix marker between them.
 */
export function fileSegment(tokenizer: ModelTokenizer, format: RepoFormat, path: string, text: string, { fim = false } = {}): Segment {
  const content = text.endsWith('\n') ? text : `${text}\n`;
  const header = segmentHead(format, path, fim);
  const tokens = tokenizer.encodeParts([...header, { literal: content }]);
  return { path, tokens, hash: hashText(promptText(header), content), fim: fim && format.fim !== undefined };
}

/** What a file's segment starts with before its content: its header, and the FIM prefix marker when laid out for FIM. */
export function segmentHead(format: RepoFormat, path: string, fim: boolean): PromptPart[] {
  const header = format.fileHeader(path);
  return fim && format.fim ? [...header, { template: format.fim.prefix }] : header;
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
