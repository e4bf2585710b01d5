#!/usr/bin/env bash
# Before a GPU lease is spent on training/device_run.sh: checks, on this CPU machine, that what the command needs
# is here (corpus, tokenizer check, committed house model), that the carry stays under the device tool's 64 MiB,
# and dry-runs the whole command with a tiny shape and a seconds budget. Prints the `run` call to make.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=$((64 * 1024 * 1024))
for f in training/corpus/train.jsonl.gz training/corpus/heldout.jsonl.gz training/data/tokenizer_check.json models/house/tokenizer.json out/training/tokenizeDocuments.js; do
  [ -f "$f" ] || { echo "missing $f (gather_corpus.py; build_documents.py + tokenizeDocuments.js; the committed model; npm run build)"; exit 2; }
done
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
carried=$(du -cb training/corpus training/data/tokenizer_check.json | tail -1 | cut -f1)
total=$((tree + carried))
printf 'working tree %.1f MiB + carried %.1f MiB = %.1f MiB of %d MiB\n' "$(echo "$tree/1048576" | bc -l)" "$(echo "$carried/1048576" | bc -l)" "$(echo "$total/1048576" | bc -l)" 64
[ "$total" -lt "$LIMIT" ] || { echo "over the carry limit: trim training/corpus (gather_corpus.py) or the tree"; exit 3; }
OUT=$(mktemp -d) DRY_RUN=1 WORK=$(mktemp -d) bash training/device_run.sh 0.3
echo
echo 'dry run passed; on a session with the GPU machine:'
echo '  run(command="bash training/device_run.sh 6", carry=["training/corpus", "training/data/tokenizer_check.json"], timeout_s=600)'
