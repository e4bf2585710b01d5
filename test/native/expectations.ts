// What the native tests expect of this machine, found independently of the addon: whether nvcc was there at
// build time (so the addon must contain CUDA) and whether an NVIDIA driver and GPU are present.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../support/paths';

/** The CUDA toolkit binding.gyp compiled against ('' for a CPU-only build), as find-cuda.js decides it. */
export function expectedCudaHome(): string {
  const run = spawnSync(process.execPath, [path.join(repoRoot, 'native', 'find-cuda.js')], { encoding: 'utf8' });
  return run.stdout;
}

/** True where the NVIDIA kernel driver is running (its control device exists). */
export function nvidiaDriverPresent(): boolean {
  return fs.existsSync('/dev/nvidiactl');
}

/** The DT_NEEDED entries of an ELF file (via readelf); undefined when readelf is not installed. */
export function neededLibraries(file: string): string[] | undefined {
  const run = spawnSync('readelf', ['-d', file], { encoding: 'utf8' });
  if (run.error || run.status !== 0) return undefined;
  return [...run.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
}
