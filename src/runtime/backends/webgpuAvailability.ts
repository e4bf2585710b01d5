// Whether the WebGPU backend can run here, on what kind of adapter, and if not, one sentence saying why. On Linux
// Dawn reaches the GPU through Vulkan: the Vulkan loader (libvulkan.so.1) and at least one driver manifest (ICD)
// must be installed before a probe is worth starting. The probe itself (webgpuProbe.ts) runs in a child process.
//
// onnxruntime does not tell which adapter Dawn picked; the probe asks Dawn's own Node binding (dawnAdapter.ts) for
// the adapter's name, vendor and kind. Where that binding cannot load, the kind is inferred from what is
// installed: a hardware adapter needs a GPU device node (/dev/nvidiactl for NVIDIA's driver, /dev/dri/renderD* for
// Mesa's and others'); without one, the only Vulkan device is Mesa's software rasteriser (lavapipe).
// WebGPU reports no memory size: a software adapter uses the system's memory; an AMD GPU's VRAM is in sysfs.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GpuAdapter } from '../../protocol';
import { adapterLine } from '../../shared/gpuAdapter';
import type { DawnAdapterInfo } from './dawnAdapter';
import { probeInChildProcess } from './isolatedProbe';
import type { WebGpuProbe } from './webgpuProbe';

export interface WebGpuAdapter {
  api: 'Vulkan' | 'D3D12' | 'Metal';
  /** True for a software adapter (Mesa lavapipe): a correctness path, slower than the CPU backend. */
  software: boolean;
  /**
   * "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6) (mesa, software, shares 23.4 GB of system memory)", or where Dawn's
   * binding could not say, the inferred "software (Mesa lavapipe, no GPU device node)".
   */
  description: string;
  /** Name, vendor and memory for the UI (protocol.ts); absent where Dawn's binding could not be asked. */
  gpu?: GpuAdapter | undefined;
}

export type WebGpuAvailability =
  | { available: true; adapter: WebGpuAdapter; summary: string; probe: WebGpuProbe }
  | { available: false; reason: string };

export interface VulkanInstallation {
  /** The loader library found, or undefined. */
  loader: string | undefined;
  /** The driver manifests (ICD .json files) found. */
  drivers: string[];
}

const LOADER = 'libvulkan.so.1';
const LOADER_DIRS = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

/** The Vulkan loader and drivers as the loader itself would look for them (LD_LIBRARY_PATH, VK_DRIVER_FILES). */
export function findVulkan(env: NodeJS.ProcessEnv = process.env): VulkanInstallation {
  const libraryDirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d !== ''), ...LOADER_DIRS];
  const loader = libraryDirs.map((d) => path.join(d, LOADER)).find((f) => fs.existsSync(f));
  const explicit = env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES;
  const drivers = explicit !== undefined
    ? explicit.split(':').filter((f) => f !== '' && fs.existsSync(f))
    : ICD_DIRS.flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.endsWith('.json')).map((f) => path.join(d, f)) : []));
  return { loader, drivers };
}

/** Why WebGPU cannot even be tried here (no Vulkan loader or driver on Linux), or undefined when a probe may run. */
export function missingVulkan(vulkan: VulkanInstallation): string | undefined {
  if (!vulkan.loader) return `the Vulkan loader (${LOADER}) is not installed (Debian: apt install libvulkan1)`;
  if (vulkan.drivers.length === 0) return 'no Vulkan driver is installed (Debian: apt install mesa-vulkan-drivers, or the GPU vendor\'s driver)';
  return undefined;
}

export interface WebGpuCheckOptions {
  /** Replaces the search for the Vulkan loader and drivers (tests). */
  vulkan?: VulkanInstallation | undefined;
  /** The probe module to run in the child (tests); default webgpuProbe.js beside this file or bundle. */
  probeModule?: string | undefined;
}

/** Never throws: every failure becomes `reason`. */
export async function checkWebGpu(options: WebGpuCheckOptions = {}): Promise<WebGpuAvailability> {
  let api: WebGpuAdapter['api'] = 'Vulkan';
  let vulkan: VulkanInstallation | undefined;
  if (process.platform === 'win32') api = 'D3D12';
  else if (process.platform === 'darwin') api = 'Metal';
  else {
    vulkan = options.vulkan ?? findVulkan();
    const missing = missingVulkan(vulkan);
    if (missing) return { available: false, reason: missing };
  }
  const probed = await probeInChildProcess<WebGpuProbe>(options.probeModule ?? path.join(__dirname, 'webgpuProbe.js'), {}, undefined, 'WebGPU');
  if (!probed.ok) return { available: false, reason: probed.reason };
  const dawn = probed.probe.dawn;
  const adapter = dawn && !('error' in dawn) ? dawnAdapter(api, dawn)
    : vulkan ? vulkanAdapter(vulkan) : { api, software: false, description: `${api} (system GPU)` };
  return { available: true, adapter, summary: `${adapter.api}, ${adapter.description}`, probe: probed.probe };
}

/** The adapter as Dawn named it, with the memory the system reports for it. */
export function dawnAdapter(api: WebGpuAdapter['api'], dawn: DawnAdapterInfo, memory = adapterMemory(dawn)): WebGpuAdapter {
  const gpu: GpuAdapter = { name: dawn.description || dawn.device || dawn.vendor, vendor: dawn.vendor, software: dawn.fallback, memory };
  return { api, software: gpu.software, description: adapterLine(gpu), gpu };
}

/** A software adapter computes in system memory; an AMD GPU's VRAM is in sysfs (amdgpu); others say nothing. */
function adapterMemory(dawn: DawnAdapterInfo): GpuAdapter['memory'] {
  if (dawn.fallback) return { bytes: os.totalmem(), shared: true };
  if (process.platform !== 'linux' || dawn.vendor !== 'amd') return undefined;
  const drm = '/sys/class/drm';
  for (const card of fs.existsSync(drm) ? fs.readdirSync(drm).filter((n) => /^card\d+$/.test(n)) : []) {
    try {
      const bytes = Number(fs.readFileSync(path.join(drm, card, 'device', 'mem_info_vram_total'), 'utf8').trim());
      if (bytes > 0) return { bytes, shared: false };
    } catch {
      // not an amdgpu card
    }
  }
  return undefined;
}

/** The adapter Dawn can have picked, from the installed drivers and the device nodes present. */
export function vulkanAdapter(vulkan: VulkanInstallation, devices = gpuDeviceNodes()): WebGpuAdapter {
  const names = vulkan.drivers.map((f) => path.basename(f));
  const nvidia = names.find((n) => n.startsWith('nvidia'));
  if (nvidia && devices.includes('/dev/nvidiactl')) return { api: 'Vulkan', software: false, description: `NVIDIA (${nvidia}, /dev/nvidiactl)` };
  const render = devices.find((d) => d.startsWith('/dev/dri/renderD'));
  const hardwareDrivers = names.filter((n) => !n.startsWith('lvp') && !n.startsWith('nvidia'));
  if (render && hardwareDrivers.length > 0) return { api: 'Vulkan', software: false, description: `GPU at ${render} (${hardwareDrivers.join(', ')})` };
  return { api: 'Vulkan', software: true, description: 'software (Mesa lavapipe, no GPU device node)' };
}

function gpuDeviceNodes(): string[] {
  const nodes = fs.existsSync('/dev/nvidiactl') ? ['/dev/nvidiactl'] : [];
  if (fs.existsSync('/dev/dri')) nodes.push(...fs.readdirSync('/dev/dri').filter((n) => n.startsWith('renderD')).map((n) => `/dev/dri/${n}`));
  return nodes;
}
