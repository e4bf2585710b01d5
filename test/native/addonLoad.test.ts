// The addon is built by `npm run build`, loads here whatever CUDA libraries exist, and is found and refused
// for the right reasons.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { NATIVE_ADDON_ABI, loadNativeAddon, nativeAddonCandidates } from '../../src/runtime/backends/nativeAddon';
import { repoRoot, tempDir } from '../support/paths';
import { expectedCudaHome, neededLibraries } from './expectations';

const builtFile = path.join(repoRoot, 'native', 'build', 'Release', 'cskv_native.node');

test('the build produced the addon, and it loads from the source tree', () => {
  assert.ok(fs.existsSync(builtFile), `${builtFile} missing: npm run build must build native/`);
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  assert.equal(load.file, builtFile);
  assert.equal(load.addon.abi, NATIVE_ADDON_ABI);
});

test('the addon contains the CUDA kernels exactly when nvcc was found at build time', () => {
  const load = loadNativeAddon();
  assert.ok(load.loaded);
  const cudaHome = expectedCudaHome();
  assert.equal(load.addon.build.cuda, cudaHome !== '', `find-cuda.js says "${cudaHome}"`);
  if (load.addon.build.cuda) {
    assert.match(load.addon.build.cudaVersion ?? '', /^\d+\.\d$/);
    assert.match(load.addon.build.architectures ?? '', /sm_90/);
  }
});

test('the addon links no CUDA library, so it loads on machines without one', (t) => {
  const needed = neededLibraries(builtFile);
  if (needed === undefined) return t.skip('readelf not installed');
  assert.ok(needed.length > 0, 'readelf listed no NEEDED entries at all');
  const cuda = needed.filter((lib) => /cuda|cublas|nvidia|nvrtc/i.test(lib));
  assert.deepEqual(cuda, [], `links ${cuda.join(', ')}`);
});

test('the bundle layout (dist/native/) is searched before the source tree, both inside the package only', () => {
  // A checkout in a shared folder, with a library planted in that folder's native/build/Release/.
  const shared = tempDir();
  const checkout = path.join(shared, 'checkout');
  fs.mkdirSync(path.join(checkout, 'dist'), { recursive: true });
  fs.writeFileSync(path.join(checkout, 'package.json'), JSON.stringify({ name: 'cskv-code' }));
  const planted = path.join(shared, 'native', 'build', 'Release', 'cskv_native.node');
  fs.mkdirSync(path.dirname(planted), { recursive: true });
  fs.writeFileSync(planted, 'planted');
  for (const from of [path.join(checkout, 'dist'), path.join(checkout, 'out', 'src', 'runtime', 'backends')]) {
    assert.deepEqual(nativeAddonCandidates(from), [
      path.join(from, 'native', 'cskv_native.node'),
      path.join(checkout, 'native', 'build', 'Release', 'cskv_native.node'),
    ]);
    const load = loadNativeAddon({ fromDir: from });
    assert.ok(!load.loaded && !load.tried.includes(planted) && !load.reason.includes(planted), JSON.stringify(load));
  }
  // Code outside any package of ours (or under another package) searches nowhere.
  assert.deepEqual(nativeAddonCandidates(path.join(shared, 'elsewhere')), []);
  fs.writeFileSync(path.join(shared, 'package.json'), JSON.stringify({ name: 'cskv-code' }));
  fs.mkdirSync(path.join(checkout, 'node_modules', 'other'), { recursive: true });
  fs.writeFileSync(path.join(checkout, 'node_modules', 'other', 'package.json'), JSON.stringify({ name: 'other' }));
  assert.deepEqual(nativeAddonCandidates(path.join(checkout, 'node_modules', 'other')), []);
});

test('a configured path that does not exist is reported, not replaced by the bundled addon', () => {
  const missing = path.join(tempDir(), 'nowhere.node');
  const load = loadNativeAddon({ file: missing });
  assert.equal(load.loaded, false);
  assert.ok(!load.loaded && load.reason.includes(missing) && /does not exist/.test(load.reason), JSON.stringify(load));
});

test('a file that is not a shared library is refused with the loader\'s message', () => {
  const bogus = path.join(tempDir(), 'bogus.node');
  fs.writeFileSync(bogus, 'not an ELF file');
  const load = loadNativeAddon({ file: bogus });
  assert.equal(load.loaded, false);
  assert.ok(!load.loaded && load.reason.startsWith(`could not load the native addon ${bogus}: `), JSON.stringify(load));
  assert.ok(!load.loaded && /ELF|invalid|too short/i.test(load.reason), JSON.stringify(load));
});

test('nothing found anywhere: the reason says the addon was not built and where it looked', () => {
  const root = tempDir();
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'cskv-code' }));
  const load = loadNativeAddon({ fromDir: path.join(root, 'dist') });
  assert.equal(load.loaded, false);
  assert.ok(!load.loaded && /not built/.test(load.reason) && load.tried.length === 2 && load.tried.every((f) => f.startsWith(root)), JSON.stringify(load));
});
