// Calibration text: the text files under the paths given (a workspace by default), tokenised with the model's
// own tokenizer into one stream, cut into fixed-length segments that are each prefilled from an empty cache so
// memory stays bounded, with the last part of the stream held out to score the factors on unseen tokens.
// Folders are walked with the workspace scanner's rules (.gitignore at every level, generated and vendored
// trees, lock files, binaries, its size cap), so the factors are fitted to the text the assistant will hold.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../runtime/errors';
import type { ModelTokenizer } from '../runtime/tokenizer';
import { DEFAULT_MAX_FILE_BYTES, PathFilter, readWorkspaceFile } from '../workspace/scan';

export interface CalibrationFile {
  readonly file: string;
  /** Larger files are skipped: the workspace's cap for files found in folders, a generous one for files named. */
  readonly maxBytes: number;
}

const NAMED_FILE_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Candidate files under `paths`, in order (files as given, folders walked in sorted order), leaving out anything
 * under `exclude` (the model directory, the output file). Whether each is text is decided when it is read.
 */
export function collectCalibrationFiles(paths: readonly string[], exclude: readonly string[] = [], onNote?: (note: string) => void): CalibrationFile[] {
  const excluded = exclude.map((p) => path.resolve(p));
  const isExcluded = (p: string): boolean => excluded.some((e) => p === e || p.startsWith(e + path.sep));
  const files: CalibrationFile[] = [];
  const seen = new Set<string>();
  const add = (file: string, maxBytes: number): void => {
    if (!seen.has(file) && !isExcluded(file)) files.push({ file, maxBytes });
    seen.add(file);
  };
  for (const given of paths) {
    const root = path.resolve(given);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(root);
    } catch {
      throw new RuntimeError('BAD_ARGUMENT', `calibration path ${root} does not exist`);
    }
    if (!stat.isDirectory()) {
      add(root, NAMED_FILE_MAX_BYTES);
      continue;
    }
    const filter = new PathFilter(root);
    const walk = (dir: string, relDir: string): void => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      } catch (err) {
        // A folder deleted or made unreadable while the tree is walked: the rest is still calibration text.
        onNote?.(`skipped ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return;
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
        if (isExcluded(full) || entry.name === '.git') continue;
        // Symbolic links are not followed: a workspace's links point into itself or out of it, neither wanted twice.
        if (entry.isDirectory()) {
          if (filter.reason(`${rel}/`) === undefined) walk(full, rel);
        } else if (entry.isFile() && filter.reason(rel) === undefined) {
          add(full, DEFAULT_MAX_FILE_BYTES);
        }
      }
    };
    walk(root, '');
  }
  return files;
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
 * Tokenises the text files among `files` in order into one stream (documents separated by a blank line) until
 * `maxTokens`, then cuts it. Each segment starts with BOS when the tokenizer puts one before every sequence, as
 * prompts do. Binaries, other encodings and files over their size cap are skipped.
 */
export function tokeniseForCalibration(files: readonly CalibrationFile[], tokenizer: ModelTokenizer, options: SegmentOptions): CalibrationTokens {
  const { maxTokens, segmentLength, heldOutFraction } = options;
  const bos = tokenizer.bosTokenId !== undefined && tokenizer.encode('a')[0] === tokenizer.bosTokenId ? tokenizer.bosTokenId : undefined;
  const separator = tokenizer.encode('\n\n', { addSpecialTokens: false });
  const stream: number[] = [];
  const used: string[] = [];
  for (const { file, maxBytes } of files) {
    if (stream.length >= maxTokens) break;
    const read = readWorkspaceFile(file, maxBytes);
    if ('reason' in read || read.text.trim() === '') continue;
    const text = read.text;
    // Long files: only about as much text as could still be used (a token rarely spans 16 characters).
    const ids = tokenizer.encode(text.slice(0, (maxTokens - stream.length) * 16), { addSpecialTokens: false, literal: true });
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
