// Each CUDA kernel against a float64 reference, on the GPU machine. Skipped where no usable GPU is found, so it
// is harmless in `npm test`; on the GPU machine run it alone:
//   source test/gpu/prologue.sh; node --test --test-reporter=spec out/test/gpu/
// Inputs are fresh random numbers each run (the seed is printed; CSKV_KERNEL_SEED repeats a run) and every output
// buffer is poisoned with NaN / 0xff before the kernel runs (native/src/deviceBuffer.h). With CSKV_KERNEL_REPORT
// set to a path, the measured errors are written there as JSON.
// Error measure: max|gpu - ref| / max|ref| over the output (the fixtures' measure). Tolerances: f32 1e-5 (far
// under 1e-3), bf16 1e-2 (issue 5's bound; one rounding of the output is 2^-9 relative, and a JS emulation of
// these kernels measured 2-4e-3); the conversions and the quantiser must match their references bit for bit.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, test } from 'node:test';
import { type KernelDType, type NativeAddon, type QuantisedBlockArrays } from '../../src/runtime/backends/nativeAddon';
import { dequantiseKeys, dequantiseValues, quantiseKeys, quantiseValues } from '../../src/runtime/cache/quantizer';
import { halfBitsToFloat } from '../../src/runtime/half';
import { type ModelConfig, readModelConfig } from '../../src/runtime/model/config';
import { ropeFrequencies } from '../../src/runtime/model/rope';
import { modelFixture } from '../support/paths';
import { mulberry32 as random } from '../../src/runtime/random';
import { kernelGpu, kernelSeed, normalStreams } from '../support/gpuKernels';

const TOLERANCE: Record<KernelDType, number> = { f32: 1e-5, bf16: 1e-2 };
const DTYPES: KernelDType[] = ['f32', 'bf16'];

let addon: NativeAddon | undefined;
let device = '';
let skipReason = '';
const seed = kernelSeed;
const normals = normalStreams(seed);
const report: Record<string, unknown>[] = [];

before(async () => {
  ({ addon, device, skipReason } = await kernelGpu());
});

after(() => {
  if (process.env.CSKV_KERNEL_REPORT && addon) fs.writeFileSync(process.env.CSKV_KERNEL_REPORT, JSON.stringify({ device, seed, results: report }, null, 2));
});


const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits of x, rounded to nearest even (NaN → 0x7fc0; compared by NaN-ness only). */
function bf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function bf16Value(bits: number): number {
  u32[0] = bits << 16;
  return f32[0]!;
}

/** Inputs as the kernel sees them: bf16-rounded for dtype bf16. */
function asKernelSees(x: Float32Array, dtype: KernelDType): Float64Array {
  return Float64Array.from(x, (v) => (dtype === 'bf16' ? bf16Value(bf16Bits(v)) : v));
}

function compare(name: string, dtype: KernelDType, got: Float32Array, want: Float64Array, shape: string): void {
  assert.equal(got.length, want.length);
  let maxDiff = 0, maxRef = 0, nan = 0;
  for (let i = 0; i < got.length; i++) {
    if (Number.isNaN(got[i]!)) nan++;
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
    maxRef = Math.max(maxRef, Math.abs(want[i]!));
  }
  const relative = maxDiff / maxRef;
  report.push({ kernel: name, dtype, shape, maxAbsError: maxDiff, relativeError: relative, tolerance: TOLERANCE[dtype], nan });
  assert.equal(nan, 0, `${name} ${dtype} ${shape}: ${nan} NaN outputs (unwritten or poisoned), seed ${seed}`);
  assert.ok(relative < TOLERANCE[dtype], `${name} ${dtype} ${shape}: relative error ${relative.toExponential(3)} ≥ ${TOLERANCE[dtype]}, seed ${seed}`);
}

test('kernel inputs seed', (t) => {
  if (skipReason) return t.skip(skipReason);
  t.diagnostic(`seed ${seed} (repeat with CSKV_KERNEL_SEED=${seed})`);
});

test('rmsNorm against float64', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  const eps = 1e-6;
  for (const [rows, cols] of [[5, 3584], [3, 128], [7, 1000], [1, 4096 + 31]] as const) {
    const x = normals(rows * cols, 2);
    const w = Float32Array.from(normals(cols, 0.1), (v) => 1 + v);
    for (const dtype of DTYPES) {
      const xs = asKernelSees(x, dtype), ws = asKernelSees(w, dtype);
      const want = new Float64Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        let sum = 0;
        for (let i = 0; i < cols; i++) sum += xs[r * cols + i]! ** 2;
        const inv = 1 / Math.sqrt(sum / cols + eps);
        for (let i = 0; i < cols; i++) want[r * cols + i] = xs[r * cols + i]! * inv * ws[i]!;
      }
      compare('rmsNorm', dtype, addon.kernels.rmsNorm(x, w, eps, dtype), want, `${rows}x${cols}`);
    }
  }
});

test('swiglu against float64', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  const count = 18944 * 3 + 7;
  const gate = normals(count, 4), up = normals(count, 1);
  for (const dtype of DTYPES) {
    const g = asKernelSees(gate, dtype), u = asKernelSees(up, dtype);
    const want = Float64Array.from(g, (v, i) => (v / (1 + Math.exp(-v))) * u[i]!);
    compare('swiglu', dtype, addon.kernels.swiglu(gate, up, dtype), want, `${count}`);
  }
});

test('rope against float64, every scaling type, positions up to 131071', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  const fixtures = ['llama-v4', 'mistral-linear', 'qwen2-dynamic', 'llama-yarn-sharded', 'llama-v5-llama3'];
  const seen = new Set<string>();
  const next = random(seed + 17);
  for (const name of fixtures) {
    const fixture = readModelConfig(modelFixture(name));
    seen.add(fixture.rope.type);
    for (const headDim of [fixture.headDim, 128]) {
      const config: ModelConfig = { ...fixture, headDim };
      const tokens = 33, heads = 3;
      const positions = Int32Array.from({ length: tokens }, (_, i) => (i === 0 ? 0 : i === 1 ? 131071 : Math.floor(next() * 131072)));
      const freqs = ropeFrequencies(config, 131072);
      const x = normals(tokens * heads * headDim);
      const half = headDim / 2;
      for (const dtype of DTYPES) {
        const xs = asKernelSees(x, dtype);
        const want = new Float64Array(xs.length);
        for (let tk = 0; tk < tokens; tk++) {
          for (let h = 0; h < heads; h++) {
            const at = (tk * heads + h) * headDim;
            for (let i = 0; i < half; i++) {
              const angle = positions[tk]! * freqs.invFreq[i]!;
              const c = Math.cos(angle) * freqs.attentionFactor, s = Math.sin(angle) * freqs.attentionFactor;
              want[at + i] = xs[at + i]! * c - xs[at + i + half]! * s;
              want[at + i + half] = xs[at + i + half]! * c + xs[at + i]! * s;
            }
          }
        }
        const got = addon.kernels.rope(x, positions, freqs.invFreq, freqs.attentionFactor, heads, dtype);
        compare('rope', dtype, got, want, `${config.rope.type} ${tokens}x${heads}x${headDim}`);
      }
    }
  }
  assert.deepEqual([...seen].sort(), ['default', 'dynamic', 'linear', 'llama3', 'yarn']);
});

/** Values that exercise rounding: ties, subnormals, infinities, NaN, signed zeros, plus random ones. */
function awkwardFloats(): Float32Array {
  const special = [0, -0, 1, -1, Infinity, -Infinity, NaN, 1e-40, -1e-45, 3.4e38, 1.00390625, 1.01171875, 65504, 2 ** -14, 2 ** -24];
  const out = new Float32Array(special.length + 4096);
  out.set(special);
  out.set(normals(4096, 100), special.length);
  // Exact bf16 halfway points, which must round to even.
  for (let i = 0; i < 64; i++) {
    u32[0] = (((i * 977) & 0xffff) << 16) | 0x8000;
    out[special.length + i] = f32[0]!;
  }
  return out;
}

test('f32 → bf16 → f32 conversions, bit for bit', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  const x = awkwardFloats();
  const bits = addon.kernels.f32ToBf16(x);
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]!)) assert.ok((bits[i]! & 0x7f80) === 0x7f80 && (bits[i]! & 0x7f) !== 0, `NaN → ${bits[i]!.toString(16)}`);
    else assert.equal(bits[i], bf16Bits(x[i]!), `f32ToBf16(${x[i]}) = ${bits[i]!.toString(16)}, want ${bf16Bits(x[i]!).toString(16)}, seed ${seed}`);
  }
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const widened = addon.kernels.bf16ToF32(all);
  for (let i = 0; i < 65536; i++) {
    const want = bf16Value(i);
    assert.ok(Object.is(widened[i], want) || (Number.isNaN(want) && Number.isNaN(widened[i]!)), `bf16ToF32(${i.toString(16)})`);
  }
  report.push({ kernel: 'f32ToBf16+bf16ToF32', exact: true, count: x.length + 65536 });
});

test('f16 → bf16 conversion of every f16 value, bit for bit', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const got = addon.kernels.f16ToBf16(all);
  for (let h = 0; h < 65536; h++) {
    const value = halfBitsToFloat(h);
    if (Number.isNaN(value)) assert.ok((got[h]! & 0x7f80) === 0x7f80 && (got[h]! & 0x7f) !== 0, `f16 NaN ${h.toString(16)}`);
    else assert.equal(got[h], bf16Bits(value), `f16ToBf16(${h.toString(16)} = ${value})`);
  }
  report.push({ kernel: 'f16ToBf16', exact: true, count: 65536 });
});

test('quantiser and dequantiser equal src/runtime/cache/quantizer.ts bit for bit', (t) => {
  if (!addon) return t.skip(skipReason || 'no GPU');
  for (const bits of [8, 4, 2] as const) {
    for (const [tokens, channels] of [[32, 102], [32, 128], [7, 33], [1, 5]] as const) {
      const rows = normals(tokens * channels, 3);
      const shape = `${tokens}x${channels} ${bits}-bit`;
      for (const kind of ['keys', 'values'] as const) {
        const want = kind === 'keys' ? quantiseKeys(rows, tokens, channels, bits) : quantiseValues(rows, tokens, channels, bits);
        const got: QuantisedBlockArrays = kind === 'keys' ? addon.kernels.quantiseKeys(rows, tokens, channels, bits) : addon.kernels.quantiseValues(rows, tokens, channels, bits);
        assert.deepEqual(got.scaleZero, want.scaleZero, `${kind} scale/zero ${shape}, seed ${seed}`);
        assert.deepEqual(got.codes, want.codes, `${kind} codes ${shape}, seed ${seed}`);
        const expected = new Float32Array(tokens * channels);
        if (kind === 'keys') dequantiseKeys(want, tokens, channels, bits, expected, 0);
        else dequantiseValues(want, tokens, channels, bits, expected, 0);
        const back: Float32Array = kind === 'keys'
          ? addon.kernels.dequantiseKeys(want.codes, want.scaleZero, tokens, channels, bits)
          : addon.kernels.dequantiseValues(want.codes, want.scaleZero, tokens, channels, bits);
        assert.deepEqual(back, expected, `${kind} dequantise ${shape}, seed ${seed}`);
      }
      report.push({ kernel: 'quantise/dequantise', bits, shape: `${tokens}x${channels}`, exact: true });
    }
  }
});
