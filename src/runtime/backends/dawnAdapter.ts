// Which adapter Dawn picks for the WebGPU backend, read through Dawn's own Node bindings (the `webgpu` npm
// package: a prebuilt dawn.node per platform, no install-time download). onnxruntime-node runs its own copy of
// Dawn inside its library and says nothing about the adapter, so the probe child (webgpuProbe.ts) asks this copy
// the same question onnxruntime's WebGPU provider asks: the first adapter for a high-performance power
// preference on the platform's default backend (Vulkan, D3D12, Metal). WebGPU reports no memory size; the caller
// adds what the system says (webgpuAvailability.ts).
import * as path from 'node:path';

export interface DawnAdapterInfo {
  /** Lower-case vendor name as Dawn reports it: "nvidia", "amd", "intel", "apple", "mesa" (lavapipe). */
  vendor: string;
  architecture: string;
  device: string;
  /** The driver's own description, e.g. "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)" or "NVIDIA H200". */
  description: string;
  /** A software rasteriser (WebGPU's fallback adapter: Mesa lavapipe, SwiftShader, WARP). */
  fallback: boolean;
  /** The adapter offers the `shader-f16` feature (half-precision arithmetic in shaders). */
  shaderF16: boolean;
  /** The largest buffer it can allocate, in bytes. */
  maxBufferBytes: number;
}

/** Minimal shapes of the WebGPU objects used here (the `webgpu` package's types need the DOM library). */
interface Gpu {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapterObject | null>;
}
interface GpuAdapterObject {
  info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  features: ReadonlySet<string>;
  limits: { maxBufferSize: number };
}

/** Never throws: a missing package, a binding that does not load, or no adapter become `error`. */
export async function readDawnAdapter(): Promise<DawnAdapterInfo | { error: string }> {
  let create: (flags: string[]) => Gpu;
  try {
    // The binding itself, not the package's ES module entry point (the bundles here are CommonJS): it sits in
    // dist/<platform>-<arch>/ (darwin: universal), where the package's own index.js looks for it.
    const packageDir = path.dirname(require.resolve('webgpu/package.json'));
    const arch = process.platform === 'darwin' ? 'universal' : process.arch;
    create = (require(path.join(packageDir, 'dist', `${process.platform}-${arch}`, 'dawn.node')) as { create: typeof create }).create;
  } catch (err) {
    return { error: `Dawn's Node binding (npm package webgpu) did not load: ${(err as Error).message.split('\n')[0]}` };
  }
  try {
    const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return { error: 'Dawn found no WebGPU adapter' };
    const info = adapter.info;
    return {
      vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
      fallback: info.isFallbackAdapter === true || info.architecture === 'software',
      shaderF16: adapter.features.has('shader-f16'),
      maxBufferBytes: adapter.limits.maxBufferSize,
    };
  } catch (err) {
    return { error: `Dawn could not query the adapter: ${(err as Error).message}` };
  }
}
