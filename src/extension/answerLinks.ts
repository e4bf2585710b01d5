// File references in answers: `src/cache.ts`, `src/cache.ts:42`, [the cache](src/cache.ts#L42), ./a/b.py:3:7.
// The chat webview bundles this module to decide what to make clickable; the extension uses it to find the file.
// Pure: no vscode, no fs (the caller passes `exists`).

export interface FileReference {
  /** As written, without the line suffix; forward slashes. */
  path: string;
  /** 1-based, when given. */
  line?: number | undefined;
  column?: number | undefined;
}

// A path has a file name with an extension, optionally directories before it; no spaces, no URL scheme but file:.
const PATH = String.raw`(?:\.{1,2}\/|\/)?(?:[\w@.+-]+\/)*[\w@+-][\w@.+-]*\.[A-Za-z0-9]{1,10}`;
const SUFFIX = String.raw`(?::(\d+)(?::(\d+))?|#L(\d+)(?:C(\d+))?(?:-L?\d+)?)?`;
const WHOLE = new RegExp(`^(${PATH})${SUFFIX}$`);

/** Bare paths inside prose: at least one directory, so "e.g." or "1.5" never match. */
const PROSE = String.raw`((?:\.{1,2}\/)?(?:[\w@.+-]+\/)+[\w@+-][\w@.+-]*\.[A-Za-z0-9]{1,10})(?::(\d+)(?::(\d+))?)?(?![\w/])`;
const PROSE_ANYWHERE = new RegExp(String.raw`(?<![\w/.@:-])${PROSE}`, 'g');
const PROSE_AT_START = new RegExp(`^${PROSE}`);

/** Extensions that are not files in a codebase, although they look like it (version numbers, domain names). */
const NOT_FILES = /\.(com|org|net|io|dev|x|y|z|\d+)$/i;

/** The reference in `text` when all of it is one (an inline code span or a link target); undefined otherwise. */
export function parseFileReference(text: string): FileReference | undefined {
  let t = text.trim();
  if (t.startsWith('file://')) {
    try {
      t = decodeURIComponent(new URL(t).pathname);
    } catch {
      return undefined;
    }
  } else if (/^[a-z][a-z0-9+.-]*:/i.test(t)) {
    return undefined; // http:, mailto:, command:, vscode: ...
  }
  const m = WHOLE.exec(t);
  if (!m || NOT_FILES.test(m[1]!)) return undefined;
  const line = m[2] ?? m[4];
  const column = m[3] ?? m[5];
  return { path: m[1]!, line: line ? Number(line) : undefined, column: column ? Number(column) : undefined };
}

/** Index of the first bare path in prose `text` (not inside a URL or a longer word), or -1. */
export function findProsePath(text: string): number {
  PROSE_ANYWHERE.lastIndex = 0;
  for (let m = PROSE_ANYWHERE.exec(text); m; m = PROSE_ANYWHERE.exec(text)) {
    if (!NOT_FILES.test(m[1]!)) return m.index;
  }
  return -1;
}

/** The bare path that `text` starts with: its length in `text` and the reference. */
export function prosePathAtStart(text: string): { length: number; ref: FileReference } | undefined {
  const m = PROSE_AT_START.exec(text);
  if (!m || NOT_FILES.test(m[1]!)) return undefined;
  return { length: m[0].length, ref: { path: m[1]!, line: m[2] ? Number(m[2]) : undefined, column: m[3] ? Number(m[3]) : undefined } };
}

/** Where a reference may point, most likely first: inside each workspace root. Absolute paths only inside a root. */
export function candidatePaths(ref: FileReference, roots: readonly string[]): string[] {
  const rel = ref.path.replace(/^\.\//, '');
  const out: string[] = [];
  for (const root of roots) {
    const r = root.replace(/\/+$/, '');
    if (rel.startsWith('/')) {
      if (rel === r || rel.startsWith(`${r}/`)) out.push(normalise(rel));
      else out.push(normalise(`${r}${rel}`)); // "/src/a.ts" written relative to the root
    } else {
      out.push(normalise(`${r}/${rel}`));
    }
  }
  // Never outside the workspace, whatever "../" the answer wrote.
  return [...new Set(out)].filter((p) => roots.some((root) => p === root || p.startsWith(`${root.replace(/\/+$/, '')}/`)));
}

/** The first candidate that exists. */
export function resolveFileReference(ref: FileReference, roots: readonly string[], exists: (path: string) => boolean): string | undefined {
  return candidatePaths(ref, roots).find(exists);
}

function normalise(p: string): string {
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}
