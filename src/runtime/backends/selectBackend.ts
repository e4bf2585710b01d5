// Picks the engine backend. 'auto' asks the native addon whether CUDA can run here and loads the CUDA engine where
// it can; otherwise (or if that load fails: out of memory, a kernel fault) it asks whether WebGPU finds a hardware
// adapter and loads the WebGPU engine there; otherwise the onnx (CPU) engine. Each answer goes into the reason
// ("onnx (CPU): CUDA unavailable: ...; WebGPU unavailable: ..."). An explicit 'cuda' or 'webgpu' that cannot be
// honoured is refused with that reason rather than silently replaced. A software WebGPU adapter (Mesa lavapipe)
// is taken only when 'webgpu' is asked for: it computes on the CPU, slower than the onnx backend.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../../shared/settings';
import type { Engine, EngineOptions } from '../engine';
import { RuntimeError } from '../errors';
import { type CudaAvailability, checkCuda } from './cudaAvailability';
import { CudaEngine } from './cudaEngine';
import { OnnxEngine } from './onnxEngine';
import { type WebGpuAvailability, checkWebGpu } from './webgpuAvailability';
import { loadWebGpuEngine } from './webgpuEngine';
import { defaultCskvFile } from '../model/modelPath';

export type BackendChoice = Backend;

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
  /** Replaces the CUDA engine's loader (tests). */
  loadCuda?: ((modelDir: string, options: EngineOptions, addonFile: string) => Promise<Engine>) | undefined;
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
    if (options.weights === 'f16' && !adapterHasShaderF16(webgpu)) {
      throw new RuntimeError('BACKEND', `f16 weights need an adapter with shader-f16, and ${webgpu.summary} has none; use weights f32 or q8`);
    }
    return { engine: await loadWebGpuEngine(modelDir, options), reason: `webgpu (${webgpu.summary}), as configured`, webgpu };
  }
  const cuda = await (selection.checkCuda ?? (() => checkCuda({ nativeLibrary: selection.nativeLibrary })))();
  let cudaReason: string;
  if (!cuda.available) {
    if (backend === 'cuda') throw cudaRefusal(cuda);
    cudaReason = `CUDA unavailable: ${cuda.reason}`;
  } else {
    const loadCuda = selection.loadCuda ?? ((dir, o, addonFile) => CudaEngine.load(dir, { ...o, nativeLibrary: addonFile }));
    try {
      return { engine: await loadCuda(modelDir, options, cuda.addonFile), reason: `cuda: ${cuda.summary}`, cuda };
    } catch (err) {
      // A model that cannot load at all (a format error) fails the same way on the others: say so once, from here.
      if (backend === 'cuda' || (err instanceof RuntimeError && (err.code === 'MODEL_FORMAT' || err.code === 'UNSUPPORTED'))) throw err;
      cudaReason = `the CUDA engine could not load on ${cuda.summary}: ${(err as Error).message}`;
    }
  }
  const webgpu = await webgpuCheck();
  let webgpuReason: string;
  if (!webgpu.available) webgpuReason = `WebGPU unavailable: ${webgpu.reason}`;
  else if (webgpu.adapter.software) webgpuReason = `WebGPU has only a software adapter (${webgpu.adapter.description}; backend "webgpu" uses it)`;
  else {
    try {
      return { engine: await loadWebGpuEngine(modelDir, options), reason: `webgpu (${webgpu.summary}): ${cudaReason}`, cuda, webgpu };
    } catch (err) {
      webgpuReason = `WebGPU (${webgpu.summary}) failed to load the model: ${(err as Error).message}`;
    }
  }
  return { engine: await OnnxEngine.load(modelDir, options), reason: `onnx (CPU): ${cudaReason}; ${webgpuReason}`, cuda, webgpu };
}

/** Whether Dawn reported shader-f16 (where its binding could not be asked, onnxruntime's own error will say). */
function adapterHasShaderF16(webgpu: WebGpuAvailability & { available: true }): boolean {
  const dawn = webgpu.probe.dawn;
  return 'error' in dawn || dawn.shaderF16;
}

/** The error for an explicit backend 'cuda' on a machine where CUDA cannot run: BACKEND with the reason. */
export function cudaRefusal(cuda: CudaAvailability & { available: false }): RuntimeError {
  return new RuntimeError('BACKEND', `backend "cuda" cannot run here: ${cuda.reason}; use backend "auto" or "onnx"`);
}

/** The cskv setting resolved to a file: 'auto' takes the model's own factor file when present, 'off' none. */
export function resolveCskv(setting: string | undefined, modelDir: string): string | undefined {
  if (setting === undefined || setting === 'auto') {
    const beside = defaultCskvFile(modelDir);
    return fs.existsSync(beside) ? beside : undefined;
  }
  return setting === 'off' ? undefined : path.resolve(setting);
}
