// Whether the WebGPU backend can run here, on what kind of adapter, and if not, one sentence saying why. On Linux
// Dawn reaches the GPU through Vulkan: the Vulkan loader (libvulkan.so.1) and at least one driver manifest (ICD)
// must be installed before a probe is worth starting. The probe itself (webgpuProbe.ts) runs in a child process.
//
// onnxruntime does not tell which adapter Dawn picked, so the kind is inferred from what is installed: a hardware
// adapter needs a GPU device node (/dev/nvidiactl for NVIDIA's driver, /dev/dri/renderD* for Mesa's and others');
// without one, the only Vulkan device is Mesa's software rasteriser (lavapipe), which computes on the CPU.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { probeInChildProcess } from './isolatedProbe';
import type { WebGpuProbe } from './webgpuProbe';

export interface WebGpuAdapter {
  api: 'Vulkan' | 'D3D12' | 'Metal';
  /** True for a software adapter (Mesa lavapipe): a correctness path, slower than the CPU backend. */
  software: boolean;
  /** "software (Mesa lavapipe, no GPU device node)", "NVIDIA (nvidia_icd.json, /dev/nvidiactl)". */
  description: string;
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
  const adapter = vulkan ? vulkanAdapter(vulkan) : { api, software: false, description: `${api} (system GPU)` };
  return { available: true, adapter, summary: `${adapter.api}, ${adapter.description}`, probe: probed.probe };
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
