"""Synthetic long-range recall documents mixed into training at a small share (train_house_model.py
--recall-share): Python-style constants `KEY_<word> = <number>` scattered through real code lines, and a second
file that asserts some of them, so the model is shown, inside its training length, that a value defined far
back is worth copying. The quality benchmark (bench/quality.ts) asks in a different surface form
(`const value_<word> = <number>;` ... `assert.equal(value_<word>, `) on held-out code, so it measures the skill,
not this template."""

from __future__ import annotations

import random
from typing import List

import special_tokens as sp
from repo_documents import Piece

SYLLABLES = ["ka", "lo", "mi", "ren", "tor", "vex", "zu", "pam", "qui", "dex", "hal", "sor", "nix", "bel", "gar",
             "fen", "jol", "wyn", "cra", "plu"]


def pseudo_word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def recall_document(index: int, filler_lines: List[str], rng: random.Random, target_bytes: int,
                    definitions: int = 24, queries: int = 6) -> List[Piece]:
    """Definitions spread evenly through `target_bytes` of filler lines, then assertions of a few of them."""
    names: List[str] = []
    while len(names) < definitions:
        w = pseudo_word(rng)
        if w not in names:
            names.append(w)
    values = {w: rng.randint(10, 99999) for w in names}
    body: List[str] = []
    per_gap = max(1, target_bytes // (definitions + 1))
    for w in names:
        gap = 0
        while gap < per_gap and filler_lines:
            line = rng.choice(filler_lines)
            body.append(line)
            gap += len(line) + 1
        body.append(f"KEY_{w.upper()} = {values[w]}")
    asked = rng.sample(names, min(queries, len(names)))
    checks = "".join(f"assert settings.KEY_{w.upper()} == {values[w]}\n" for w in asked)
    return [("special", sp.REPO_NAME), ("text", f"synthetic/registry-{index}\n"),
            ("special", sp.FILE_SEP), ("text", "settings.py\n"), ("text", "\n".join(body) + "\n"),
            ("special", sp.FILE_SEP), ("text", "test_settings.py\n"), ("text", "import settings\n\n" + checks),
            ("special", sp.ENDOFTEXT)]
