// The pure parts of choosing a model in the editor: the download notification's text and bar from pull's JSON
// events, and the preset recommended for a machine's memory (each preset a target `pull` accepts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL_PRESETS, recommendedPreset } from '../../src/shared/modelPresets';
import { PullProgress } from '../../src/extension/pullProgress';
import { parseTarget } from '../../src/runtime/download/pull';

const GB = 1024 ** 3;

test('the notification follows pull: sizes, rate, time left, files; the bar adds up to 100', () => {
  const p = new PullProgress();
  assert.deepEqual(p.step({ event: 'plan', source: 's', destination: 'd', totalBytes: 4 * GB, files: [{ name: 'a', bytes: 3 * GB, cached: false }, { name: 'b', bytes: GB, cached: false }, { name: 'c', bytes: 1, cached: true }] }),
    { increment: undefined, message: '4.0 GB to fetch' });
  assert.equal(p.step({ event: 'start', file: 'a', bytes: 3 * GB, resumeFrom: 0 }), undefined);
  assert.deepEqual(p.step({ event: 'progress', file: 'a', bytes: GB, total: 3 * GB, overallBytes: GB, overallTotal: 4 * GB, bytesPerSecond: 10 * 1024 ** 2, etaSeconds: 307.2 }),
    { increment: 25, message: '1.0 GB of 4.0 GB · 10.0 MB/s · 5 min 7 s left · 0/2 files done' });
  assert.equal(p.step({ event: 'file-done', file: 'a', path: '/x/a', verified: 'sha256' }), undefined);
  assert.deepEqual(p.step({ event: 'progress', file: 'b', bytes: GB / 2, total: GB, overallBytes: 3.5 * GB, overallTotal: 4 * GB, bytesPerSecond: 0, etaSeconds: undefined }),
    { increment: 62.5, message: '3.5 GB of 4.0 GB · 1/2 files done' });
  assert.deepEqual(p.step({ event: 'retry', file: 'b', attempt: 1, reason: 'HTTP 503', resumeFrom: GB / 2 }), { increment: undefined, message: 'HTTP 503; retrying from 512.0 MB' });
  // Fewer bytes than before (a file started over): the bar stays where it was.
  assert.deepEqual(p.step({ event: 'progress', file: 'b', bytes: 0, total: GB, overallBytes: 3 * GB, overallTotal: 4 * GB, bytesPerSecond: 0, etaSeconds: undefined }),
    { increment: 0, message: '3.0 GB of 4.0 GB · 1/2 files done' });
  assert.deepEqual(p.step({ event: 'done', modelPath: '/x/a' }), { increment: 12.5, message: 'done' });
  assert.equal(p.modelPath, '/x/a');
  const resumed = new PullProgress();
  assert.deepEqual(resumed.step({ event: 'start', file: 'a', bytes: 10, resumeFrom: 4 }), { increment: undefined, message: 'resuming a at 4 B' });
  assert.equal(resumed.step({ event: 'error', kind: 'cancelled', message: 'cancelled', partial: '/x/a.incomplete' }), undefined);
  assert.equal(resumed.error?.kind, 'cancelled');
});

test('the preset recommended: the largest that fits the GPU, else by RAM; every preset is a target pull takes', () => {
  const noGpu = { found: false as const, reason: 'no NVIDIA GPU found: no driver' };
  assert.deepEqual(recommendedPreset(noGpu, [], 2 * GB), { preset: MODEL_PRESETS[0], why: "for this machine's 2 GB of RAM" });
  assert.equal(recommendedPreset(undefined, [], 8 * GB).preset, MODEL_PRESETS[0]);
  assert.equal(recommendedPreset(noGpu, [], 16 * GB).preset, MODEL_PRESETS[1]);
  assert.equal(recommendedPreset(noGpu, [], 64 * GB).preset, MODEL_PRESETS[2]);
  const gpu = { found: true as const, name: 'RTX 4070', totalBytes: 12 * GB, freeBytes: 11 * GB };
  const fitting = (verdicts: string[]): Array<{ target: string; gpuFit: never }> =>
    MODEL_PRESETS.map((p, i) => ({ target: p.target, gpuFit: { verdict: verdicts[i], weights: 'bf16' } as never }));
  // A 12 GB GPU that only the 1.5B fits: recommended over the 7B the 64 GB of RAM would take.
  assert.deepEqual(recommendedPreset(gpu, fitting(['fits', 'does-not-fit', 'does-not-fit']), 64 * GB), { preset: MODEL_PRESETS[0], why: 'fits your GPU (RTX 4070, 11.0 GB free)' });
  assert.equal(recommendedPreset(gpu, fitting(['fits', 'fits', 'fits']), 8 * GB).preset, MODEL_PRESETS[2]);
  // A shortened context is not a fit; nothing fits the GPU, or the engine cannot use it: the RAM decides.
  assert.equal(recommendedPreset(gpu, fitting(['fits', 'shorter-context', 'shorter-context']), 64 * GB).preset, MODEL_PRESETS[0]);
  // A fit only with --weights q8 or q4 is not what the extension loads: not recommended for the GPU.
  const q8Fits = fitting(['fits', 'fits', 'fits']).map((f, i) => ({ ...f, gpuFit: { verdict: 'fits', weights: ['bf16', 'q8', 'q4'][i] } as never }));
  assert.equal(recommendedPreset(gpu, q8Fits, 64 * GB).preset, MODEL_PRESETS[0]);
  assert.equal(recommendedPreset(gpu, fitting(['does-not-fit', 'does-not-fit', 'does-not-fit']), 16 * GB).preset, MODEL_PRESETS[1]);
  assert.equal(recommendedPreset({ ...gpu, problem: 'no cuBLASLt' }, fitting(['fits', 'fits', 'fits']), 8 * GB).preset, MODEL_PRESETS[0]);
  for (const preset of MODEL_PRESETS) {
    const t = parseTarget(preset.target, 'https://huggingface.co', undefined);
    assert.equal(t.kind, 'hub', preset.target);
    assert.match(t.kind === 'hub' ? t.selector ?? '' : '', /^q\d_/);
  }
});
