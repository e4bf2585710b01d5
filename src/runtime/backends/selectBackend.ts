// Picks the engine backend. 'auto' asks the native addon whether CUDA can run here and records the answer in the
// reason ("onnx (CPU): CUDA unavailable: no NVIDIA GPU found ..."); an explicit 'cuda' that cannot be honoured is
// refused with that reason rather than silently replaced. The CUDA engine itself is not written yet, so even a
// working GPU ends on onnx under 'auto' and on an UNSUPPORTED error under 'cuda', each saying so.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine, EngineOptions } from '../engine';
import { RuntimeError } from '../errors';
import { type CudaAvailability, checkCuda } from './cudaAvailability';
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
}

export async function loadEngineFor(
  backend: BackendChoice, modelDir: string, options: EngineOptions, selection: BackendSelection = {},
): Promise<LoadedEngine> {
  if (backend === 'onnx') return { engine: await OnnxEngine.load(modelDir, options), reason: 'onnx (CPU), as configured' };
  const cuda = await (selection.checkCuda ?? (() => checkCuda({ nativeLibrary: selection.nativeLibrary })))();
  if (backend === 'cuda') throw cudaRefusal(cuda);
  const reason = cuda.available
    ? `onnx (CPU): CUDA is available (${cuda.summary}) but the CUDA engine is not implemented yet`
    : `onnx (CPU): CUDA unavailable: ${cuda.reason}`;
  return { engine: await OnnxEngine.load(modelDir, options), reason, cuda };
}

/** The error for an explicit backend 'cuda': BACKEND when this machine cannot run CUDA, UNSUPPORTED when it can. */
export function cudaRefusal(cuda: CudaAvailability): RuntimeError {
  if (!cuda.available) {
    return new RuntimeError('BACKEND', `backend "cuda" cannot run here: ${cuda.reason}; use backend "auto" or "onnx"`);
  }
  return new RuntimeError('UNSUPPORTED',
    `CUDA is available (${cuda.summary}) but the CUDA engine is not implemented yet; use backend "auto" or "onnx"`);
}

/** The cskv setting resolved to a file: 'auto' takes the model's own factor file when present, 'off' none. */
export function resolveCskv(setting: string | undefined, modelDir: string): string | undefined {
  if (setting === undefined || setting === 'auto') {
    const beside = defaultCskvFile(modelDir);
    return fs.existsSync(beside) ? beside : undefined;
  }
  return setting === 'off' ? undefined : path.resolve(setting);
}
