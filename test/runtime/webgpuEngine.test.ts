// The WebGPU backend against the shared engine suite and fixtures. On CI it runs on Mesa's software Vulkan
// driver (lavapipe); see test/support/webgpu.ts for when it must run. The whole file is one child process of the
// test runner, so a native crash ends this file, not the run.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { checkWebGpu } from '../../src/runtime/backends/webgpuAvailability';
import { loadWebGpuEngine } from '../../src/runtime/backends/webgpuEngine';
import type { Engine } from '../../src/runtime/engine';
import { countTransfers as transfers } from '../support/deviceTransfers';
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
  // What crosses between the host and the GPU (test/support/deviceTransfers.ts). A decode step on the device path
  // reads back its logits and nothing else, except at a block boundary (CSKV), where the JS record comes back once
  // per W tokens; what it sends up does not grow with the context.
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
        // The first decode step also sends the row its masks are sliced from, once; then the embedding and the
        // slices' bounds.
        const ups = within.slice(1).map((step) => step.up);
        assert.deepEqual(ups, Array<number>(steps - 1).fill(ups[0]!), 'what a step sends up does not grow with the context');
        assert.equal(ups[0], kept.info.config.hiddenSize * 4 + (W ? 4 : 3) * 8, 'the embedding, and the int64 bounds of the slices (start, end, the mask\'s start; the rotated keys\' end with CSKV)');
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
          // The block boundary: the record's rows (k, v and both features per layer; the record compresses the
          // block, which goes up as it stores it), then the logits.
          const boundary = await downloads(() => kept.prefill([exp.greedy_tokens[0]!]));
          assert.equal(boundary.length, kept.info.config.layers * 4 + 1);
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

if (!skip) {
  // An edit truncates the cache to a prefix: the device copies are cut there (nothing read back, nothing sent again)
  // and hold what a fresh prefill of the prefix holds. With CSKV (window 4, 13 prompt tokens, three steps) the cut
  // falls inside the compressed branch: whole blocks stay and the prompt's last partial block is recomputed, the
  // chunk a fresh prefill makes of it too (nextChunkEnd), so both are bit for bit the same.
  for (const [fixture, file] of [['qwen2-v5', undefined], ['qwen2-cskv', 'cskv.safetensors'], ['qwen2-cskv', 'cskv-4bit.safetensors']] as const) {
    test(`${fixture}${file ? ` ${file}` : ''}: a truncation on the GPU reads nothing back and leaves the cache of a fresh prefill of the prefix`, async () => {
      const dir = modelFixture(fixture);
      const exp = expected(fixture);
      const options = { weights: 'f32' as const, cskv: file ? path.join(dir, file) : undefined };
      const [edited, fresh] = [await loadWebGpuEngine(dir, options), await loadWebGpuEngine(dir, options)];
      try {
        const prefix = exp.prompt_ids;
        const [a, b, c, d] = exp.greedy_tokens as [number, number, number, number];
        await edited.prefill(prefix);
        for (const t of [a, b, c]) await edited.prefill([t]);
        const compressedBefore = edited.memory().compressedTokens;
        const cut = await transfers(() => edited.truncate(prefix.length));
        assert.deepEqual(cut.down, [], 'the truncation read nothing back');
        // What goes up: the embeddings of the tokens recomputed (the prompt's partial last block where the cut fell
        // inside the compressed branch) and int64 bounds; no cache rows.
        const H = edited.info.config.hiddenSize;
        const recomputed = compressedBefore > prefix.length ? prefix.length - edited.memory().compressedTokens : 0;
        assert.equal(recomputed > 0, file !== undefined, 'with CSKV the cut falls inside the compressed branch');
        assert.equal(cut.upFloats, recomputed * H * 4, 'the truncation sent up the recomputed embeddings only');
        let editedRow: Float32Array = new Float32Array(0);
        const step = await transfers(async () => editedRow = await edited.prefill([d]));
        assert.deepEqual(step.down, [edited.info.config.vocabSize * 4], 'the next step reads back its logits only');
        assert.equal(step.upFloats, H * 4, 'the next step sends up its embedding only');
        await fresh.prefill(prefix);
        const freshRow = await fresh.prefill([d]);
        assert.deepEqual(editedRow, freshRow, 'the logits after the edit are those of a fresh prefill of the prefix');
        assert.ok(Buffer.from(await edited.snapshot()).equals(Buffer.from(await fresh.snapshot())), 'the cache differs from a fresh prefill of the prefix');
        assert.deepEqual(edited.memory(), fresh.memory());
        const cacheBytes = (e: Engine): number[] => { const m = e.webgpuMemory!()!; return [m.fullBytes, m.pendingBytes, m.compressedBytes]; };
        assert.deepEqual(cacheBytes(edited), cacheBytes(fresh));
      } finally {
        await Promise.all([edited.dispose(), fresh.dispose()]);
      }
    });
  }
}

if (!skip) {
  // The step inputs that change with the length are made on the GPU: a sliding window's decode masks are sliced
  // there (mistral-linear: window 8, 12 prompt tokens), and dynamic NTK's tables are reused up to the original
  // context (qwen2-dynamic: 16) and composed there past it from their angle-addition factors (about 2·sqrt(S)
  // rows, rope.ts), never uploaded whole. The first decode step also sends the decode masks' row, once.
  test('mistral-linear (sliding window) and qwen2-dynamic (dynamic NTK): a decode step sends up its embedding, and past the original context the RoPE factors, only', async () => {
    for (const fixture of ['mistral-linear', 'qwen2-dynamic']) {
      const dir = modelFixture(fixture);
      const exp = expected(fixture);
      const engine = await loadWebGpuEngine(dir, { weights: 'f32' });
      try {
        const { hiddenSize: H, headDim: hd, maxPositions, vocabSize } = engine.info.config;
        const dynamic = fixture === 'qwen2-dynamic';
        await engine.prefill(exp.prompt_ids.slice(0, 8));
        await engine.prefill([exp.greedy_tokens[0]!]);
        for (let t = 0; t < 12; t++) {
          const S = engine.length + 1;
          const step = await transfers(() => engine.prefill([exp.prompt_ids[t]!]));
          assert.deepEqual(step.down, [vocabSize * 4]);
          const block = Math.ceil(Math.sqrt(S));
          const factors = dynamic && S > maxPositions ? (Math.ceil(S / block) + block) * hd * 2 * 4 : 0;
          assert.equal(step.upFloats, H * 4 + factors, `${fixture}, step to ${S} tokens: ${step.upFloats} bytes sent up`);
        }
        assert.ok(engine.length > (dynamic ? maxPositions : engine.info.config.slidingWindow!) + 4, 'the steps went past the original context / the window');
      } finally {
        await engine.dispose();
      }
    }
  });
}
