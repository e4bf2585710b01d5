// The saved workspace context: segment table plus the engine's cache snapshot, in one versioned file written
// atomically (write to a temporary name, then rename), so a crash mid-write leaves the old file usable.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineInfo } from '../runtime/engine';

const MAGIC = 'CSKVCTX1';
export const CONTEXT_FORMAT_VERSION = 1;

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
  cskv: { window: number; bits: number; kRanks: number[]; vRanks: number[]; factorsHash: string } | null;
}

export function contextKey(root: string, info: EngineInfo): ContextKey {
  return {
    version: CONTEXT_FORMAT_VERSION,
    root: path.resolve(root),
    modelFingerprint: info.fingerprint,
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
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const header = Buffer.from(JSON.stringify({ key: saved.key, segments: saved.segments }));
  const prefix = Buffer.alloc(16);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(header.length, 8);
  prefix.writeUInt32LE(saved.snapshot.byteLength >>> 0, 12); // low 32 bits: a cheap truncation check
  const partial = `${file}.partial-${process.pid}`;
  try {
    fs.writeFileSync(partial, Buffer.concat([prefix, header, saved.snapshot]));
    fs.renameSync(partial, file);
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
    if (bytes.length < 16 || bytes.toString('latin1', 0, 8) !== MAGIC) return { status: 'discarded', reason: 'not a saved context (or an older format)' };
    const headerLength = bytes.readUInt32LE(8);
    const snapshotLength = bytes.readUInt32LE(12);
    if (16 + headerLength > bytes.length || ((bytes.length - 16 - headerLength) >>> 0) !== snapshotLength) {
      return { status: 'discarded', reason: 'the file is truncated' };
    }
    const header = JSON.parse(bytes.toString('utf8', 16, 16 + headerLength)) as { key: ContextKey; segments: SavedSegment[] };
    if (JSON.stringify(header.key) !== JSON.stringify(expected)) {
      return { status: 'discarded', reason: 'it was made with another model, CSKV settings or format version' };
    }
    if (!Array.isArray(header.segments)) return { status: 'discarded', reason: 'its segment table is malformed' };
    return { status: 'loaded', saved: { key: header.key, segments: header.segments, snapshot: bytes.subarray(16 + headerLength) } };
  } catch (err) {
    return { status: 'discarded', reason: `it is corrupt (${(err as Error).message})` };
  }
}
