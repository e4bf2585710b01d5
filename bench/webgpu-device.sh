#!/usr/bin/env bash
# The WebGPU backend on the GPU machine (NVIDIA's Vulkan driver; no Node.js, no network there).
#   here:   bench/webgpu-device.sh pack        after `npm run build`; writes .devnode/ and .devwebgpu/ (git-ignored)
#   there:  bench/webgpu-device.sh run         with .devnode .devwebgpu out carried; results under $OUT
# A GPU session runs these stages inside test/gpu/session.sh (docs/gpu-session.md), which sources this file for
# webgpu_setup / webgpu_checks / webgpu_bench; `run` alone is for a WebGPU-only session.
# pack takes along node and onnxruntime-node (.devnode, test/gpu/pack_node.sh) and Debian's Vulkan loader
# (libvulkan1 in .devwebgpu, unpacked with dpkg -x: the GPU machine has the driver but not the loader).
# Stages (test/gpu/stage.sh): the adapter probe, the WebGPU tests (engine suite, crash check), then
# bench/webgpu.js on the Qwen2.5-0.5B shape, each under its own time limit, a summary at the end.

webgpu_setup() {  # $1: the folder for this part's files
  local out=$1
  export LD_LIBRARY_PATH="$PWD/.devwebgpu/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" CSKV_REQUIRE_WEBGPU=1
  # NVIDIA's driver ships its Vulkan ICD in libGLX_nvidia; a container may lack the manifest that points at it.
  if ! ls /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
    local lib
    lib=$(ldconfig -p | awk '/libGLX_nvidia.so.0/ {print $NF; exit}')
    if [ -n "$lib" ]; then
      printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$lib" > "$out/nvidia_icd.json"
      export VK_DRIVER_FILES="$out/nvidia_icd.json"
    fi
  fi
  { nvidia-smi -L; ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d; echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"; } > "$out/environment.txt" 2>&1
}

webgpu_checks() {
  stage webgpu-probe 60 node -e "require('./out/src/runtime/backends/webgpuAvailability').checkWebGpu().then((r) => console.log(JSON.stringify(r)))"
  stage webgpu-suite 240 node --test --test-reporter=tap out/test/runtime/webgpuEngine.test.js out/test/runtime/webgpuCrash.test.js
}

webgpu_bench() {  # $1: the folder for the results
  local out=$1
  stage webgpu-bench-full 240 node out/bench/webgpu.js --shape 0.5b --contexts 512,2048 --decode 16 --out "$out/webgpu-0.5b-full.json"
  stage webgpu-bench-cskv 200 node out/bench/webgpu.js --shape 0.5b --contexts 2048 --decode 16 --cskv 16 --out "$out/webgpu-0.5b-cskv16.json"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  cd "$(dirname "$0")/.." || exit 2
  case "${1:-}" in
    pack)
      set -e
      bash test/gpu/pack_node.sh
      mkdir -p .devwebgpu
      exclude=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$exclude")"
      grep -qxF '/.devwebgpu/' "$exclude" 2>/dev/null || echo '/.devwebgpu/' >> "$exclude"
      (cd .devwebgpu && rm -rf vulkan ./*.deb && apt-get download libvulkan1 && dpkg -x libvulkan1_*.deb vulkan && rm -f ./*.deb)
      rm -f .devwebgpu/onnxruntime.tar.xz  # onnxruntime-node now travels in .devnode (test/gpu/pack_node.sh)
      du -sh .devnode .devwebgpu out
      ;;
    run)
      source test/gpu/stage.sh
      source test/gpu/prologue.sh
      out=${OUT:-/tmp/webgpu-out}; mkdir -p "$out"
      STAGE_LOG="$out/webgpu.log"; : > "$STAGE_LOG"
      webgpu_setup "$out"
      webgpu_checks
      webgpu_bench "$out"
      echo; stage_table | tee -a "$STAGE_LOG"
      ;;
    *) echo "usage: bench/webgpu-device.sh pack|run" >&2; exit 2 ;;
  esac
fi
