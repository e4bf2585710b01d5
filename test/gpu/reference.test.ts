// The float64 references of test/gpu/reference.ts checked on the CPU against facts that do not share their code:
// attention over one key returns that value, softmax weights sum to one over a uniform cache, compressed rows
// equal full ones when they hold the same keys; the sampler keeps what the runtime's sorting Sampler keeps and
// draws tokens with their softmax frequencies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttentionKernelArgs } from '../../src/runtime/backends/nativeAddon';
import { mulberry32 } from '../../src/runtime/random';
import { Sampler, pickToken } from '../../src/runtime/sampler';
import { attentionReference, sampleReference } from './reference';

const random = mulberry32(5);
const normals = (n: number): Float32Array => Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));

function args(over: Partial<AttentionKernelArgs>): AttentionKernelArgs {
  const heads = 4, kvHeads = 2, headDim = 8, ringRows = 16;
  return {
    q: normals(heads * headDim), kRing: normals(ringRows * kvHeads * headDim), vRing: normals(ringRows * kvHeads * headDim), ringRows,
    compressedTokens: 0, invFreq: Float64Array.from({ length: headDim / 2 }, (_, i) => 10000 ** (-2 * i / headDim)), attentionFactor: 1,
    start: 0, heads, kvHeads, headDim, slidingWindow: 0, multiprocessors: 1, ...over,
  };
}

test('attention reference: the first query sees only its own key, so it returns that value', () => {
  const a = args({});
  const out = attentionReference(a);
  for (let h = 0; h < 4; h++) {
    const g = Math.floor(h / 2);
    for (let c = 0; c < 8; c++) assert.ok(Math.abs(out[h * 8 + c]! - a.vRing[g * 8 + c]!) < 1e-12);
  }
});

test('attention reference: a sliding window of 1 returns the query position\'s own value at any position', () => {
  const a = args({ start: 9, slidingWindow: 1 });
  const out = attentionReference(a);
  for (let h = 0; h < 4; h++) for (let c = 0; c < 8; c++) assert.ok(Math.abs(out[h * 8 + c]! - a.vRing[9 * 16 + Math.floor(h / 2) * 8 + c]!) < 1e-12);
});

test('attention reference: rebuilt rows plus their mean act exactly like the same keys in the ring', () => {
  const full = args({ start: 6, q: normals(2 * 32) });
  const D = 16, C = 4;
  const kMean = normals(D), vMean = normals(D);
  const kRebuilt = new Float32Array(C * D), vRebuilt = new Float32Array(C * D);
  for (let i = 0; i < C * D; i++) {
    kRebuilt[i] = full.kRing[i]! - kMean[i % D]!;
    vRebuilt[i] = full.vRing[i]! - vMean[i % D]!;
  }
  const split = { ...full, compressedTokens: C, kRebuilt, vRebuilt, kMean, vMean };
  const a = attentionReference(full), b = attentionReference(split);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `${i}: ${a[i]} vs ${b[i]}`);
});

test('sample reference: keeps exactly what the runtime\'s sorting Sampler keeps (distinct logits)', () => {
  for (let trial = 0; trial < 50; trial++) {
    const logits = normals(200);
    const topK = trial % 3 === 0 ? 0 : 1 + Math.floor(random() * 50);
    const topP = trial % 2 === 0 ? 1 : 0.3 + random() * 0.69;
    const temperature = 0.5 + random();
    // The Sampler's kept set: the order it walks, cut by top-k then top-p.
    let order = Array.from(logits.keys()).sort((x, y) => logits[y]! - logits[x]!);
    if (topK > 0) order = order.slice(0, topK);
    const weights = order.map((i) => Math.exp((logits[i]! - logits[order[0]!]!) / temperature));
    const total = weights.reduce((s, w) => s + w, 0);
    let keep = order.length, mass = 0;
    if (topP < 1) for (let i = 0; i < order.length; i++) if ((mass += weights[i]! / total) >= Math.fround(topP)) { keep = i + 1; break; }
    const expected = order.slice(0, keep).sort((x, y) => x - y);
    const { kept } = sampleReference(logits, { greedy: false, temperature, topK, topP, u: 0.5 });
    assert.deepEqual(kept, expected, `trial ${trial}`);
    // And greedy agrees with the Sampler's argmax.
    assert.equal(sampleReference(logits, { greedy: true, temperature: 1, topK: 0, topP: 1, u: 0 }).token, new Sampler({ greedy: true }).sample(logits));
  }
});

test('sample reference: one u picks the token the host\'s pickToken picks (both walk the kept tokens in vocabulary order)', () => {
  let compared = 0;
  for (let trial = 0; trial < 40; trial++) {
    const logits = normals(300);
    const step = { greedy: false, temperature: 0.5 + random(), topK: trial % 3 === 0 ? 0 : 1 + Math.floor(random() * 80), topP: trial % 2 === 0 ? 1 : 0.3 + random() * 0.69 };
    for (let j = 0; j < 25; j++) {
      const u = random();
      assert.equal(pickToken(logits, { ...step, u }), sampleReference(logits, { ...step, u }).token, `trial ${trial}, u ${u}`);
      compared++;
    }
  }
  assert.equal(compared, 1000);
});

test('sample reference: tokens come with their softmax frequencies', () => {
  const logits = Float32Array.from([0, 1, 2, 0.5]);
  const counts = [0, 0, 0, 0];
  const N = 20000;
  for (let i = 0; i < N; i++) counts[sampleReference(logits, { greedy: false, temperature: 1, topK: 0, topP: 1, u: (i + 0.5) / N }).token]!++;
  const z = logits.reduce((s, l) => s + Math.exp(l), 0);
  counts.forEach((c, i) => assert.ok(Math.abs(c / N - Math.exp(logits[i]!) / z) < 1e-3, `token ${i}: ${c / N}`));
});
