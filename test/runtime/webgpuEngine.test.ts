// The WebGPU backend against the shared engine suite and fixtures. On CI it runs on Mesa's software Vulkan
// driver (lavapipe); see test/support/webgpu.ts for when it must run. The whole file is one child process of the
// test runner, so a native crash ends this file, not the run.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { ort } from '../../src/runtime/onnx/ort';
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
  // The device path's JS record lags the GPU between flushes: the memory report after every call and the
  // snapshots (which flush it) are kept to compare too.
  interface Trace { rows: Float32Array[]; memory: unknown[]; snapshots: Uint8Array[] }
  const script = async (engine: Engine, exp: Expected): Promise<Trace> => {
    const P = exp.prompt_ids.length;
    const [a, b, c, d] = exp.greedy_tokens;
    const other = [5, 6, 7, 8];
    const trace: Trace = { rows: [], memory: [], snapshots: [] };
    const call = async (tokens: number[]): Promise<void> => {
      trace.rows.push(await engine.prefill(tokens));
      trace.memory.push(engine.memory());
    };
    await call(exp.prompt_ids);
    for (const t of [a!, b!, c!, d!]) await call([t]);
    const saved = await engine.snapshot();
    trace.snapshots.push(saved);
    await engine.truncate(P + 1);
    await call([other[0]!]);
    await engine.truncate(P);
    for (const t of other) await call([t]);
    engine.restore(saved);
    await call([a!]);
    for (const t of other) await call([t]);
    // Six more steps (blocks leave the window while the record lags), then a snapshot of it all.
    for (const t of [a!, b!, c!, d!, ...other.slice(0, 2)]) await call([t]);
    trace.snapshots.push(await engine.snapshot());
    return trace;
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
        x.rows.forEach((row, i) => assert.ok(relativeError(row, y.rows[i]!) <= 1e-5, `row ${i}: relative error ${relativeError(row, y.rows[i]!)}`));
        // The script really reaches other states: the restored cache's row differs from the one before it.
        assert.ok(relativeError(x.rows[10]!, x.rows[9]!) > 1e-3);
        assert.deepEqual(x.memory, y.memory);
        // The record read back from the GPU is the one the upload path kept step by step, bit for bit.
        x.snapshots.forEach((bytes, i) => assert.ok(Buffer.from(bytes).equals(Buffer.from(y.snapshots[i]!)), `snapshot ${i} differs`));
        if (file) assert.ok(kept.memory().compressedTokens >= 24);
      } finally {
        await Promise.all([kept.dispose(), uploaded.dispose()]);
      }
    });
  }
}

if (!skip) {
  // What crosses between the host and the GPU: every session run's host-memory inputs and outputs, counted by
  // wrapping onnxruntime's run. A decode step on the device path reads back its logits and nothing else, except
  // at a block boundary (CSKV), where the JS record and the leaving block's features come back once per W tokens;
  // what it sends up does not grow with the context.
  const transfers = async (work: () => Promise<unknown>): Promise<{ down: number[]; up: number }> => {
    const proto = (ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype;
    const original = proto.run;
    const crossed = { down: [] as number[], up: 0 };
    const hostBytes = (tensor: ort.Tensor): number => (tensor.location === 'cpu' ? (tensor.data as Float32Array).byteLength : 0);
    proto.run = async function (this: ort.InferenceSession, ...args: Parameters<typeof original>) {
      for (const value of Object.values(args[0] as Record<string, ort.Tensor>)) crossed.up += hostBytes(value);
      const out = await original.apply(this, args);
      for (const value of Object.values(out)) if ((value as ort.Tensor).location === 'cpu') crossed.down.push(hostBytes(value as ort.Tensor));
      return out;
    } as typeof original;
    try {
      await work();
    } finally {
      proto.run = original;
    }
    return crossed;
  };
  const downloads = async (work: () => Promise<unknown>): Promise<number[]> => (await transfers(work)).down;
  for (const [fixture, file] of [['qwen2-v5', undefined], ['qwen2-cskv', 'cskv-4bit.safetensors']] as const) {
    test(`${fixture}${file ? ` ${file}` : ''}: a decode step on the GPU reads back its logits only (the upload path reads back its rows)`, async () => {
      const dir = modelFixture(fixture);
      const exp = expected(fixture);
      const options = { weights: 'f32' as const, cskv: file ? path.join(dir, file) : undefined };
      const [kept, uploaded] = [await loadWebGpuEngine(dir, options, true), await loadWebGpuEngine(dir, options, false)];
      try {
        const W = kept.info.cskv?.window;
        const logitBytes = kept.info.config.vocabSize * 4;
        // From a block start, W - 1 steps that stay inside the window (8 without CSKV), then the step a block leaves at.
        const prompt = W ? exp.prompt_ids.slice(0, Math.floor(exp.prompt_ids.length / W) * W) : exp.prompt_ids;
        const steps = W ? W - 1 : 8;
        for (const engine of [kept, uploaded]) await engine.prefill(prompt);
        const within: { down: number[]; up: number }[] = [];
        for (let t = 0; t < steps; t++) within.push(await transfers(() => kept.prefill([exp.greedy_tokens[t % 4]!])));
        assert.deepEqual(within.map((step) => step.down), Array.from({ length: steps }, () => [logitBytes]));
        // The first decode step also sends the zero row its masks are sliced from, once; then the embedding and the
        // slices' bounds.
        const ups = within.slice(1).map((step) => step.up);
        assert.deepEqual(ups, Array<number>(steps - 1).fill(ups[0]!), 'what a step sends up does not grow with the context');
        assert.equal(ups[0], kept.info.config.hiddenSize * 4 + (W ? 3 : 2) * 8, 'the embedding, and the int64 bounds of the slices (start, end; the rotated keys\' end with CSKV)');
        const upload = [await transfers(() => uploaded.prefill([exp.greedy_tokens[0]!])), await transfers(() => uploaded.prefill([exp.greedy_tokens[1]!]))];
        assert.ok(upload[0]!.down.length > kept.info.config.layers, `the upload path read back ${upload[0]!.down.length} tensors`);
        assert.ok(upload[1]!.up > upload[0]!.up, 'the upload path sends more each step');
        // The engine's count of what it holds on the GPU: its cache copies are the record's full branch (f32 rows
        // and f32 features), the weights are the model's f32 parameters exactly (without CSKV's factors).
        const held = kept.webgpuMemory!()!;
        assert.equal(held.fullBytes + held.pendingBytes, kept.memory().fullBytes);
        assert.equal(held.pendingBytes > 0, W !== undefined);
        assert.ok(held.scratchBytes > 0);
        const c = kept.info.config;
        const Q = c.heads * c.headDim, D = c.kvDim, H = c.hiddenSize, I = c.intermediateSize;
        const perLayer = 2 * H + 2 * Q * H + 2 * D * H + 3 * I * H + (c.qkvBias ? Q + 2 * D : 0) + (c.outputBias ? H : 0) + (c.mlpBias ? 2 * I + H : 0);
        const parameters = c.layers * perLayer + c.vocabSize * H + H;
        if (W) assert.ok(held.weightBytes > 4 * parameters, 'the factors too');
        else assert.equal(held.weightBytes, 4 * parameters);
        assert.equal(uploaded.webgpuMemory!()!.fullBytes, 0, 'the upload path keeps no cache on the GPU');
        if (W) {
          // The block boundary: the record's rows (k, v and both features per layer), the block's features again
          // to compress them, then the logits.
          const boundary = await downloads(() => kept.prefill([exp.greedy_tokens[0]!]));
          assert.equal(boundary.length, kept.info.config.layers * 6 + 1);
          assert.equal(boundary.at(-1), logitBytes);
          assert.equal(kept.memory().compressedTokens, prompt.length + W);
          assert.ok(kept.webgpuMemory!()!.compressedBytes > 0);
        }
      } finally {
        await Promise.all([kept.dispose(), uploaded.dispose()]);
      }
    });
  }
}
