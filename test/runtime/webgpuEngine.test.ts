// The WebGPU backend against the shared engine suite and fixtures. On CI it runs on Mesa's software Vulkan
// driver (lavapipe); see test/support/webgpu.ts for when it must run. The whole file is one child process of the
// test runner, so a native crash ends this file, not the run.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { checkWebGpu } from '../../src/runtime/backends/webgpuAvailability';
import { loadWebGpuEngine } from '../../src/runtime/backends/webgpuEngine';
import type { Engine } from '../../src/runtime/engine';
import { modelFixture } from '../support/paths';
import { webgpuSkip } from '../support/webgpu';
import { type Expected, expected, relativeError, runEngineSuite } from './engineSuite';
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
  runWeightFormatSuite('webgpu', loadWebGpuEngine, ['q8', 'q4', 'f16']);

  // Each call returns logit rows; restore lands on the same length as the cache it replaces, with other tokens:
  // device copies not dropped there would be stale yet look current. With CSKV (window 4, a 13-token prompt) the
  // steps cross block boundaries, and the truncations cut into the compressed branch (recomputed from a block start).
  const script = async (engine: Engine, exp: Expected): Promise<Float32Array[]> => {
    const P = exp.prompt_ids.length;
    const [a, b, c, d] = exp.greedy_tokens;
    const other = [5, 6, 7, 8];
    const rows = [await engine.prefill(exp.prompt_ids)];
    for (const t of [a!, b!, c!, d!]) rows.push(await engine.prefill([t]));
    const saved = engine.snapshot();
    await engine.truncate(P + 1);
    rows.push(await engine.prefill([other[0]!]));
    await engine.truncate(P);
    for (const t of other) rows.push(await engine.prefill([t]));
    engine.restore(saved);
    rows.push(await engine.prefill([a!]));
    for (const t of other) rows.push(await engine.prefill([t]));
    return rows;
  };
  const cases: [fixture: string, cskv: string | undefined][] = [
    ['qwen2-v5', undefined], ['qwen2-cskv', 'cskv.safetensors'], ['qwen2-cskv', 'cskv-4bit.safetensors'], ['qwen2-cskv', 'cskv-2bit.safetensors'],
  ];
  for (const [fixture, file] of cases) {
    test(`${fixture}${file ? ` ${file}` : ''}: the cache and activations kept on the GPU give the logits of uploading them every step, across truncate and restore`, async () => {
      const dir = modelFixture(fixture);
      const options = { weights: 'f32' as const, cskv: file ? path.join(dir, file) : undefined };
      const kept = await loadWebGpuEngine(dir, options, true);
      const uploaded = await loadWebGpuEngine(dir, options, false);
      try {
        const [x, y] = [await script(kept, expected(fixture)), await script(uploaded, expected(fixture))];
        // 16-bit and full: the same values on both paths; 8/4/2 bits: dequantised in the graph (two f32 roundings)
        // against in JS (one).
        x.forEach((row, i) => assert.ok(relativeError(row, y[i]!) <= 1e-5, `row ${i}: relative error ${relativeError(row, y[i]!)}`));
        // The script really reaches other states: the restored cache's row differs from the one before it.
        assert.ok(relativeError(x[10]!, x[9]!) > 1e-3);
        assert.deepEqual(kept.memory(), uploaded.memory());
        if (file) assert.ok(kept.memory().compressedTokens >= 16);
      } finally {
        await Promise.all([kept.dispose(), uploaded.dispose()]);
      }
    });
  }
}
