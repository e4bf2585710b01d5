// Backend choice with the CUDA probe: 'auto' falls back to onnx and says why, 'cuda' refuses with a typed error,
// 'onnx' never probes; where CUDA is available the CUDA engine is loaded, and a failed load falls back (auto) or
// rejects (cuda).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import type { CudaAvailability } from '../../src/runtime/backends/cudaAvailability';
import { loadNativeAddon } from '../../src/runtime/backends/nativeAddon';
import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { loadEngineFor } from '../../src/runtime/backends/selectBackend';
import type { WebGpuAvailability } from '../../src/runtime/backends/webgpuAvailability';
import type { Engine } from '../../src/runtime/engine';
import { ModelFormatError, RuntimeError } from '../../src/runtime/errors';
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

test('CUDA reported available but the engine cannot start on this machine: auto falls back and says why; cuda rejects', { skip: nvidiaDriverPresent() && 'an NVIDIA driver is present' }, async () => {
  // The real addon and the real CudaEngine.load: only the probe's verdict is replaced, so the engine gets as far
  // as asking the (absent) GPU for its memory.
  const load = loadNativeAddon();
  assert.ok(load.loaded, 'the addon is built');
  const available: CudaAvailability = { ...h100, addonFile: load.file };
  const { engine, reason } = await loadEngineFor('auto', model, {}, { checkCuda: async () => available, checkWebGpu: async () => noWebGpu });
  try {
    assert.equal(engine.info.backend, 'onnx');
    assert.match(reason, /^onnx \(CPU\): the CUDA engine could not load on NVIDIA H100 .*: CUDA engine: (cannot read the GPU's memory|.*built without CUDA).*; WebGPU unavailable: no Vulkan driver is installed$/);
  } finally {
    await engine.dispose();
  }
  await assert.rejects(loadEngineFor('cuda', model, {}, { checkCuda: async () => available }), (err: unknown) =>
    err instanceof RuntimeError && err.code === 'BACKEND' && /^CUDA engine: /.test(err.message));
});

test('CUDA available and the engine loads: auto and cuda both take it and say which GPU', async () => {
  // A stand-in loader (an onnx engine) checks the selection alone; the real CUDA load runs in test/gpu/.
  let asked = '';
  const loadCuda = async (dir: string, _options: object, addonFile: string): Promise<Engine> => {
    asked = addonFile;
    return OnnxEngine.load(dir);
  };
  for (const backend of ['auto', 'cuda'] as const) {
    const { engine, reason } = await loadEngineFor(backend, model, {}, { checkCuda: async () => h100, loadCuda });
    await engine.dispose();
    assert.equal(reason, `cuda: ${h100.summary}`);
    assert.equal(asked, h100.addonFile);
  }
});

test('a model format error is not hidden behind a fallback', async () => {
  const loadCuda = async (): Promise<Engine> => { throw new ModelFormatError('/m/config.json', 'broken'); };
  await assert.rejects(loadEngineFor('auto', model, {}, { checkCuda: async () => h100, loadCuda }), (err: unknown) => err instanceof ModelFormatError);
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
