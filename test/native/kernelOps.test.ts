// The kernel exports check their arguments in native code (BAD_ARGUMENT, before touching the GPU) and, on a
// machine without a GPU, fail with a typed error naming the kernel. Their numerics are test/gpu/'s business.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type NativeAddon, loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { RuntimeError } from '../../src/runtime/errors';
import { nvidiaDriverPresent } from './expectations';

function addon(): NativeAddon {
  const load = loadNativeAddon();
  assert.ok(load.loaded, load.loaded ? '' : load.reason);
  return load.addon;
}

const badArgument = (pattern: RegExp) => (err: unknown): boolean =>
  err instanceof RuntimeError && err.code === 'BAD_ARGUMENT' && pattern.test(err.message);

test('every kernel is exported', () => {
  assert.deepEqual(Object.keys(addon().kernels).sort(), [
    'attention', 'bf16ToF32', 'dequantiseKeys', 'dequantiseValues', 'f16ToBf16', 'f32ToBf16', 'fusedAttention', 'fusedAttentionReference',
    'fusedPrefillAttention', 'fusedPrefillAttentionReference', 'q4DequantiseReference', 'q4DequantiseRows', 'q4Gemv', 'q4LinearReference',
    'q8DequantiseReference', 'q8DequantiseRows', 'q8Embedding', 'q8Gemv', 'q8LinearReference', 'quantiseKeys', 'quantiseValues', 'rmsNorm', 'rope',
    'sample', 'swiglu',
  ]);
});

test('shapes, dtypes and bits are checked before any device work', () => {
  const k = addon().kernels;
  assert.throws(() => k.rmsNorm(new Float32Array(7), new Float32Array(4), 1e-6, 'bf16'), badArgument(/^rmsNorm: x\.length must be a multiple of weight\.length$/));
  assert.throws(() => k.rmsNorm(new Float32Array(8), new Float32Array(4), 1e-6, 'f16' as never), badArgument(/^rmsNorm: dtype must be "f32" or "bf16"$/));
  assert.throws(() => k.rmsNorm(new Float64Array(8) as never, new Float32Array(4), 1e-6, 'f32'), badArgument(/^rmsNorm: x must be a Float32Array$/));
  assert.throws(() => k.rmsNorm(new Float32Array(8), new Float32Array(4), Number.NaN, 'f32'), badArgument(/^rmsNorm: eps must be finite$/));
  assert.throws(() => k.rope(new Float32Array(8), new Int32Array([1]), new Float64Array(2), 1, 3, 'f32'), badArgument(/^rope: x\.length must be/));
  assert.throws(() => k.rope(new Float32Array(4), new Int32Array([-1]), new Float64Array(2), 1, 1, 'f32'), badArgument(/^rope: positions must be non-negative$/));
  assert.throws(() => k.swiglu(new Float32Array(3), new Float32Array(4), 'f32'), badArgument(/^swiglu: gate and up must have the same length$/));
  assert.throws(() => k.quantiseKeys(new Float32Array(8), 2, 4, 3 as never), badArgument(/^quantiseKeys: bits must be 8, 4 or 2$/));
  assert.throws(() => k.quantiseValues(new Float32Array(8), 2, 5, 4), badArgument(/^quantiseValues: rows\.length must be tokens \* channels$/));
  assert.throws(() => k.dequantiseKeys(new Uint8Array(3), new Uint16Array(8), 2, 4, 4), badArgument(/^dequantiseKeys: codes\.length does not match/));
  assert.throws(() => k.dequantiseValues(new Uint8Array(4), new Uint16Array(2), 2, 4, 4), badArgument(/^dequantiseValues: scaleZero\.length does not match/));
  assert.throws(() => k.bf16ToF32(new Int16Array(2) as never), badArgument(/^bf16ToF32: x must be a Uint16Array$/));
});

test('without a GPU each kernel fails with a typed error that names it', { skip: nvidiaDriverPresent() && 'an NVIDIA driver is present' }, () => {
  const a = addon();
  const k = a.kernels;
  const calls: [string, () => unknown][] = [
    ['rmsNorm', () => k.rmsNorm(new Float32Array(8), new Float32Array(4), 1e-6, 'bf16')],
    ['rope', () => k.rope(new Float32Array(4), new Int32Array([3]), new Float64Array(2), 1, 1, 'f32')],
    ['swiglu', () => k.swiglu(new Float32Array(4), new Float32Array(4), 'f32')],
    ['f32ToBf16', () => k.f32ToBf16(new Float32Array(4))],
    ['quantiseKeys', () => k.quantiseKeys(new Float32Array(8), 2, 4, 4)],
    ['dequantiseValues', () => k.dequantiseValues(new Uint8Array(4), new Uint16Array(4), 2, 4, 4)],
  ];
  const fusedArgs = {
    q: new Float32Array(4), kRing: new Float32Array(8), vRing: new Float32Array(8), ringRows: 2, compressedTokens: 0, invFreq: new Float64Array(2),
    attentionFactor: 1, start: 1, heads: 1, kvHeads: 1, headDim: 4, slidingWindow: 0, multiprocessors: 1,
  };
  calls.push(['fusedAttention', () => k.fusedAttention(fusedArgs)], ['fusedPrefillAttention', () => k.fusedPrefillAttention(fusedArgs)]);
  calls.push(['q8Embedding', () => k.q8Embedding({ codes: new Int8Array(64), scales: new Float32Array(2), n: 2, k: 32 }, Int32Array.of(1))]);
  for (const [name, call] of calls) {
    assert.throws(call, (err: unknown) => {
      assert.ok(err instanceof RuntimeError, `${name}: ${String(err)}`);
      if (a.build.cuda) {
        assert.equal(err.code, 'CUDA', err.message);
        assert.match(err.message, new RegExp(`^${name}: cudaMalloc\\(\\d+ bytes\\) failed: cudaErrorInsufficientDriver \\(35\\): `));
      } else {
        assert.equal(err.code, 'BACKEND', err.message);
        assert.equal(err.message, `${name}: this addon was built without CUDA`);
      }
      return true;
    });
  }
});
