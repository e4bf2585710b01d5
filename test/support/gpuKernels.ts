// What the GPU kernel tests share: the addon where a usable CUDA GPU is (else why they skip), seeded inputs, bf16
// rounding as the runners do it, and the error check that also fills a kernel report.
import assert from 'node:assert/strict';
import { type NativeAddon, loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { mulberry32 } from '../../src/runtime/random';

export interface KernelGpu {
  addon: NativeAddon | undefined;
  /** The usable devices, for the report. */
  device: string;
  /** Why the tests skip; empty when `addon` is there. */
  skipReason: string;
}

/** The native addon when it was built with CUDA and a supported GPU is present; otherwise the reason to skip. */
export async function kernelGpu(): Promise<KernelGpu> {
  const load = loadNativeAddon();
  if (!load.loaded) return { addon: undefined, device: '', skipReason: load.reason };
  // Kernels need a usable GPU, not cuBLASLt, so the probe's overall verdict is not required here.
  if (!load.addon.build.cuda) return { addon: undefined, device: '', skipReason: 'CPU-only addon' };
  const probe = await load.addon.probe();
  const usable = probe.devices.filter((d) => d.supported);
  if (usable.length === 0) return { addon: undefined, device: '', skipReason: `no usable GPU: ${probe.reason ?? 'none found'}` };
  return { addon: load.addon, device: usable.map((d) => `${d.name} (compute ${d.computeCapability})`).join(', '), skipReason: '' };
}

/** This run's seed for random inputs: CSKV_KERNEL_SEED, else the clock's (the reports record it). */
export const kernelSeed = Number(process.env.CSKV_KERNEL_SEED ?? (Date.now() % 2 ** 31));

/** Normal(0, scale) samples by Box-Muller, each call from a fresh stream of `seed`. */
export function normalStreams(seed: number): (count: number, scale?: number) => Float32Array {
  let stream = 0;
  return (count, scale = 1) => {
    const next = mulberry32(seed * 7919 + ++stream);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = scale * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    return out;
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** x rounded to bf16 (nearest even), as the runners' f32 -> bf16 conversion does. */
export function roundToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  u32[0] = (((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff) << 16;
  return f32[0]!;
}

export interface KernelResult {
  kernel: string;
  shape: string;
  maxAbsError: number;
  relativeError: number;
  tolerance: number;
  nan: number;
}

/**
 * Checks a kernel's output against its float64 reference: no NaN (an unwritten or poisoned output) and the largest
 * error relative to the reference's largest magnitude under `tolerance`. Each result goes to `report` first, so a
 * failing case is in the report too.
 */
export function checkKernelOutput(report: KernelResult[], seed: number) {
  return (name: string, shape: string, got: Float32Array, want: Float64Array, tolerance: number): void => {
    assert.equal(got.length, want.length);
    let maxDiff = 0, maxRef = 0, nan = 0;
    for (let i = 0; i < got.length; i++) {
      if (Number.isNaN(got[i]!)) nan++;
      maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
      maxRef = Math.max(maxRef, Math.abs(want[i]!));
    }
    const relative = maxDiff / maxRef;
    report.push({ kernel: name, shape, maxAbsError: maxDiff, relativeError: relative, tolerance, nan });
    assert.equal(nan, 0, `${name} ${shape}: ${nan} NaN outputs (unwritten or poisoned), seed ${seed}`);
    assert.ok(relative < tolerance, `${name} ${shape}: relative error ${relative.toExponential(3)} ≥ ${tolerance}, seed ${seed}`);
  };
}
