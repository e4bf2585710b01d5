"""Repositories -> training documents in the repo-level layout of Qwen2.5-Coder (and src/workspace/layout.ts):

    <|repo_name|>NAME\n<|file_sep|>PATH\nCONTENT<|file_sep|>PATH\nCONTENT ... <|endoftext|>

A repository larger than one training sequence is cut into several documents of consecutive files, each with
the repo header, so every sequence starts with the context a user's workspace gives. With probability
`fim_rate` a document's last file is a fill-in-the-middle example in PSM order, as Qwen2.5-Coder's repo-level FIM:

    ... <|file_sep|>PATH\n<|fim_prefix|>PRE<|fim_suffix|>SUF<|fim_middle|>MID<|endoftext|>

A document is a list of pieces: ("special", token) or ("text", string); the training script encodes each text
piece on its own (so file contents never turn into control tokens) and joins the ids."""

from __future__ import annotations

import random
from typing import Iterable, Iterator, List, Tuple

import special_tokens as sp
from fim import fim_split

Piece = Tuple[str, str]


def split_repo(files: List[dict], max_bytes: int) -> List[List[dict]]:
    """Consecutive files grouped into chunks of at most max_bytes (a larger file is a chunk of its own)."""
    chunks: List[List[dict]] = []
    current: List[dict] = []
    size = 0
    for f in files:
        n = len(f["text"].encode("utf-8"))
        if current and size + n > max_bytes:
            chunks.append(current)
            current, size = [], 0
        current.append(f)
        size += n
    if current:
        chunks.append(current)
    return chunks


def document(repo_name: str, files: List[dict], fim: bool, rng: random.Random) -> List[Piece]:
    pieces: List[Piece] = [("special", sp.REPO_NAME), ("text", f"{repo_name}\n")]
    for i, f in enumerate(files):
        pieces += [("special", sp.FILE_SEP), ("text", f"{f['path']}\n")]
        text = f["text"] if f["text"].endswith("\n") else f["text"] + "\n"
        if fim and i == len(files) - 1:
            prefix, middle, suffix = fim_split(text, rng)
            pieces += [("special", sp.FIM_PREFIX), ("text", prefix), ("special", sp.FIM_SUFFIX), ("text", suffix),
                       ("special", sp.FIM_MIDDLE), ("text", middle)]
        else:
            pieces.append(("text", text))
    pieces.append(("special", sp.ENDOFTEXT))
    return [p for p in pieces if p[0] == "special" or p[1]]


def repo_documents(repos: Iterable[dict], max_bytes: int, fim_rate: float, seed: int) -> Iterator[List[Piece]]:
    """Every repository's documents; FIM choices and splits drawn from one seeded generator."""
    rng = random.Random(seed)
    for repo in repos:
        for chunk in split_repo(repo["files"], max_bytes):
            yield document(repo["repo"], chunk, rng.random() < fim_rate, rng)


def render(pieces: List[Piece]) -> str:
    """The document as one string (for reading and tests; training encodes the pieces one by one)."""
    return "".join(text for _, text in pieces)
