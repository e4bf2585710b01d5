// Finds the files of a workspace worth putting in the model's context: honours .gitignore files (at every level)
// and the editor's exclude patterns with the `ignore` library, and skips generated and vendored trees, lock files,
// binaries, non-UTF-8 text and files over the size cap. Symbolic links are followed once (loops are cut by
// remembering real paths) and never out of the workspace. The walk is linear in the tree (each directory's real
// path and its ignore files are carried down, not recomputed from the root), yields to the event loop as it goes
// (the sidecar answers while it scans), skips what vanishes under it with a note, and treats an ignore file it
// cannot read as an error for its folder: nothing under that folder is read.
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
  /** What the scan met and skipped that is worth a line in the log (a folder that vanished while it was read). */
  notes: string[];
}

export const DEFAULT_MAX_FILE_BYTES = 256 * 1024;
/** An ignore file larger than this is not a list of patterns. */
const MAX_IGNORE_FILE_BYTES = 1024 * 1024;

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
  /** Each folder's .gitignore: its rules, null when it has none, 'unreadable' when it has one that cannot be read. */
  private readonly gitignores = new Map<string, Ignore | null | 'unreadable'>();

  constructor(private readonly root: string, excludes: readonly string[] = []) {
    this.editorExcludes = ignore().add([...excludes]);
  }

  /** Why `rel` (forward slashes; directories with a trailing slash) is left out, or undefined. */
  reason(rel: string): ExcludedFile['reason'] | undefined {
    const isDir = rel.endsWith('/');
    const parts = rel.replace(/\/$/, '').split('/');
    let base = '';
    const bases: string[] = [];
    for (let depth = 0; depth < parts.length; depth++) {
      bases.push(base);
      base = base ? `${base}/${parts[depth]}` : parts[depth]!;
    }
    return this.nameReason(rel, isDir) ?? this.ignoredBy(rel, bases.map((b) => ({ base: b, rules: this.gitignore(b) })));
  }

  /** Left out by name alone: a skipped tree above it, a lock or generated file, the editor's excludes. */
  nameReason(rel: string, isDir: boolean): ExcludedFile['reason'] | undefined {
    const parts = rel.replace(/\/$/, '').split('/');
    if (parts.slice(0, isDir ? parts.length : -1).some((p) => SKIPPED_DIRECTORIES.has(p))) return 'generated';
    const name = parts[parts.length - 1]!;
    if (!isDir && (LOCK_FILES.has(name) || GENERATED.test(name))) return 'generated';
    if (this.editorExcludes.ignores(rel)) return 'ignored';
    return undefined;
  }

  /** Left out by the ignore files of the folders above it (`rules`, outermost first, from gitignore()). */
  ignoredBy(rel: string, rules: ReadonlyArray<{ base: string; rules: Ignore | null | 'unreadable' }>): ExcludedFile['reason'] | undefined {
    for (const { base, rules: ig } of rules) {
      if (ig === 'unreadable') return 'unreadable';
      if (ig && ig.ignores(rel.slice(base ? base.length + 1 : 0))) return 'ignored';
    }
    return undefined;
  }

  /** The .gitignore of folder `base` (read once, through the guarded reader). */
  gitignore(base: string): Ignore | null | 'unreadable' {
    let ig = this.gitignores.get(base);
    if (ig === undefined) {
      const file = path.join(this.root, base, '.gitignore');
      let exists = true;
      try {
        fs.lstatSync(file);
      } catch (err) {
        exists = (err as NodeJS.ErrnoException).code !== 'ENOENT';
      }
      if (!exists) ig = null;
      else {
        const read = readWorkspaceFile(file, MAX_IGNORE_FILE_BYTES, this.root);
        ig = 'reason' in read ? 'unreadable' : ignore().add(read.text);
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
export function readWorkspaceFile(
  abs: string, maxBytes: number, root?: string, knownReal?: string,
): { text: string; mtimeMs: number } | { reason: ExcludedFile['reason'] } {
  let fd: number | undefined;
  try {
    // `knownReal`: the scan knows each file's real path from its folder's, and resolving it again costs a lookup
    // per folder level for every file (quadratic in depth); it has checked that path lies inside the workspace.
    const real = knownReal ?? fs.realpathSync.native(abs);
    if (knownReal === undefined && root !== undefined && !isInside(real, fs.realpathSync.native(root))) return { reason: 'unreadable' };
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

export async function scanWorkspace(root: string, options: ScanOptions = {}): Promise<ScanResult> {
  const maxBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const files: ScannedFile[] = [];
  const excluded: ExcludedFile[] = [];
  const notes: string[] = [];
  const rootReal = fs.realpathSync.native(root);
  const visited = new Set<string>([rootReal]);
  const filter = new PathFilter(root, options.excludes);
  const vanished = (err: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');

  type Rules = ReadonlyArray<{ base: string; rules: Ignore | null | 'unreadable' }>;
  /** Walks `dir` (real path `real`); `rules` are the ignore files of the folders above it that have one. */
  const walk = async (dir: string, real: string, relDir: string, above: Rules): Promise<void> => {
    if (options.signal?.aborted) return;
    // A turn for the event loop at every folder: requests are answered while a large tree is scanned.
    await new Promise((resolve) => setImmediate(resolve));
    const own = filter.gitignore(relDir);
    if (own === 'unreadable') {
      excluded.push({ path: relDir || '.', reason: 'unreadable' });
      notes.push(`${relDir ? `${relDir}/` : ''}.gitignore cannot be read, so nothing under ${relDir || 'the workspace root'} was read`);
      return;
    }
    const rules = own === null ? above : [...above, { base: relDir, rules: own }];
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if (vanished(err)) notes.push(`${relDir} vanished while the workspace was scanned; skipped`);
      else excluded.push({ path: relDir || '.', reason: 'unreadable' });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const abs = path.join(dir, entry.name);
      const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      let entryReal = path.join(real, entry.name);
      if (entry.isSymbolicLink()) {
        try {
          entryReal = fs.realpathSync.native(abs);
          const st = fs.statSync(entryReal);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          continue; // dangling link, or gone
        }
        if (!isInside(entryReal, rootReal)) continue; // never leave the workspace
      }
      if (isDir) {
        if (SKIPPED_DIRECTORIES.has(entry.name)) continue;
        if (filter.nameReason(`${rel}/`, true) || filter.ignoredBy(`${rel}/`, rules)) continue;
        if (visited.has(entryReal)) continue; // a symlink loop, or a tree already walked
        visited.add(entryReal);
        await walk(abs, entryReal, rel, rules);
        continue;
      }
      if (!isFile) continue;
      const reason = filter.nameReason(rel, false) ?? filter.ignoredBy(rel, rules);
      if (reason) {
        excluded.push({ path: rel, reason });
        continue;
      }
      const read = readWorkspaceFile(abs, maxBytes, rootReal, entryReal);
      if ('reason' in read) {
        if (read.reason === 'unreadable' && !fs.existsSync(abs)) notes.push(`${rel} vanished while the workspace was scanned; skipped`);
        else excluded.push({ path: rel, reason: read.reason });
      } else {
        files.push({ path: rel, text: read.text, mtimeMs: read.mtimeMs });
      }
    }
  };
  await walk(root, rootReal, '', []);
  return { files, excluded, notes };
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
