#!/usr/bin/env bash
# The one command for the GPU machine (issue 11). It builds nothing there: run test/gpu/prepare_device_check.sh
# here first, then, with the device tool:
#   run(command="bash test/gpu/device_check.sh", carry=[".devnode", "out", "native/build/Release/cskv_native.node", ".devcheck"], timeout_s=600)
# Each stage runs in its own process under its own time limit, whatever the stages before it did; results land
# in $OUT as they come (device-check.log, device-check.json, probe.json, kernels.json, engine-kernels.json,
# transformers.json, cuda-7b.json: 7 files, the tool brings back 8), and a summary table ends the output.
# The limits add up to 9 minutes (CSKV_CHECK_SCALE multiplies them: 0.05 for a dry run on a machine without a GPU).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/device-check-out}
export OUT
mkdir -p "$OUT"
LOG="$OUT/device-check.log"
SUMMARY="$OUT/device-check.json"
SCALE=${CSKV_CHECK_SCALE:-1}
: > "$LOG"
declare -a NAMES STATUSES SECONDS_TAKEN DETAILS
started_all=$(date +%s)

log() { echo "$@" | tee -a "$LOG"; }

write_summary() {
  {
    echo '{'
    echo "  \"stamp\": $(cat .devcheck/stamp.json 2>/dev/null || echo null),"
    echo "  \"addonSha256\": \"$(sha256sum native/build/Release/cskv_native.node 2>/dev/null | cut -d' ' -f1)\","
    echo "  \"stages\": ["
    local n=${#NAMES[@]}
    for ((i = 0; i < n; i++)); do
      local sep=','; [ $((i + 1)) -eq "$n" ] && sep=''
      printf '    {"stage": "%s", "status": "%s", "seconds": %s, "detail": "%s"}%s\n' "${NAMES[$i]}" "${STATUSES[$i]}" "${SECONDS_TAKEN[$i]}" \
        "$(echo "${DETAILS[$i]}" | tr -d '"\\' | tr '\n' ' ' | cut -c1-300)" "$sep"
    done
    echo '  ]'
    echo '}'
  } > "$SUMMARY"
}

# stage NAME LIMIT_SECONDS COMMAND...: runs COMMAND under its limit, records pass/fail/timeout and the test counts.
stage() {
  local name=$1 limit=$2
  shift 2
  limit=$(awk -v l="$limit" -v s="$SCALE" 'BEGIN { v = int(l * s); print (v < 5 ? 5 : v) }')
  log ""
  log "=== $name (limit ${limit}s) ==="
  local t0 output rc status detail
  t0=$(date +%s)
  output=$(mktemp)
  timeout --kill-after=5 "$limit" "$@" > "$output" 2>&1
  rc=$?
  cat "$output" >> "$LOG"
  tail -n 40 "$output"
  case $rc in
    0) status=pass ;;
    124|137) status=timeout ;;
    *) status="fail($rc)" ;;
  esac
  detail=$(grep -E '^# (tests|pass|fail|skipped) ' "$output" | tr '\n' ' ')
  [ -z "$detail" ] && detail=$(tail -n 3 "$output" | tr '\n' ' ')
  rm -f "$output"
  NAMES+=("$name"); STATUSES+=("$status"); SECONDS_TAKEN+=("$(( $(date +%s) - t0 ))"); DETAILS+=("$detail")
  write_summary
}

log "device check: $(date -u +%FT%TZ), stamp $(cat .devcheck/stamp.json 2>/dev/null || echo 'missing: run test/gpu/prepare_device_check.sh')"
if [ -f .devcheck/stamp.json ]; then
  want=$(sed -n 's/.*"addonSha256": "\([0-9a-f]*\)".*/\1/p' .devcheck/stamp.json)
  have=$(sha256sum native/build/Release/cskv_native.node 2>/dev/null | cut -d' ' -f1)
  [ "$want" = "$have" ] && log "addon matches the stamp ($have)" || log "WARNING: the addon ($have) is not the stamped build ($want): stale or rebuilt"
fi
# shellcheck disable=SC1091
source .devnode/prologue.sh >> "$LOG" 2>&1 || log "WARNING: .devnode/prologue.sh failed (no node for this machine?)"
log "node: $(command -v node) $(node --version 2>&1)"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem --format=csv >> "$LOG" 2>&1 || log "nvidia-smi: not available"

stage probe 20 node -e "
const { loadNativeAddon } = require('./out/src/runtime/backends/nativeAddon.js');
const load = loadNativeAddon();
if (!load.loaded) { console.log('addon not loaded:', load.reason); process.exit(1); }
load.addon.probe().then((p) => {
  require('fs').writeFileSync(process.env.OUT + '/probe.json', JSON.stringify({ build: load.addon.build, probe: p }, null, 2));
  console.log(JSON.stringify({ build: load.addon.build, available: p.available, reason: p.reason, devices: p.devices.map((d) => d.name),
    cublasLt: p.libraries.cublasLt.path }));
  process.exit(p.available ? 0 : 3);
});"

# Every hand-declared cuBLASLt value against the real header, wherever this machine keeps it.
check_cublaslt() {
  local inc=""
  for d in /usr/local/cuda/include /opt/torch/.venv/lib/python3*/site-packages/nvidia/cublas/include /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/include; do
    [ -f "$d/cublasLt.h" ] && inc="$d" && break
  done
  [ -n "$inc" ] || { echo "no cublasLt.h on this machine"; return 4; }
  echo "cublasLt.h from $inc"
  local cxx; cxx=$(command -v g++ || command -v c++ || true)
  if [ -n "$cxx" ]; then "$cxx" -std=c++17 -fsyntax-only -I"$inc" -I/usr/local/cuda/include native/check/cublasLtValues.cc
  else nvcc -std=c++17 -I"$inc" -c native/check/cublasLtValues.cc -o /tmp/cublasLtValues.o; fi
  local rc=$?; [ $rc -eq 0 ] && echo "every declared cuBLASLt value matches"; return $rc
}
export -f check_cublaslt
stage cublasLt-values 30 bash -c check_cublaslt

# Every native test but selectBackend's, which needs onnxruntime-node (node_modules does not travel; CI runs it).
stage native-tests 40 node --test --test-reporter=tap out/test/native/addonLoad.test.js out/test/native/probe.test.js \
  out/test/native/isolatedProbe.test.js out/test/native/nativeErrors.test.js out/test/native/kernelOps.test.js out/test/native/cudaEngine.test.js
stage kernels 60 env CSKV_KERNEL_REPORT="$OUT/kernels.json" CSKV_ENGINE_KERNEL_REPORT="$OUT/engine-kernels.json" \
  node --test --test-reporter=tap out/test/gpu/kernels.test.js out/test/gpu/engineKernels.test.js out/test/gpu/reference.test.js
stage engine-suite-cuda 120 node --test --test-reporter=tap out/test/gpu/cudaEngine.test.js
stage transformers-peer 100 env PYTHONUNBUFFERED=1 python3 test/gpu/transformers_peer.py "$OUT/transformers.json" --contexts 4096,32768 --decode 16
stage bench-cuda 170 node out/bench/cuda.js --out "$OUT" --peer "$OUT/transformers.json" --contexts 4096,32768 --decode 16

log ""
log "=== summary ($(( $(date +%s) - started_all ))s) ==="
{
  printf '%-20s %-10s %7s  %s\n' stage status seconds detail
  for ((i = 0; i < ${#NAMES[@]}; i++)); do
    printf '%-20s %-10s %7s  %s\n' "${NAMES[$i]}" "${STATUSES[$i]}" "${SECONDS_TAKEN[$i]}" "$(echo "${DETAILS[$i]}" | cut -c1-90)"
  done
} | tee -a "$LOG"
[ -f "$OUT/cuda-7b.json" ] && node -e "
const r = require('$OUT/cuda-7b.json');
for (const x of r.runs) console.log([x.engine, x.cache, x.context, Math.round(x.prefill_tok_s) + ' tok/s', (x.decode_ms ?? 0).toFixed(2) + ' ms',
  x.decode_floor_ms ? 'floor ' + x.decode_floor_ms.toFixed(2) + ' ms' : '', Math.round(x.kv_bytes_per_token) + ' B/tok', x.error ?? ''].join('  '));" 2>&1 | tee -a "$LOG"
exit 0
