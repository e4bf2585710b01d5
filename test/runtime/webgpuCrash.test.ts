// The crash found with CSKV on the WebGPU provider, kept from coming back. onnxruntime-node 1.30's WebGPU
// provider dies of SIGSEGV on a MatMul whose inner (reduced) axis has length zero; the layer graph had one while
// the compressed branch was still empty (the first prefill of any CSKV cache): attention probabilities
// [kvHeads, nRep, T, 0] times compressed values [0, r_v]. Other zero-sized tensors (Gemm/MatMul with zero rows,
// Concat with an empty part, Slice to nothing, Add) run fine. layerGraph.ts pads that product's inner axis with one
// zero. Each check runs in a child process, so a crash fails its test with the signal instead of ending the file.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { modelFixture } from '../support/paths';
import { inChildProcess, webgpuSkip } from '../support/webgpu';
import { expected, relativeError } from './engineSuite';

const child = path.join(__dirname, '..', 'support', 'webgpuChild.js');
const skip = webgpuSkip();
if (skip) console.log(skip);

test('a MatMul over an empty inner axis, padded as the layer graph does: zeros of the right shape on WebGPU', { skip }, async () => {
  const result = await inChildProcess<{ dims: number[]; values: number[] }>(child, { task: 'padded-empty-matmul' });
  assert.deepEqual(result.dims, [2, 1, 3, 4]);
  assert.deepEqual(result.values, new Array(24).fill(0));
});

test('CSKV on (16-bit, window 4): the first prefill with an empty compressed branch and the decode steps run on WebGPU and match the CPU', { skip }, async () => {
  const dir = modelFixture('qwen2-cskv');
  const cskv = path.join(dir, 'cskv.safetensors');
  const exp = expected('qwen2-cskv');
  const tokens = exp.greedy_tokens.slice(0, 6);
  const gpu = await inChildProcess<number[][]>(child, { task: 'steps', modelDir: dir, cskv, prompt: exp.prompt_ids, tokens });
  const cpu = await OnnxEngine.load(dir, { cskv, weights: 'f32' });
  try {
    assert.equal(gpu.length, tokens.length + 1);
    const first = await cpu.prefill(exp.prompt_ids);
    assert.ok(relativeError(gpu[0]!, first) < 1e-4, `prompt logits: relative error ${relativeError(gpu[0]!, first)}`);
    for (let i = 0; i < tokens.length; i++) {
      const row = await cpu.prefill([tokens[i]!]);
      assert.ok(relativeError(gpu[i + 1]!, row) < 1e-4, `step ${i}: relative error ${relativeError(gpu[i + 1]!, row)}`);
    }
  } finally {
    await cpu.dispose();
  }
});
