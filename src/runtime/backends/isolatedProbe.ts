// GPU probes run in a child process. They load the GPU vendor's driver (dlopen of libcuda and cuInit for CUDA; Dawn
// and the Vulkan/D3D12/Metal driver for WebGPU, webgpuProbe.ts), and a driver
// that crashes or hangs there must not take the sidecar down with it or keep the editor waiting: the child prints
// the probe as JSON, and a crash, a hang past the time limit or an unreadable answer becomes a reason instead.
import { execFile } from 'node:child_process';
import type { NativeProbe, NativeProbeOptions } from './nativeAddon';

/** cuInit on a many-GPU machine takes seconds; a driver that needs longer than this is treated as hung. */
const PROBE_TIME_LIMIT_MS = 30_000;

/**
 * The child: require the addon (or a stand-in module in tests), probe, print JSON. Nothing else on stdout: a
 * failure is printed there too, as {"probeError": message}, since drivers write their own lines to stderr.
 */
const CHILD_SCRIPT = `
const [file, options] = JSON.parse(process.argv[1]);
Promise.resolve().then(() => require(file).probe(options)).then(
  (probe) => process.stdout.write(JSON.stringify(probe)),
  (err) => { process.stdout.write(JSON.stringify({ probeError: String((err && err.message) || err) })); process.exitCode = 3; });
`;

export type IsolatedProbeResult<P = NativeProbe> = { ok: true; probe: P } | { ok: false; reason: string };

/**
 * Runs `require(moduleFile).probe(options)` in a child process of this Node (or Electron-as-Node) runtime; `what`
 * names the probe in the reasons ("the CUDA probe crashed ...").
 */
export function probeInChildProcess<P = NativeProbe>(
  moduleFile: string, options: NativeProbeOptions | object = {}, timeLimitMs = PROBE_TIME_LIMIT_MS, what = 'CUDA',
): Promise<IsolatedProbeResult<P>> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', CHILD_SCRIPT, JSON.stringify([moduleFile, options])], {
      timeout: timeLimitMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20, windowsHide: true,
      // Inside VS Code the sidecar runs on Electron as Node; its child must too.
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    }, (err, stdout, stderr) => {
      if (err) {
        const child = err as NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals | null; code?: number | string };
        if (child.killed && child.signal === 'SIGKILL') {
          resolve({ ok: false, reason: `the ${what} probe did not finish within ${timeLimitMs / 1000} s (the GPU driver may be hung)` });
        } else if (child.signal) {
          resolve({ ok: false, reason: `the ${what} probe crashed (${child.signal}) in the GPU driver` });
        } else {
          const detail = probeError(stdout) ?? (stderr.trim().split('\n')[0] || err.message);
          resolve({ ok: false, reason: `the ${what} probe failed: ${detail}` });
        }
        return;
      }
      try {
        resolve({ ok: true, probe: JSON.parse(stdout) as P });
      } catch {
        resolve({ ok: false, reason: `the ${what} probe printed no readable result` });
      }
    });
  });
}

function probeError(stdout: string): string | undefined {
  try {
    const message = (JSON.parse(stdout) as { probeError?: unknown }).probeError;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}
