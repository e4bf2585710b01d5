// The parts of the Hugging Face Hub's HTTP API that a download needs, read the way huggingface_hub reads them:
//   GET  {endpoint}/api/models/{repo}/revision/{revision}?blobs=true   the commit and every file with its size,
//        git blob oid and, for LFS files, the sha256
//   GET  {endpoint}/{repo}/resolve/{commit}/{file}                    the content (redirected to a CDN for LFS)
// The endpoint is HF_ENDPOINT (mirrors, and the tests' loopback server) or https://huggingface.co; the token is
// HF_TOKEN, else the file `huggingface-cli login` writes. Refusals become errors that say what to do.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DownloadError } from '../errors';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubFile {
  /** Path in the repo. */
  path: string;
  size: number | undefined;
  /** The LFS sha256 (what the Hub sends as X-Linked-Etag) for large files. */
  sha256: string | undefined;
  /** The git blob sha1 (the ETag) for files stored in git itself. */
  gitOid: string | undefined;
}

export interface HubListing {
  repo: string;
  commit: string;
  files: HubFile[];
  /** false, or "auto" / "manual": the repo asks users to accept conditions before downloads. */
  gated: boolean | string;
}

export interface HubAccess {
  endpoint: string;
  token: string | undefined;
  signal?: AbortSignal;
}

/** A request that is not a transfer (a listing, a HEAD) should answer within this; a silent server is unreachable. */
const QUESTION_TIMEOUT_MS = 30_000;

export function withTimeout(signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(QUESTION_TIMEOUT_MS);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** HF_TOKEN, else HF_TOKEN_PATH, else the token file under HF_HOME (~/.cache/huggingface/token). */
export function hubToken(env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string | undefined {
  if (env.HF_TOKEN) return env.HF_TOKEN.trim();
  const hfHome = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'huggingface');
  const file = env.HF_TOKEN_PATH || path.join(hfHome, 'token');
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function authHeaders(access: HubAccess): Record<string, string> {
  return access.token ? { Authorization: `Bearer ${access.token}` } : {};
}

export function resolveUrl(access: HubAccess, repo: string, revision: string, file: string): string {
  return `${access.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

interface ApiSibling {
  rfilename?: unknown;
  size?: unknown;
  blobId?: unknown;
  lfs?: { sha256?: unknown; size?: unknown };
}

export async function listRepo(access: HubAccess, repo: string, revision: string): Promise<HubListing> {
  const url = `${access.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  let response: Response;
  try {
    response = await fetch(url, { headers: { Accept: 'application/json', ...authHeaders(access) }, signal: withTimeout(access.signal) });
  } catch (err) {
    if (access.signal?.aborted) throw new DownloadError('cancelled', 'cancelled');
    throw offline(access.endpoint, err);
  }
  if (!response.ok) throw refusal(response, access, repo, revision);
  const body = (await response.json()) as { sha?: unknown; siblings?: ApiSibling[]; gated?: unknown };
  if (typeof body.sha !== 'string' || !Array.isArray(body.siblings)) {
    throw new DownloadError('http', `${url}: the answer has no commit (sha) or file list (siblings); is ${access.endpoint} a Hugging Face Hub?`);
  }
  const files = body.siblings.filter((s) => typeof s.rfilename === 'string').map((s): HubFile => {
    const lfsSize = typeof s.lfs?.size === 'number' ? s.lfs.size : undefined;
    return {
      path: s.rfilename as string,
      size: lfsSize ?? (typeof s.size === 'number' ? s.size : undefined),
      sha256: typeof s.lfs?.sha256 === 'string' ? s.lfs.sha256 : undefined,
      gitOid: s.lfs === undefined && typeof s.blobId === 'string' ? s.blobId : undefined,
    };
  });
  return { repo, commit: body.sha, files, gated: typeof body.gated === 'string' || body.gated === true ? body.gated : false };
}

export function offline(endpoint: string, err: unknown): DownloadError {
  const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
  return new DownloadError('offline', `cannot reach ${endpoint} (${cause}): is this machine offline? Models already downloaded are listed by \`cskv-code models\``);
}

function tokenHelp(access: HubAccess): string {
  return `create a read token at ${access.endpoint}/settings/tokens and set HF_TOKEN to it (or run \`hf auth login\`)`;
}

/** A gated repo: what to accept where, and (without a token) how to give one. */
export function gatedError(access: HubAccess, repo: string): DownloadError {
  const page = `${access.endpoint}/${repo}`;
  return access.token
    ? new DownloadError('forbidden', `${repo} is gated and this token has no access yet: open ${page}, accept its conditions with the account the token belongs to, then run the same command again`)
    : new DownloadError('unauthorized', `${repo} is gated: open ${page} and accept its conditions, then ${tokenHelp(access)}`);
}

/** The error for a refused Hub request, from its status and the Hub's X-Error-Code header. */
export function refusal(response: Response, access: HubAccess, repo: string, revision: string, file?: string): DownloadError {
  const code = response.headers.get('x-error-code') ?? '';
  const serverMessage = response.headers.get('x-error-message');
  const what = file ? `${repo}/${file}` : repo;
  if (code === 'GatedRepo' || (response.status === 403 && file)) return gatedError(access, repo);
  if (code === 'RevisionNotFound') return new DownloadError('not-found', `${repo} has no revision "${revision}"`);
  if (code === 'EntryNotFound' || (response.status === 404 && file)) return new DownloadError('not-found', `${what} does not exist (at revision ${revision})`);
  if (code === 'RepoNotFound' || response.status === 404 || response.status === 401) {
    return new DownloadError(response.status === 401 && access.token === undefined ? 'unauthorized' : 'not-found', access.token
      ? `repository ${repo} not found, or this token cannot see it (check the name at ${access.endpoint}/models)`
      : `repository ${repo} not found (check the name at ${access.endpoint}/models); if it is private, ${tokenHelp(access)}`);
  }
  if (response.status === 403) return new DownloadError('forbidden', `${what}: access refused (403)${serverMessage ? `: ${serverMessage}` : ''}`);
  return new DownloadError('http', `${what}: HTTP ${response.status} ${response.statusText}${serverMessage ? `: ${serverMessage}` : ''}`);
}
