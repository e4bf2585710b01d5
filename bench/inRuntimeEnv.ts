// A benchmark measures in the environment the sidecar runs in (src/shared/runtimeEnv.ts): where this process lacks it,
// the benchmark runs again in a child that has it, and this one only waits.
import { spawnSync } from 'node:child_process';
import { runtimeEnv } from '../src/shared/runtimeEnv';

/** True when the benchmark ran in a child (its exit status set here): the caller returns. */
export function ranInRuntimeEnv(): boolean {
  const env = runtimeEnv(process.env);
  if (env === process.env) return false;
  const child = spawnSync(process.execPath, process.argv.slice(1), { stdio: 'inherit', env });
  process.exitCode = child.status ?? 1;
  return true;
}
