// `cskv-code pull`: a model from the Hugging Face Hub (or a GGUF file at a plain URL) onto this machine, in the
// hub cache layout so that discovery and other tools find it. What is fetched:
//   ORG/NAME                a safetensors repo: config, tokenizer, chat template and the weights the index names;
//                           a GGUF repo: its Q4_K_M file (llama.cpp's default), or the only GGUF there is
//   ORG/NAME:FILE           that file (a .gguf; every part of a split one)
//   ORG/NAME:Q8_0           the GGUF whose name carries that quantisation (as `llama-server -hf` and Ollama take it)
//   https://huggingface.co/ORG/NAME/resolve/REV/FILE (or /blob/): the same as ORG/NAME:FILE at REV
//   any other http(s) URL of a .gguf file: into --dir, else llama.cpp's cache ($LLAMA_CACHE, ~/.cache/llama.cpp)
// Nothing here runs unless the user asks for a pull: no other command touches the network.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DownloadError } from '../errors';
import { hubCacheDir } from '../model/discovery';
import { splitPartOf, splitPartPath } from '../model/ggufFile';
import type { PlannedFile, PullEvent } from '../../shared/pullEvents';
import { formatBytes } from '../../shared/formatBytes';
import { type HubAccess, type HubFile, type HubListing, authHeaders, gatedError, hubEndpoint, hubToken, listRepo, refusal, resolveUrl, withTimeout } from './hubApi';
import { HubCacheRepo } from './hubCache';
import { DEFAULT_PARALLEL_FILES, forEachInParallel } from './parallelFiles';
import { type DownloadOptions, downloadResumable, fileSize } from './resumableDownload';

export interface PullOptions {
  /** The hub cache (default: HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Where a plain URL's file goes (default llama.cpp's cache). */
  dir?: string;
  /** Branch, tag or commit of a Hub repo (default main). */
  revision?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onEvent?: (event: PullEvent) => void;
  /** Retry and stall settings of each file's download. */
  transfer?: Pick<DownloadOptions, 'retries' | 'retryDelayMs' | 'stallTimeoutMs'>;
  /** Files fetched at once (default DEFAULT_PARALLEL_FILES). */
  parallel?: number;
}

/** The quantisation taken from a GGUF repo when the user names none: llama.cpp's choice. */
export const DEFAULT_GGUF_QUANT = 'Q4_K_M';

/** What the runtime reads from a safetensors model folder besides the weights. */
const MODEL_FOLDER_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.json', 'chat_template.jinja'];

type Target =
  | { kind: 'hub'; repo: string; revision: string; selector: string | undefined }
  | { kind: 'url'; url: URL };

/** Pulls `target` and returns what --model / cskv.modelPath takes: the snapshot folder or the (first) GGUF file. */
export async function pull(target: string, options: PullOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const parsed = parseTarget(target, hubEndpoint(env), options.revision);
  if (env.HF_HUB_OFFLINE && env.HF_HUB_OFFLINE !== '0' && env.HF_HUB_OFFLINE.toLowerCase() !== 'false') {
    throw new DownloadError('offline', 'HF_HUB_OFFLINE is set: downloads are turned off (unset it to pull)');
  }
  const modelPath = parsed.kind === 'hub' ? await pullFromHub(parsed, options, env) : await pullUrl(parsed.url, options, env);
  options.onEvent?.({ event: 'done', modelPath });
  return modelPath;
}

export function parseTarget(target: string, endpoint: string, revision: string | undefined): Target {
  const bad = (): never => {
    throw new DownloadError('bad-target', `"${target}" is not a model to pull: give ORG/NAME, ORG/NAME:FILE.gguf, ORG/NAME:QUANT (e.g. Q4_K_M) or an http(s) URL of a .gguf file`);
  };
  if (/^https?:\/\//i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return bad();
    }
    const hubHosts = new Set([new URL(endpoint).host, 'huggingface.co', 'hf.co']);
    const m = /^\/([^/]+\/[^/]+)\/(?:resolve|blob)\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (hubHosts.has(url.host) && m) {
      return { kind: 'hub', repo: m[1]!, revision: decodeURIComponent(m[2]!), selector: decodeURIComponent(m[3]!) };
    }
    return { kind: 'url', url };
  }
  const m = /^(?:(?:https?:\/\/)?(?:hf\.co|huggingface\.co)\/)?([\w.-]+\/[\w.-]+)(?::(.+))?$/.exec(target);
  if (!m) return bad();
  return { kind: 'hub', repo: m[1]!, revision: revision ?? 'main', selector: m[2] };
}

// ---- the Hub ----

async function pullFromHub(t: Extract<Target, { kind: 'hub' }>, options: PullOptions, env: NodeJS.ProcessEnv): Promise<string> {
  const access: HubAccess = { endpoint: hubEndpoint(env), token: hubToken(env), signal: options.signal };
  const listing = await listRepo(access, t.repo, t.revision);
  const { files, gguf } = selectFiles(listing, t.selector);
  // The listing of a gated repo is public, its files are not: without a token, say so before any transfer.
  if (listing.gated && !access.token) throw gatedError(access, t.repo);
  const cache = new HubCacheRepo(options.cacheDir ?? hubCacheDir(env), t.repo);
  const planned: PlannedFile[] = files.map((f) => ({ name: f.path, bytes: f.size, cached: cache.has(listing.commit, f.path, f.size) }));
  const blobs = cache.ensureBlobsDir();
  checkFreeSpace(blobs, files.filter((_, i) => !planned[i]!.cached).map((f) => (f.size ?? 0) - fileSize(cache.incomplete(etagOf(f, t.repo)))));
  const progress = new Progress(planned, options.onEvent);
  options.onEvent?.({ event: 'plan', source: `${access.endpoint}/${t.repo} @ ${listing.commit}`, destination: cache.snapshot(listing.commit), files: planned, totalBytes: progress.total });
  // Each blob once, however many paths hold it (two downloads of one blob would share its partial file).
  const byEtag = new Map<string, HubFile[]>();
  for (const [i, file] of files.entries()) if (!planned[i]!.cached) byEtag.set(etagOf(file, t.repo), [...(byEtag.get(etagOf(file, t.repo)) ?? []), file]);
  await forEachInParallel([...byEtag], options.parallel ?? DEFAULT_PARALLEL_FILES, options.signal, async ([etag, paths], signal) => {
    const file = paths[0]!;
    if (!fs.existsSync(cache.blob(etag))) {
      const result = await downloadResumable({
        url: resolveUrl(access, t.repo, listing.commit, file.path),
        headers: authHeaders(access),
        partial: cache.incomplete(etag),
        final: cache.blob(etag),
        expected: { size: file.size, sha256: file.sha256, gitSha1: file.gitOid },
        refused: (response) => refusal(response, access, t.repo, t.revision, file.path),
      }, { ...options.transfer, signal, ...progress.callbacks(file.path) });
      options.onEvent?.({ event: 'file-done', file: file.path, path: cache.pointer(listing.commit, file.path), verified: result.verified });
    }
    for (const p of paths) {
      cache.link(listing.commit, p.path, etag);
      progress.fileDone(p.path);
    }
  });
  cache.writeRef(t.revision, listing.commit);
  return gguf ? cache.pointer(listing.commit, gguf) : cache.snapshot(listing.commit);
}

function etagOf(file: HubFile, repo: string): string {
  const etag = file.sha256 ?? file.gitOid;
  if (!etag) throw new DownloadError('http', `${repo}/${file.path}: the Hub gave no sha256 or git oid for it; cannot place it in the cache`);
  return etag;
}

/** The files of the listing the runtime needs, and the GGUF file that is the model (undefined for a folder). */
export function selectFiles(listing: HubListing, selector: string | undefined): { files: HubFile[]; gguf: string | undefined } {
  const byPath = new Map(listing.files.map((f) => [f.path, f]));
  const ggufs = listing.files.filter((f) => /\.gguf$/i.test(f.path) && !/(^|\/)mmproj/i.test(f.path) && (splitPartOf(f.path)?.no ?? 1) === 1);
  const withParts = (first: HubFile): { files: HubFile[]; gguf: string } => {
    const split = splitPartOf(first.path);
    const parts = [first];
    for (let k = 2; split && k <= split.count; k++) {
      const part = byPath.get(splitPartPath(first.path, k, split.count));
      if (!part) throw new DownloadError('not-found', `${listing.repo} has part 1 of ${first.path.replace(/-00001-of-/, '-0000?-of-')} but not part ${k}`);
      parts.push(part);
    }
    return { files: parts, gguf: first.path };
  };
  const available = (): string => ggufs.length === 0 ? 'it has no GGUF files'
    : `its GGUF files: ${ggufs.map((f) => `${f.path}${f.size ? ` (${formatBytes(sizeOfModel(f))})` : ''}`).join(', ')}`;
  const sizeOfModel = (f: HubFile): number => withParts(f).files.reduce((sum, p) => sum + (p.size ?? 0), 0);

  if (selector !== undefined) {
    const exact = byPath.get(selector);
    if (exact) {
      if (!/\.gguf$/i.test(exact.path)) throw new DownloadError('bad-target', `${listing.repo}/${selector} is not a .gguf file; pull ${listing.repo} for the whole model folder`);
      const split = splitPartOf(exact.path);
      if (split && split.no !== 1) return withParts(byPath.get(splitPartPath(exact.path, 1, split.count)) ?? exact);
      return withParts(exact);
    }
    const tag = selector.toLowerCase();
    const matching = ggufs.filter((f) => path.posix.basename(f.path).toLowerCase().replace(/-\d{5}-of-\d{5}\.gguf$|\.gguf$/, '').split(/[-._]/).join('-').includes(tag.split(/[-._]/).join('-')));
    if (matching.length === 1) return withParts(matching[0]!);
    if (matching.length > 1) throw new DownloadError('bad-target', `"${selector}" matches several files of ${listing.repo}: ${matching.map((f) => f.path).join(', ')}; name one with ${listing.repo}:FILE`);
    throw new DownloadError('not-found', `${listing.repo} has no file "${selector}" and no GGUF of that quantisation; ${available()}`);
  }
  const weights = listing.files.filter((f) => /\.safetensors$/i.test(f.path) && !f.path.includes('/'));
  if (byPath.has('config.json') && weights.length > 0) {
    const index = byPath.get('model.safetensors.index.json');
    // consolidated*.safetensors (Mistral's own format) duplicate the transformers weights: never both.
    const shards = weights.filter((f) => !f.path.startsWith('consolidated'));
    const extras = MODEL_FOLDER_FILES.map((name) => byPath.get(name)).filter((f): f is HubFile => f !== undefined);
    return { files: [...extras, ...(index ? [index] : []), ...shards], gguf: undefined };
  }
  if (ggufs.length === 1) return withParts(ggufs[0]!);
  const preferred = ggufs.filter((f) => f.path.toUpperCase().includes(DEFAULT_GGUF_QUANT));
  if (preferred.length === 1) return withParts(preferred[0]!);
  if (ggufs.length === 0) throw new DownloadError('bad-target', `${listing.repo} holds neither a transformers model (config.json and *.safetensors) nor GGUF files`);
  throw new DownloadError('bad-target', `${listing.repo} holds several GGUF files and none is ${DEFAULT_GGUF_QUANT}; name one as ${listing.repo}:QUANT or ${listing.repo}:FILE. ${available()}`);
}

// ---- a plain URL ----

interface PartialValidator {
  url: string;
  validator: string;
}

async function pullUrl(url: URL, options: PullOptions, env: NodeJS.ProcessEnv): Promise<string> {
  const name = decodeURIComponent(path.posix.basename(url.pathname));
  if (!/\.gguf$/i.test(name)) throw new DownloadError('bad-target', `${url.href} does not name a .gguf file; a model folder comes from the Hub as ORG/NAME`);
  const dir = options.dir ?? (env.LLAMA_CACHE || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'llama.cpp'));
  fs.mkdirSync(dir, { recursive: true });
  const split = splitPartOf(name);
  const names = split ? Array.from({ length: split.count }, (_, k) => splitPartPath(name, k + 1, split.count)) : [name];
  const urls = names.map((n) => {
    const u = new URL(url.href);
    if (n !== name) u.pathname = path.posix.join(path.posix.dirname(url.pathname), encodeURIComponent(n));
    return u;
  });
  const heads = await Promise.all(urls.map((u) => headOf(u, options.signal)));
  const planned: PlannedFile[] = names.map((n, i) => ({ name: n, bytes: heads[i]!.size, cached: fs.existsSync(path.join(dir, n)) }));
  checkFreeSpace(dir, names.flatMap((n, i) => (planned[i]!.cached ? [] : [(heads[i]!.size ?? 0) - fileSize(path.join(dir, `${n}.partial`))])));
  const progress = new Progress(planned, options.onEvent);
  options.onEvent?.({ event: 'plan', source: url.href, destination: dir, files: planned, totalBytes: progress.total });
  const pending = [...names.entries()].filter(([i]) => !planned[i]!.cached);
  await forEachInParallel(pending, options.parallel ?? DEFAULT_PARALLEL_FILES, options.signal, async ([i, n], signal) => {
    const final = path.join(dir, n);
    const partial = `${final}.partial`;
    const validatorFile = `${partial}.json`;
    let saved: PartialValidator | undefined;
    try {
      saved = JSON.parse(fs.readFileSync(validatorFile, 'utf8')) as PartialValidator;
    } catch {
      saved = undefined;
    }
    // A partial file from another URL, or of content that has changed since, cannot be continued.
    if (fileSize(partial) > 0 && (saved?.url !== urls[i]!.href || (heads[i]!.validator && saved.validator !== heads[i]!.validator))) fs.rmSync(partial, { force: true });
    const result = await downloadResumable({
      url: urls[i]!.href, partial, final, expected: { size: heads[i]!.size }, ifRange: saved?.validator,
    }, {
      ...options.transfer, signal, ...progress.callbacks(n),
      onResponse: (response) => {
        const validator = strongValidator(response.headers);
        if (validator) fs.writeFileSync(validatorFile, JSON.stringify({ url: urls[i]!.href, validator } satisfies PartialValidator));
      },
    });
    fs.rmSync(validatorFile, { force: true });
    options.onEvent?.({ event: 'file-done', file: n, path: final, verified: result.verified });
    progress.fileDone(n);
  });
  return path.join(dir, names[0]!);
}

/** Size and validator from a HEAD request; a server that refuses HEAD gives neither (the GET will tell). */
async function headOf(url: URL, signal: AbortSignal | undefined): Promise<{ size: number | undefined; validator: string | undefined }> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'HEAD', headers: { 'Accept-Encoding': 'identity' }, signal: withTimeout(signal), redirect: 'follow' });
  } catch (err) {
    if (signal?.aborted) throw new DownloadError('cancelled', 'cancelled');
    const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new DownloadError('offline', `cannot reach ${url.host} (${code}): is this machine offline?`);
  }
  if (response.status === 404) throw new DownloadError('not-found', `${url.href} does not exist (404)`);
  if (response.status === 401 || response.status === 403) throw new DownloadError(response.status === 401 ? 'unauthorized' : 'forbidden', `${url.href}: access refused (${response.status})`);
  if (!response.ok) return { size: undefined, validator: undefined };
  const length = response.headers.get('content-length');
  return { size: length === null ? undefined : Number(length), validator: strongValidator(response.headers) };
}

/** If-Range takes a strong ETag or a Last-Modified date. */
function strongValidator(headers: Headers): string | undefined {
  const etag = headers.get('etag');
  if (etag && !etag.startsWith('W/')) return etag;
  return headers.get('last-modified') ?? undefined;
}

// ---- shared by both ----

function checkFreeSpace(dir: string, needs: number[]): void {
  const need = needs.reduce((a, b) => a + Math.max(0, b), 0);
  const stat = fs.statfsSync(dir);
  const free = stat.bavail * stat.bsize;
  if (need > free) {
    throw new DownloadError('disk-full', `the download needs ${formatBytes(need)} but ${dir} has ${formatBytes(free)} free: free some space (or point HF_HUB_CACHE / --dir elsewhere) and run it again`);
  }
}

/**
 * Turns per-file byte counts into progress events over the whole pull, whose files may arrive side by side: rate
 * over the last seconds (bytes moved in this run only: what an earlier run left counts as received, not as
 * speed), and the time left.
 */
class Progress {
  readonly total: number | undefined;
  /** Bytes of files finished, and of files being fetched, by name. */
  private readonly done = new Map<string, number>();
  private readonly inFlight = new Map<string, number>();
  /** Bytes that were already there when their file started. */
  private resumed = 0;
  private samples: Array<{ at: number; moved: number }> = [];
  private lastEmit = 0;

  constructor(private readonly files: PlannedFile[], private readonly emit: ((e: PullEvent) => void) | undefined) {
    const pending = files.filter((f) => !f.cached);
    this.total = pending.some((f) => f.bytes === undefined) ? undefined : pending.reduce((a, f) => a + f.bytes!, 0);
  }

  private get received(): number {
    let sum = 0;
    for (const b of this.done.values()) sum += b;
    for (const b of this.inFlight.values()) sum += b;
    return sum;
  }

  callbacks(file: string): Pick<DownloadOptions, 'onStart' | 'onBytes' | 'onRetry'> {
    const size = this.files.find((f) => f.name === file)?.bytes;
    return {
      onStart: (resumeFrom, total) => {
        this.inFlight.set(file, resumeFrom);
        this.resumed += resumeFrom;
        this.emit?.({ event: 'start', file, bytes: total ?? size, resumeFrom });
      },
      onBytes: (bytes, total) => {
        this.inFlight.set(file, bytes);
        const now = Date.now();
        const overallBytes = this.received;
        this.samples.push({ at: now, moved: overallBytes - this.resumed });
        while (this.samples.length > 2 && now - this.samples[0]!.at > 5000) this.samples.shift();
        const complete = total !== undefined && bytes >= total;
        if (!complete && now - this.lastEmit < 250) return;
        this.lastEmit = now;
        const first = this.samples[0]!;
        const elapsed = (now - first.at) / 1000;
        const rate = elapsed > 0 ? Math.max(0, (overallBytes - this.resumed - first.moved) / elapsed) : 0;
        const left = this.total === undefined ? undefined : this.total - overallBytes;
        this.emit?.({
          event: 'progress', file, bytes, total: total ?? size, overallBytes, overallTotal: this.total,
          bytesPerSecond: rate, etaSeconds: left !== undefined && rate > 0 ? Math.max(0, left) / rate : undefined,
        });
      },
      onRetry: (attempt, reason, resumeFrom) => this.emit?.({ event: 'retry', file, attempt, reason, resumeFrom }),
    };
  }

  fileDone(file: string): void {
    this.done.set(file, this.files.find((f) => f.name === file)?.bytes ?? this.inFlight.get(file) ?? 0);
    this.inFlight.delete(file);
  }
}
