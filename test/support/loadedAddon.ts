// The native addon for tests that need it on every machine (CPU-side references, argument checks): a failed load
// fails the test with the loader's reason instead of skipping it.
import assert from 'node:assert/strict';
import { type NativeAddon, loadNativeAddon } from '../../src/runtime/backends/nativeAddon';

export function loadedAddon(): NativeAddon {
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  return load.addon;
}
