// Where a completion looks: the text around the cursor that a completion prompt carries, and whether to complete
// one line or a block. The sidecar computes it from the editor's document; the session builds the prompt from it.

/**
 * The text around the cursor a completion prompt carries. The whole file is already resident (an edit moves it to
 * the end of the layout), so the window only has to bring the latest keystrokes and the cursor's surroundings.
 * The session keeps each completion's prompt in the cache and the next request prefills it only from the first token
 * that changed (session.ts), so the prefix starts at an anchor that stays put while the cursor moves forward: a line
 * start after a multiple of `anchorStepChars`, giving between about `prefixChars` and `prefixChars + anchorStepChars`
 * of prefix. The suffix follows the prefix in the prompt, so all of it is prefilled again at every keystroke: it is
 * kept short for the completion's latency.
 */
export const COMPLETION_WINDOW = { prefixChars: 2400, anchorStepChars: 1200, suffixChars: 120 };

/** The session's view of a cursor in a document: the text around it and whether to complete several lines. */
export interface CompletionShape {
  prefix: string;
  suffix: string;
  multiline: boolean;
  /**
   * The document's whole text before the cursor: a completion in the file typed in continues the resident file with
   * it (session.ts), so only what changed since the cache's copy is prefilled. Without it the window alone is sent.
   */
  beforeCursor?: string;
}

/**
 * Prefix and suffix around `offset`, and the multi-line decision; undefined where no completion should be offered
 * (a binary file, or the cursor in the middle of a word or of a line's code).
 */
export function completionShape(text: string, offset: number): CompletionShape | undefined {
  if (looksBinary(text)) return undefined;
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const nextNewline = text.indexOf('\n', offset);
  const lineEnd = nextNewline < 0 ? text.length : nextNewline;
  const before = text.slice(lineStart, offset);
  const after = text.slice(offset, lineEnd);
  // Completing inside a word or before code on the same line mostly produces noise.
  if (/\w$/.test(before) && /^\w/.test(after)) return undefined;
  if (!/^[\s)\]}>"'`;,]*$/.test(after)) return undefined;
  const previousLine = lastNonBlankLine(text.slice(0, lineStart));
  return {
    prefix: text.slice(prefixStart(text, offset), offset),
    beforeCursor: text.slice(0, offset),
    suffix: suffixAt(text, offset),
    // Before a closing bracket on the same line (inside a call's parentheses) one line is enough.
    multiline: after.trim() === '' && isBlockStart(before, previousLine),
  };
}

/**
 * The suffix: the text after the cursor up to `suffixChars`, ending at a line's end (the rest of the cursor's own line
 * whole where it fits), so that the prompt never ends in a word cut in two and no characters are prefilled at every
 * keystroke for a line the suffix only starts.
 */
export function suffixAt(text: string, offset: number): string {
  const limit = offset + COMPLETION_WINDOW.suffixChars;
  if (limit >= text.length) return text.slice(offset);
  const lastLineEnd = text.lastIndexOf('\n', limit);
  return text.slice(offset, lastLineEnd >= offset ? lastLineEnd : limit);
}

/** Where the prefix starts: the first line start at or after the anchor (the anchor itself within a very long line). */
export function prefixStart(text: string, offset: number): number {
  const { prefixChars, anchorStepChars } = COMPLETION_WINDOW;
  const anchor = Math.floor(Math.max(0, offset - prefixChars) / anchorStepChars) * anchorStepChars;
  if (anchor === 0) return 0;
  const lineStart = text.indexOf('\n', anchor - 1) + 1;
  return lineStart > 0 && lineStart <= offset - prefixChars / 2 ? lineStart : anchor;
}

/**
 * Whether the cursor starts a block body: on an empty (indented) line right after a line that opens a block
 * (`{`, `:`, `(`, `[`, `=>`, `do`, `then`), or at the end of such a line. Elsewhere one line is completed.
 */
export function isBlockStart(lineBeforeCursor: string, previousLine: string | undefined): boolean {
  const opens = (line: string): boolean => /(\{|\(|\[|:|=>|->|\bdo|\bthen|\bbegin)\s*(\/\/.*|#.*)?$/.test(line.trimEnd());
  if (lineBeforeCursor.trim() === '') return previousLine !== undefined && opens(previousLine);
  return opens(lineBeforeCursor);
}

function lastNonBlankLine(text: string): string | undefined {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.trim() !== '') return lines[i];
  return undefined;
}

/** NUL characters do not occur in text files; the editor shows a binary file with them. */
export function looksBinary(text: string): boolean {
  return text.slice(0, 8192).includes('\u0000');
}
