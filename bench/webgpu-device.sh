#!/usr/bin/env bash
# The WebGPU backend on the GPU machine (NVIDIA's Vulkan driver; no Node.js, no network there).
#   here:   bench/webgpu-device.sh pack        after `npm run build`; writes .devnode/ and .devwebgpu/ (git-ignored)
#   there:  bench/webgpu-device.sh run         with .devnode .devwebgpu out carried; results under $OUT
# pack takes along Debian's Vulkan loader (libvulkan1, unpacked with dpkg -x: the GPU machine has the driver but
# not the loader) and onnxruntime-node xz-compressed (its 44 MB library would not fit the carry limit as is).
# run: the WebGPU tests (engine suite, crash check), then bench/webgpu.js on the Qwen2.5-0.5B shape, each under
# its own time limit, never stopping at the first failure, a summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pack)
    set -e
    ../shared/device/pack-node.sh
    mkdir -p .devwebgpu
    exclude=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$exclude")"
    grep -qxF '/.devwebgpu/' "$exclude" 2>/dev/null || echo '/.devwebgpu/' >> "$exclude"
    (cd .devwebgpu && rm -rf vulkan ./*.deb && apt-get download libvulkan1 && dpkg -x libvulkan1_*.deb vulkan && rm -f ./*.deb)
    tar -cJf .devwebgpu/onnxruntime.tar.xz node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist \
      node_modules/onnxruntime-node/bin/napi-v6/linux/x64 node_modules/onnxruntime-common/package.json node_modules/onnxruntime-common/dist/cjs
    du -sh .devnode .devwebgpu out
    ;;
  run)
    source .devnode/prologue.sh
    out=${OUT:-/tmp/webgpu-out}; mkdir -p "$out"
    tar -xJf .devwebgpu/onnxruntime.tar.xz
    export LD_LIBRARY_PATH="$PWD/.devwebgpu/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" CSKV_REQUIRE_WEBGPU=1
    # NVIDIA's driver ships its Vulkan ICD in libGLX_nvidia; a container may lack the manifest that points at it.
    if ! ls /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
      lib=$(ldconfig -p | awk '/libGLX_nvidia.so.0/ {print $NF; exit}')
      if [ -n "$lib" ]; then
        printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$lib" > "$out/nvidia_icd.json"
        export VK_DRIVER_FILES="$out/nvidia_icd.json"
      fi
    fi
    { nvidia-smi -L; ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d; echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"; } > "$out/environment.txt" 2>&1
    declare -A status
    step() { local name=$1 limit=$2; shift 2; timeout "$limit" "$@" > "$out/$name.txt" 2>&1; status[$name]=$?; tail -n 25 "$out/$name.txt"; }
    step probe 60 node -e "require('./out/src/runtime/backends/webgpuAvailability').checkWebGpu().then((r) => console.log(JSON.stringify(r)))"
    step suite 240 node --test --test-reporter=spec out/test/runtime/webgpuEngine.test.js out/test/runtime/webgpuCrash.test.js
    step bench-full 240 node out/bench/webgpu.js --shape 0.5b --contexts 512,2048 --decode 16 --out "$out/webgpu-0.5b-full.json"
    step bench-cskv 200 node out/bench/webgpu.js --shape 0.5b --contexts 2048 --decode 16 --cskv 16 --out "$out/webgpu-0.5b-cskv16.json"
    echo; echo '| step | exit |'; echo '|---|---|'
    for name in probe suite bench-full bench-cskv; do echo "| $name | ${status[$name]} |"; done
    ;;
  *) echo "usage: bench/webgpu-device.sh pack|run" >&2; exit 2 ;;
esac
