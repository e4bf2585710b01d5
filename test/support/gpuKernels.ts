// What the GPU kernel tests share: the addon where a usable CUDA GPU is (else why they skip), and seeded inputs.
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
