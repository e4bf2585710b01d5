// The CUDA engine with --weights q8 on the GPU machine, isolated from quantisation error: the q8 engine on a
// fixture against the bf16 engine on a copy of that fixture whose linear weights are the q8 blocks' own values
// (the CPU quantiser's blocks, dequantised). Prefill (more than 8 rows) dequantises tiles to bf16 exactly as the
// bf16 engine rounds those values, so the two agree to GEMM order; decode (1 row, the GEMV) multiplies by the
// unrounded block values, so it differs from the bf16 engine by bf16 weight rounding (measured on the CPU up
// to 1.7e-2 relative on these fixtures). Skipped without an NVIDIA driver and a CUDA build.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CudaEngine, q8TensorShapes, tensorRoles } from '../../src/runtime/backends/cudaEngine';
import { deviceQ8WeightBytes, Q8_TILE_BYTES } from '../../src/runtime/backends/cudaQ8Weights';
import { loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { readModelConfig } from '../../src/runtime/model/config';
import { ModelWeights } from '../../src/runtime/model/weights';
import { dequantiseBlockwise, quantiseBlockwise } from '../../src/runtime/onnx/blockQuantizer';
import { type TensorToWrite, writeSafetensors } from '../../src/runtime/safetensorsWriter';
import { nvidiaDriverPresent } from '../native/expectations';
import { MODEL_FIXTURES, expected, relativeError } from '../runtime/engineSuite';
import { modelFixture } from '../support/paths';

const PREFILL_TOLERANCE = 2e-3;
const DECODE_TOLERANCE = 4e-2;

const load = loadNativeAddon();
const skip = !nvidiaDriverPresent() ? 'no NVIDIA driver on this machine (/dev/nvidiactl missing)'
  : !load.loaded ? load.reason
  : !load.addon.build.cuda ? 'the addon was built without CUDA' : undefined;

/** A copy of a fixture (config + the tensors the engine takes, f32) whose linear weights are their q8 values. */
function dequantisedCopy(fixture: string, dir: string): void {
  const config = readModelConfig(fixture);
  const weights = ModelWeights.open(fixture, config);
  const shapes = q8TensorShapes(config);
  const tensors: Record<string, TensorToWrite> = {};
  try {
    for (const [role, , name] of tensorRoles(config)) {
      const shape = weights.info(name).shape;
      let values = weights.readFloat32(name, shape);
      const q8 = shapes[role];
      if (q8) values = dequantiseBlockwise(quantiseBlockwise(values, q8[0], q8[1], 8));
      tensors[name] = { dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
    }
  } finally {
    weights.close();
  }
  fs.copyFileSync(path.join(fixture, 'config.json'), path.join(dir, 'config.json'));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}

if (skip) {
  test('cuda q8 engine against bf16 on the dequantised weights', (t) => t.skip(skip));
} else {
  for (const name of MODEL_FIXTURES) {
    test(`cuda q8 ${name}: prefill (dequantised tiles) and decode (GEMV) against the bf16 engine on the q8 values`, async () => {
      const exp = expected(name);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-q8-'));
      dequantisedCopy(modelFixture(name), dir);
      const q8 = await CudaEngine.load(modelFixture(name), { weights: 'q8', capacityTokens: 4096 });
      const bf16 = await CudaEngine.load(dir, { capacityTokens: 4096 });
      try {
        assert.equal(q8.info.weights, 'q8');
        assert.ok(exp.prompt_ids.length > 8, 'the prompt takes the prefill path');
        const V = q8.info.config.vocabSize;
        const rows = exp.prompt_ids.length;
        const [a, b] = [await q8.prefill(exp.prompt_ids, { logits: rows }), await bf16.prefill(exp.prompt_ids, { logits: rows })];
        for (let t = 0; t < rows; t++) {
          const err = relativeError(a.subarray(t * V, (t + 1) * V), b.subarray(t * V, (t + 1) * V));
          assert.ok(err <= PREFILL_TOLERANCE, `${name} prompt position ${t}: relative error ${err}`);
        }
        for (const [i, token] of exp.greedy_tokens.slice(0, 4).entries()) {
          const err = relativeError(await q8.prefill([token]), await bf16.prefill([token]));
          assert.ok(err <= DECODE_TOLERANCE, `${name} decode step ${i}: relative error ${err}`);
        }
        // The plan's q8 weight term is what the engine holds, plus the prefill tile it counts as scratch.
        const c = q8.info.config;
        const shape = { hidden: c.hiddenSize, layers: c.layers, qDim: c.heads * c.headDim, kvDim: c.kvDim, intermediate: c.intermediateSize, vocab: c.vocabSize, headDim: c.headDim, tiedEmbeddings: c.tieEmbeddings };
        const largest = Math.max((shape.qDim + 2 * shape.kvDim) * shape.hidden, shape.hidden * shape.qDim, 2 * shape.intermediate * shape.hidden, shape.hidden * shape.intermediate, shape.tiedEmbeddings ? 0 : shape.vocab * shape.hidden);
        assert.equal(q8.deviceMemory().engine!.weightBytes + Math.min(Q8_TILE_BYTES, 2 * largest), deviceQ8WeightBytes(shape));
      } finally {
        await q8.dispose();
        await bf16.dispose();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}
