#!/usr/bin/env python3
"""A corpus in gather_corpus.py's format from folders on this machine (for the training smoke test: the project's
own sources are on every machine, the gathered corpus is not).

    python3 training/source_corpus.py --out /tmp/corpus src test
Each folder becomes one repository; the last one is the held-out split, the others the training split."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys

SOURCE_EXTENSIONS = {".ts", ".js", ".py", ".cc", ".h", ".cu", ".cuh", ".css", ".md"}


def repository(folder: str) -> dict:
    files = []
    for base, dirs, names in os.walk(folder):
        dirs.sort()
        for n in sorted(names):
            if os.path.splitext(n)[1] in SOURCE_EXTENSIONS:
                p = os.path.join(base, n)
                with open(p, encoding="utf-8", errors="replace") as f:
                    files.append({"path": os.path.relpath(p, folder), "lang": os.path.splitext(n)[1][1:], "text": f.read()})
    return {"repo": os.path.basename(os.path.abspath(folder)), "source": "local", "licence": "MIT", "files": files}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("folders", nargs="+")
    args = ap.parse_args()
    if len(args.folders) < 2:
        print("give at least two folders: training folders, then the held-out one", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    for name, folders in (("train", args.folders[:-1]), ("heldout", args.folders[-1:])):
        with gzip.open(os.path.join(args.out, f"{name}.jsonl.gz"), "wt", encoding="utf-8") as f:
            for folder in folders:
                f.write(json.dumps(repository(folder)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
