// What the chat shows of the answer's context (the chips above the question box), the files `@` mentions, and the
// model's name on answers. Pure: the chat view feeds it what the sidecar and the editor report.
import * as path from 'node:path';
import type { ExcludedFile, MemoryStatus } from '../protocol';
import type { AttachedChip, ChatContext } from './webviewMessages';

/** Files `@` offers: what the budget can leave out is worth pinning; ignored, binary or generated files are not. */
const MENTIONABLE: ReadonlySet<ExcludedFile['reason']> = new Set(['over-budget']);

export function chatContext(memory: MemoryStatus | undefined, activeFile: string | undefined, selection: AttachedChip | undefined): ChatContext {
  const resident = new Set(memory?.residentFiles.map((f) => f.path) ?? []);
  const mentionable = [...resident, ...(memory?.excludedFiles ?? []).filter((f) => MENTIONABLE.has(f.reason)).map((f) => f.path)].sort();
  return {
    workspace: memory ? { resident: memory.residentFiles.length, leftOut: memory.excludedFiles.length } : undefined,
    // Before the first index there is nothing to compare with: no warning.
    active: activeFile ? { path: activeFile, resident: !memory || resident.has(activeFile) } : undefined,
    selection: selection ? { path: selection.path, lines: selection.lines } : undefined,
    files: mentionable,
  };
}

/** The workspace files a question mentions as `@path` (known files only, each once, in order). */
export function mentionedFiles(question: string, files: readonly string[]): string[] {
  const known = new Set(files);
  const found: string[] = [];
  for (const m of question.matchAll(/(?:^|\s)@([^\s`'"]+)/g)) {
    // A sentence's full stop or comma after the path is not part of it.
    const candidate = m[1]!.replace(/[.,;:!?)]+$/, '');
    if (known.has(candidate) && !found.includes(candidate)) found.push(candidate);
  }
  return found;
}

/** The model's name for labels: ORG/NAME for a Hugging Face cache snapshot, else its folder's name, or its GGUF
 * file's without the extension. */
export function modelLabel(model: string | undefined): string {
  if (!model) return 'cskv';
  const trimmed = model.replace(/[\\/]+$/, '');
  const hub = /models--([^\\/]+)[\\/]snapshots[\\/][^\\/]+$/.exec(trimmed);
  if (hub) return hub[1]!.split('--').join('/');
  return path.basename(trimmed).replace(/\.gguf$/i, '');
}

const LEFT_OUT: Record<ExcludedFile['reason'], string> = {
  'ignored': 'ignored (.gitignore or files.exclude)',
  'binary': 'binary',
  'too-large': 'too large',
  'generated': 'generated or vendored',
  'over-budget': 'over the context budget: mention it with @ to include it',
  'unreadable': 'unreadable',
};

export function leftOutReason(reason: ExcludedFile['reason']): string {
  return LEFT_OUT[reason];
}
