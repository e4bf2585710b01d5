// The pure parts of choosing a model in the editor: the download notification's text and bar from pull's JSON
// events, and the preset recommended for a machine's memory (each preset a target `pull` accepts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL_PRESETS, recommendedPreset } from '../../src/extension/modelPresets';
import { PullProgress } from '../../src/extension/pullProgress';
import { parseTarget } from '../../src/runtime/download/pull';

const GB = 1024 ** 3;

test('the notification follows pull: sizes, rate, time left, files; the bar adds up to 100', () => {
  const p = new PullProgress();
  assert.deepEqual(p.step({ event: 'plan', source: 's', destination: 'd', totalBytes: 4 * GB, files: [{ name: 'a', bytes: 3 * GB, cached: false }, { name: 'b', bytes: GB, cached: false }, { name: 'c', bytes: 1, cached: true }] }),
    { increment: undefined, message: '4.0 GB to fetch' });
  assert.equal(p.step({ event: 'start', file: 'a', bytes: 3 * GB, resumeFrom: 0 }), undefined);
  assert.deepEqual(p.step({ event: 'progress', file: 'a', bytes: GB, total: 3 * GB, overallBytes: GB, overallTotal: 4 * GB, bytesPerSecond: 10 * 1024 ** 2, etaSeconds: 307.2 }),
    { increment: 25, message: '1.0 GB of 4.0 GB · 10.0 MB/s · 5 min 7 s left · file 1/2' });
  assert.equal(p.step({ event: 'file-done', file: 'a', path: '/x/a', verified: 'sha256' }), undefined);
  assert.deepEqual(p.step({ event: 'progress', file: 'b', bytes: GB / 2, total: GB, overallBytes: 3.5 * GB, overallTotal: 4 * GB, bytesPerSecond: 0, etaSeconds: undefined }),
    { increment: 62.5, message: '3.5 GB of 4.0 GB · file 2/2' });
  assert.deepEqual(p.step({ event: 'retry', file: 'b', attempt: 1, reason: 'HTTP 503', resumeFrom: GB / 2 }), { increment: undefined, message: 'HTTP 503; retrying from 512.0 MB' });
  assert.deepEqual(p.step({ event: 'done', modelPath: '/x/a' }), { increment: 12.5, message: 'done' });
  assert.equal(p.modelPath, '/x/a');
  const resumed = new PullProgress();
  assert.deepEqual(resumed.step({ event: 'start', file: 'a', bytes: 10, resumeFrom: 4 }), { increment: undefined, message: 'resuming a at 4 B' });
  assert.equal(resumed.step({ event: 'error', kind: 'cancelled', message: 'cancelled', partial: '/x/a.incomplete' }), undefined);
  assert.equal(resumed.error?.kind, 'cancelled');
});

test('the preset recommended for the memory of the machine, and every preset is a target pull takes', () => {
  assert.equal(recommendedPreset(2 * GB), MODEL_PRESETS[0]);
  assert.equal(recommendedPreset(8 * GB), MODEL_PRESETS[0]);
  assert.equal(recommendedPreset(16 * GB), MODEL_PRESETS[1]);
  assert.equal(recommendedPreset(64 * GB), MODEL_PRESETS[2]);
  for (const preset of MODEL_PRESETS) {
    const t = parseTarget(preset.target, 'https://huggingface.co', undefined);
    assert.equal(t.kind, 'hub', preset.target);
    assert.match(t.kind === 'hub' ? t.selector ?? '' : '', /^q\d_/);
  }
});
