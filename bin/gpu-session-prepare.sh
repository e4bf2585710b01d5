#!/usr/bin/env bash
# Prepares a GPU session (docs/gpu-session.md) on this CPU machine, in the checkout the session was started in
# (the device tool sends that checkout, also when a helper calls it from a worktree), and prints the exact calls:
#   bin/gpu-session-prepare.sh [--skip-build] [--dry-run] [--train-minutes N]
# 1. builds (npm run build), packs node (.devnode), stamps the addon (.devcheck) and packs the WebGPU files
#    (.devwebgpu): everything the checks call (test/gpu/session.sh) carries;
# 2. checks each call's carry list (at most 8 paths) and what travels (tracked + untracked-not-ignored files +
#    carried paths) against the tool's 64 MiB;
# 3. --dry-run: runs each device command here, as the device would: the checks call in a copy of exactly what
#    travels (no node_modules; node from .devnode), the training call through training/device_preflight.sh (tiny
#    shape, seconds). A stage that fails (not pass, not skip(no GPU), not a timeout of its cut limit) stops here,
#    before a lease is spent on it;
# 4. prints the run(...) calls in order, with timeout_s and the device time they may take.
#
# The plan (15 minutes = 900 s of device time per session, the machine's start, idle waits and transfers counted):
#   training first, checks second. The training call is all or nothing (the model is saved only at the end of its
#   budget: a call stopped by its timeout brings back no model), so it gets a fixed budget that fits even in the
#   worst case. The checks call degrades gracefully (each stage saves its results as it ends, the verdicts come
#   before the benchmarks, and session.sh caps every stage by the budget S it is given), so it takes what is
#   left: the training call's reply says it (lease.budget_left_s = B), and S = B - 180 fits even when the machine
#   went back in the meantime (it stays warm 30 s after a call) and has to start again.
# Worst case with the default 3 training minutes: start 120 + training call 420 + transfers 20 = 560 s, B = 340,
# S = 160: the CUDA and WebGPU verdicts, few benchmarks. Expected: start ~90, training ~330 (3 min of training and
# ~150 s around it), B ~ 460, S ~ 280: everything, in ~12 minutes. More training minutes cost checks seconds one
# for one: --train-minutes 4 leaves S = 100 in the worst case, too little for the engine suite and the WebGPU
# tests after it.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

SESSION_S=900          # device time per session
START_S=120            # a machine's start, worst case seen ("1-2 minutes")
TRANSFER_S=20          # sending the tree and bringing files back, per call
RESTART_S=$((START_S + TRANSFER_S + 40))  # kept back in S in case the machine went back between the calls
# training/device_run.sh before and after its training minutes (unmeasured on the GPU machine: documents from the
# 42 MB corpus, tokenising with `tokenizers`, the 20-step smoke run, held-out loss and saving). An estimate with
# room; the first session's train.log gives the real stage times: put them here.
TRAIN_OVERHEAD_S=240
TRAIN_MINUTES=3
CHECKS_CARRY=(.devnode out native/build/Release/cskv_native.node .devcheck .devwebgpu)
TRAIN_CARRY=(training/corpus training/data/tokenizer_check.json)
LIMIT_BYTES=$((64 * 1048576))

build=1 dry=0
while [ $# -gt 0 ]; do
  case $1 in
    --skip-build) build=0 ;;
    --dry-run) dry=1 ;;
    --train-minutes) TRAIN_MINUTES=$2; shift ;;
    *) echo "usage: bin/gpu-session-prepare.sh [--skip-build] [--dry-run] [--train-minutes N]" >&2; exit 2 ;;
  esac
  shift
done
[[ "$TRAIN_MINUTES" =~ ^[0-9]+$ ]] || { echo "--train-minutes: a whole number of minutes, got '$TRAIN_MINUTES'" >&2; exit 2; }

# What the tool sends: tracked and untracked-not-ignored files (shared/ inside the checkout too), plus carried paths.
tree_files() { { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r -I{} sh -c '[ -f "{}" ] && printf "%s\0" "{}"' ; }
tree_bytes() { tree_files | xargs -0 -r stat -c %s | awk '{s += $1} END {print s + 0}'; }
carry_check() {  # NAME PATH...: at most 8 paths, each present, all together under 64 MiB
  local name=$1; shift
  [ $# -le 8 ] || { echo "$name: $# carry paths, the tool takes 8" >&2; return 1; }
  local p
  for p in "$@"; do [ -e "$p" ] || { echo "$name: carried path $p is missing" >&2; return 1; }; done
  local tree carried total
  tree=$(tree_bytes)
  carried=$(du -cbL "$@" | tail -1 | cut -f1)
  total=$((tree + carried))
  printf '%s: %d carry paths; travels %.1f MiB (tree %.1f + carried %.1f) of 64 MiB\n' "$name" $# \
    "$(echo "$total / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" "$(echo "$carried / 1048576" | bc -l)"
  [ "$total" -lt "$LIMIT_BYTES" ] || { echo "$name: too large to travel" >&2; return 1; }
}
json_list() { local out="" p; for p in "$@"; do out+="${out:+, }\"$p\""; done; echo "[$out]"; }

echo "== 1. build, pack, stamp"
if [ "$build" = 1 ]; then nice npm run build; fi
bash test/gpu/prepare_device_check.sh --skip-build
bench/webgpu-device.sh pack

echo; echo "== 2. carry"
carry_check checks "${CHECKS_CARRY[@]}"
train_ready=1
carry_check training "${TRAIN_CARRY[@]}" || { train_ready=0; echo "training: NOT ready (training/README.md says how to gather the corpus and the tokenizer check)"; }

train_timeout=$((TRAIN_MINUTES * 60 + TRAIN_OVERHEAD_S))
[ "$train_timeout" -le 600 ] || { echo "--train-minutes $TRAIN_MINUTES: the call would need ${train_timeout}s, one call runs 600 s at most" >&2; exit 2; }
worst_left=$((SESSION_S - START_S - train_timeout - TRANSFER_S))
worst_checks=$((worst_left - RESTART_S))
[ "$worst_checks" -ge 120 ] || { echo "--train-minutes $TRAIN_MINUTES leaves the checks ${worst_checks}s in the worst case: too little" >&2; exit 2; }

# dry_run NAME "COMMAND" "FILES" CARRY...: COMMAND as the device runs it, in a copy of exactly what travels (no
# node_modules; node unpacked from the carried .devnode into a fresh folder), every stage limit cut to a tenth so
# that each stage starts and the run stays short, python3 the one with torch. Fails on a stage that failed (not
# pass, skip(no GPU), skip(budget) or a timeout of its cut limit), on more than 8 files under $OUT, or on a file
# name the tool would not bring back, or if one of FILES is not under $OUT.
dry_run() {
  local name=$1 command=$2 expected=$3; shift 3
  echo; echo "== 3. dry run of the $name call: $command (no GPU here: CUDA stages skip)"
  local copy; copy=$(mktemp -d /tmp/gpu-session-dry.XXXXXX)
  mkdir -p "$copy/tree" "$copy/out"
  tree_files | tar -c --null -T - -f - | tar -x -C "$copy/tree"
  tar -ch "$@" | tar -x -C "$copy/tree"
  [ ! -e "$copy/tree/node_modules" ] || { echo "dry run: node_modules travelled (it must not)" >&2; return 1; }
  (cd "$copy/tree" && PATH=/usr/bin:$PATH DEVNODE_DIR="$copy/devnode" OUT="$copy/out" CSKV_CHECK_SCALE=0.1 bash -c "$command") \
    > "$copy/reply.txt" 2>&1
  tail -n 16 "$copy/reply.txt"
  echo "files under \$OUT: $(cd "$copy/out" && find . -type f -printf '%P ' )"
  local count; count=$(find "$copy/out" -type f | wc -l)
  [ "$count" -le 8 ] || { echo "dry run: $count files under \$OUT, the tool brings back 8" >&2; return 1; }
  if find "$copy/out" -type f -printf '%f\n' | grep -v '^[A-Za-z0-9._-]*$'; then
    echo "dry run: a file name the tool would not bring back (above)" >&2; return 1
  fi
  if grep -E '^[a-zA-Z0-9-]+ +fail\(' "$copy/reply.txt"; then
    echo "dry run: a stage failed (above); the whole reply is in $copy/reply.txt, the files in $copy/out" >&2; return 1
  fi
  local f
  for f in $expected; do [ -f "$copy/out/$f" ] || { echo "dry run: no $f under \$OUT" >&2; return 1; }; done
  echo "dry run of the $name call: no stage failed"
  rm -rf "$copy"
}

if [ "$dry" = 1 ]; then
  dry_run checks "bash test/gpu/session.sh 240" "session.json session.log session-files.tar.gz" "${CHECKS_CARRY[@]}"
  # The two parts alone (a session given to issue 11 or issue 17 only), with their own carry lists.
  dry_run issue-11 "bash test/gpu/device_check.sh" "device-check.json device-check.log probe.json" .devnode out native/build/Release/cskv_native.node .devcheck
  dry_run issue-17 "bench/webgpu-device.sh run" "webgpu.log environment.txt" .devnode .devwebgpu out
  if [ "$train_ready" = 1 ]; then
    echo; echo "== 3b. dry run of the training call (training/device_preflight.sh)"
    bash training/device_preflight.sh
    echo "(the preflight's own line above is for a session given to training alone; this session's calls follow)"
  fi
fi

echo
echo "== 4. the session, in this order (${SESSION_S}s of device time in all, the starts counted)"
if [ "$train_ready" = 1 ]; then
  echo "run(command=\"bash training/device_run.sh $TRAIN_MINUTES\", carry=$(json_list "${TRAIN_CARRY[@]}"), timeout_s=$train_timeout)"
  echo "    # device time: the start (~60-${START_S}s) + at most ${train_timeout}s; unpack the model as training/README.md says"
  echo "# then at once, with B = the reply's lease.budget_left_s and S = B - $RESTART_S (worst case ${worst_checks}):"
else
  echo "# training not ready (above): the checks call alone, S = 540 (B = ${SESSION_S}, the start ~${START_S}s)"
fi
echo "run(command=\"bash test/gpu/session.sh S\", carry=$(json_list "${CHECKS_CARRY[@]}"), timeout_s=S+30)"
echo "    # device time: at most S + 30 (+ a start if the machine went back); the summary table ends the reply"
echo "give_back()"
echo "# results under files_at: session.json, session.log, cuda-7b.json, webgpu-0.5b-*.json, session-files.tar.gz (all files)"
