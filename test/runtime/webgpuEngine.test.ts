// The WebGPU backend against the shared engine suite and fixtures. On CI it runs on Mesa's software Vulkan
// driver (lavapipe); see test/support/webgpu.ts for when it must run. The whole file is one child process of the
// test runner, so a native crash ends this file, not the run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkWebGpu } from '../../src/runtime/backends/webgpuAvailability';
import { loadWebGpuEngine } from '../../src/runtime/backends/webgpuEngine';
import { webgpuSkip } from '../support/webgpu';
import { runEngineSuite } from './engineSuite';
import { runWeightFormatSuite } from './weightFormatSuite';

const skip = webgpuSkip();
if (skip) {
  console.log(skip);
  test('webgpu engine against the reference fixtures', { skip }, () => undefined);
} else {
  test('the WebGPU adapter probe succeeds here (a Vulkan driver is installed, so it must)', async () => {
    const webgpu = await checkWebGpu();
    assert.ok(webgpu.available, webgpu.available ? '' : webgpu.reason);
    console.log(`WebGPU adapter: ${webgpu.summary}`);
  });
  runEngineSuite('webgpu', async (dir, options) => {
    const engine = await loadWebGpuEngine(dir, { ...options, weights: 'f32' });
    assert.equal(engine.info.backend, 'webgpu');
    return engine;
  }, {
    // The CPU backend's bounds. Measured on lavapipe: worst 1.3e-6 (full cache) and 2.8e-6 (CSKV 16-bit) relative
    // to the float64 reference; real GPUs accumulate in other orders, hence the headroom.
    tolerance: 1e-4,
    quantisedTolerance: { 8: 1e-2, 4: 3e-2, 2: 1e-1 },
    // GPU MatMul kernels tile by shape, so a token computed in a 16-token chunk and in a 12-token one can round
    // differently (measured 1e-6 relative on lavapipe): the truncation check compares within the tolerance.
    chunkingBitExact: false,
  });
  // 8/4-bit weights through onnxruntime's WebGPU MatMulNBits (q8 is the default). Unlike the CPU kernel it keeps
  // activations in f32; measured on lavapipe: q8 <= 4.0e-2, q4 <= 0.48 relative to the reference, within the
  // CPU backend's bounds.
  runWeightFormatSuite('webgpu', loadWebGpuEngine);
}
