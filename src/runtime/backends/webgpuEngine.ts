// The WebGPU backend: the onnx backend's layer and head graphs on onnxruntime's WebGPU execution provider (Dawn:
// Vulkan on Linux, D3D12 on Windows, Metal on macOS), so any GPU with such a driver runs the model, and CI tests
// this GPU path on Mesa's software Vulkan driver (lavapipe). Weights are uploaded once in the engine's format:
// f32, or q8/q4 (the default q8) through the provider's own MatMulNBits kernel, which dequantises in the shader and
// keeps activations in f32 (test/runtime/webgpuEngine.test.ts bounds it against the reference like the CPU's).
// The bi-branch cache is kept in JS memory and fed to each layer like on the CPU, so every step uploads it.
import type { Engine, EngineOptions } from '../engine';
import { type ExecutionProvider, OnnxEngine } from './onnxEngine';

export const WEBGPU_PROVIDER: ExecutionProvider = { backend: 'webgpu', providers: ['webgpu'] };

export function loadWebGpuEngine(modelDir: string, options: EngineOptions = {}): Promise<Engine> {
  return OnnxEngine.load(modelDir, options, WEBGPU_PROVIDER);
}
