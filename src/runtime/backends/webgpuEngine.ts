// The WebGPU backend: the onnx backend's layer and head graphs on onnxruntime's WebGPU execution provider (Dawn:
// Vulkan on Linux, D3D12 on Windows, Metal on macOS), so any GPU with such a driver runs the model, and CI tests
// this GPU path on Mesa's software Vulkan driver (lavapipe). Weights are f32 on the GPU; the bi-branch cache is
// kept in JS memory and fed to each layer like on the CPU, so every step uploads it (not yet GPU-resident).
import type { Engine, EngineOptions } from '../engine';
import { type ExecutionProvider, OnnxEngine } from './onnxEngine';

export const WEBGPU_PROVIDER: ExecutionProvider = { backend: 'webgpu', providers: ['webgpu'] };

export function loadWebGpuEngine(modelDir: string, options: EngineOptions = {}): Promise<Engine> {
  return OnnxEngine.load(modelDir, options, WEBGPU_PROVIDER);
}
