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
    docs = report.get("documents", {})
    data = report.get("data", {})
    args = report.get("args", {})
    machine = report.get("machine", {})
    lengths = sorted({e.get("seq_len") for e in t.get("history", []) if e.get("seq_len")})
    return f"""# cskv-code house model

A small code model (Qwen2 architecture: GQA, q/k/v bias, tied embeddings; {report.get('parameters', 0) / 1e6:.1f}M
parameters, bf16) trained by the cskv-code project as its embedded default model and as the yardstick for
KV-cache compression quality. It completes code, fills in the middle (`<|fim_prefix|>`, `<|fim_suffix|>`,
`<|fim_middle|>`), and reads repository-level context (`<|repo_name|>`, `<|file_sep|>`). It was not trained
on chat or instructions: the chat template is there so the runtime's chat path works, not because it chats well.
It is small and short-sighted (a {h.get('length', '?')}-token context): a demonstration and a yardstick. Real work
wants a 7B code model (Qwen2.5-Coder-7B-Instruct, say), which cskv-code runs the same way.

- Corpus: {train.get('repositories', '?')} packages, {train.get('bytes', 0) / 1e6:.1f} MB of permissively licensed source
  from npm, Debian and the Python standard library; every package, version and licence is listed in
  training/corpus_manifest.json of the cskv-code repository. By licence: {licences}. By language: {languages}.
- This model saw {docs.get('train_repositories', '?')} of those packages ({docs.get('train_bytes', 0) / 1e6:.1f} MB,
  {data.get('train', {}).get('tokens', 0) / 1e6:.1f}M tokens), {docs.get('fim_rate', '?')} of documents ending in a
  FIM example, {docs.get('recall_documents', '?')} synthetic recall documents; seed {args.get('seed', '?')}.
  Held-out packages (never trained on): {docs.get('heldout_repositories', stats.get('heldout', {}).get('repositories', '?'))}.
- Training: {t.get('steps', '?')} steps, {t.get('tokens_seen', 0) / 1e6:.1f}M tokens ({t.get('epochs', 0):.2f} epochs),
  sequences of {' then '.join(str(n) for n in lengths) or args.get('seq_len', '?')} tokens, {t.get('train_seconds', 0) / 60:.0f} minutes
  on {machine.get('gpu') or machine.get('cpu', '?')} ({machine.get('threads', '?')} threads), torch {machine.get('torch', '?')}.
- Held-out loss {h.get('loss', float('nan')):.4f} (perplexity {h.get('perplexity', float('nan')):.2f} per token of this
  tokenizer) over {h.get('tokens', '?')} tokens; by position: {', '.join(f'{k}: {v:.3f}' for k, v in h.get('loss_by_position', {}).items())}.

Scripts: training/ in the cskv-code repository (train_house_model.py, gather_corpus.py).
"""
