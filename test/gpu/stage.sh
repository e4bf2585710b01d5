# shellcheck shell=bash
# Sourced by the GPU machine's commands (test/gpu/device_check.sh, bench/webgpu-device.sh run, test/gpu/session.sh):
# the one stage runner. `stage NAME LIMIT COMMAND...` runs COMMAND in its own process under its own time limit,
# whatever the stages before it did, appends its output to $STAGE_LOG and records status, seconds and detail.
#   exit 0 -> pass; 3 -> "skip(no GPU)" (the convention of every GPU stage: the GPU, or its toolkit, is not on this
#   machine, said on its output); 124/137 -> timeout; else fail(rc).
# CSKV_CHECK_SCALE multiplies every limit (0.05 for a dry run). SESSION_DEADLINE (epoch seconds) caps every limit
# so that a session's stages end before the device call's own timeout: a stage with under 5 s left is not started
# and reads "skip(budget)", so the summary still comes out and says what did not run.
STAGE_NAMES=(); STAGE_STATUSES=(); STAGE_SECONDS=(); STAGE_DETAILS=()
STAGE_LOG=${STAGE_LOG:-/dev/null}

stage_log() { echo "$@" | tee -a "$STAGE_LOG"; }

stage_record() {  # NAME STATUS SECONDS DETAIL
  STAGE_NAMES+=("$1"); STAGE_STATUSES+=("$2"); STAGE_SECONDS+=("$3"); STAGE_DETAILS+=("$4")
}

stage() {
  local name=$1 limit=$2
  shift 2
  limit=$(awk -v l="$limit" -v s="${CSKV_CHECK_SCALE:-1}" 'BEGIN { v = int(l * s); print (v < 5 ? 5 : v) }')
  if [ -n "${SESSION_DEADLINE:-}" ]; then
    local left=$(( SESSION_DEADLINE - $(date +%s) ))
    if [ "$left" -lt 5 ]; then
      stage_log "=== $name: not started, the session's time is spent ==="
      stage_record "$name" "skip(budget)" 0 "not started: ${left}s left of the session"
      return 0
    fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  stage_log ""
  stage_log "=== $name (limit ${limit}s) ==="
  local t0 output rc status detail
  t0=$(date +%s)
  output=$(mktemp)
  timeout --kill-after=5 "$limit" "$@" > "$output" 2>&1
  rc=$?
  cat "$output" >> "$STAGE_LOG"
  tail -n 25 "$output"
  case $rc in
    0) status=pass ;;
    3) status="skip(no GPU)" ;;
    124|137) status=timeout ;;
    *) status="fail($rc)" ;;
  esac
  detail=$(grep -E '^# (tests|pass|fail|skipped) ' "$output" | tr '\n' ' ')
  [ -z "$detail" ] && detail=$(grep -v '^\s*$' "$output" | tail -n 2 | tr '\n' ' ')
  rm -f "$output"
  stage_record "$name" "$status" "$(( $(date +%s) - t0 ))" "$detail"
  [ -n "${STAGE_ON_RECORD:-}" ] && "$STAGE_ON_RECORD"
  return 0
}

stage_table() {
  printf '%-20s %-13s %7s  %s\n' stage status seconds detail
  local i
  for ((i = 0; i < ${#STAGE_NAMES[@]}; i++)); do
    printf '%-20s %-13s %7s  %s\n' "${STAGE_NAMES[$i]}" "${STAGE_STATUSES[$i]}" "${STAGE_SECONDS[$i]}" "$(echo "${STAGE_DETAILS[$i]}" | cut -c1-90)"
  done
}

stage_json() {  # the stages as a JSON array
  local i n=${#STAGE_NAMES[@]} sep
  echo "["
  for ((i = 0; i < n; i++)); do
    sep=','; [ $((i + 1)) -eq "$n" ] && sep=''
    printf '    {"stage": "%s", "status": "%s", "seconds": %s, "detail": "%s"}%s\n' "${STAGE_NAMES[$i]}" "${STAGE_STATUSES[$i]}" \
      "${STAGE_SECONDS[$i]}" "$(echo "${STAGE_DETAILS[$i]}" | tr -d '"\\' | tr '\n\t' '  ' | cut -c1-300)" "$sep"
  done
  echo "  ]"
}
