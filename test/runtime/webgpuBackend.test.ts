// Choosing the WebGPU backend: what the availability check finds (Vulkan loader, drivers, the probe in a child
// process, software or hardware adapter), and what 'auto' and 'webgpu' do with each answer.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import type { CudaAvailability } from '../../src/runtime/backends/cudaAvailability';
import { loadEngineFor } from '../../src/runtime/backends/selectBackend';
import { type WebGpuAvailability, checkWebGpu, dawnAdapter, findVulkan, vulkanAdapter } from '../../src/runtime/backends/webgpuAvailability';
import { formatBytes } from '../../src/shared/formatBytes';
import { RuntimeError } from '../../src/runtime/errors';
import { WorkspaceSession } from '../../src/workspace/session';
import { modelFixture, tempDir } from '../support/paths';
import { tinyQwenModel } from '../support/tinyQwen';
import { webgpuSkip } from '../support/webgpu';

const model = modelFixture('qwen2-v5');
const noCuda = async (): Promise<CudaAvailability> => ({ available: false, reason: 'libcuda.so.1: cannot open shared object file' });
const probe = { maxError: 0, milliseconds: 1, dawn: { error: 'not asked (a stand-in probe)' } };
const lavapipe: WebGpuAvailability = {
  available: true, summary: 'Vulkan, software (Mesa lavapipe, no GPU device node)', probe,
  adapter: { api: 'Vulkan', software: true, description: 'software (Mesa lavapipe, no GPU device node)' },
};
const skip = webgpuSkip();

test('the adapter kind: NVIDIA or a render node with its driver is hardware; lavapipe, or a driver without its GPU, is software', () => {
  const drivers = ['/usr/share/vulkan/icd.d/lvp_icd.json', '/usr/share/vulkan/icd.d/radeon_icd.json', '/etc/vulkan/icd.d/nvidia_icd.json'];
  assert.deepEqual(vulkanAdapter({ loader: 'libvulkan.so.1', drivers }, ['/dev/nvidiactl']),
    { api: 'Vulkan', software: false, description: 'NVIDIA (nvidia_icd.json, /dev/nvidiactl)' });
  assert.equal(vulkanAdapter({ loader: 'libvulkan.so.1', drivers: drivers.slice(0, 2) }, ['/dev/dri/renderD128']).software, false);
  assert.equal(vulkanAdapter({ loader: 'libvulkan.so.1', drivers }, []).software, true);
  assert.equal(vulkanAdapter({ loader: 'libvulkan.so.1', drivers: drivers.slice(0, 1) }, ['/dev/dri/renderD128']).software, true);
});

const notLinux = process.platform !== 'linux' && 'Dawn uses Vulkan on Linux only';

test('no Vulkan loader, or no driver: a reason saying what to install, and no probe started', { skip: notLinux }, async () => {
  const probeModule = path.join(tempDir(), 'must-not-run.js');
  fs.writeFileSync(probeModule, 'exports.probe = () => { throw new Error("the probe ran"); };\n');
  assert.deepEqual(await checkWebGpu({ vulkan: { loader: undefined, drivers: ['/x/lvp_icd.json'] }, probeModule }),
    { available: false, reason: 'the Vulkan loader (libvulkan.so.1) is not installed (Debian: apt install libvulkan1)' });
  const none = await checkWebGpu({ vulkan: { loader: '/usr/lib/libvulkan.so.1', drivers: [] }, probeModule });
  assert.match(none.available ? '' : none.reason, /^no Vulkan driver is installed/);
});

test('a probe that crashes in the driver: a reason naming the signal, this process unharmed', async () => {
  const probeModule = path.join(tempDir(), 'crashing-probe.js');
  fs.writeFileSync(probeModule, `exports.probe = () => { process.kill(process.pid, 'SIGSEGV'); };\n`);
  const result = await checkWebGpu({ vulkan: { loader: '/usr/lib/libvulkan.so.1', drivers: ['/x/lvp_icd.json'] }, probeModule });
  assert.deepEqual(result, { available: false, reason: 'the WebGPU probe crashed (SIGSEGV) in the GPU driver' });
});

test('a Vulkan driver whose GPU is absent: the probe finds no adapter and says so', { skip }, async () => {
  const icdDir = '/usr/share/vulkan/icd.d';
  const hardware = fs.existsSync(icdDir) ? fs.readdirSync(icdDir).find((f) => /^(radeon|intel)_icd/.test(f)) : undefined;
  if (!hardware || fs.existsSync('/dev/dri')) return; // needs a hardware driver manifest on a machine without its GPU
  const saved = process.env.VK_DRIVER_FILES;
  process.env.VK_DRIVER_FILES = path.join(icdDir, hardware);
  try {
    const result = await checkWebGpu();
    assert.equal(result.available, false);
    assert.match(result.available ? '' : result.reason, /^the WebGPU probe failed: Failed to get a WebGPU adapter/);
  } finally {
    if (saved === undefined) delete process.env.VK_DRIVER_FILES;
    else process.env.VK_DRIVER_FILES = saved;
  }
});

test('this machine: the probe runs the MatMul + Softmax on the adapter and matches JS', { skip }, async () => {
  const result = await checkWebGpu();
  assert.ok(result.available, result.available ? '' : result.reason);
  assert.ok(result.probe.maxError <= 1e-3);
  const gpuNodes = fs.existsSync('/dev/nvidiactl') || fs.existsSync('/dev/dri');
  const onlyLavapipe = findVulkan().drivers.every((d) => path.basename(d).startsWith('lvp'));
  if (process.platform === 'linux' && (!gpuNodes || onlyLavapipe)) assert.equal(result.adapter.software, true, result.summary);
  // Dawn's own binding names the adapter (npm package webgpu): name, vendor, and the memory for a software one.
  assert.ok(!('error' in result.probe.dawn), 'error' in result.probe.dawn ? result.probe.dawn.error : '');
  const gpu = result.adapter.gpu;
  assert.ok(gpu && gpu.name !== '' && gpu.vendor !== '', result.summary);
  assert.equal(gpu.software, result.adapter.software);
  if (gpu.software) assert.deepEqual(gpu.memory, { bytes: os.totalmem(), shared: true });
  assert.ok(result.summary.includes(gpu.name) && result.summary.includes(gpu.vendor), result.summary);
  console.log(`adapter: ${result.summary}; shader-f16: ${result.probe.dawn.shaderF16}`);
});

test('the adapter Dawn names: its description, vendor and kind, and memory where the system reports it', () => {
  const dawn = { vendor: 'nvidia', architecture: 'hopper', device: '0x2335', description: 'NVIDIA H200', fallback: false, shaderF16: true, maxBufferBytes: 2 ** 40 };
  assert.deepEqual(dawnAdapter('Vulkan', dawn, undefined), {
    api: 'Vulkan', software: false, description: 'NVIDIA H200 (nvidia, memory not reported)',
    gpu: { name: 'NVIDIA H200', vendor: 'nvidia', software: false, memory: undefined },
  });
  const lvp = dawnAdapter('Vulkan', { ...dawn, vendor: 'mesa', architecture: 'software', description: 'llvmpipe: Mesa 25.0.7', fallback: true });
  assert.equal(lvp.software, true);
  assert.equal(lvp.description, `llvmpipe: Mesa 25.0.7 (mesa, software, shares ${formatBytes(os.totalmem())} of system memory)`);
  // A driver without a description: the device id names it.
  assert.equal(dawnAdapter('Metal', { ...dawn, vendor: 'apple', description: '', device: 'apple-m3' }, undefined).gpu?.name, 'apple-m3');
});

test('webgpu as configured without an adapter: BACKEND with the reason, before any model is loaded', async () => {
  await assert.rejects(loadEngineFor('webgpu', path.join(tempDir(), 'no-model-here'), {}, {
    checkWebGpu: async () => ({ available: false, reason: 'no Vulkan driver is installed' }),
  }), (err: unknown) => err instanceof RuntimeError && err.code === 'BACKEND'
    && err.message === 'backend "webgpu" cannot run here: no Vulkan driver is installed; use backend "auto" or "onnx"');
});

test('auto with only a software adapter: onnx on the CPU, and the reason says why not WebGPU', async () => {
  const { engine, reason, webgpu } = await loadEngineFor('auto', model, {}, { checkCuda: noCuda, checkWebGpu: async () => lavapipe });
  try {
    assert.equal(engine.info.backend, 'onnx');
    assert.equal(webgpu, lavapipe);
    assert.equal(reason, 'onnx (CPU): CUDA unavailable: libcuda.so.1: cannot open shared object file; '
      + 'WebGPU has only a software adapter (software (Mesa lavapipe, no GPU device node); backend "webgpu" uses it)');
  } finally {
    await engine.dispose();
  }
});

test('auto with a hardware adapter: the webgpu engine, the reason naming the adapter and why not CUDA', { skip }, async () => {
  // This machine's adapter, presented as hardware: the selection is what is tested, the engine really runs.
  const real = await checkWebGpu();
  assert.ok(real.available, real.available ? '' : real.reason);
  const hardware: WebGpuAvailability = { ...real, adapter: { ...real.adapter, software: false }, summary: 'Vulkan, a GPU' };
  const { engine, reason } = await loadEngineFor('auto', model, {}, { checkCuda: noCuda, checkWebGpu: async () => hardware });
  try {
    assert.equal(engine.info.backend, 'webgpu');
    assert.equal(reason, 'webgpu (Vulkan, a GPU): CUDA unavailable: libcuda.so.1: cannot open shared object file');
    assert.equal((await engine.prefill([1, 2, 3])).length, engine.info.config.vocabSize);
  } finally {
    await engine.dispose();
  }
});

test('webgpu as configured on this machine\'s adapter (software included): the webgpu engine', { skip }, async () => {
  const { engine, reason } = await loadEngineFor('webgpu', model, {});
  try {
    assert.equal(engine.info.backend, 'webgpu');
    assert.match(reason, /^webgpu \(Vulkan, .*\), as configured$/);
  } finally {
    await engine.dispose();
  }
});

test('a session on the webgpu backend reports its adapter (name, vendor, memory) beside the reason', { skip }, async () => {
  const session = await WorkspaceSession.open(tempDir(), {
    modelDir: tinyQwenModel(), cskv: 'off', backend: 'webgpu', budgetTokens: 1000, readWorkspace: false,
  }, { onStatus: () => undefined, onMemoryChanged: () => undefined });
  try {
    const status = session.memoryStatus();
    assert.equal(status.backend, 'webgpu');
    const adapter = status.adapter;
    assert.ok(adapter && adapter.name !== '' && adapter.vendor !== '', JSON.stringify(status.adapter));
    assert.ok(status.backendReason.includes(adapter.name), status.backendReason);
  } finally {
    await session.dispose();
  }
});

test('f16 weights on an adapter without shader-f16: BACKEND naming the adapter, before any model is loaded', async () => {
  const noF16: WebGpuAvailability = { ...lavapipe, probe: { ...probe, dawn: { vendor: 'intel', architecture: 'gen-9', device: '', description: 'Intel HD 530', fallback: false, shaderF16: false, maxBufferBytes: 2 ** 31 } } };
  await assert.rejects(loadEngineFor('webgpu', path.join(tempDir(), 'no-model-here'), { weights: 'f16' }, { checkWebGpu: async () => noF16 }),
    (err: unknown) => err instanceof RuntimeError && err.code === 'BACKEND' && /f16 weights need an adapter with shader-f16, and Vulkan, software .* has none/.test(err.message));
});

test('a session on the CPU backend has no adapter', async () => {
  const session = await WorkspaceSession.open(tempDir(), {
    modelDir: tinyQwenModel(), cskv: 'off', backend: 'onnx', budgetTokens: 1000, readWorkspace: false,
  }, { onStatus: () => undefined, onMemoryChanged: () => undefined });
  try {
    assert.equal(session.memoryStatus().adapter, undefined);
  } finally {
    await session.dispose();
  }
});
