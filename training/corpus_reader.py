"""Reads the corpus written by gather_corpus.py: one JSON line per repository in a .jsonl.gz file."""

from __future__ import annotations

import gzip
import json
from typing import Iterator


def read_repos(path: str) -> Iterator[dict]:
    """{"repo", "source", "licence", "files": [{"path", "lang", "text"}]} per repository, in file order."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
