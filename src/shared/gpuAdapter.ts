// The WebGPU adapter in words, one way for the backend's reason, the status bar, the memory view and the CLI.
import type { GpuAdapter } from '../protocol';
import { formatBytes } from './formatBytes';

/** "mesa, software, shares 23.4 GB of system memory" / "amd, 16.0 GB" / "nvidia, memory not reported". */
export function describeAdapter(gpu: GpuAdapter): string {
  const memory = !gpu.memory ? 'memory not reported'
    : gpu.memory.shared ? `shares ${formatBytes(gpu.memory.bytes)} of system memory` : formatBytes(gpu.memory.bytes);
  return [gpu.vendor || 'unknown vendor', ...(gpu.software ? ['software'] : []), memory].join(', ');
}

/** "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6) (mesa, software, shares 23.4 GB of system memory)". */
export function adapterLine(gpu: GpuAdapter): string {
  return `${gpu.name} (${describeAdapter(gpu)})`;
}
