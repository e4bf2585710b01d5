// One file over HTTP into a partial file that survives interruption: a later call (or a retry inside this one)
// asks for the rest with a Range request, the finished file is checked (size, and the sha256 or git blob sha1
// the server announced) and only then renamed to its final name. Partial bytes that can no longer be right
// (a checksum that fails, a file longer than announced) are deleted; bytes that may still be right are kept.
// Node's own fetch (undici) does the HTTP: it follows redirects (the Hub sends downloads to a CDN) and drops
// the Authorization header when a redirect leaves the origin.
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { DownloadError } from '../errors';
import { formatBytes } from '../../shared/formatBytes';

export interface Expected {
  size?: number;
  /** Hex sha256 of the content (a Git LFS oid). */
  sha256?: string;
  /** Hex git blob sha1 of the content (the oid of a file stored in git itself). */
  gitSha1?: string;
}

export interface ResumableDownload {
  url: string;
  /** Extra request headers (Authorization for the Hub). */
  headers?: Record<string, string>;
  /** Where bytes accumulate; renamed to `final` once complete and verified. */
  partial: string;
  /** The lock that keeps a second writer off the partial file (default PARTIAL.lock). */
  lock?: string;
  final: string;
  expected: Expected;
  /** A validator (ETag or Last-Modified) of the content the partial file holds, sent as If-Range. */
  ifRange?: string;
  /** Turns a refused response (4xx other than 416) into the error the user should read. */
  refused?: (response: Response) => DownloadError;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Bytes in the partial file so far, and the total when known; called after every chunk. */
  onBytes?: (bytes: number, total: number | undefined) => void;
  /** Called when the partial file is first opened this call: how many bytes it already held. */
  onStart?: (resumeFrom: number, total: number | undefined) => void;
  onRetry?: (attempt: number, reason: string, resumeFrom: number) => void;
  /** Called with the response of the request that starts streaming (to read headers such as ETag). */
  onResponse?: (response: Response) => void;
  /** Attempts after the first for errors that may pass (a dropped connection, 5xx, 429, a stall). */
  retries?: number;
  /** Wait before retry k is retryDelayMs * 2^(k-1). */
  retryDelayMs?: number;
  /** A response that sends nothing for this long is abandoned and retried. */
  stallTimeoutMs?: number;
}

export interface DownloadResult {
  size: number;
  sha256: string;
  verified: 'sha256' | 'git-sha1' | 'size' | 'nothing';
}

const DEFAULTS = { retries: 5, retryDelayMs: 1000, stallTimeoutMs: 60_000 };
const WRITE_BATCH_BYTES = 4 << 20;

/** Network error codes that mean "not reachable at all" rather than "dropped on the way". */
const UNREACHABLE = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH']);

/** A failure a retry may cure; anything else is thrown at once. */
class Transient extends Error {}

export async function downloadResumable(d: ResumableDownload, options: DownloadOptions = {}): Promise<DownloadResult> {
  const release = lockPartial(d.lock ?? `${d.partial}.lock`, d.partial);
  try {
    return await download(d, options);
  } finally {
    release();
  }
}

/**
 * One writer per partial file: PARTIAL.lock holds the writer's pid. A lock whose process is gone (killed without
 * a chance to clean up) is taken over; a live one means another pull (the editor's, a terminal's) is at it.
 */
function lockPartial(lock: string, partial: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(lock, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new DownloadError('busy', `another pull (process ${pid}) is downloading ${partial}; wait for it, or stop it and run this again`);
      }
      fs.rmSync(lock, { force: true });
    }
  }
  throw new DownloadError('busy', `cannot take the lock ${lock}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function download(d: ResumableDownload, options: DownloadOptions): Promise<DownloadResult> {
  const o = { ...DEFAULTS, ...options };
  const hashes = new PrefixHashes(d.partial, d.expected);
  let started = false;
  let everReceived = false;
  for (let attempt = 0; ; attempt++) {
    let have = fileSize(d.partial);
    if (d.expected.size !== undefined && have > d.expected.size) {
      fs.rmSync(d.partial);
      have = 0;
    }
    if (!started) {
      started = true;
      o.onStart?.(have, d.expected.size);
    }
    if (d.expected.size !== undefined && have === d.expected.size) {
      // Whole already (an earlier run stopped between the last byte and the rename): checked all the same.
      await hashes.catchUp(have);
      break;
    }
    try {
      await fetchRest(d, have, hashes, o, () => (everReceived = true));
      break;
    } catch (err) {
      if (o.signal?.aborted) {
        throw new DownloadError('cancelled', `cancelled; ${formatBytes(fileSize(d.partial))} kept in ${d.partial}: run the same command again to resume`, d.partial);
      }
      if (err instanceof DownloadError) throw err;
      const code = causeCode(err);
      const reason = code ?? (err as Error).message;
      if (!everReceived && code && UNREACHABLE.has(code)) {
        throw new DownloadError('offline', `cannot reach ${new URL(d.url).host} (${code}): is this machine offline?`, partialOrUndefined(d.partial));
      }
      if (code === 'ENOSPC') {
        throw new DownloadError('disk-full', `the disk is full while writing ${d.partial} (${formatBytes(fileSize(d.partial))} kept): free some space and run the same command again to resume`, d.partial);
      }
      if (attempt >= o.retries) {
        throw new DownloadError(err instanceof Transient ? 'http' : 'offline',
          `${d.url}: ${reason}, ${attempt + 1} attempts; ${formatBytes(fileSize(d.partial))} kept in ${d.partial}: run the same command again to resume`, partialOrUndefined(d.partial));
      }
      o.onRetry?.(attempt + 1, reason, fileSize(d.partial));
      await sleep(o.retryDelayMs * 2 ** attempt, o.signal);
    }
  }
  return finish(d, hashes);
}

/** One request for the bytes after `have`, appended to the partial file as they arrive. */
async function fetchRest(d: ResumableDownload, have: number, hashes: PrefixHashes, o: typeof DEFAULTS & DownloadOptions, received: () => void): Promise<void> {
  const stall = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stall.signal]) : stall.signal;
  let stallTimer = setTimeout(() => stall.abort(), o.stallTimeoutMs);
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity', ...d.headers };
  if (have > 0) {
    headers.Range = `bytes=${have}-`;
    if (d.ifRange) headers['If-Range'] = d.ifRange;
  }
  let file: fs.promises.FileHandle | undefined;
  // Received bytes are written in 4 MiB batches rather than one awaited write per network chunk (about 64 KiB).
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = async (): Promise<void> => {
    if (!file || pendingBytes === 0) return;
    const chunks = pending;
    pending = [];
    pendingBytes = 0;
    await file.writev(chunks);
  };
  try {
    const response = await fetch(d.url, { headers, signal, redirect: 'follow' });
    let total: number | undefined;
    if (response.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== have) throw new Transient(`the server answered Range bytes=${have}- with Content-Range "${response.headers.get('content-range')}"`);
      total = range[3] === '*' ? undefined : Number(range[3]);
      file = await fs.promises.open(d.partial, 'a');
    } else if (response.status === 200) {
      // The server ignored the Range (or If-Range said the content changed): start over.
      const length = response.headers.get('content-length');
      total = length === null ? undefined : Number(length);
      file = await fs.promises.open(d.partial, 'w');
      hashes.reset();
      have = 0;
    } else if (response.status === 416 && have > 0) {
      // The partial file is at least as long as the content, yet not the announced size: it cannot be right.
      await response.body?.cancel();
      fs.rmSync(d.partial, { force: true });
      hashes.reset();
      throw new Transient(`the server has fewer than ${have} bytes (416); the partial file was discarded`);
    } else {
      await response.body?.cancel();
      if (response.status === 429 || response.status >= 500) throw new Transient(`HTTP ${response.status} ${response.statusText}`);
      throw d.refused?.(response) ?? new DownloadError(response.status === 404 ? 'not-found' : 'http', `${d.url}: HTTP ${response.status} ${response.statusText}`);
    }
    if (d.expected.size !== undefined && total !== undefined && total !== d.expected.size) {
      await response.body?.cancel();
      throw new DownloadError('checksum', `${d.url}: the server sends ${total} bytes, but ${d.expected.size} were announced`, partialOrUndefined(d.partial));
    }
    if (d.expected.size === undefined && total !== undefined) d.expected.size = total;
    o.onResponse?.(response);
    await hashes.catchUp(have);
    let bytes = have;
    if (!response.body) throw new Transient('the response has no body');
    // Node's web streams are async-iterable (the DOM typings that dompurify brings in do not say so).
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => stall.abort(), o.stallTimeoutMs);
      hashes.update(chunk);
      pending.push(chunk);
      pendingBytes += chunk.byteLength;
      if (pendingBytes >= WRITE_BATCH_BYTES) await flush();
      bytes += chunk.byteLength;
      received();
      o.onBytes?.(bytes, d.expected.size);
    }
    await flush();
    if (d.expected.size !== undefined && bytes < d.expected.size) throw new Transient(`the connection closed after ${bytes} of ${d.expected.size} bytes`);
  } catch (err) {
    // What arrived before the failure is good: keep it for the next attempt (a second failure here changes nothing).
    await flush().catch(() => undefined);
    if (stall.signal.aborted && !o.signal?.aborted) throw new Transient(`no data for ${o.stallTimeoutMs / 1000} s`);
    throw err;
  } finally {
    clearTimeout(stallTimer);
    await file?.close();
  }
}

/** Checks the complete partial file and renames it to its final name. */
function finish(d: ResumableDownload, hashes: PrefixHashes): DownloadResult {
  const size = fileSize(d.partial);
  const wrong = (what: string): never => {
    fs.rmSync(d.partial, { force: true });
    throw new DownloadError('checksum', `${d.url}: ${what}; the downloaded file was deleted, run the same command again to fetch it anew`);
  };
  if (d.expected.size !== undefined && size !== d.expected.size) wrong(`${size} bytes received, ${d.expected.size} announced`);
  const digest = hashes.digest(size);
  if (d.expected.sha256 && digest.sha256 !== d.expected.sha256.toLowerCase()) wrong(`sha256 ${digest.sha256} does not match the announced ${d.expected.sha256}`);
  if (d.expected.gitSha1 && digest.gitSha1 !== d.expected.gitSha1.toLowerCase()) wrong(`git blob sha1 ${digest.gitSha1} does not match the announced ${d.expected.gitSha1}`);
  fs.renameSync(d.partial, d.final);
  const verified = d.expected.sha256 ? 'sha256' : d.expected.gitSha1 ? 'git-sha1' : d.expected.size !== undefined ? 'size' : 'nothing';
  return { size, sha256: digest.sha256, verified };
}

/**
 * sha256 (and, when one is expected, the git blob sha1, which hashes a "blob SIZE\0" header first) of the partial
 * file's bytes, kept as they arrive; bytes already on disk from an earlier run are read once to catch up.
 */
class PrefixHashes {
  private sha256: Hash = createHash('sha256');
  private chunks: Uint8Array[] = [];
  private hashed = 0;

  constructor(private readonly file: string, private readonly expected: Expected) {}

  reset(): void {
    this.sha256 = createHash('sha256');
    this.chunks = [];
    this.hashed = 0;
  }

  /** Hashes bytes [hashed, upTo) from the file, so that streaming continues at `upTo`. */
  async catchUp(upTo: number): Promise<void> {
    if (this.hashed > upTo) this.reset();
    if (this.hashed === upTo) return;
    const stream = fs.createReadStream(this.file, { start: this.hashed, end: upTo - 1 });
    for await (const chunk of stream as AsyncIterable<Buffer>) this.update(chunk);
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    // The git header needs the final size: keep the bytes of the small non-LFS files that carry a git sha1.
    if (this.expected.gitSha1) this.chunks.push(Uint8Array.from(chunk));
    this.hashed += chunk.byteLength;
  }

  digest(size: number): { sha256: string; gitSha1: string | undefined } {
    let gitSha1: string | undefined;
    if (this.expected.gitSha1) {
      const git = createHash('sha1').update(`blob ${size}\0`);
      for (const c of this.chunks) git.update(c);
      gitSha1 = git.digest('hex');
    }
    return { sha256: this.sha256.digest('hex'), gitSha1 };
  }
}

export function fileSize(file: string): number {
  return fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
}

function partialOrUndefined(file: string): string | undefined {
  return fileSize(file) > 0 ? file : undefined;
}

/** The system error code under a fetch failure ("fetch failed" wraps it in `cause`). */
function causeCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  }
  return undefined;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
