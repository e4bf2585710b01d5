// Picks the engine backend. 'auto' asks the native addon whether CUDA can run here, then whether WebGPU finds a
// hardware adapter, and records the answers in the reason ("onnx (CPU): CUDA unavailable: ...; WebGPU: ...").
// An explicit 'cuda' or 'webgpu' that cannot be honoured is refused with that reason rather than silently
// replaced. The CUDA engine itself is not written yet, so even a working NVIDIA GPU goes on to WebGPU under
// 'auto' and ends on an UNSUPPORTED error under 'cuda', each saying so. A software WebGPU adapter (Mesa lavapipe)
// is taken only when 'webgpu' is asked for: it computes on the CPU, slower than the onnx backend.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine, EngineOptions } from '../engine';
import { RuntimeError } from '../errors';
import { type CudaAvailability, checkCuda } from './cudaAvailability';
import { OnnxEngine } from './onnxEngine';
import { type WebGpuAvailability, checkWebGpu } from './webgpuAvailability';
import { loadWebGpuEngine } from './webgpuEngine';

export const BACKEND_CHOICES = ['auto', 'cuda', 'webgpu', 'onnx'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface LoadedEngine {
  engine: Engine;
  /** Why this backend, for the UI and the logs. */
  reason: string;
  /** What the CUDA check found; undefined when it was not made (backend 'onnx' or 'webgpu'). */
  cuda?: CudaAvailability | undefined;
  /** What the WebGPU check found; undefined when it was not made. */
  webgpu?: WebGpuAvailability | undefined;
}

export interface BackendSelection {
  /** The native addon to load instead of the bundled one (the cskv.nativeLibrary setting). */
  nativeLibrary?: string | undefined;
  /** Replaces the CUDA check (tests). */
  checkCuda?: (() => Promise<CudaAvailability>) | undefined;
  /** Replaces the WebGPU check (tests). */
  checkWebGpu?: (() => Promise<WebGpuAvailability>) | undefined;
}

export async function loadEngineFor(
  backend: BackendChoice, modelDir: string, options: EngineOptions, selection: BackendSelection = {},
): Promise<LoadedEngine> {
  if (backend === 'onnx') return { engine: await OnnxEngine.load(modelDir, options), reason: 'onnx (CPU), as configured' };
  const webgpuCheck = selection.checkWebGpu ?? checkWebGpu;
  if (backend === 'webgpu') {
    const webgpu = await webgpuCheck();
    if (!webgpu.available) throw new RuntimeError('BACKEND', `backend "webgpu" cannot run here: ${webgpu.reason}; use backend "auto" or "onnx"`);
    return { engine: await loadWebGpuEngine(modelDir, options), reason: `webgpu (${webgpu.summary}), as configured`, webgpu };
  }
  const cuda = await (selection.checkCuda ?? (() => checkCuda({ nativeLibrary: selection.nativeLibrary })))();
  if (backend === 'cuda') throw cudaRefusal(cuda);
  const cudaReason = cuda.available
    ? `CUDA is available (${cuda.summary}) but the CUDA engine is not implemented yet`
    : `CUDA unavailable: ${cuda.reason}`;
  const webgpu = await webgpuCheck();
  let webgpuReason: string;
  if (!webgpu.available) webgpuReason = `WebGPU unavailable: ${webgpu.reason}`;
  else if (webgpu.adapter.software) webgpuReason = `WebGPU has only a ${webgpu.adapter.description} adapter (backend "webgpu" uses it)`;
  else {
    try {
      return { engine: await loadWebGpuEngine(modelDir, options), reason: `webgpu (${webgpu.summary}): ${cudaReason}`, cuda, webgpu };
    } catch (err) {
      webgpuReason = `WebGPU (${webgpu.summary}) failed to load the model: ${(err as Error).message}`;
    }
  }
  return { engine: await OnnxEngine.load(modelDir, options), reason: `onnx (CPU): ${cudaReason}; ${webgpuReason}`, cuda, webgpu };
}

/** The error for an explicit backend 'cuda': BACKEND when this machine cannot run CUDA, UNSUPPORTED when it can. */
export function cudaRefusal(cuda: CudaAvailability): RuntimeError {
  if (!cuda.available) {
    return new RuntimeError('BACKEND', `backend "cuda" cannot run here: ${cuda.reason}; use backend "auto" or "onnx"`);
  }
  return new RuntimeError('UNSUPPORTED',
    `CUDA is available (${cuda.summary}) but the CUDA engine is not implemented yet; use backend "auto" or "onnx"`);
}

/** The cskv setting resolved to a file: 'auto' takes DIR/cskv.safetensors when present, 'off' none. */
export function resolveCskv(setting: string | undefined, modelDir: string): string | undefined {
  if (setting === undefined || setting === 'auto') {
    const beside = path.join(modelDir, 'cskv.safetensors');
    return fs.existsSync(beside) ? beside : undefined;
  }
  return setting === 'off' ? undefined : path.resolve(setting);
}
