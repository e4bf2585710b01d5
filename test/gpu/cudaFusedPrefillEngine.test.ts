// The CUDA engine with the fused prefill attention (prefillAttention 'fused', native/src/kernels/fusedPrefillAttention.cuh)
// on the GPU machine: the whole engine suite again (every fixture, CSKV at 16/8/4/2 bits; its prompts are prefill
// chunks of more than 8 tokens), and chunk by chunk against the default rebuild path on the same inputs, in chunks
// of 12 tokens so that later chunks attend over compressed blocks. The rebuild path rounds the rebuilt keys and
// values to bf16 where the fused kernel keeps f32, so the two differ by about bf16 rounding: the suite's bf16
// tolerance bounds it. Skipped without an NVIDIA driver and a CUDA build.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { CudaEngine } from '../../src/runtime/backends/cudaEngine';
import { loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { nvidiaDriverPresent } from '../native/expectations';
import { MODEL_FIXTURES, expected, relativeError, runEngineSuite } from '../runtime/engineSuite';
import { modelFixture } from '../support/paths';

const TOLERANCE = 5e-2;
const CHUNK = 12;

const load = loadNativeAddon();
const skip = !nvidiaDriverPresent() ? 'no NVIDIA driver on this machine (/dev/nvidiactl missing)'
  : !load.loaded ? load.reason
  : !load.addon.build.cuda ? 'the addon was built without CUDA' : undefined;

if (skip) {
  test('cuda engine with the fused prefill attention', (t) => t.skip(skip));
} else {
  runEngineSuite('cuda-fused-prefill', (dir, options) => CudaEngine.load(dir, { ...options, capacityTokens: 4096, prefillAttention: 'fused' }), {
    tolerance: TOLERANCE,
    quantisedTolerance: { 8: 6e-2, 4: 8e-2, 2: 1.5e-1 },
  });

  const cskvCases = MODEL_FIXTURES.flatMap((name) => Object.keys(expected(name).cskv ?? {}).map((file) => ({ name, file })));
  for (const { name, file } of [{ name: 'qwen2-v5', file: undefined }, ...cskvCases]) {
    test(`cuda ${name} ${file ?? 'full cache'}: fused prefill chunks against the rebuild path`, async (t) => {
      const exp = expected(name);
      const dir = modelFixture(name);
      const options = { capacityTokens: 4096, chunkSize: CHUNK, cskv: file ? path.join(dir, file) : undefined };
      const fused = await CudaEngine.load(dir, { ...options, prefillAttention: 'fused' });
      const rebuild = await CudaEngine.load(dir, { ...options, prefillAttention: 'rebuild' });
      try {
        // The prompt, then prompt and greedy tokens again: the second prefill's chunks see the first's compressed blocks.
        const sequence = [...exp.prompt_ids, ...exp.greedy_tokens];
        let worst = 0;
        for (const [i, ids] of [exp.prompt_ids, sequence].entries()) {
          const err = relativeError(await fused.prefill(ids), await rebuild.prefill(ids));
          assert.ok(err <= TOLERANCE, `${name} ${file ?? ''} prefill ${i}: relative error ${err}`);
          worst = Math.max(worst, err);
        }
        assert.ok(fused.memory().compressedTokens === rebuild.memory().compressedTokens);
        t.diagnostic(`largest relative last-logit difference: ${worst.toExponential(2)}; ${fused.memory().compressedTokens} tokens compressed`);
      } finally {
        await fused.dispose();
        await rebuild.dispose();
      }
    });
  }
}
