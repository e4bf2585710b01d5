// The CUDA probe runs in a child process: a GPU driver that crashes or hangs in it leaves the sidecar running and
// becomes a reason. Stand-in modules play the driver's part.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { probeInChildProcess } from '../../src/runtime/backends/isolatedProbe';
import { tempDir } from '../support/paths';

function standIn(body: string): string {
  const file = path.join(tempDir(), 'probe-stand-in.js');
  fs.writeFileSync(file, `exports.probe = (options) => { ${body} };\n`);
  return file;
}

test('a probe that answers: its result, with the options passed through', async () => {
  const file = standIn(`return Promise.resolve({ available: false, reason: 'no GPU: ' + options.libcuda, devices: [] });`);
  const result = await probeInChildProcess(file, { libcuda: 'libfake.so' });
  assert.deepEqual(result, { ok: true, probe: { available: false, reason: 'no GPU: libfake.so', devices: [] } });
});

test('a driver that crashes the process: a reason naming the signal', async () => {
  const result = await probeInChildProcess(standIn(`process.kill(process.pid, 'SIGSEGV');`));
  assert.deepEqual(result, { ok: false, reason: 'the CUDA probe crashed (SIGSEGV) in the GPU driver' });
});

test('a driver that hangs: a reason once the time limit passes, and the child is killed', async () => {
  const result = await probeInChildProcess(standIn(`setInterval(() => undefined, 1000); return new Promise(() => undefined);`), {}, 1500);
  assert.deepEqual(result, { ok: false, reason: 'the CUDA probe did not finish within 1.5 s (the GPU driver may be hung)' });
});

test('a probe that rejects, or a module that is not there: the error as the reason', async () => {
  const rejected = await probeInChildProcess(standIn(`return Promise.reject(new Error('cuInit returned 999'));`));
  assert.deepEqual(rejected, { ok: false, reason: 'the CUDA probe failed: cuInit returned 999' });
  const missing = await probeInChildProcess(path.join(tempDir(), 'nothing.node'));
  assert.equal(missing.ok, false);
  assert.match(missing.ok ? '' : missing.reason, /^the CUDA probe failed: .*Cannot find module/);
});
