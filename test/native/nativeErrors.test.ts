// A failing native call arrives in JavaScript as a RuntimeError with a code and the failing call's name,
// never as a crash or a message on stdout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type NativeAddon, loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { RuntimeError } from '../../src/runtime/errors';

function addon(): NativeAddon {
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  return load.addon;
}

test('a CUDA call that fails becomes RuntimeError CUDA naming the operation and the call', () => {
  const a = addon();
  // Device 1000 exists nowhere: on a GPU machine cudaSetDevice says invalid device, here it says no driver.
  assert.throws(() => a.deviceMemory(1000), (err: unknown) => {
    assert.ok(err instanceof RuntimeError, String(err));
    if (a.build.cuda) {
      assert.equal(err.code, 'CUDA');
      assert.match(err.message, /^deviceMemory: cudaSetDevice\(device\) failed: cudaError\w+ \(\d+\): /);
    } else {
      assert.equal(err.code, 'BACKEND');
      assert.match(err.message, /built without CUDA/);
    }
    return true;
  });
});

test('an argument out of range is refused in native code as BAD_ARGUMENT', () => {
  const a = addon();
  for (const bad of [-1, 1.5, Number.NaN]) {
    assert.throws(() => a.deviceMemory(bad), (err: unknown) => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && /^deviceMemory: /.test(err.message), String(bad));
  }
  assert.throws(() => a.deviceMemory('0' as never), (err: unknown) => err instanceof RuntimeError && err.code === 'BAD_ARGUMENT');
});
