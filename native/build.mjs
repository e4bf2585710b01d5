// Builds native/ with node-gyp, offline: the headers come from the running Node's own install (or npm's nodedir),
// never from a download. Incremental: configure only when there is no Makefile yet or binding.gyp changed.
//   CSKV_NATIVE_CUDA=off   a CPU-only addon even where nvcc exists
//   CSKV_NATIVE_BUILD=skip no addon at all (the runtime then says so and uses onnx)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

if (process.env.CSKV_NATIVE_BUILD === 'skip') {
  console.error('native: skipped (CSKV_NATIVE_BUILD=skip)');
  process.exit(0);
}

function nodeHeadersDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const nodedir = nodeHeadersDir();
const common = nodedir ? [`--nodedir=${nodedir}`] : [];
const run = (args) => {
  const result = spawnSync(process.execPath, [nodeGyp, ...args, ...common], { cwd: here, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

// Configure again when the gyp file or the CUDA choice changed since the last configure.
const stamp = path.join(here, 'build', 'configured.json');
const cudaHome = spawnSync(process.execPath, [path.join(here, 'find-cuda.js')], { encoding: 'utf8' }).stdout;
const wanted = JSON.stringify({ gyp: fs.readFileSync(path.join(here, 'binding.gyp'), 'utf8'), cudaHome, nodedir });
const started = Date.now();
if (!fs.existsSync(path.join(here, 'build', 'Makefile')) || !fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== wanted) {
  run(['configure']);
  fs.writeFileSync(stamp, wanted);
}
run(['build', `--jobs=${Math.max(1, os.availableParallelism?.() ?? os.cpus().length)}`]);
console.error(`native: built ${cudaHome ? `with CUDA (${cudaHome})` : 'CPU-only (no nvcc found, or CSKV_NATIVE_CUDA=off)'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
