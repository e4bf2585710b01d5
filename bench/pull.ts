// What `pull`'s checks cost: one LFS file from a loopback Hub (test/support/loopbackHub.ts) fetched by `pull`
// (listing, Range-capable streaming into the .incomplete file, sha256 on the fly, rename, snapshot link) against
// a bare fetch streamed to a file (what a download without resume or verification does), alternating in one
// run, median of --repeat. Also a resume from half the file (the kept half is read once to seed the hash).
// The server runs in its own process, as a remote server would: only the client's work is on this process's thread.
// Prints a table and writes bench/results/pull.json.
//   node out/bench/pull.js [--mb 256] [--repeat 3] [--out FILE]
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { parseArgs } from 'node:util';
import { pull } from '../src/runtime/download/pull';
import { LoopbackHub, sha256Of } from '../test/support/loopbackHub';

const { values: v } = parseArgs({ options: { mb: { type: 'string', default: '256' }, repeat: { type: 'string', default: '3' }, out: { type: 'string' }, serve: { type: 'string' } } });
const bytes = Number(v.mb) * 1024 * 1024;
const repeat = Number(v.repeat);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The child: serves the file given on its command line and sends its endpoint back. */
async function serve(file: string): Promise<void> {
  const hub = await new LoopbackHub().start();
  hub.repos.set('bench/model-GGUF', { commit: 'b'.repeat(40), files: new Map([['model-Q8_0.gguf', { data: fs.readFileSync(file), lfs: true }]]) });
  process.send!(hub.endpoint);
  process.on('disconnect', () => void hub.stop().then(() => process.exit(0)));
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-bench-pull-'));
  const data = randomBytes(bytes);
  fs.writeFileSync(path.join(work, 'model.gguf'), data);
  const server = fork(__filename, ['--serve', path.join(work, 'model.gguf')]);
  const endpoint = await new Promise<string>((resolve) => server.once('message', (m) => resolve(String(m))));
  const hub = { endpoint, stop: async (): Promise<void> => void server.disconnect() };
  const env = { HF_ENDPOINT: hub.endpoint, HF_TOKEN_PATH: path.join(work, 'no-token') };
  const times: Record<'bare fetch to a file' | 'pull (verified, resumable)' | 'pull resuming from 50%', number[]> = {
    'bare fetch to a file': [], 'pull (verified, resumable)': [], 'pull resuming from 50%': [],
  };
  try {
    for (let r = 0; r < repeat; r++) {
      let t = performance.now();
      const response = await fetch(`${hub.endpoint}/cdn/${sha256Of(data)}`);
      await pipeline(Readable.fromWeb(response.body as WebReadableStream), fs.createWriteStream(path.join(work, `bare-${r}`)));
      times['bare fetch to a file'].push(performance.now() - t);
      fs.rmSync(path.join(work, `bare-${r}`));

      const cacheDir = path.join(work, `hub-${r}`);
      t = performance.now();
      await pull('bench/model-GGUF', { cacheDir, env });
      times['pull (verified, resumable)'].push(performance.now() - t);

      const resumeDir = path.join(work, `resume-${r}`);
      const blobs = path.join(resumeDir, 'models--bench--model-GGUF', 'blobs');
      fs.mkdirSync(blobs, { recursive: true });
      fs.writeFileSync(path.join(blobs, `${sha256Of(data)}.incomplete`), data.subarray(0, bytes / 2));
      t = performance.now();
      await pull('bench/model-GGUF', { cacheDir: resumeDir, env });
      times['pull resuming from 50%'].push(performance.now() - t);
      fs.rmSync(cacheDir, { recursive: true });
      fs.rmSync(resumeDir, { recursive: true });
    }
  } finally {
    await hub.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  const base = median(times['bare fetch to a file']);
  const rows = Object.entries(times).map(([name, ms]) => ({ name, medianMs: median(ms), mbPerSecond: bytes / 1024 / 1024 / (median(ms) / 1000), vsBare: median(ms) / base, runsMs: ms }));
  process.stdout.write(`one ${v.mb} MB file over loopback, median of ${repeat} (alternating)\n`);
  process.stdout.write(`${'how'.padEnd(28)}  ${'ms'.padStart(8)}  ${'MB/s'.padStart(8)}  ${'x bare'.padStart(7)}\n`);
  for (const r of rows) process.stdout.write(`${r.name.padEnd(28)}  ${r.medianMs.toFixed(0).padStart(8)}  ${r.mbPerSecond.toFixed(0).padStart(8)}  ${r.vsBare.toFixed(2).padStart(7)}\n`);
  const out = v.out ?? path.join(__dirname, '..', '..', 'bench', 'results', 'pull.json');
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), fileMB: Number(v.mb), repeat, loadAverage: os.loadavg(), rows }, null, 2)}\n`);
  process.stdout.write(`wrote ${out}\n`);
}

if (v.serve) void serve(v.serve);
else void main();
