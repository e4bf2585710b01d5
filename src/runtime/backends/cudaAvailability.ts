// Whether the CUDA backend can run here, and if not, one sentence saying why (for the status bar, the CLI and
// the logs): the addon missing or unloadable, built without CUDA, no driver, no GPU, a GPU too old, no cuBLASLt.
import { probeInChildProcess } from './isolatedProbe';
import type { GpuReport } from '../../shared/gpuFit';
import { type NativeProbe, loadNativeAddon } from './nativeAddon';

export type CudaAvailability =
  | { available: true; addonFile: string; probe: NativeProbe; summary: string }
  | { available: false; reason: string; addonFile?: string | undefined; probe?: NativeProbe | undefined };

export interface CudaCheckOptions {
  /** The addon to load instead of the bundled one (the cskv.nativeLibrary setting). */
  nativeLibrary?: string | undefined;
}

/** Loads the addon and probes the GPUs (in a child process). Never throws: every failure becomes `reason`. */
export async function checkCuda(options: CudaCheckOptions = {}): Promise<CudaAvailability> {
  const load = loadNativeAddon({ file: options.nativeLibrary });
  if (!load.loaded) return { available: false, reason: load.reason };
  const probed = await probeInChildProcess(load.file);
  if (!probed.ok) return { available: false, reason: probed.reason, addonFile: load.file };
  const probe = probed.probe;
  if (!probe.available) return { available: false, reason: probe.reason ?? 'the CUDA probe gave no reason', addonFile: load.file, probe };
  return { available: true, addonFile: load.file, probe, summary: describeGpus(probe) };
}

const GIB = 1024 ** 3;

/** "NVIDIA H100 80GB HBM3 (79.2 GiB, 78.6 GiB free, compute 9.0)", one entry per usable GPU. */
export function describeGpus(probe: NativeProbe): string {
  return probe.devices
    .filter((d) => d.supported)
    .map((d) => `${d.name} (${(d.totalBytes / GIB).toFixed(1)} GiB, ${(d.freeBytes / GIB).toFixed(1)} GiB free, compute ${d.computeCapability})`)
    .join('; ');
}

/** GPU 0 (the one the CUDA engine takes by default) for the model fits, or the sentence saying why there is none. */
export function gpuReport(cuda: CudaAvailability): GpuReport {
  const device = cuda.probe?.devices[0];
  const reason = cuda.available ? undefined : cuda.reason;
  if (device) {
    const problem = !device.supported ? device.problem ?? 'this build cannot use it' : reason;
    return { found: true, name: device.name, totalBytes: device.totalBytes, freeBytes: device.freeBytes, problem };
  }
  return { found: false, reason: cuda.probe ? `no NVIDIA GPU found: ${reason ?? 'the probe lists no device'}` : `could not look for an NVIDIA GPU: ${reason}` };
}
