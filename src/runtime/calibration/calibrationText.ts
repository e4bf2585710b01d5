// Calibration text: the text files under the paths given (a workspace by default), tokenised with the model's
// own tokenizer into one stream, cut into fixed-length segments that are each prefilled from an empty cache so
// memory stays bounded, with the last part of the stream held out to score the factors on unseen tokens.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors';
import type { ModelTokenizer } from '../tokenizer';

/** Directories never read: version control, dependencies, caches (and, by being hidden, virtualenvs and IDE state). */
const SKIPPED_DIRECTORIES = new Set(['node_modules', '__pycache__']);
/** Larger files are data far more often than code, and a few of them would crowd out the rest of the workspace. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const SNIFF_BYTES = 8192;

/**
 * Text files under `paths` (files as given, folders recursively, in sorted order), skipping hidden entries,
 * node_modules, binaries and anything under `exclude` (the model directory, the output file).
 */
export function collectTextFiles(paths: readonly string[], exclude: readonly string[] = []): string[] {
  const excluded = exclude.map((p) => path.resolve(p));
  const isExcluded = (p: string): boolean => excluded.some((e) => p === e || p.startsWith(e + path.sep));
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const full = path.join(dir, entry.name);
      if (entry.name.startsWith('.') || isExcluded(full)) continue;
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRECTORIES.has(entry.name)) walk(full);
      } else if (entry.isFile() && looksLikeText(full)) {
        files.push(full);
      }
    }
  };
  for (const given of paths) {
    const p = path.resolve(given);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch {
      throw new RuntimeError('BAD_ARGUMENT', `calibration path ${p} does not exist`);
    }
    if (stat.isDirectory()) walk(p);
    else if (!isExcluded(p) && looksLikeText(p)) files.push(p);
  }
  return [...new Set(files)];
}

/** Small enough, no NUL byte in the first 8 KB, valid UTF-8 there. */
function looksLikeText(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    if (fs.fstatSync(fd).size > MAX_FILE_BYTES) return false;
    const head = Buffer.alloc(SNIFF_BYTES);
    const n = fs.readSync(fd, head, 0, SNIFF_BYTES, 0);
    const bytes = head.subarray(0, n);
    if (bytes.includes(0)) return false;
    // A multi-byte character cut at the sniff boundary is not an error: decode in streaming mode.
    new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: n === SNIFF_BYTES });
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface CalibrationTokens {
  /** Segments to fit the factors on, each prefilled from an empty cache. */
  train: number[][];
  /** The last ~heldOutFraction of the stream, in segments too. */
  heldOut: number[][];
  trainTokens: number;
  heldOutTokens: number;
  /** Files whose text went into the stream. */
  files: string[];
}

export interface SegmentOptions {
  maxTokens: number;
  segmentLength: number;
  heldOutFraction: number;
}

/**
 * Tokenises `files` in order into one stream (documents separated by a blank line) until `maxTokens`, then cuts
 * it. Each segment starts with BOS when the tokenizer puts one before every sequence, as prompts do.
 */
export function tokeniseForCalibration(files: readonly string[], tokenizer: ModelTokenizer, options: SegmentOptions): CalibrationTokens {
  const { maxTokens, segmentLength, heldOutFraction } = options;
  const bos = tokenizer.bosTokenId !== undefined && tokenizer.encode('a')[0] === tokenizer.bosTokenId ? tokenizer.bosTokenId : undefined;
  const separator = tokenizer.encode('\n\n', { addSpecialTokens: false });
  const stream: number[] = [];
  const used: string[] = [];
  for (const file of files) {
    if (stream.length >= maxTokens) break;
    const text = fs.readFileSync(file, 'utf8');
    if (text.trim() === '') continue;
    // Long files: only about as much text as could still be used (a token rarely spans 16 characters).
    const ids = tokenizer.encode(text.slice(0, (maxTokens - stream.length) * 16), { addSpecialTokens: false });
    if (stream.length > 0) stream.push(...separator);
    for (const id of ids) stream.push(id);
    used.push(file);
  }
  stream.length = Math.min(stream.length, maxTokens);
  const heldOutCount = stream.length < 2 ? 0 : Math.max(1, Math.round(stream.length * heldOutFraction));
  const cut = (tokens: number[]): number[][] => {
    const body = bos === undefined ? segmentLength : segmentLength - 1;
    const segments: number[][] = [];
    for (let i = 0; i < tokens.length; i += body) {
      const piece = tokens.slice(i, i + body);
      segments.push(bos === undefined ? piece : [bos, ...piece]);
    }
    return segments;
  };
  const train = cut(stream.slice(0, stream.length - heldOutCount));
  const heldOut = cut(stream.slice(stream.length - heldOutCount));
  const count = (s: number[][]): number => s.reduce((a, x) => a + x.length, 0);
  return { train, heldOut, trainTokens: count(train), heldOutTokens: count(heldOut), files: used };
}
