// Picks the engine backend. The CUDA engine (native/) is not built yet, so 'auto' means the onnx CPU backend and
// an explicit 'cuda' is refused with the reason rather than silently replaced.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine, EngineOptions } from '../engine';
import { RuntimeError } from '../errors';
import { OnnxEngine } from './onnxEngine';

export type BackendChoice = 'auto' | 'cuda' | 'onnx';

export interface LoadedEngine {
  engine: Engine;
  /** Why this backend, for the UI and the logs. */
  reason: string;
}

export async function loadEngineFor(backend: BackendChoice, modelDir: string, options: EngineOptions): Promise<LoadedEngine> {
  if (backend === 'cuda') {
    throw new RuntimeError('UNSUPPORTED', 'the CUDA backend is not available in this build (native/ is not built); use backend "onnx" or "auto"');
  }
  const engine = await OnnxEngine.load(modelDir, options);
  return { engine, reason: backend === 'auto' ? 'onnx (CPU): no CUDA backend in this build' : 'onnx (CPU), as configured' };
}

/** The cskv setting resolved to a file: 'auto' takes DIR/cskv.safetensors when present, 'off' none. */
export function resolveCskv(setting: string | undefined, modelDir: string): string | undefined {
  if (setting === undefined || setting === 'auto') {
    const beside = path.join(modelDir, 'cskv.safetensors');
    return fs.existsSync(beside) ? beside : undefined;
  }
  return setting === 'off' ? undefined : path.resolve(setting);
}
