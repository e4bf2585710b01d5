// Finds the files of a workspace worth putting in the model's context: honours .gitignore files (at every level)
// and the editor's exclude patterns with the `ignore` library, and skips generated and vendored trees, lock files,
// binaries, non-UTF-8 text and files over the size cap. Symbolic links are followed once (loops are cut by
// remembering real paths) and never out of the workspace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import type { ExcludedFile } from '../protocol';

export interface ScannedFile {
  /** Path relative to the workspace root, with forward slashes. */
  path: string;
  text: string;
  mtimeMs: number;
}

export interface ScanOptions {
  /** Extra gitignore-style patterns (the editor's files.exclude / search.exclude). */
  excludes?: readonly string[];
  maxFileBytes?: number;
  signal?: AbortSignal | undefined;
}

export interface ScanResult {
  files: ScannedFile[];
  excluded: ExcludedFile[];
}

export const DEFAULT_MAX_FILE_BYTES = 256 * 1024;

/** Trees that are generated, vendored or tool state: never source a model should read. */
const SKIPPED_DIRECTORIES = new Set([
  '.git', '.hg', '.svn', 'node_modules', 'bower_components', 'vendor', 'third_party', 'dist', 'build', 'out', 'target',
  '.next', '.nuxt', '.cache', '.parcel-cache', '.turbo', 'coverage', '__pycache__', '.venv', 'venv', '.tox', '.mypy_cache',
  '.pytest_cache', '.gradle', '.idea', '.vscode-test', 'Pods', 'DerivedData', '.dart_tool', '.terraform',
]);

const LOCK_FILES = new Set([
  'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'Cargo.lock', 'poetry.lock',
  'Pipfile.lock', 'uv.lock', 'Gemfile.lock', 'composer.lock', 'go.sum', 'flake.lock', 'packages.lock.json', 'mix.lock',
]);

const GENERATED = /(\.min\.(js|css)|\.map|\.pb\.go|_pb2\.py|\.generated\.\w+|\.snap)$/i;

/**
 * Decides whether a workspace-relative path is left out by name: a skipped tree, a lock or generated file, the
 * editor's excludes, or a .gitignore at any level above it. Used by the scan and for files created later.
 */
export class PathFilter {
  private readonly editorExcludes: Ignore;
  private readonly gitignores = new Map<string, Ignore | null>();

  constructor(private readonly root: string, excludes: readonly string[] = []) {
    this.editorExcludes = ignore().add([...excludes]);
  }

  /** Why `rel` (forward slashes; directories with a trailing slash) is left out, or undefined. */
  reason(rel: string): ExcludedFile['reason'] | undefined {
    const isDir = rel.endsWith('/');
    const parts = rel.replace(/\/$/, '').split('/');
    if (parts.slice(0, isDir ? parts.length : -1).some((p) => SKIPPED_DIRECTORIES.has(p))) return 'generated';
    const name = parts[parts.length - 1]!;
    if (!isDir && (LOCK_FILES.has(name) || GENERATED.test(name))) return 'generated';
    if (this.editorExcludes.ignores(rel)) return 'ignored';
    for (let depth = 0; depth < parts.length; depth++) {
      const base = parts.slice(0, depth).join('/');
      const ig = this.gitignore(base);
      if (ig && ig.ignores(rel.slice(base ? base.length + 1 : 0))) return 'ignored';
    }
    return undefined;
  }

  private gitignore(base: string): Ignore | null {
    let ig = this.gitignores.get(base);
    if (ig === undefined) {
      try {
        ig = ignore().add(fs.readFileSync(path.join(this.root, base, '.gitignore'), 'utf8'));
      } catch {
        ig = null; // none here, or unreadable: ignores nothing
      }
      this.gitignores.set(base, ig);
    }
    return ig;
  }
}

/**
 * The one reader for every workspace file the sidecar takes in (the scan, the file watcher, calibration): a regular
 * file only (a FIFO, a device or a socket is refused without blocking: it is opened non-blocking and checked on the
 * open descriptor), its real path inside `root` when one is given (a link out of the workspace is refused), and at
 * most `maxBytes` read (a bounded read, so a file that grows, or a special file that reports size 0, cannot grow
 * the reader). Returns the text, or why the file is left out.
 */
export function readWorkspaceFile(abs: string, maxBytes: number, root?: string): { text: string; mtimeMs: number } | { reason: ExcludedFile['reason'] } {
  let fd: number | undefined;
  try {
    const real = fs.realpathSync(abs);
    if (root !== undefined && !isInside(real, fs.realpathSync(root))) return { reason: 'unreadable' };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. O_NOFOLLOW: the real path's last
    // component cannot have been swapped for a link since realpath.
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { reason: 'unreadable' };
    if (st.size > maxBytes) return { reason: 'too-large' };
    // One byte more than the cap tells a file that grew past it since the stat.
    const buffer = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n) n = fs.readSync(fd, buffer, length, buffer.length - length, length);
    if (length > maxBytes) return { reason: 'too-large' };
    const text = decodeText(buffer.subarray(0, length));
    return text === undefined ? { reason: 'binary' } : { text, mtimeMs: st.mtimeMs };
  } catch {
    return { reason: 'unreadable' };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function isInside(real: string, rootReal: string): boolean {
  return real === rootReal || real.startsWith(rootReal.endsWith(path.sep) ? rootReal : rootReal + path.sep);
}

export function scanWorkspace(root: string, options: ScanOptions = {}): ScanResult {
  const maxBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const files: ScannedFile[] = [];
  const excluded: ExcludedFile[] = [];
  const rootReal = fs.realpathSync(root);
  const visited = new Set<string>([rootReal]);
  const filter = new PathFilter(root, options.excludes);

  const walk = (dir: string, relDir: string): void => {
    if (options.signal?.aborted) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      excluded.push({ path: relDir || '.', reason: 'unreadable' });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const abs = path.join(dir, entry.name);
      const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      let real = abs;
      if (entry.isSymbolicLink()) {
        try {
          real = fs.realpathSync(abs);
          const st = fs.statSync(real);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          continue; // dangling link
        }
        if (!isInside(real, rootReal)) continue; // never leave the workspace
      }
      if (isDir) {
        if (SKIPPED_DIRECTORIES.has(entry.name)) continue;
        if (filter.reason(`${rel}/`)) continue;
        const realDir = entry.isSymbolicLink() ? real : fs.realpathSync(abs);
        if (visited.has(realDir)) continue; // a symlink loop, or a tree already walked
        visited.add(realDir);
        walk(abs, rel);
        continue;
      }
      if (!isFile) continue;
      const reason = filter.reason(rel);
      if (reason) {
        excluded.push({ path: rel, reason });
        continue;
      }
      const read = readWorkspaceFile(abs, maxBytes, rootReal);
      if ('reason' in read) excluded.push({ path: rel, reason: read.reason });
      else files.push({ path: rel, text: read.text, mtimeMs: read.mtimeMs });
    }
  };
  walk(root, '');
  return { files, excluded };
}

/** UTF-8 text, or undefined for binaries (a NUL byte) and other encodings. */
export function decodeText(bytes: Uint8Array, decoder = new TextDecoder('utf-8', { fatal: true })): string | undefined {
  if (bytes.subarray(0, 8192).includes(0)) return undefined;
  try {
    return decoder.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    return undefined;
  }
}
