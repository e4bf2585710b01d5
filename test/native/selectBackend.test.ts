// Backend choice with the CUDA probe: 'auto' falls back to onnx and says why, 'cuda' refuses with a typed error,
// 'onnx' never probes. The CUDA engine is not written yet, and a working GPU must say so rather than pretend.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import type { CudaAvailability } from '../../src/runtime/backends/cudaAvailability';
import { loadEngineFor } from '../../src/runtime/backends/selectBackend';
import type { WebGpuAvailability } from '../../src/runtime/backends/webgpuAvailability';
import { RuntimeError } from '../../src/runtime/errors';
import { modelFixture, tempDir } from '../support/paths';
import { nvidiaDriverPresent } from './expectations';

const model = modelFixture('qwen2-v5');
const h100: CudaAvailability = {
  available: true, addonFile: '/x/cskv_native.node', summary: 'NVIDIA H100 80GB HBM3 (79.2 GiB, 78.6 GiB free, compute 9.0)',
  probe: { available: true, devices: [], libraries: { cudaDriver: { loaded: true, path: 'libcuda.so.1', missingSymbols: [] }, cublasLt: { loaded: true, path: 'libcublasLt.so.13', missingSymbols: [] } } },
};

const noWebGpu: WebGpuAvailability = { available: false, reason: 'no Vulkan driver is installed' };

test('auto without a usable GPU: the onnx engine, and the reason names what is missing', { skip: nvidiaDriverPresent() && 'an NVIDIA driver is present' }, async () => {
  const { engine, reason, cuda } = await loadEngineFor('auto', model, {});
  try {
    assert.equal(engine.info.backend, 'onnx');
    assert.ok(cuda && !cuda.available);
    assert.match(reason, /^onnx \(CPU\): CUDA unavailable: .*libcuda\.so\.1: cannot open shared object file/);
  } finally {
    await engine.dispose();
  }
});

test('cuda without a usable GPU: RuntimeError BACKEND with the same reason, before any model is loaded', { skip: nvidiaDriverPresent() && 'an NVIDIA driver is present' }, async () => {
  await assert.rejects(loadEngineFor('cuda', path.join(tempDir(), 'no-model-here'), {}), (err: unknown) => {
    assert.ok(err instanceof RuntimeError, String(err));
    assert.equal(err.code, 'BACKEND');
    assert.match(err.message, /^backend "cuda" cannot run here: .*libcuda\.so\.1/);
    return true;
  });
});

test('a configured addon path that is missing: auto falls back and says which file', async () => {
  const missing = path.join(tempDir(), 'custom.node');
  const { engine, reason } = await loadEngineFor('auto', model, {}, { nativeLibrary: missing, checkWebGpu: async () => noWebGpu });
  try {
    assert.equal(engine.info.backend, 'onnx');
    assert.equal(reason, `onnx (CPU): CUDA unavailable: the native addon ${missing} (cskv.nativeLibrary) does not exist; WebGPU unavailable: no Vulkan driver is installed`);
  } finally {
    await engine.dispose();
  }
});

test('CUDA available but no CUDA engine yet: auto says so and runs onnx; cuda is UNSUPPORTED', async () => {
  const { engine, reason, cuda } = await loadEngineFor('auto', model, {}, { checkCuda: async () => h100, checkWebGpu: async () => noWebGpu });
  try {
    assert.equal(engine.info.backend, 'onnx');
    assert.equal(cuda, h100);
    assert.equal(reason, `onnx (CPU): CUDA is available (${h100.summary}) but the CUDA engine is not implemented yet; WebGPU unavailable: no Vulkan driver is installed`);
  } finally {
    await engine.dispose();
  }
  await assert.rejects(loadEngineFor('cuda', model, {}, { checkCuda: async () => h100 }), (err: unknown) =>
    err instanceof RuntimeError && err.code === 'UNSUPPORTED' && /CUDA engine is not implemented yet/.test(err.message) && err.message.includes('H100'));
});

test('onnx as configured: no CUDA or WebGPU check at all', async () => {
  const { engine, reason, cuda } = await loadEngineFor('onnx', model, {}, {
    checkCuda: async () => { throw new Error('the CUDA check must not run for backend onnx'); },
    checkWebGpu: async () => { throw new Error('the WebGPU check must not run for backend onnx'); },
  });
  try {
    assert.equal(engine.info.backend, 'onnx');
    assert.equal(reason, 'onnx (CPU), as configured');
    assert.equal(cuda, undefined);
  } finally {
    await engine.dispose();
  }
});
