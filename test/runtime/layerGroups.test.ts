// Several decoder layers in one graph (buildLayersGraph: one session run for all of them) compute what the same
// layers do one graph each, chained: each layer reads its own cache under its prefix, the angles and masks are
// shared, and no name of one layer's weights or values collides with another's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ort } from '../../src/runtime/onnx/ort';
import type { ModelConfig } from '../../src/runtime/model/config';
import { type LayerGraphOptions, type LayerWeights, buildLayerGraph, buildLayersGraph, layerPrefix } from '../../src/runtime/onnx/layerGraph';
import { positiveUniform } from '../../src/runtime/random';

const H = 32, heads = 4, kvHeads = 2, hd = 8, D = kvHeads * hd, I = 48, LAYERS = 3, T = 2, C = 5, HELD = 3;
const config = { hiddenSize: H, heads, kvHeads, headDim: hd, kvDim: D, intermediateSize: I, rmsNormEps: 1e-6 } as ModelConfig;
const options: LayerGraphOptions = { weights: 'f32', keysRotated: true, compressedType: 'float32', fullLayout: 'heads', fullType: 'float32' };
const u = positiveUniform(7);
const random = (n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (u() * 2 - 1) * scale);

function layerWeights(): LayerWeights {
  return {
    inputNorm: random(H), postNorm: random(H), q: random(heads * hd * H, 0.3), k: random(D * H, 0.3), v: random(D * H, 0.3),
    o: random(H * heads * hd, 0.3), qBias: random(heads * hd), gate: random(I * H, 0.3), up: random(I * H, 0.3), down: random(H * I, 0.3),
  };
}

/** The chunk's angles and the masks (HELD of the C slots held, causal over the chunk, rows repeated per query head). */
function sharedFeeds(): Record<string, ort.Tensor> {
  const nRep = heads / kvHeads;
  const angles = (f: (x: number) => number): ort.Tensor => new ort.Tensor('float32', Float32Array.from({ length: T * hd }, (_, i) => f((HELD + Math.floor(i / hd)) * 0.3 * ((i % (hd / 2)) + 1))), [T, hd]);
  const cache = new Float32Array(nRep * T * C).map((_, i) => (i % C < HELD ? 0 : -Infinity));
  const chunk = new Float32Array(nRep * T * T).map((_, i) => (i % T <= Math.floor(i / T) % T ? 0 : -Infinity));
  return {
    cos_q: angles(Math.cos), sin_q: angles(Math.sin),
    mask_cache: new ort.Tensor('float32', cache, [nRep * T, C]), mask_chunk: new ort.Tensor('float32', chunk, [nRep * T, T]),
  };
}

test('layers in one graph compute what they do one graph each, chained', async () => {
  const weights = Array.from({ length: LAYERS }, layerWeights);
  const caches = weights.map(() => ({ k: random(kvHeads * hd * C), v: random(kvHeads * C * hd) }));
  const cacheFeeds = (i: number, prefix: string): Record<string, ort.Tensor> => ({
    [`${prefix}k_cache`]: new ort.Tensor('float32', caches[i]!.k, [kvHeads, hd, C]),
    [`${prefix}v_cache`]: new ort.Tensor('float32', caches[i]!.v, [kvHeads, C, hd]),
  });
  const x = new ort.Tensor('float32', random(T * H), [T, H]);

  let y: ort.Tensor = x;
  const chained: Float32Array[] = [];
  for (let i = 0; i < LAYERS; i++) {
    const graph = buildLayerGraph(config, weights[i]!, undefined, options);
    const session = await ort.InferenceSession.create(graph.model, { externalData: graph.externalData });
    const out = await session.run({ ...sharedFeeds(), ...cacheFeeds(i, ''), x: y });
    chained.push((out.k_append as ort.Tensor).data as Float32Array);
    y = out.y as ort.Tensor;
    await session.release();
  }

  const graph = buildLayersGraph(config, LAYERS, (j) => ({ weights: weights[j]! }), options);
  const session = await ort.InferenceSession.create(graph.model, { externalData: graph.externalData });
  const feeds: Record<string, ort.Tensor> = { ...sharedFeeds(), x };
  for (let j = 0; j < LAYERS; j++) Object.assign(feeds, cacheFeeds(j, layerPrefix(j, LAYERS)));
  const out = await session.run(feeds);
  await session.release();
  const close = (a: Float32Array, b: Float32Array, what: string): void => {
    assert.equal(a.length, b.length, what);
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-5 * (1 + Math.abs(b[i]!)), `${what}[${i}]: ${v} against ${b[i]}`));
  };
  close(out.y!.data as Float32Array, y.data as Float32Array, 'y');
  for (let j = 0; j < LAYERS; j++) close(out[`${layerPrefix(j, LAYERS)}k_append`]!.data as Float32Array, chained[j]!, `layer ${j}'s k_append`);
});
