"""README.md of the saved model directory: what the house model is, what it was trained on (and under which
licences), how, and what it scored on held-out code during training."""

from __future__ import annotations

import json
import os


def model_card(report: dict, manifest_file: str) -> str:
    stats = {}
    if os.path.exists(manifest_file):
        with open(manifest_file) as f:
            stats = json.load(f).get("stats", {})
    train = stats.get("train", {})
    licences = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in list(train.get("bytes_by_licence", {}).items())[:8])
    languages = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in list(train.get("bytes_by_language", {}).items())[:8])
    t = report.get("training", {})
    h = report.get("heldout", {})
    d = report.get("data", {})
    return f"""# cskv-code house model

A small code model (Qwen2 architecture: GQA, q/k/v bias, tied embeddings; {report.get('parameters', 0) / 1e6:.1f}M
parameters, bf16) trained by the cskv-code project as its embedded default model and as the yardstick for
KV-cache compression quality. It completes code, fills in the middle (`<|fim_prefix|>`, `<|fim_suffix|>`,
`<|fim_middle|>`), and reads repository-level context (`<|repo_name|>`, `<|file_sep|>`). It was not trained
on chat or instructions: the chat template is there so the runtime's chat path works, not because it chats well.

- Training data: {train.get('repositories', '?')} packages, {train.get('files', '?')} files,
  {train.get('bytes', 0) / 1e6:.1f} MB of permissively licensed source from npm, Debian and the Python standard
  library; every package, version and licence is listed in training/corpus_manifest.json of the cskv-code repository.
  By licence: {licences}. By language: {languages}.
- Held-out packages (never trained on): {stats.get('heldout', {}).get('repositories', '?')}.
- Training: {t.get('steps', '?')} steps, {t.get('tokens_seen', 0) / 1e6:.0f}M tokens ({t.get('epochs', 0):.2f} epochs
  of {d.get('train_tokens', 0) / 1e6:.0f}M), sequences of {report.get('args', {}).get('seq_len', '?')} tokens,
  {report.get('args', {}).get('fim_rate', '?')} of documents ending in a FIM example,
  {report.get('args', {}).get('recall_share', '?')} synthetic recall documents; seed {report.get('args', {}).get('seed', '?')};
  {report.get('versions', {}).get('gpu', '?')}, torch {report.get('versions', {}).get('torch', '?')},
  transformers {report.get('versions', {}).get('transformers', '?')}.
- Held-out loss {h.get('loss', float('nan')):.4f} (perplexity {h.get('perplexity', float('nan')):.2f} per token of this
  tokenizer) over {h.get('tokens', '?')} tokens; by position: {h.get('loss_by_position', {})}.

Scripts: training/ in the cskv-code repository (train_house_model.py, gather_corpus.py).
"""
