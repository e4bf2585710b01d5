// The saved workspace context: segment table plus the engine's cache snapshot, in one versioned file with a
// checksum over all of it, readable by the user alone, written atomically (write to a temporary name, sync it,
// then rename), so a crash mid-write leaves the old file usable and a damaged one is never loaded.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineInfo } from '../runtime/engine';
import type { MemoryReport } from '../protocol';

const MAGIC = 'CSKVCTX2';
export const CONTEXT_FORMAT_VERSION = 3;
/** Magic (8 bytes) and the header's length (4), then the checksum, the JSON header and the snapshot. */
const LENGTHS_BYTES = 12;
const CHECKSUM_BYTES = 32;

export interface SavedSegment {
  path: string;
  hash: string;
  tokens: number;
}

export interface SavedContext {
  /** What the cache depends on besides the files: model, cache settings. */
  key: ContextKey;
  segments: SavedSegment[];
  snapshot: Uint8Array;
}

export interface ContextKey {
  version: number;
  root: string;
  modelFingerprint: string;
  /** The same model with other weights (q8, q4, f32) or on another backend computes another cache. */
  weights: string;
  /**
   * What the full-precision branch holds its rows in: a snapshot carries them as f32, so one taken from an f32
   * branch would restore into an fp16 one by rounding, a cache no prefill of this engine makes.
   */
  fullDtype: MemoryReport['fullDtype'];
  backend: string;
  cskv: { window: number; bits: number; kRanks: number[]; vRanks: number[]; factorsHash: string } | null;
}

export function contextKey(root: string, info: EngineInfo, fullDtype: MemoryReport['fullDtype']): ContextKey {
  return {
    version: CONTEXT_FORMAT_VERSION,
    root: path.resolve(root),
    modelFingerprint: info.fingerprint,
    weights: info.weights,
    fullDtype,
    backend: info.backend,
    cskv: info.cskv ? {
      window: info.cskv.window, bits: info.cskv.bits, kRanks: info.cskv.kRanks, vRanks: info.cskv.vRanks,
      factorsHash: createHash('sha256').update(fs.readFileSync(info.cskv.file)).digest('hex').slice(0, 32),
    } : null,
  };
}

/** One file per workspace folder in the storage directory. */
export function contextFile(storageDir: string, root: string): string {
  const id = createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 16);
  return path.join(storageDir, `workspace-${id}.cskvctx`);
}

export function saveContext(file: string, saved: SavedContext): void {
  // The token history decodes back to the workspace's source: only the user may read it.
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const header = Buffer.from(JSON.stringify({ key: saved.key, segments: saved.segments }));
  const lengths = Buffer.alloc(LENGTHS_BYTES);
  lengths.write(MAGIC, 0, 'latin1');
  lengths.writeUInt32LE(header.length, 8);
  const snapshot = Buffer.from(saved.snapshot.buffer, saved.snapshot.byteOffset, saved.snapshot.byteLength);
  const checksum = checksumOf(lengths, header, snapshot);
  const partial = `${file}.partial-${process.pid}`;
  try {
    const fd = fs.openSync(partial, 'w', 0o600);
    try {
      for (const part of [lengths, checksum, header, snapshot]) fs.writeSync(fd, part);
      // On disk before it takes the old file's name, so a crash leaves either file whole.
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(partial, file);
    syncDirectory(dir);
  } finally {
    fs.rmSync(partial, { force: true });
  }
}

export type LoadResult =
  | { status: 'loaded'; saved: SavedContext }
  | { status: 'missing' }
  | { status: 'discarded'; reason: string };

/** Reads a saved context; a corrupt file or one made under another key is reported, never thrown. */
export function loadContext(file: string, expected: ContextKey): LoadResult {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return { status: 'missing' };
  }
  try {
    const prefix = LENGTHS_BYTES + CHECKSUM_BYTES;
    if (bytes.length < prefix || bytes.toString('latin1', 0, 8) !== MAGIC) return { status: 'discarded', reason: 'not a saved context (or an older format)' };
    const headerLength = bytes.readUInt32LE(8);
    if (prefix + headerLength > bytes.length) return { status: 'discarded', reason: 'the file is truncated' };
    const header = bytes.subarray(prefix, prefix + headerLength);
    const snapshot = bytes.subarray(prefix + headerLength);
    if (!checksumOf(bytes.subarray(0, LENGTHS_BYTES), header, snapshot).equals(bytes.subarray(LENGTHS_BYTES, prefix))) {
      return { status: 'discarded', reason: 'its checksum does not match its contents (the file is truncated or corrupt)' };
    }
    const table = JSON.parse(header.toString('utf8')) as { key: ContextKey; segments: unknown };
    const differing = keyDifferences(table.key, expected);
    if (differing.length > 0) {
      const list = differing.length === 1 ? differing[0]! : `${differing.slice(0, -1).join(', ')} and ${differing.at(-1)!}`;
      return { status: 'discarded', reason: `it does not match this session's ${list}` };
    }
    if (!isSegmentTable(table.segments)) return { status: 'discarded', reason: 'its segment table is malformed' };
    return { status: 'loaded', saved: { key: table.key, segments: table.segments, snapshot } };
  } catch (err) {
    return { status: 'discarded', reason: `it is corrupt (${(err as Error).message})` };
  }
}

const KEY_FIELDS: Record<keyof ContextKey, string> = {
  version: 'format version', root: 'workspace folder', modelFingerprint: 'model', weights: 'weight format',
  fullDtype: 'full-precision branch dtype', backend: 'backend', cskv: 'CSKV settings',
};

/** What a saved key was made with that this one is not, in words (every field of either, so an unknown one counts). */
function keyDifferences(saved: unknown, expected: ContextKey): string[] {
  const table = (typeof saved === 'object' && saved !== null ? saved : {}) as Record<string, unknown>;
  const fields = new Set([...Object.keys(expected), ...Object.keys(table)]);
  return [...fields].filter((f) => JSON.stringify(table[f]) !== JSON.stringify((expected as unknown as Record<string, unknown>)[f]))
    .map((f) => (KEY_FIELDS as Record<string, string>)[f] ?? `key field "${f}"`);
}

function isSegmentTable(value: unknown): value is SavedSegment[] {
  return Array.isArray(value) && value.every((s) =>
    typeof s?.path === 'string' && typeof s?.hash === 'string' && Number.isInteger(s?.tokens) && s.tokens >= 0);
}

/** SHA-256 over everything in the file but the checksum itself. */
function checksumOf(lengths: Buffer, header: Buffer, snapshot: Buffer): Buffer {
  return createHash('sha256').update(lengths).update(header).update(snapshot).digest();
}

/** Makes a rename in `dir` durable; a platform that cannot open a directory for syncing (Windows) skips it. */
function syncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    // EISDIR/EINVAL where directories cannot be synced: the rename is as durable as the platform makes it.
  } finally {
    fs.closeSync(fd);
  }
}
