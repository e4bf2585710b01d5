// Code for the quality benchmark: repositories read from the corpus that training/gather_corpus.py writes
// (one JSON line per repository in a .jsonl.gz) or from a folder (one repository), laid out as the runtime lays
// out a workspace (src/workspace/layout.ts), and written out as text for `cskv-code compress/perplexity`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { RepoFormat } from '../src/workspace/layout';
import { type ModelTokenizer, promptText } from '../src/runtime/tokenizer';

export interface CodeFile {
  path: string;
  text: string;
}

export interface CodeRepo {
  repo: string;
  files: CodeFile[];
}

const FOLDER_EXTENSIONS = new Set(['.ts', '.js', '.py', '.go', '.rs', '.c', '.h', '.cpp', '.java', '.mjs', '.tsx']);
const SKIPPED = new Set(['node_modules', '.git', 'out', 'dist']);

/** Repositories of a corpus file (.jsonl.gz) or of a folder (its source files, as one repository). */
export function readRepos(source: string): CodeRepo[] {
  if (fs.statSync(source).isDirectory()) return [{ repo: path.basename(path.resolve(source)), files: folderFiles(source) }];
  const text = zlib.gunzipSync(fs.readFileSync(source)).toString('utf8');
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const r = JSON.parse(l) as { repo: string; files: CodeFile[] };
    return { repo: r.repo, files: r.files.map((f) => ({ path: f.path, text: f.text })) };
  });
}

function folderFiles(root: string): CodeFile[] {
  const out: CodeFile[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED.has(entry.name)) walk(full);
      } else if (entry.isFile() && FOLDER_EXTENSIONS.has(path.extname(entry.name))) {
        out.push({ path: path.relative(root, full).split(path.sep).join('/'), text: fs.readFileSync(full, 'utf8') });
      }
    }
  };
  walk(root);
  return out;
}

/** One repository as the model sees a workspace: header, then each file behind its path header. */
export function repoText(repo: CodeRepo, format: RepoFormat): string {
  let text = promptText(format.header(repo.repo));
  for (const f of repo.files) text += promptText(format.fileHeader(f.path)) + (f.text.endsWith('\n') ? f.text : `${f.text}\n`);
  return text;
}

/** Repository texts until about `tokens` tokens (the last one cut in proportion), for perplexity. */
export function textOfTokens(repos: readonly CodeRepo[], format: RepoFormat, tokenizer: ModelTokenizer, tokens: number): { text: string; tokens: number } {
  let text = '';
  let total = 0;
  for (const repo of repos) {
    const t = repoText(repo, format);
    const n = tokenizer.encode(t, { addSpecialTokens: false }).length;
    if (total + n <= tokens) {
      text += t;
      total += n;
      continue;
    }
    const keep = Math.floor((t.length * (tokens - total)) / n);
    text += t.slice(0, keep);
    total += tokenizer.encode(t.slice(0, keep), { addSpecialTokens: false }).length;
    break;
  }
  return { text, tokens: total };
}

/** Writes repositories' files under `dir` (repo/path), at most `maxBytes` in all, for `compress --calib dir`. */
export function writeFiles(repos: readonly CodeRepo[], dir: string, maxBytes: number): number {
  let written = 0;
  for (const repo of repos) {
    for (const f of repo.files) {
      if (written >= maxBytes) return written;
      const file = path.join(dir, repo.repo.replace(/[^A-Za-z0-9._-]+/g, '_'), f.path.replace(/\.\.+/g, '_'));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      // compress reads text files by name; a .txt suffix keeps every language in.
      fs.writeFileSync(`${file}.txt`, f.text);
      written += Buffer.byteLength(f.text);
    }
  }
  return written;
}

/** The repositories in a seeded order (Fisher-Yates). */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
