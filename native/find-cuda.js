// Prints the CUDA toolkit folder whose bin/nvcc will compile the kernels, or nothing for a CPU-only addon.
// binding.gyp runs this at configure time. CSKV_NATIVE_CUDA=off forces a CPU-only build (to test that path).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function findCudaHome() {
  if (/^(0|off|false|no)$/i.test(process.env.CSKV_NATIVE_CUDA ?? '')) return '';
  const candidates = [process.env.CUDA_HOME, process.env.CUDA_PATH];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'nvcc'))) candidates.push(path.dirname(fs.realpathSync(path.join(dir, 'nvcc'))) + '/..');
  }
  candidates.push('/usr/local/cuda');
  for (const home of candidates) {
    if (!home) continue;
    const root = path.resolve(home);
    // The kernels need nvcc, the runtime headers and the static runtime (so the addon needs no libcudart.so).
    const needed = ['bin/nvcc', 'include/cuda_runtime_api.h', 'lib64/libcudart_static.a'];
    if (needed.every((f) => fs.existsSync(path.join(root, f)))) return root;
  }
  return '';
}

process.stdout.write(findCudaHome());
