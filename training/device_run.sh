#!/usr/bin/env bash
# The one command a GPU session runs to train the house model at the GPU shape (through the device tool's `run`;
# prepare and check it first with training/device_preflight.sh, which prints the exact call):
#     bash training/device_run.sh [MINUTES]        # default 6: the training budget of the real run
# Stages, each under its own timeout, none stopping the next from leaving its files: documents (8k-token
# sequences) from the carried corpus; tokenising with the `tokenizers` library after it reproduces the runtime's
# ids for every sample in training/data/tokenizer_check.json; a 20-step smoke run (train, save, reload, compare);
# the real run. Leaves under $OUT: the model as a tar in 15 MB parts, train_report.json, smoke_report.json, train.log.
# DRY_RUN=1 (the preflight on a CPU machine without `tokenizers`): Node tokenises instead, the shape is tiny and
# the budgets are seconds, so everything else in the command is exercised before a lease is spent on it.
set -uo pipefail
MINUTES=${1:-6}
: "${OUT:?OUT must be set (the device tool sets it)}"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
LOG="$OUT/train.log"
PY=python3
[ -x /opt/torch/.venv/bin/python3 ] && PY=/opt/torch/.venv/bin/python3
[ "${DRY_RUN:-0}" = 1 ] && [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
WORK=${WORK:-/tmp/house-gpu}
rm -rf "$WORK"; mkdir -p "$WORK"
say() { echo "== $*" | tee -a "$LOG"; }
status=0
stage() {  # stage NAME SECONDS COMMAND...: runs under a timeout, logs, remembers a failure
  local name=$1 seconds=$2; shift 2
  say "$name (limit ${seconds}s)"
  timeout "$seconds" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  say "$name exited with $rc"
  [ "$rc" = 0 ] || status=$rc
  return "$rc"
}

if [ "${DRY_RUN:-0}" = 1 ]; then
  SHAPE=tiny SEQ=512 MICRO=2 BATCH=2048 SMOKE_STEPS=3 MINUTES=0.3 MAX_MB=2 HELD_MB=1
else
  SHAPE=gpu SEQ=8192 MICRO=8 BATCH=65536 SMOKE_STEPS=20 MAX_MB=0 HELD_MB=0
fi

nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader 2>&1 | tee -a "$LOG"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tee -a "$LOG"
for f in training/corpus/train.jsonl.gz training/corpus/heldout.jsonl.gz training/data/tokenizer_check.json models/house/tokenizer.json; do
  [ -f "$f" ] || { say "missing $f: run training/device_preflight.sh on the CPU machine and carry what it names"; exit 2; }
done

stage documents 180 $PY training/build_documents.py --corpus training/corpus --data "$WORK/data" --seq-len "$SEQ" --max-mb "$MAX_MB" --heldout-max-mb "$HELD_MB" || exit $status
if [ "${DRY_RUN:-0}" = 1 ]; then
  stage tokenise 300 node out/training/tokenizeDocuments.js --data "$WORK/data" || exit $status
else
  stage tokenise 300 $PY training/tokenize_documents.py --data "$WORK/data" --tokenizer models/house --check training/data/tokenizer_check.json || exit $status
fi

common=(--data "$WORK/data" --shape "$SHAPE" --seq-len "$SEQ" --micro-batch "$MICRO" --batch-tokens "$BATCH" --eval-windows 16 --log-every 10)
stage smoke 150 $PY training/train_house_model.py "${common[@]}" --out "$WORK/smoke" --steps "$SMOKE_STEPS" --minutes 2 --warmup-steps 5 \
  && cp "$WORK/smoke/train_report.json" "$OUT/smoke_report.json"
[ "$status" = 0 ] || { say "smoke run failed: not starting the real run"; exit $status; }

stage train $(( ${MINUTES%.*} * 60 + 240 )) $PY training/train_house_model.py "${common[@]}" --out "$WORK/house" --minutes "$MINUTES" --warmup-steps 100 --lr 2e-3
if [ -f "$WORK/house/config.json" ]; then
  tar -C "$WORK" -cf - house | split -b 15M -d -a 1 - "$OUT/house-model.tar.part"
  cp "$WORK/house/train_report.json" "$OUT/train_report.json"
fi
ls -l "$OUT" | tee -a "$LOG"
say "device_run finished with status $status"
exit "$status"
