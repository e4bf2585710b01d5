// Whether this machine must run the WebGPU tests, and a way to run WebGPU work in a child process.
//
// The rule: where a Vulkan loader and a Vulkan driver are installed (CI installs Mesa's software driver, see
// .ci/run), the WebGPU tests run, and an adapter probe that fails them fails the tests: a broken driver install
// must not pass as "skipped". Only where no Vulkan driver is installed at all are they skipped, with the reason
// printed; CSKV_REQUIRE_WEBGPU=1 (set by .ci/run) turns even that into a failure, so CI can never skip them.
// Windows and macOS always have D3D12/Metal: the tests run there.
import { findVulkan, missingVulkan } from '../../src/runtime/backends/webgpuAvailability';
import { probeInChildProcess } from '../../src/runtime/backends/isolatedProbe';

/** A skip reason for node:test, or false when the WebGPU tests must run here. */
export function webgpuSkip(): string | false {
  if (process.platform !== 'linux' || process.env.CSKV_REQUIRE_WEBGPU === '1') return false;
  const missing = missingVulkan(findVulkan());
  return missing ? `WebGPU tests skipped: ${missing}` : false;
}

/** Work on the software driver is slow: generous, but a hang still ends. */
const CHILD_TIME_LIMIT_MS = 300_000;

/**
 * Runs `require(moduleFile).probe(task)` in a child process: a native crash inside onnxruntime's WebGPU provider
 * fails the one test that asked (with the signal in the reason) instead of killing the test file.
 */
export async function inChildProcess<T>(moduleFile: string, task: object): Promise<T> {
  const result = await probeInChildProcess<T>(moduleFile, task, CHILD_TIME_LIMIT_MS, 'WebGPU child');
  if (!result.ok) throw new Error(result.reason);
  return result.probe;
}
