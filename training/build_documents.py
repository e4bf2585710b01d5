#!/usr/bin/env python3
"""Corpus -> training and held-out documents, as pieces, for the Node tokenizer (training/tokenizeDocuments.ts).

    python3 training/build_documents.py --corpus training/corpus --data training/data --seq-len 1024

Writes DATA/train_documents.jsonl.gz and DATA/heldout_documents.jsonl.gz: one document per line, a JSON list of
["special", token] / ["text", string] pieces (repo_documents.py). Training documents are repository chunks of about
one sequence, a share ending in a FIM example (--fim-rate), plus synthetic recall documents (--recall-share),
shuffled with --seed; held-out documents have no FIM and keep the corpus order. Standard library only: the text
is tokenised by the runtime's own tokenizer in Node, so training and inference cannot disagree."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
from typing import Iterable, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import corpus_reader  # noqa: E402
import repo_documents  # noqa: E402
import special_tokens as sp  # noqa: E402
import synthetic_recall  # noqa: E402

BYTES_PER_TOKEN_GUESS = 3.0   # code under the house tokenizer; sizes documents to about one sequence


def filler_lines(repos: List[dict], seed: int, files: int = 3000) -> List[str]:
    """Real code lines (of a seeded sample of files) for the synthetic recall documents."""
    rng = random.Random(seed)
    everything = [f for r in repos for f in r["files"]]
    chosen = rng.sample(everything, min(files, len(everything)))
    return [l.rstrip() for f in chosen for l in f["text"].split("\n") if 0 < len(l.strip()) < 120 and "KEY_" not in l]


def training_documents(repos: List[dict], seq_len: int, fim_rate: float, recall_share: float, seed: int):
    doc_bytes = int(seq_len * BYTES_PER_TOKEN_GUESS)
    docs = list(repo_documents.repo_documents(repos, doc_bytes, fim_rate, seed))
    rng = random.Random(seed + 1)
    recall_count = int(round(recall_share * len(docs) / max(1e-9, 1 - recall_share)))
    if recall_count:
        lines = filler_lines(repos, seed)
        docs += [synthetic_recall.recall_document(i, lines, rng, rng.randint(doc_bytes // 8, doc_bytes))
                 for i in range(recall_count)]
    rng.shuffle(docs)
    return docs, recall_count


def capped(repos: List[dict], megabytes: float, seed: int, shuffle: bool) -> List[dict]:
    """Whole repositories (in a seeded order when `shuffle`) until `megabytes` of text; all of them for 0."""
    if megabytes <= 0:
        return repos
    if shuffle:
        repos = list(repos)
        random.Random(seed).shuffle(repos)
    kept, size = [], 0
    for r in repos:
        if size >= megabytes * 1e6:
            break
        kept.append(r)
        size += sum(len(f["text"]) for f in r["files"])
    return kept


def write_documents(path: str, docs: Iterable[list]) -> int:
    n = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=3) as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False))
            f.write("\n")
            n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus"), help="folder with train.jsonl.gz, heldout.jsonl.gz")
    ap.add_argument("--data", default=os.path.join(HERE, "data"), help="folder to write the documents into")
    ap.add_argument("--seq-len", type=int, default=1024, help="training sequence length the documents are sized for")
    ap.add_argument("--fim-rate", type=float, default=0.4, help="share of documents that end in a FIM example")
    ap.add_argument("--recall-share", type=float, default=0.03, help="share of synthetic recall documents")
    ap.add_argument("--max-mb", type=float, default=0, help="use at most this many MB of training code (0: all)")
    ap.add_argument("--heldout-max-mb", type=float, default=0, help="and of held-out code (0: all)")
    ap.add_argument("--seed", type=int, default=20261128)
    args = ap.parse_args()

    for name in ("train.jsonl.gz", "heldout.jsonl.gz"):
        if not os.path.exists(os.path.join(args.corpus, name)):
            print(f"{os.path.join(args.corpus, name)}: missing; run training/gather_corpus.py first", file=sys.stderr)
            return 2
    train = list(corpus_reader.read_repos(os.path.join(args.corpus, "train.jsonl.gz")))
    held = list(corpus_reader.read_repos(os.path.join(args.corpus, "heldout.jsonl.gz")))
    train = capped(train, args.max_mb, args.seed, shuffle=True)
    held = capped(held, args.heldout_max_mb, args.seed, shuffle=False)
    os.makedirs(args.data, exist_ok=True)
    docs, recall = training_documents(train, args.seq_len, args.fim_rate, args.recall_share, args.seed)
    fim = sum(1 for d in docs if ("special", sp.FIM_MIDDLE) in d)
    n_train = write_documents(os.path.join(args.data, "train_documents.jsonl.gz"), docs)
    held_docs = repo_documents.repo_documents(held, int(args.seq_len * BYTES_PER_TOKEN_GUESS), 0.0, args.seed)
    n_held = write_documents(os.path.join(args.data, "heldout_documents.jsonl.gz"), held_docs)
    summary = {"train_repositories": len(train), "train_documents": n_train, "fim_documents": fim,
               "recall_documents": recall, "heldout_repositories": len(held), "heldout_documents": n_held,
               "train_bytes": sum(len(f["text"].encode()) for r in train for f in r["files"]),
               "seq_len": args.seq_len, "fim_rate": args.fim_rate, "recall_share": args.recall_share,
               "seed": args.seed}
    with open(os.path.join(args.data, "documents.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
