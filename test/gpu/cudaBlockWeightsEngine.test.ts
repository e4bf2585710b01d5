// The CUDA engine with --weights q8 and q4 on the GPU machine, isolated from quantisation error: the q8/q4 engine on
// a fixture against the bf16 engine on a copy of that fixture whose linear weights (with q8 the embedding too) are
// the blocks' own values (the CPU quantiser's blocks in the device layout, dequantised; the q8 embedding lookup
// rounds to bf16 as the bf16 table does). Prefill (more than 8 rows) dequantises tiles to
// bf16 exactly as the bf16 engine rounds those values, so the two agree to GEMM order; decode (1 row, the GEMV)
// multiplies by the unrounded block values, so it differs from the bf16 engine by bf16 weight rounding (measured
// on the CPU up to 1.7e-2 relative on these fixtures with q8). Skipped without an NVIDIA driver and a CUDA build.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CudaEngine, blockTensorShapes, tensorRoles } from '../../src/runtime/backends/cudaEngine';
import { deviceQ4, deviceQ4WeightBytes, dequantiseDeviceQ4 } from '../../src/runtime/backends/cudaQ4Weights';
import { deviceQ8WeightBytes } from '../../src/runtime/backends/cudaQ8Weights';
import { QUANTISED_TILE_BYTES } from '../../src/runtime/backends/cudaWeightFormat';
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

/** A copy of a fixture (config + the tensors the engine takes, f32) whose linear weights are their q8 or q4 values. */
function dequantisedCopy(fixture: string, dir: string, format: 'q8' | 'q4'): void {
  const config = readModelConfig(fixture);
  const weights = ModelWeights.open(fixture, config);
  const shapes = blockTensorShapes(config, format);
  const tensors: Record<string, TensorToWrite> = {};
  try {
    for (const [role, , name] of tensorRoles(config)) {
      const shape = weights.info(name).shape;
      let values = weights.readFloat32(name, shape);
      const blocks = shapes[role];
      if (blocks && format === 'q8') values = dequantiseBlockwise(quantiseBlockwise(values, blocks[0], blocks[1], 8));
      if (blocks && format === 'q4') values = Float32Array.from(dequantiseDeviceQ4(deviceQ4(quantiseBlockwise(values, blocks[0], blocks[1], 4))));
      tensors[name] = { dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
    }
  } finally {
    weights.close();
  }
  fs.copyFileSync(path.join(fixture, 'config.json'), path.join(dir, 'config.json'));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}

if (skip) {
  test('cuda q8/q4 engine against bf16 on the dequantised weights', (t) => t.skip(skip));
} else {
  for (const [format, name] of (['q8', 'q4'] as const).flatMap((f) => MODEL_FIXTURES.map((n) => [f, n] as const))) {
    test(`cuda ${format} ${name}: prefill (dequantised tiles) and decode (GEMV) against the bf16 engine on the ${format} values`, async () => {
      const exp = expected(name);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cskv-${format}-`));
      dequantisedCopy(modelFixture(name), dir, format);
      const quantised = await CudaEngine.load(modelFixture(name), { weights: format, capacityTokens: 4096 });
      const bf16 = await CudaEngine.load(dir, { capacityTokens: 4096 });
      try {
        assert.equal(quantised.info.weights, format);
        assert.ok(exp.prompt_ids.length > 8, 'the prompt takes the prefill path');
        const V = quantised.info.config.vocabSize;
        const rows = exp.prompt_ids.length;
        const [a, b] = [await quantised.prefill(exp.prompt_ids, { logits: rows }), await bf16.prefill(exp.prompt_ids, { logits: rows })];
        for (let t = 0; t < rows; t++) {
          const err = relativeError(a.subarray(t * V, (t + 1) * V), b.subarray(t * V, (t + 1) * V));
          assert.ok(err <= PREFILL_TOLERANCE, `${name} prompt position ${t}: relative error ${err}`);
        }
        for (const [i, token] of exp.greedy_tokens.slice(0, 4).entries()) {
          const err = relativeError(await quantised.prefill([token]), await bf16.prefill([token]));
          assert.ok(err <= DECODE_TOLERANCE, `${name} decode step ${i}: relative error ${err}`);
        }
        // The plan's weight term is what the engine holds, plus the prefill tile it counts as scratch.
        const c = quantised.info.config;
        const shape = { hidden: c.hiddenSize, layers: c.layers, qDim: c.heads * c.headDim, kvDim: c.kvDim, intermediate: c.intermediateSize, vocab: c.vocabSize, headDim: c.headDim, tiedEmbeddings: c.tieEmbeddings };
        const largest = Math.max((shape.qDim + 2 * shape.kvDim) * shape.hidden, shape.hidden * shape.qDim, 2 * shape.intermediate * shape.hidden, shape.hidden * shape.intermediate, shape.tiedEmbeddings ? 0 : shape.vocab * shape.hidden);
        assert.equal(quantised.deviceMemory().engine!.weightBytes + Math.min(QUANTISED_TILE_BYTES, 2 * largest), (format === 'q8' ? deviceQ8WeightBytes : deviceQ4WeightBytes)(shape));
      } finally {
        await quantised.dispose();
        await bf16.dispose();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}
