#!/usr/bin/env python3
"""Gather the house model's code corpus from what this machine and its registries provide, standard library only.

    python3 training/gather_corpus.py [--sources training/corpus_sources.json] [--out training/corpus]
                                      [--manifest training/corpus_manifest.json] [--offline]

Sources (corpus_sources.json): the Python standard library (PSF), the project's node_modules, npm packages
fetched with `npm pack`, and Debian packages fetched with `apt-get download`. Every package becomes one
"repository" (its files in path order, the unit the training script lays out as a repo-level sequence); packages
whose licence is not permissive are skipped and recorded. Files are filtered (corpus_filters.py) and
deduplicated by content across the whole corpus; a package's files stop at `max_repo_bytes` so no package
dominates. Held-out packages are whole packages, chosen per primary language in the order of a seeded hash of
their names (choose_heldout), so the split is reproducible and covers every common language. Output: OUT/train.jsonl.gz and OUT/heldout.jsonl.gz (one JSON line per repository:
{"repo", "source", "licence", "files": [{"path", "lang", "text"}]}) and the manifest (every source, its
version, licence and where the licence was read, its split and sizes; every skipped source and why).
Downloads are cached under training/.cache, so a rerun is offline and gives the same bytes.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import sysconfig
import tarfile
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import corpus_filters as filters  # noqa: E402
import licences  # noqa: E402

CACHE = os.path.join(HERE, ".cache")
PSF = "PSF-2.0"


class Repo:
    """One package's kept files, in path order."""

    def __init__(self, name: str, source: str, package: str, version: str, licence: str, licence_from: str):
        self.name, self.source, self.package, self.version = name, source, package, version
        self.licence, self.licence_from = licence, licence_from
        self.files: List[dict] = []
        self.bytes = 0
        self.rejected: Dict[str, int] = collections.Counter()


# ============================================================================================ reading sources

def stdlib_repos(config: dict) -> Iterator[Tuple[Repo, Iterable[Tuple[str, bytes]]]]:
    """The standard library as one repository per top-level package, single modules bucketed by first letter."""
    lib = sysconfig.get_paths()["stdlib"]
    version = platform.python_version()
    excluded = set(config.get("exclude", []))
    groups: Dict[str, List[str]] = collections.defaultdict(list)
    for entry in sorted(os.listdir(lib)):
        full = os.path.join(lib, entry)
        if entry in excluded or entry.startswith("."):
            continue
        if os.path.isdir(full):
            groups[f"cpython/Lib/{entry}"].append(entry)
        elif entry.endswith(".py"):
            first = entry.lstrip("_")[:1].lower() or "_"
            bucket = "a-e" if first <= "e" else "f-o" if first <= "o" else "p-z"
            groups[f"cpython/Lib/modules-{bucket}"].append(entry)
    for name in sorted(groups):
        repo = Repo(name, "python-stdlib", "cpython", version, PSF, "Python standard library (PSF licence)")
        yield repo, _walk_files(lib, groups[name])


def _walk_files(base: str, entries: List[str]) -> Iterator[Tuple[str, bytes]]:
    paths = []
    for entry in entries:
        full = os.path.join(base, entry)
        if os.path.isfile(full):
            paths.append(entry)
            continue
        for dirpath, dirnames, filenames in os.walk(full):
            dirnames[:] = sorted(d for d in dirnames if d not in filters.SKIPPED_DIRECTORIES)
            for f in filenames:
                paths.append(os.path.relpath(os.path.join(dirpath, f), base).replace(os.sep, "/"))
    for rel in sorted(paths):
        full = os.path.join(base, rel)
        if os.path.islink(full) or not os.path.isfile(full):
            continue
        with open(full, "rb") as f:
            yield rel, f.read(filters.MAX_BYTES + 1)


def node_modules_repos(directory: str) -> Iterator[Tuple[Repo, Iterable[Tuple[str, bytes]]]]:
    """Every top-level package of a node_modules folder (scoped ones too); nested node_modules are skipped."""
    packages = []
    for entry in sorted(os.listdir(directory)):
        if entry.startswith("."):
            continue
        if entry.startswith("@"):
            packages += [f"{entry}/{s}" for s in sorted(os.listdir(os.path.join(directory, entry)))]
        else:
            packages.append(entry)
    for pkg in packages:
        base = os.path.join(directory, pkg)
        meta_file = os.path.join(base, "package.json")
        if not os.path.isfile(meta_file):
            continue
        with open(meta_file, "rb") as f:
            meta = json.loads(f.read().decode("utf-8", "replace"))
        lic = meta and licences.npm_licence(meta) or "UNKNOWN"
        repo = Repo(meta.get("name", pkg), "npm", meta.get("name", pkg), str(meta.get("version", "")), lic,
                    "package.json license")
        yield repo, _walk_files(base, sorted(os.listdir(base)))


def npm_pack_repos(specs: List[str], offline: bool) -> Iterator[Tuple[Repo, Iterable[Tuple[str, bytes]]]]:
    """npm packages fetched with `npm pack` (the tarball is cached and read in memory, nothing is installed)."""
    directory = os.path.join(CACHE, "npm")
    os.makedirs(directory, exist_ok=True)
    for spec in specs:
        tarball = _cached_npm_tarball(spec, directory, offline)
        if tarball is None:
            print(f"  npm {spec}: not fetched", file=sys.stderr)
            continue
        with tarfile.open(tarball, "r:gz") as tar:
            members = {}
            for m in tar.getmembers():
                if m.isfile() and "/" in m.name:
                    members[m.name.split("/", 1)[1]] = tar.extractfile(m).read(filters.MAX_BYTES + 1)
        meta = json.loads(members.get("package.json", b"{}").decode("utf-8", "replace"))
        lic = licences.npm_licence(meta) or "UNKNOWN"
        name = meta.get("name", spec)
        repo = Repo(name, "npm", name, str(meta.get("version", "")), lic, "package.json license")
        yield repo, sorted(members.items())


def _cached_npm_tarball(spec: str, directory: str, offline: bool) -> Optional[str]:
    index_file = os.path.join(directory, "index.json")
    index = json.load(open(index_file)) if os.path.exists(index_file) else {}
    name, _, version = spec[1:].partition("@")
    name = spec[0] + name
    for key in (spec, name):  # a pinned spec may have been fetched unpinned at that version
        if key in index and os.path.exists(os.path.join(directory, index[key])) and \
                (key == spec or index[key].endswith(f"-{version}.tgz")):
            return os.path.join(directory, index[key])
    if offline:
        return None
    r = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", directory],
                       capture_output=True, text=True, cwd=directory)
    if r.returncode != 0:
        print(f"  npm pack {spec} failed: {r.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    start = r.stdout.find("[")
    filename = json.loads(r.stdout[start:])[0]["filename"].replace("@", "").replace("/", "-")
    if not os.path.exists(os.path.join(directory, filename)):  # npm's naming of scoped tarballs varies by version
        candidates = sorted(os.listdir(directory), key=lambda f: os.path.getmtime(os.path.join(directory, f)))
        filename = [c for c in candidates if c.endswith(".tgz")][-1]
    index[spec] = filename
    with open(index_file, "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
    return os.path.join(directory, filename)


def debian_repos(packages: List[str], offline: bool) -> Iterator[Tuple[Repo, Iterable[Tuple[str, bytes]]]]:
    """Debian packages fetched with `apt-get download`, read with `dpkg-deb --fsys-tarfile`; the licence comes
    from the package's own /usr/share/doc/<pkg>/copyright. Paths are made relative to the deepest folder that
    holds every kept file (e.g. /usr/share/cargo/registry/serde-1.0.152/)."""
    directory = os.path.join(CACHE, "deb")
    os.makedirs(directory, exist_ok=True)
    for spec in packages:
        pkg, _, wanted = spec.partition("=")  # name or name=version (as apt-get download takes it)
        deb = _cached_deb(spec, pkg, directory, offline)
        if deb is None:
            print(f"  deb {pkg}: not fetched", file=sys.stderr)
            continue
        version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True).stdout.strip()
        if wanted and version != wanted:
            print(f"  deb {pkg}: cached {version}, sources pin {wanted}", file=sys.stderr)
        tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=True).stdout
        files: Dict[str, bytes] = {}
        copyright_text = ""
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                path = m.name.lstrip("./")
                if path == f"usr/share/doc/{pkg}/copyright":
                    copyright_text = tar.extractfile(m).read().decode("utf-8", "replace")
                elif filters.language_of(path) and not path.startswith("usr/share/doc/"):
                    files[path] = tar.extractfile(m).read(filters.MAX_BYTES + 1)
        lic, found = licences.debian_licence(copyright_text)
        prefix = os.path.commonpath([os.path.dirname(p) for p in files]) if files else ""
        rel = sorted((os.path.relpath(p, prefix) if prefix else p, data) for p, data in files.items())
        repo = Repo(pkg, "debian", pkg, version, lic or "UNKNOWN", f"/usr/share/doc/{pkg}/copyright ({found})")
        yield repo, rel


def _cached_deb(spec: str, pkg: str, directory: str, offline: bool) -> Optional[str]:
    def find() -> Optional[str]:
        hits = sorted(f for f in os.listdir(directory) if f.startswith(f"{pkg}_") and f.endswith(".deb"))
        return os.path.join(directory, hits[-1]) if hits else None
    if find() or offline:
        return find()
    r = subprocess.run(["apt-get", "download", spec], capture_output=True, text=True, cwd=directory)
    if r.returncode != 0:
        print(f"  apt-get download {spec} failed: {r.stderr.strip()[-300:]}", file=sys.stderr)
    return find()


# ============================================================================================ assembling

def seeded_rank(repo_name: str, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{repo_name}".encode()).hexdigest()[:12], 16)


def choose_heldout(repos: List[Tuple[str, str, int]], seed: int, fraction: float) -> set:
    """Names of held-out packages, from (name, primary language, bytes): per language, packages in seeded-hash
    order until `fraction` of that language's bytes (at most twice it), for languages with 5 packages or more,
    so every common language is scored and no package is split across train and held-out."""
    by_lang: Dict[str, List[Tuple[str, int]]] = collections.defaultdict(list)
    for name, lang, size in repos:
        by_lang[lang].append((name, size))
    held = set()
    for lang, items in sorted(by_lang.items()):
        if len(items) < 5:
            continue
        target = fraction * sum(size for _, size in items)
        taken = 0
        for name, size in sorted(items, key=lambda x: seeded_rank(x[0], seed)):
            if taken >= target:
                break
            if taken + size <= 2 * target:
                held.add(name)
                taken += size
    return held


def primary_language(repo: Repo) -> str:
    sizes: Dict[str, int] = collections.Counter()
    for f in repo.files:
        sizes[f["lang"]] += len(f["text"])
    return max(sorted(sizes), key=lambda k: sizes[k])


def fill(repo: Repo, files: Iterable[Tuple[str, bytes]], seen: set, max_repo_bytes: int) -> None:
    for path, data in files:
        lang = filters.language_of(path)
        if lang is None or filters.path_is_skipped(path):
            continue
        why = filters.rejection(data)
        if why is None:
            digest = hashlib.sha1(b"\n".join(l.rstrip() for l in data.split(b"\n"))).digest()
            why = "duplicate" if digest in seen else None
            if why is None and repo.bytes + len(data) > max_repo_bytes:
                why = "repo-cap"
            if why is None:
                seen.add(digest)
                repo.files.append({"path": path, "lang": lang, "text": data.decode("utf-8")})
                repo.bytes += len(data)
        if why:
            repo.rejected[why] += 1


def write_jsonl_gz(path: str, repos: List[Repo]) -> None:
    """Deterministic gzip (no name, mtime 0) of one JSON line per repository."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        for r in repos:
            line = json.dumps({"repo": r.name, "source": r.source, "licence": r.licence, "files": r.files},
                              ensure_ascii=False, separators=(",", ":"))
            gz.write(line.encode("utf-8") + b"\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", default=os.path.join(HERE, "corpus_sources.json"))
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"))
    ap.add_argument("--manifest", default=os.path.join(HERE, "corpus_manifest.json"))
    ap.add_argument("--offline", action="store_true", help="use cached downloads only")
    args = ap.parse_args()
    config = json.load(open(args.sources))
    seed, fraction, cap = config["seed"], config["heldout_fraction"], config["max_repo_bytes"]

    streams = []
    if "python_stdlib" in config:
        streams.append(stdlib_repos(config["python_stdlib"]))
    if config.get("project_node_modules"):
        streams.append(node_modules_repos(os.path.join(ROOT, "node_modules")))
    streams.append(npm_pack_repos(config.get("npm", []), args.offline))
    streams.append(debian_repos(config.get("debian", []), args.offline))

    seen: set = set()
    kept: List[Repo] = []
    skipped: List[dict] = []
    names: set = set()
    for stream in streams:
        for repo, files in stream:
            if repo.name in names:
                skipped.append({"name": repo.name, "source": repo.source, "version": repo.version, "reason": "already gathered"})
                continue
            names.add(repo.name)
            if not licences.is_permissive(repo.licence):
                skipped.append({"name": repo.name, "source": repo.source, "version": repo.version,
                                "licence": repo.licence, "licence_from": repo.licence_from, "reason": "licence not permissive"})
                continue
            fill(repo, files, seen, cap)
            if repo.files:
                kept.append(repo)
                print(f"  {repo.source:13} {repo.name:45} {repo.version:14} {repo.licence:22} "
                      f"{len(repo.files):5} files {repo.bytes / 1e6:7.2f} MB", file=sys.stderr)

    kept.sort(key=lambda r: r.name)
    held_names = choose_heldout([(r.name, primary_language(r), r.bytes) for r in kept], seed, fraction)
    train = [r for r in kept if r.name not in held_names]
    heldout = [r for r in kept if r.name in held_names]
    os.makedirs(args.out, exist_ok=True)
    write_jsonl_gz(os.path.join(args.out, "train.jsonl.gz"), train)
    write_jsonl_gz(os.path.join(args.out, "heldout.jsonl.gz"), heldout)

    manifest = {
        "about": "Sources of the house model's training corpus (training/gather_corpus.py). Every repository is one "
                 "package; licence as declared by the package (package.json `license`, Debian copyright file, PSF "
                 "for the Python standard library).",
        "seed": seed, "heldout_fraction": fraction, "max_repo_bytes": cap,
        "stats": stats(train, heldout, args.out),
        "repositories": [{
            "name": r.name, "source": r.source, "package": r.package, "version": r.version, "licence": r.licence,
            "licence_from": r.licence_from, "split": "heldout" if r in heldout else "train",
            "files": len(r.files), "bytes": r.bytes, "rejected": dict(sorted(r.rejected.items())),
        } for r in kept],
        "skipped": skipped,
    }
    with open(args.manifest, "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print_stats(manifest["stats"])
    return 0


def stats(train: List[Repo], heldout: List[Repo], out: str) -> dict:
    def split_stats(repos: List[Repo]) -> dict:
        by_lang: Dict[str, int] = collections.Counter()
        by_licence: Dict[str, int] = collections.Counter()
        by_source: Dict[str, int] = collections.Counter()
        for r in repos:
            by_licence[licences.normalise(r.licence)] += r.bytes
            by_source[r.source] += r.bytes
            for f in r.files:
                by_lang[f["lang"]] += len(f["text"].encode("utf-8"))
        return {"repositories": len(repos), "files": sum(len(r.files) for r in repos), "bytes": sum(r.bytes for r in repos),
                "bytes_by_language": dict(by_lang.most_common()), "bytes_by_licence": dict(by_licence.most_common()),
                "bytes_by_source": dict(by_source.most_common())}
    sizes = {f: os.path.getsize(os.path.join(out, f)) for f in ("train.jsonl.gz", "heldout.jsonl.gz")}
    return {"train": split_stats(train), "heldout": split_stats(heldout), "compressed_bytes": sizes}


def print_stats(s: dict) -> None:
    for split in ("train", "heldout"):
        t = s[split]
        print(f"{split}: {t['repositories']} repositories, {t['files']} files, {t['bytes'] / 1e6:.1f} MB")
        print("  by language: " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in t["bytes_by_language"].items()))
        print("  by licence:  " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in t["bytes_by_licence"].items()))
        print("  by source:   " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in t["bytes_by_source"].items()))
    print("compressed: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in s["compressed_bytes"].items()))


if __name__ == "__main__":
    sys.exit(main())
