#!/usr/bin/env python3
"""Documents -> token streams on the GPU machine, which has no Node.js: the same output as tokenizeDocuments.ts
(DATA/train.tokens, DATA/heldout.tokens, DATA/tokens.json), encoded with the `tokenizers` library (the reference
implementation that the runtime's @huggingface/tokenizers ports) over the house tokenizer's tokenizer.json.

    python3 training/tokenize_documents.py --data DIR --tokenizer models/house --check training/data/tokenizer_check.json

Before anything is encoded, every sample of --check (texts and the ids the runtime's tokenizer gave them on the CPU
machine) must come out identical; otherwise it stops, so training and inference cannot disagree. Text pieces are
encoded literally, as the runtime does: an added token's string inside a file is split after its first character."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import sys
from typing import List

import numpy as np

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|repo_name|>", "<|file_sep|>", "<|fim_prefix|>",
            "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>"]


class LiteralEncoder:
    def __init__(self, tokenizer_file: str):
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(tokenizer_file)
        with open(tokenizer_file, encoding="utf-8") as f:
            added = [a["content"] for a in json.load(f).get("added_tokens", []) if len(a["content"]) > 1]
        added.sort(key=len, reverse=True)
        self.added = re.compile("|".join(re.escape(a) for a in added)) if added else None

    def plain(self, text: str) -> List[int]:
        return self.tok.encode(text, add_special_tokens=False).ids if text else []

    def literal(self, text: str) -> List[int]:
        if not self.added:
            return self.plain(text)
        ids: List[int] = []
        last = 0
        for m in self.added.finditer(text):
            ids += self.plain(text[last:m.start()])
            ids += self.plain(m.group(0)[:1])
            ids += self.literal(m.group(0)[1:])
            last = m.end()
        return ids + self.plain(text[last:])

    def batch(self, texts: List[str]) -> List[List[int]]:
        """Texts without added-token strings in one parallel batch, the rest one by one."""
        out: List[List[int]] = [[] for _ in texts]
        simple = [i for i, t in enumerate(texts) if t and not (self.added and self.added.search(t))]
        for i, enc in zip(simple, self.tok.encode_batch([texts[i] for i in simple], add_special_tokens=False)):
            out[i] = enc.ids
        for i, t in enumerate(texts):
            if t and i not in set(simple):
                out[i] = self.literal(t)
        return out


def check(enc: LiteralEncoder, check_file: str) -> int:
    with open(check_file, encoding="utf-8") as f:
        samples = json.load(f)
    for n, s in enumerate(samples):
        got = enc.literal(s["text"])
        if got != s["ids"]:
            first = next((i for i, (a, b) in enumerate(zip(got, s["ids"])) if a != b), min(len(got), len(s["ids"])))
            raise SystemExit(f"{check_file}: sample {n}: the tokenizers library and the runtime disagree at id {first} "
                             f"(library {got[first:first + 5]}, runtime {s['ids'][first:first + 5]}); not training on these ids")
    return len(samples)


def tokenize_file(enc: LiteralEncoder, special_ids: dict, in_file: str, out_file: str):
    docs = tokens = 0
    with gzip.open(in_file, "rt", encoding="utf-8") as f, open(out_file, "wb") as out:
        lines = [l for l in f if l.strip()]
        for start in range(0, len(lines), 512):
            chunk = [json.loads(l) for l in lines[start:start + 512]]
            texts = [t for d in chunk for k, t in d if k == "text"]
            encoded = iter(enc.batch(texts))
            for d in chunk:
                ids: List[int] = []
                for kind, text in d:
                    ids += [special_ids[text]] if kind == "special" else next(encoded)
                out.write(np.asarray(ids, dtype="<u2").tobytes())
                docs += 1
                tokens += len(ids)
    return docs, tokens


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True, help="folder with tokenizer.json and tokenizer_config.json")
    ap.add_argument("--check", required=True, help="tokenizer_check.json written by tokenizeDocuments.ts")
    args = ap.parse_args()
    enc = LiteralEncoder(os.path.join(args.tokenizer, "tokenizer.json"))
    print(f"tokenizer check: {check(enc, args.check)} samples identical to the runtime's ids", flush=True)
    special_ids = {s: enc.tok.token_to_id(s) for s in SPECIALS}
    os.makedirs(os.path.join(args.data, "tokenizer"), exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(args.tokenizer, name), os.path.join(args.data, "tokenizer", name))
    summary = {"vocab_size": enc.tok.get_vocab_size(with_added_tokens=True), "special_ids": special_ids,
               "tokenized_by": "tokenizers (python), checked against the runtime's ids"}
    for split in ("train", "heldout"):
        docs, tokens = tokenize_file(enc, special_ids, os.path.join(args.data, f"{split}_documents.jsonl.gz"),
                                     os.path.join(args.data, f"{split}.tokens"))
        summary[split] = {"documents": docs, "tokens": tokens}
        print(f"{split}: {docs} documents, {tokens} tokens", flush=True)
    with open(os.path.join(args.data, "tokens.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
