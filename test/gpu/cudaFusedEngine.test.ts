// The CUDA engine with the fused decode attention (decodeAttention 'fused', native/src/kernels/fusedAttention.cuh)
// on the GPU machine: the whole engine suite again (every fixture, CSKV at 16/8/4/2 bits, greedy through device
// sampling), and step by step against the default rebuild path on the same inputs. The rebuild path rounds the
// rebuilt keys and values to bf16 where the fused kernel keeps f32, so the two differ by about bf16 rounding: the
// suite's bf16 tolerance bounds it. Skipped without an NVIDIA driver and a CUDA build.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { CudaEngine } from '../../src/runtime/backends/cudaEngine';
import { loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { nvidiaDriverPresent } from '../native/expectations';
import { MODEL_FIXTURES, expected, relativeError, runEngineSuite } from '../runtime/engineSuite';
import { modelFixture } from '../support/paths';

const TOLERANCE = 5e-2;

const load = loadNativeAddon();
const skip = !nvidiaDriverPresent() ? 'no NVIDIA driver on this machine (/dev/nvidiactl missing)'
  : !load.loaded ? load.reason
  : !load.addon.build.cuda ? 'the addon was built without CUDA' : undefined;

if (skip) {
  test('cuda engine with the fused decode attention', (t) => t.skip(skip));
} else {
  runEngineSuite('cuda-fused', (dir, options) => CudaEngine.load(dir, { ...options, capacityTokens: 4096, decodeAttention: 'fused' }), {
    tolerance: TOLERANCE,
    quantisedTolerance: { 8: 6e-2, 4: 8e-2, 2: 1.5e-1 },
  });

  const cskvCases = MODEL_FIXTURES.flatMap((name) => Object.keys(expected(name).cskv ?? {}).map((file) => ({ name, file })));
  for (const { name, file } of [{ name: 'qwen2-v5', file: undefined }, ...cskvCases]) {
    test(`cuda ${name} ${file ?? 'full cache'}: fused decode steps against the rebuild path`, async (t) => {
      const exp = expected(name);
      const dir = modelFixture(name);
      const options = { capacityTokens: 4096, cskv: file ? path.join(dir, file) : undefined };
      const fused = await CudaEngine.load(dir, { ...options, decodeAttention: 'fused' });
      const rebuild = await CudaEngine.load(dir, { ...options, decodeAttention: 'rebuild' });
      try {
        await fused.prefill(exp.prompt_ids);
        await rebuild.prefill(exp.prompt_ids);
        let worst = 0;
        for (const [i, token] of exp.greedy_tokens.entries()) {
          const err = relativeError(await fused.prefill([token]), await rebuild.prefill([token]));
          assert.ok(err <= TOLERANCE, `${name} ${file ?? ''} decode step ${i}: relative error ${err}`);
          worst = Math.max(worst, err);
        }
        assert.ok(fused.memory().compressedTokens === rebuild.memory().compressedTokens);
        t.diagnostic(`largest relative step-logit difference: ${worst.toExponential(2)}`);
      } finally {
        await fused.dispose();
        await rebuild.dispose();
      }
    });
  }
}
