// The WebGPU backend against the shared engine suite and fixtures. On CI it runs on Mesa's software Vulkan
// driver (lavapipe); see test/support/webgpu.ts for when it must run. The whole file is one child process of the
// test runner, so a native crash ends this file, not the run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkWebGpu } from '../../src/runtime/backends/webgpuAvailability';
import { loadWebGpuEngine } from '../../src/runtime/backends/webgpuEngine';
import type { Engine } from '../../src/runtime/engine';
import { modelFixture } from '../support/paths';
import { webgpuSkip } from '../support/webgpu';
import { expected, relativeError, runEngineSuite } from './engineSuite';
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

  test('the full branch and activations kept on the GPU give the logits of uploading them every step, across truncate and restore', async () => {
    const exp = expected('qwen2-v5');
    const P = exp.prompt_ids.length;
    const [a, b, c, d] = exp.greedy_tokens;
    const other = [5, 6, 7, 8];
    // Each call returns logit rows; restore lands on the same length as the cache it replaces, with other tokens:
    // device copies not dropped there would be stale yet look current.
    const script = async (engine: Engine): Promise<Float32Array[]> => {
      const rows = [await engine.prefill(exp.prompt_ids)];
      for (const t of [a!, b!, c!, d!]) rows.push(await engine.prefill([t]));
      const saved = engine.snapshot();
      await engine.truncate(P + 1);
      rows.push(await engine.prefill([other[0]!]));
      await engine.truncate(P);
      for (const t of other) rows.push(await engine.prefill([t]));
      engine.restore(saved);
      rows.push(await engine.prefill([a!]));
      return rows;
    };
    const kept = await loadWebGpuEngine(modelFixture('qwen2-v5'), { weights: 'f32' }, true);
    const uploaded = await loadWebGpuEngine(modelFixture('qwen2-v5'), { weights: 'f32' }, false);
    try {
      const [x, y] = [await script(kept), await script(uploaded)];
      x.forEach((row, i) => assert.ok(relativeError(row, y[i]!) <= 1e-5, `row ${i}: relative error ${relativeError(row, y[i]!)}`));
      // The script really reaches other states: the restored cache's row differs from the one before it.
      assert.ok(relativeError(x[x.length - 1]!, x[x.length - 2]!) > 1e-3);
    } finally {
      await Promise.all([kept.dispose(), uploaded.dispose()]);
    }
  });
}
