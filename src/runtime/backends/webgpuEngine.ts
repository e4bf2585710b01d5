// The WebGPU backend: the onnx backend's layer and head graphs on onnxruntime's WebGPU execution provider (Dawn:
// Vulkan on Linux, D3D12 on Windows, Metal on macOS), so any GPU with such a driver runs the model, and CI tests
// this GPU path on Mesa's software Vulkan driver (lavapipe). Weights are uploaded once in the engine's format:
// f32, or q8/q4 (the default q8) through the provider's own MatMulNBits kernel, which dequantises in the shader and
// keeps activations in f32 (test/runtime/webgpuEngine.test.ts bounds it against the reference like the CPU's), or
// f16 on an adapter with shader-f16 (products in half precision).
// Between layers the activations stay on the GPU, and both branches of the cache between steps (deviceCache.ts),
// and the RoPE tables (deviceStepInputs.ts): a decode step uploads the token's embedding and reads back its logits;
// every W tokens (CSKV) the JS record is read back and the block that leaves the window goes up compressed.
import type { Engine, EngineOptions } from '../engine';
import { OnnxEngine } from './onnxEngine';

/**
 * `keepOnDevice: false` uploads the whole cache and every layer's activations each step, the first version of
 * this backend; bench/webgpu.ts measures the two against each other.
 */
export function loadWebGpuEngine(modelDir: string, options: EngineOptions = {}, keepOnDevice = true): Promise<Engine> {
  return OnnxEngine.load(modelDir, options, { backend: 'webgpu', providers: ['webgpu'], keepOnDevice });
}
