#!/usr/bin/env bash
# The one command a GPU session runs to train the house model (through the device tool's `run`, with
# carry: ["training/corpus"]; see training/README.md):
#     bash training/device_run.sh [MINUTES]        # default 8: training budget, tokenizer and packing included
# Leaves under $OUT: the model directory as a tar split into 15 MB parts (the tool returns files of at most
# 16 MiB, 8 files at most), the training report (JSON) and the log.
set -uo pipefail
MINUTES=${1:-8}
: "${OUT:?OUT must be set (the device tool sets it)}"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__, 'cuda', torch.cuda.is_available())"
ls -l training/corpus
# The hard limit leaves a minute past the budget for saving; the tar below runs whatever happened.
timeout "$(( ${MINUTES%.*} * 60 + 75 ))" python3 training/train_house_model.py --corpus training/corpus --out /tmp/house \
    --minutes "$MINUTES" --report "$OUT/train_report.json" 2>&1 | tee "$OUT/train.log"
status=${PIPESTATUS[0]}
echo "training exited with $status"
if [ -f /tmp/house/config.json ]; then
    tar -C /tmp -cf - house | split -b 15M -d -a 1 - "$OUT/house-model.tar.part"
fi
ls -l "$OUT" /tmp/house 2>/dev/null
exit "$status"
