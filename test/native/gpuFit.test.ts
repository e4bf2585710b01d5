// "Fits your GPU": the CUDA engine's capacity plan for a model and a workspace budget against a GPU's free memory
// (numbers worked out by hand below, the cache layout from the addon's own arithmetic, which needs no GPU), the
// sentences the command line and the picker show, and what the CUDA probe reports on this machine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkCuda, gpuReport } from '../../src/runtime/backends/cudaAvailability';
import { DEVICE_MARGIN_BYTES, deviceModelShape, gpuFit } from '../../src/runtime/backends/cudaMemoryPlan';
import { loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { describeFit, describeGpu, fitCell } from '../../src/shared/gpuFit';
import { MODEL_PRESETS } from '../../src/shared/modelPresets';
import { nvidiaDriverPresent } from './expectations';

const GIB = 1024 ** 3;
const SEVEN_B = MODEL_PRESETS.find((p) => p.target.includes('7B-Instruct-GGUF:q4_k_m'))!.shape;
const ONE_AND_HALF_B = MODEL_PRESETS[0]!.shape;

function fit(shape: typeof SEVEN_B, freeBytes: number, budgetTokens = 32768): ReturnType<typeof gpuFit> {
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  return gpuFit({ shape: deviceModelShape(shape), maxPositions: shape.maxPositions, budgetTokens, freeBytes, layoutOf: (s) => load.addon.cacheLayout(s) });
}

test('Qwen2.5-Coder-7B for a 32768-token workspace: bf16 weights + full cache + scratch + margin, by hand', () => {
  // Parameters without biases: 2 untied 152064×3584 tables, a final norm, and per layer two norms, q and o
  // (3584×3584), k and v (512×3584) and the MLP (3 × 18944×3584): 7,615,487,488, held as bf16.
  const weights = 2 * (2 * 152064 * 3584 + 3584 + 28 * (2 * 3584 + 2 * 3584 * 3584 + 2 * 512 * 3584 + 3 * 18944 * 3584));
  assert.equal(weights, 15_230_974_976);
  // Full-precision cache: 28 layers × (k, v) × 512 channels × 2 bytes × 32768 tokens.
  const cache = 28 * 2 * 512 * 2 * 32768;
  // Scratch: a 512-token chunk's activations (844,800 bytes a token at these widths) and the RoPE table.
  const scratch = 512 * (3584 * 6 + (3584 + 2 * 512) * 4 + 3584 * 2 + 18944 * 10 + 152064 * 4) + 32768 * 128 * 4;
  const need = weights + cache + scratch + DEVICE_MARGIN_BYTES;
  assert.equal(need, 18_633_079_808);

  const roomy = fit(SEVEN_B, 24 * GIB);
  assert.deepEqual(roomy, { verdict: 'fits', weights: 'bf16', wantedTokens: 32768, contextTokens: 32768, needBytes: need, weightBytes: weights, freeBytes: 24 * GIB });
  // q8 weights (--weights q8): per layer the linear weights' int8 codes + one f32 scale per 32 (1.125 bytes a weight)
  // and the two bf16 norms; the untied head and the embedding table as q8, the final norm bf16; and the 64 MiB prefill tile.
  const q8Weights = 28 * (233_046_016 * 1.125 + 4 * 3584) + 2 * 152064 * 3584 * 1.125 + 2 * 3584 + 64 * 2 ** 20;
  assert.ok(q8Weights > 8.62e9 && q8Weights < 8.64e9, String(q8Weights));
  const q8Need = q8Weights + cache + scratch + DEVICE_MARGIN_BYTES;
  // 16 GiB: bf16 leaves part of the budget (the weights fit, the cache not all of it); q8 fits all of it.
  assert.deepEqual(fit(SEVEN_B, 16 * GIB), { verdict: 'fits', weights: 'q8', wantedTokens: 32768, contextTokens: 32768, needBytes: q8Need, weightBytes: q8Weights, freeBytes: 16 * GIB });
  // 14 GiB: the bf16 weights alone (14.2 GiB) do not fit; q8 fits the whole budget.
  assert.equal(fit(SEVEN_B, 14 * GIB).verdict, 'fits');
  assert.equal(fit(SEVEN_B, 14 * GIB).weights, 'q8');
  // q4 weights (--weights q4): per block of 32, 16 bytes of codes and an f16 (scale, min) (0.625 bytes a weight);
  // the embedding bf16 (a lookup; only q8 holds it in blocks), the rest as with q8.
  const q4Weights = 28 * (233_046_016 * 0.625 + 4 * 3584) + 152064 * 3584 * 0.625 + 2 * (152064 * 3584 + 3584) + 64 * 2 ** 20;
  const q4Need = q4Weights + cache + scratch + DEVICE_MARGIN_BYTES;
  assert.ok(q4Weights > 5.5e9 && q4Weights < 5.7e9, String(q4Weights));
  // 11 GiB: bf16 fits nothing, q8 part of the budget, q4 all of it: "fits with q4".
  assert.deepEqual(fit(SEVEN_B, 11 * GIB), { verdict: 'fits', weights: 'q4', wantedTokens: 32768, contextTokens: 32768, needBytes: q4Need, weightBytes: q4Weights, freeBytes: 11 * GIB });
  // 8 GiB: the q8 weights alone do not fit (8.4 GiB with the margin); q4 part of the budget (what the engine would
  // shrink it to).
  const eight = fit(SEVEN_B, 8 * GIB);
  assert.deepEqual([eight.verdict, eight.weights], ['shorter-context', 'q4']);
  assert.ok(eight.contextTokens > 0 && eight.contextTokens < 32768, String(eight.contextTokens));
  const perToken = 28 * 2 * 512 * 2 + 128 * 4;
  assert.ok(q4Weights + eight.contextTokens * perToken + 512 * 844_800 + DEVICE_MARGIN_BYTES <= 8 * GIB, 'the shrunk context fits');
  // 6 GiB: nothing fits; the verdict names the default weights.
  assert.deepEqual([fit(SEVEN_B, 6 * GIB).verdict, fit(SEVEN_B, 6 * GIB).weights, fit(SEVEN_B, 6 * GIB).contextTokens], ['does-not-fit', 'bf16', 0]);
  // A 262,144-token budget (15 GB of full-precision cache): on 22 GiB bf16 and q8 leave part of it, q4 none.
  const long = { ...SEVEN_B, maxPositions: 262144 };
  assert.deepEqual([fit(long, 22 * GIB, 262144).verdict, fit(long, 22 * GIB, 262144).weights], ['fits', 'q4']);
  // On 16 GiB every format leaves part of it: the default's shorter context stands.
  const sixteen = fit(long, 16 * GIB, 262144);
  assert.deepEqual([sixteen.verdict, sixteen.weights], ['shorter-context', 'bf16']);
  assert.ok(weights + sixteen.contextTokens * perToken + 512 * 844_800 + DEVICE_MARGIN_BYTES <= 16 * GIB, 'the shrunk context fits');
  // A budget beyond the model's positions is fitted at its positions.
  assert.equal(fit(SEVEN_B, 80 * GIB, 1 << 20).wantedTokens, 32768);
  // The 1.5B model fits an 8 GiB GPU with its whole budget.
  assert.equal(fit(ONE_AND_HALF_B, 8 * GIB).verdict, 'fits');
});

test('the fit and GPU sentences', () => {
  const base = { wantedTokens: 32768, needBytes: 18.6e9, weightBytes: 15.2e9, freeBytes: 16 * GIB, weights: 'bf16' as const };
  assert.equal(describeFit({ ...base, verdict: 'fits', contextTokens: 32768 }), 'fits your GPU (needs 17.3 GB for 32,768 tokens, 16.0 GB free)');
  assert.equal(describeFit({ ...base, verdict: 'shorter-context', contextTokens: 5832 }), 'fits your GPU with 5,832 tokens of context (needs 17.3 GB for 32,768 tokens, 16.0 GB free)');
  assert.equal(describeFit({ ...base, verdict: 'does-not-fit', contextTokens: 0 }), 'does not fit your GPU (needs 17.3 GB for 32,768 tokens, 16.0 GB free)');
  assert.deepEqual(['fits', 'shorter-context', 'does-not-fit'].map((verdict) => fitCell({ ...base, verdict: verdict as 'fits', contextTokens: 5832 })), ['yes', '5,832 tok', 'no']);
  const q8 = { ...base, needBytes: 12.4e9, weightBytes: 9.1e9, weights: 'q8' as const };
  assert.equal(describeFit({ ...q8, verdict: 'fits', contextTokens: 32768 }), 'fits your GPU with q8 weights (--weights q8; needs 11.5 GB for 32,768 tokens, 16.0 GB free)');
  assert.equal(describeFit({ ...q8, verdict: 'shorter-context', contextTokens: 5832 }),
    'fits your GPU with q8 weights with 5,832 tokens of context (--weights q8; needs 11.5 GB for 32,768 tokens, 16.0 GB free)');
  assert.deepEqual(['fits', 'shorter-context'].map((verdict) => fitCell({ ...q8, verdict: verdict as 'fits', contextTokens: 5832 })), ['with q8', '5,832 tok q8']);
  const q4 = { ...q8, weights: 'q4' as const };
  assert.equal(describeFit({ ...q4, verdict: 'fits', contextTokens: 32768 }), 'fits your GPU with q4 weights (--weights q4; needs 11.5 GB for 32,768 tokens, 16.0 GB free)');
  assert.deepEqual(['fits', 'shorter-context'].map((verdict) => fitCell({ ...q4, verdict: verdict as 'fits', contextTokens: 5832 })), ['with q4', '5,832 tok q4']);
  assert.equal(fitCell(undefined), '-');
  assert.equal(describeGpu({ found: true, name: 'NVIDIA GeForce RTX 4070', totalBytes: 12 * GIB, freeBytes: 11.2 * GIB }), 'NVIDIA GeForce RTX 4070 (11.2 GB free of 12.0 GB)');
  assert.equal(describeGpu({ found: true, name: 'Tesla K80', totalBytes: 12 * GIB, freeBytes: 12 * GIB, problem: 'compute 3.7 is older than 7.0' }),
    'Tesla K80 (12.0 GB free of 12.0 GB), but the CUDA engine cannot use it: compute 3.7 is older than 7.0');
});

test('the GPU report from this machine\'s CUDA probe: device 0 with its memory, or honestly none and why', async () => {
  const report = gpuReport(await checkCuda());
  if (nvidiaDriverPresent()) {
    assert.ok(report.found, JSON.stringify(report));
    assert.ok(report.totalBytes >= report.freeBytes && report.freeBytes > 0, JSON.stringify(report));
  } else {
    assert.equal(report.found, false);
    assert.match(describeGpu(report), /^(no NVIDIA GPU found|could not look for an NVIDIA GPU): \S/);
  }
  // An addon that cannot be loaded: the report says the GPU could not be looked for, not that there is none.
  const bogus = await checkCuda({ nativeLibrary: '/nonexistent/cskv_native.node' });
  assert.deepEqual(gpuReport(bogus), { found: false, reason: 'could not look for an NVIDIA GPU: the native addon /nonexistent/cskv_native.node (cskv.nativeLibrary) does not exist' });
});
