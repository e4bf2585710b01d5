// Picks the engine backend. 'auto' asks the native addon whether CUDA can run here and records the answer in the
// reason ("onnx (CPU): CUDA unavailable: no NVIDIA GPU found ..."); where it can, the CUDA engine is loaded, and
// if that fails (out of memory, a kernel fault) 'auto' falls back to onnx saying why. An explicit 'cuda' that
// cannot be honoured is refused with the reason rather than silently replaced.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine, EngineOptions } from '../engine';
import { RuntimeError } from '../errors';
import { type CudaAvailability, checkCuda } from './cudaAvailability';
import { CudaEngine } from './cudaEngine';
import { OnnxEngine } from './onnxEngine';
import { defaultCskvFile } from '../model/modelPath';

export type BackendChoice = 'auto' | 'cuda' | 'onnx';

export interface LoadedEngine {
  engine: Engine;
  /** Why this backend, for the UI and the logs. */
  reason: string;
  /** What the CUDA check found; undefined when backend 'onnx' was asked for (no check is made then). */
  cuda?: CudaAvailability | undefined;
}

export interface BackendSelection {
  /** The native addon to load instead of the bundled one (the cskv.nativeLibrary setting). */
  nativeLibrary?: string | undefined;
  /** Replaces the CUDA check (tests). */
  checkCuda?: (() => Promise<CudaAvailability>) | undefined;
  /** Replaces the CUDA engine's loader (tests). */
  loadCuda?: ((modelDir: string, options: EngineOptions, addonFile: string) => Promise<Engine>) | undefined;
}

export async function loadEngineFor(
  backend: BackendChoice, modelDir: string, options: EngineOptions, selection: BackendSelection = {},
): Promise<LoadedEngine> {
  if (backend === 'onnx') return { engine: await OnnxEngine.load(modelDir, options), reason: 'onnx (CPU), as configured' };
  const cuda = await (selection.checkCuda ?? (() => checkCuda({ nativeLibrary: selection.nativeLibrary })))();
  if (!cuda.available) {
    if (backend === 'cuda') throw cudaRefusal(cuda);
    return { engine: await OnnxEngine.load(modelDir, options), reason: `onnx (CPU): CUDA unavailable: ${cuda.reason}`, cuda };
  }
  const loadCuda = selection.loadCuda ?? ((dir, o, addonFile) => CudaEngine.load(dir, { ...o, nativeLibrary: addonFile }));
  try {
    return { engine: await loadCuda(modelDir, options, cuda.addonFile), reason: `cuda: ${cuda.summary}`, cuda };
  } catch (err) {
    // A model that cannot load at all (a format error) fails the same way on onnx: say so once, from here.
    if (backend === 'cuda' || (err instanceof RuntimeError && (err.code === 'MODEL_FORMAT' || err.code === 'UNSUPPORTED'))) throw err;
    const reason = `onnx (CPU): the CUDA engine could not load on ${cuda.summary}: ${(err as Error).message}`;
    return { engine: await OnnxEngine.load(modelDir, options), reason, cuda };
  }
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
