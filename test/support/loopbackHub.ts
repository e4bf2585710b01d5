// A server on the loopback interface that speaks the parts of the Hugging Face Hub's HTTP API a pull uses, over
// real files, so that downloads are tested without the internet:
//   GET  /api/models/ORG/NAME/revision/REV?blobs=true    commit, siblings with size, blobId and lfs.sha256
//   GET|HEAD /ORG/NAME/resolve/REV/PATH                  git files served with their git oid as ETag; LFS files
//        redirected (302) to /cdn/SHA256 with X-Linked-Etag / X-Linked-Size / X-Repo-Commit, as the Hub does
//   GET|HEAD /cdn/SHA256, /files/NAME                    the bytes, with Range (206 + Content-Range), If-Range,
//        ETag and Last-Modified
// with the Hub's refusals (401/403 GatedRepo, 401 RepoNotFound, 404 EntryNotFound / RevisionNotFound) and faults
// a test queues for the next content responses: cut the connection after N bytes, answer 500, stall, trickle
// slowly, or flip a byte. Every request is logged with its Range header, and the most content responses streaming
// at one time is kept (to see files fetched side by side).
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RepoFile {
  data: Buffer;
  /** Stored in Git LFS (weights, GGUF): served through the CDN redirect and listed with its sha256. */
  lfs: boolean;
}

export interface LoopbackRepo {
  commit: string;
  files: Map<string, RepoFile>;
  /** Downloads need a token from `accepted` (the listing stays public, as on the Hub). */
  gated?: boolean;
  accepted?: string[];
  /** Sizes the listing announces instead of the real ones (to fake a huge model). */
  announcedSize?: Map<string, number>;
}

export type Fault = (
  | { kind: 'cut'; after: number }          // send `after` bytes of the body, then destroy the socket
  | { kind: 'status'; status: number }      // answer with this status and no body
  | { kind: 'stall'; after: number }        // send `after` bytes, then nothing (the socket stays open)
  | { kind: 'slow'; bytesPerSecond: number; corruptAt?: number } // trickle the whole body (flipping one byte)
  | { kind: 'corrupt'; at: number }         // flip the byte at this offset of the content
) & {
  /** Only for a content request whose path contains this (default: the next content request of any file). */
  only?: string;
};

export interface LoggedRequest {
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
  /** Body bytes sent. */
  sent: number;
}

// Memoised: the server names every file by its hashes on each request, and a benchmark serves hundreds of MB.
const digests = new WeakMap<Buffer, { sha256?: string; gitOid?: string }>();
const memo = (data: Buffer, key: 'sha256' | 'gitOid', compute: () => string): string => {
  const known = digests.get(data) ?? {};
  digests.set(data, known);
  return (known[key] ??= compute());
};
export const sha256Of = (data: Buffer): string => memo(data, 'sha256', () => createHash('sha256').update(data).digest('hex'));
export const gitOidOf = (data: Buffer): string => memo(data, 'gitOid', () => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex'));

export class LoopbackHub {
  /** The repos; a second server given the same map serves their content as a CDN on another origin. */
  repos = new Map<string, LoopbackRepo>();
  /** Plain files under /files/NAME (a GGUF on some web server). */
  readonly plainFiles = new Map<string, { data: Buffer; lastModified: Date }>();
  readonly faults: Fault[] = [];
  /** Where LFS downloads are redirected: this server (''), or another origin, as the Hub's CDN is. */
  cdnEndpoint = '';
  readonly log: LoggedRequest[] = [];
  /** Content responses streaming now, and the most there have been at once (a test may reset it to 0). */
  streaming = 0;
  peakStreaming = 0;
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  private readonly sockets = new Set<import('node:net').Socket>();
  endpoint = '';

  async start(): Promise<this> {
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Body bytes served for content requests of `pathPart` (CDN or plain files). */
  bytesSent(pathPart: string): number {
    return this.log.filter((r) => r.path.includes(pathPart)).reduce((a, r) => a + r.sent, 0);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.endpoint);
    const entry: LoggedRequest = { method: req.method ?? 'GET', path: url.pathname, range: req.headers.range, authorization: req.headers.authorization, sent: 0 };
    this.log.push(entry);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) return this.listing(decodeURIComponent(api[1]!), decodeURIComponent(api[2]!), res);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) return this.resolve(req, res, resolve[1]!, decodeURIComponent(resolve[2]!), resolve[3]!.split('/').map(decodeURIComponent).join('/'), entry);
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn) {
      const file = [...this.repos.values()].flatMap((r) => [...r.files.values()]).find((f) => sha256Of(f.data) === cdn[1]);
      if (file) return this.content(req, res, file.data, `"${cdn[1]}"`, undefined, entry);
    }
    const plain = /^\/files\/(.+)$/.exec(url.pathname);
    const plainFile = plain && this.plainFiles.get(decodeURIComponent(plain[1]!));
    if (plainFile) return this.content(req, res, plainFile.data, `"${sha256Of(plainFile.data).slice(0, 16)}"`, plainFile.lastModified, entry);
    res.writeHead(404).end();
  }

  private refuse(res: http.ServerResponse, status: number, code: string): void {
    res.writeHead(status, { 'X-Error-Code': code, 'X-Error-Message': code }).end();
  }

  private listing(repoName: string, revision: string, res: http.ServerResponse): void {
    const repo = this.repos.get(repoName);
    if (!repo) return this.refuse(res, 401, 'RepoNotFound');
    if (revision !== 'main' && revision !== repo.commit) return this.refuse(res, 404, 'RevisionNotFound');
    const siblings = [...repo.files].map(([name, f]) => {
      const size = repo.announcedSize?.get(name) ?? f.data.length;
      return f.lfs
        ? { rfilename: name, size, blobId: gitOidOf(Buffer.from(`oid sha256:${sha256Of(f.data)}\nsize ${size}\n`)), lfs: { sha256: sha256Of(f.data), size, pointerSize: 130 } }
        : { rfilename: name, size, blobId: gitOidOf(f.data) };
    });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: repoName, sha: repo.commit, gated: repo.gated ? 'manual' : false, siblings }));
  }

  private resolve(req: http.IncomingMessage, res: http.ServerResponse, repoName: string, revision: string, file: string, entry: LoggedRequest): void {
    const repo = this.repos.get(repoName);
    if (!repo) return this.refuse(res, 401, 'RepoNotFound');
    if (revision !== 'main' && revision !== repo.commit) return this.refuse(res, 404, 'RevisionNotFound');
    if (repo.gated) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!token) return this.refuse(res, 401, 'GatedRepo');
      if (!repo.accepted?.includes(token)) return this.refuse(res, 403, 'GatedRepo');
    }
    const f = repo.files.get(file);
    if (!f) return this.refuse(res, 404, 'EntryNotFound');
    if (f.lfs) {
      const sha = sha256Of(f.data);
      res.writeHead(302, { Location: `${this.cdnEndpoint}/cdn/${sha}`, 'X-Linked-Etag': `"${sha}"`, 'X-Linked-Size': String(f.data.length), 'X-Repo-Commit': repo.commit, ETag: `"${gitOidOf(f.data)}"` }).end();
      return;
    }
    this.content(req, res, f.data, `"${gitOidOf(f.data)}"`, undefined, entry, { 'X-Repo-Commit': repo.commit });
  }

  /** The bytes (or the asked range of them), through the next queued fault if any. */
  private content(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, etag: string, lastModified: Date | undefined, entry: LoggedRequest, extra: Record<string, string> = {}): void {
    const headers: Record<string, string> = { ETag: etag, 'Accept-Ranges': 'bytes', ...extra };
    if (lastModified) headers['Last-Modified'] = lastModified.toUTCString();
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    const rangeHolds = ifRange === undefined || ifRange === etag || (lastModified !== undefined && ifRange === lastModified.toUTCString());
    if (range && rangeHolds) {
      start = Number(range[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.length}` }).end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    }
    headers['Content-Length'] = String(data.length - start);
    if (req.method === 'HEAD') {
      res.writeHead(status, headers).end();
      return;
    }
    const index = this.faults.findIndex((f) => f.only === undefined || entry.path.includes(f.only));
    const fault = index >= 0 ? this.faults.splice(index, 1)[0] : undefined;
    if (fault?.kind === 'status') {
      res.writeHead(fault.status).end();
      return;
    }
    let body = data.subarray(start);
    const corruptAt = fault?.kind === 'corrupt' ? fault.at : fault?.kind === 'slow' ? fault.corruptAt : undefined;
    if (corruptAt !== undefined) {
      body = Buffer.from(body);
      if (corruptAt >= start) body[corruptAt - start] ^= 0xff;
    }
    res.writeHead(status, headers);
    this.streaming++;
    this.peakStreaming = Math.max(this.peakStreaming, this.streaming);
    res.on('close', () => this.streaming--);
    const send = (chunk: Buffer, written?: () => void): void => {
      entry.sent += chunk.length;
      res.write(chunk, written);
    };
    if (fault?.kind === 'cut' || fault?.kind === 'stall') {
      // Cut only once the bytes are with the kernel, so the client receives exactly `after` of them.
      send(body.subarray(0, fault.after), () => fault.kind === 'cut' && setTimeout(() => res.destroy(), 20));
      return;
    }
    if (fault?.kind === 'slow') {
      const step = Math.max(1, Math.floor(fault.bytesPerSecond / 20));
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        send(body.subarray(at, at + step));
        at += step;
        if (at >= body.length) {
          clearInterval(timer);
          res.end();
        }
      }, 50);
      res.on('close', () => clearInterval(timer));
      return;
    }
    send(body);
    res.end();
  }
}
