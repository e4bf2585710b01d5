"""Fill-in-the-middle splits of a file's text (PSM order is laid out by repo_documents.py).

Half of the splits cut whole lines (a middle of 1-8 lines: what an editor completion fills in), half cut at two
uniformly random characters (StarCoder / Qwen2.5-Coder style), so the model learns both."""

from __future__ import annotations

import random
from typing import Tuple

MAX_MIDDLE_LINES = 8


def fim_split(text: str, rng: random.Random, line_share: float = 0.5) -> Tuple[str, str, str]:
    """(prefix, middle, suffix) with prefix + middle + suffix == text."""
    lines = text.splitlines(keepends=True)
    if len(lines) >= 3 and rng.random() < line_share:
        start = rng.randrange(len(lines))
        count = rng.randint(1, min(MAX_MIDDLE_LINES, len(lines) - start))
        return "".join(lines[:start]), "".join(lines[start:start + count]), "".join(lines[start + count:])
    a, b = sorted((rng.randint(0, len(text)), rng.randint(0, len(text))))
    return text[:a], text[a:b], text[b:]
