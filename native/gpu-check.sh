#!/usr/bin/env bash
# The native addon's checks on the GPU machine (which has no Node.js and no node_modules).
# On the build machine, from the project root:
#   npm run build && ../shared/device/pack-node.sh
# then run this there with carry [".devnode", "out", "native/build"] (about 30 MB together):
#   bash native/gpu-check.sh
# It prints the probe, then runs the addon tests (load, probe, typed errors) and every kernel against its float64
# reference (test/gpu/kernels.test.ts); the kernel errors are written to $OUT/kernels.json when $OUT is set.
set -euo pipefail
source .devnode/prologue.sh
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
node -e "
const { loadNativeAddon } = require('./out/src/runtime/backends/nativeAddon.js');
const load = loadNativeAddon();
if (!load.loaded) { console.log('addon not loaded:', load.reason); process.exit(1); }
console.log('addon', load.file, JSON.stringify(load.addon.build));
load.addon.probe().then((p) => console.log(JSON.stringify(p, null, 2)));
"
report="${OUT:-/tmp}/kernels.json"
CSKV_KERNEL_REPORT="$report" node --test --test-reporter=spec \
  out/test/native/addonLoad.test.js out/test/native/probe.test.js out/test/native/nativeErrors.test.js \
  out/test/native/kernelOps.test.js out/test/gpu/kernels.test.js
echo "kernel errors: $report"
