#!/usr/bin/env bash
# The checks call of a GPU session (docs/gpu-session.md): issue 11's CUDA engine (checks, then the 7B benchmark
# against transformers) and issue 17's WebGPU backend (checks, then its benchmark) in ONE device command, so the
# machine's start is paid once. Prepared here by bin/gpu-session-prepare.sh, which prints the exact call:
#   run(command="bash test/gpu/session.sh 270", carry=[".devnode", "out", "native/build/Release/cskv_native.node", ".devcheck", ".devwebgpu"], timeout_s=300)
# SECONDS (first argument, default 270) is this command's whole budget: every stage's limit is capped so that the
# last one ends by then (test/gpu/stage.sh, SESSION_DEADLINE), and a stage that would start too late is reported
# as skip(budget). Order by value: the checks that prove each engine right first, the benchmarks after them, so a
# short budget loses numbers, never the verdict. Stage definitions live in test/gpu/device_check.sh (cuda_*) and
# bench/webgpu-device.sh (webgpu_*).
# The tool brings back 8 files at most: $OUT gets session.log, session.json (stamp + every stage), the three
# benchmark JSONs, and session-files.tar.gz (every file of every stage), all rewritten after each stage, so a
# call stopped at its timeout still brings back what was done. On a machine without a GPU (the dry run,
# bin/gpu-session-prepare.sh --dry-run) the CUDA stages report skip(no GPU) and the summary still comes out.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUDGET=${1:-270}
[[ "$BUDGET" =~ ^[0-9]+$ ]] || { echo "session.sh: the budget is whole seconds, got '$BUDGET'" >&2; exit 2; }
started_all=$(date +%s)
# 10 s kept back for the last save and the summary.
export SESSION_DEADLINE=$(( started_all + BUDGET - 10 ))
FINAL_OUT=${OUT:-$PWD/gpu-session-out}
mkdir -p "$FINAL_OUT"
WORK=$(mktemp -d /tmp/gpu-session.XXXXXX)
mkdir -p "$WORK/cuda" "$WORK/webgpu"
STAGE_LOG="$WORK/session.log"
: > "$STAGE_LOG"
source test/gpu/stage.sh
source test/gpu/device_check.sh
source bench/webgpu-device.sh

session_save() {
  {
    echo '{'
    echo "  \"stamp\": $(cat .devcheck/stamp.json 2>/dev/null || echo null),"
    echo "  \"budgetSeconds\": $BUDGET,"
    echo "  \"elapsedSeconds\": $(( $(date +%s) - started_all )),"
    echo "  \"stages\": $(stage_json)"
    echo '}'
  } > "$FINAL_OUT/session.json"
  cp "$STAGE_LOG" "$FINAL_OUT/session.log"
  for f in "$WORK/cuda/cuda-7b.json" "$WORK/webgpu/webgpu-0.5b-full.json" "$WORK/webgpu/webgpu-0.5b-cskv16.json"; do
    [ -f "$f" ] && cp "$f" "$FINAL_OUT/"
  done
  tar -C "$WORK" -czf "$FINAL_OUT/session-files.tar.gz" cuda webgpu session.log
}
STAGE_ON_RECORD=session_save

stage_log "gpu session: $(date -u +%FT%TZ), budget ${BUDGET}s, stamp $(cat .devcheck/stamp.json 2>/dev/null || echo 'missing: run bin/gpu-session-prepare.sh')"
# shellcheck disable=SC1091
source test/gpu/prologue.sh >> "$STAGE_LOG" 2>&1 || stage_log "WARNING: test/gpu/prologue.sh failed (no .devnode carried?)"
stage_log "node: $(command -v node) $(node --version 2>&1)"
nvidia-smi -L >/dev/null 2>&1 && stage_log "GPU: $(nvidia-smi -L | head -1)" || stage_log "GPU: none on this machine"

export OUT=$WORK/cuda   # the cuda_* stages write their files to $OUT
cuda_setup
webgpu_setup "$WORK/webgpu"
cuda_checks
webgpu_checks
fixtures_crosscheck   # after both engines' verdicts, before the benchmarks; its report goes into session-files.tar.gz
cuda_bench
webgpu_bench "$WORK/webgpu"
export OUT=$FINAL_OUT
session_save

stage_log ""
stage_log "=== summary: $(( $(date +%s) - started_all ))s of ${BUDGET}s ==="
OUT=$WORK/cuda cuda_bench_table | tee -a "$STAGE_LOG"
stage_table | tee -a "$STAGE_LOG"
cp "$STAGE_LOG" "$FINAL_OUT/session.log"
rm -rf "$WORK"
exit 0
