// probe() answers, never throws for a missing GPU, and names exactly what is missing.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { type NativeAddon, loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { RuntimeError } from '../../src/runtime/errors';
import { tempDir } from '../support/paths';
import { nvidiaDriverPresent } from './expectations';

function addon(): NativeAddon {
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  return load.addon;
}

test('without an NVIDIA driver: available false, with the missing library named', { skip: nvidiaDriverPresent() && 'an NVIDIA driver is present' }, async () => {
  const probe = await addon().probe();
  assert.equal(probe.available, false);
  assert.match(probe.reason ?? '', /libcuda\.so\.1: cannot open shared object file/);
  if (!addon().build.cuda) assert.match(probe.reason ?? '', /^this addon was built without CUDA/);
  assert.deepEqual(probe.devices, []);
  assert.equal(probe.libraries.cudaDriver.loaded, false);
  assert.equal(probe.libraries.cudaDriver.path, 'libcuda.so.1');
});

test('with an NVIDIA driver and a CUDA build: available, with every GPU described', { skip: (!nvidiaDriverPresent() || !addon().build.cuda) && 'no NVIDIA driver or a CPU-only build' }, async () => {
  const probe = await addon().probe();
  assert.equal(probe.available, true, probe.reason);
  assert.ok(probe.devices.length > 0);
  for (const device of probe.devices) {
    assert.ok(device.name.length > 0);
    assert.ok(device.totalBytes > 2 ** 30 && device.freeBytes > 0 && device.freeBytes <= device.totalBytes, JSON.stringify(device));
    assert.match(device.computeCapability, /^\d+\.\d+$/);
  }
  assert.equal(probe.libraries.cublasLt.loaded, true);
  assert.deepEqual(probe.libraries.cublasLt.missingSymbols, []);
});

test('cuBLASLt is looked for under the soname of the CUDA major it was built with', async () => {
  const a = addon();
  const probe = await a.probe();
  const major = a.build.cuda ? a.build.cudaVersion!.split('.')[0] : '13';
  assert.match(probe.libraries.cublasLt.path, new RegExp(`libcublasLt\\.so\\.${major}`));
  if (!probe.libraries.cublasLt.loaded) assert.match(probe.libraries.cublasLt.error ?? '', /cannot open shared object file/);
});

test('a library that is not the CUDA driver: the reason lists the missing entry points', async () => {
  const probe = await addon().probe({ libcuda: 'libm.so.6' });
  assert.equal(probe.available, false);
  assert.match(probe.reason ?? '', /libm\.so\.6 is not a usable CUDA driver library: it lacks cuInit, cuDriverGetVersion/);
  assert.equal(probe.libraries.cudaDriver.loaded, true);
  assert.ok(probe.libraries.cudaDriver.missingSymbols.includes('cuInit'));
});

test('a driver path that does not exist: the reason carries the loader\'s message', async () => {
  const missing = path.join(tempDir(), 'libcuda.so.1');
  const probe = await addon().probe({ libcuda: missing, cublasLt: missing });
  assert.equal(probe.available, false);
  assert.ok((probe.reason ?? '').includes(`${missing}: cannot open shared object file`), probe.reason);
  assert.equal(probe.libraries.cublasLt.path, missing);
});

test('bad probe options are a typed BAD_ARGUMENT error, thrown at the call', () => {
  const a = addon();
  assert.throws(() => a.probe(42 as never), (err: unknown) => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && /options must be an object/.test(err.message));
  assert.throws(() => a.probe({ libcuda: 7 } as never), (err: unknown) => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && /options\.libcuda/.test(err.message));
});
