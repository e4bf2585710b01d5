"""Licence names: normalise the spellings that package.json and Debian copyright files use to SPDX ids, and
decide whether a licence expression is permissive enough to train a shipped model on."""

from __future__ import annotations

import re
from typing import Optional, Tuple

# Licences that allow use, modification and redistribution with attribution only (no copyleft).
PERMISSIVE = {
    "MIT", "MIT-0", "ISC", "0BSD", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "PSF-2.0", "Python-2.0",
    "Unlicense", "CC0-1.0", "Zlib", "BlueOak-1.0.0", "X11", "BSL-1.0", "WTFPL", "Artistic-2.0-or-MIT",
}

# Debian and npm spellings -> SPDX.
ALIASES = {
    "expat": "MIT", "mit": "MIT", "mit-0": "MIT-0", "isc": "ISC", "0bsd": "0BSD",
    "bsd-2-clause": "BSD-2-Clause", "bsd-2": "BSD-2-Clause", "bsd-2-clause-freebsd": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause", "bsd-3": "BSD-3-Clause", "bsd": "BSD-3-Clause", "bsd-new": "BSD-3-Clause",
    "apache-2.0": "Apache-2.0", "apache-2": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache2": "Apache-2.0",
    "apache": "Apache-2.0", "psf": "PSF-2.0", "psf-2.0": "PSF-2.0", "python": "Python-2.0",
    "python-2.0": "Python-2.0", "unlicense": "Unlicense", "cc0": "CC0-1.0", "cc0-1.0": "CC0-1.0",
    "public-domain": "public-domain", "zlib": "Zlib", "blueoak-1.0.0": "BlueOak-1.0.0", "x11": "X11",
    "bsl-1.0": "BSL-1.0", "boost": "BSL-1.0", "boost-1.0": "BSL-1.0", "boost-1": "BSL-1.0", "wtfpl": "WTFPL",
}


# Debian copyright files name variants of a standard licence with a suffix (`BSD-3-clause~Google`) or their
# own label; these are read to be the standard text (checked by hand, 2026-11-28).
DEBIAN_VARIANTS = {
    "bsd-c3": "BSD-3-Clause",
    # fmt: MIT plus an exception that waives attribution for compiled code: more permissive, not less.
    "expat with embedded exception": "MIT",
}


def normalise(name: str) -> str:
    """One licence name in SPDX spelling where known, else stripped as given."""
    key = name.strip().strip("()").strip().lower()
    if key in DEBIAN_VARIANTS:
        return DEBIAN_VARIANTS[key]
    key = key.split("~", 1)[0]
    return ALIASES.get(key, name.strip().strip("()").strip())


def is_permissive(expression: str) -> bool:
    """`A OR B` is permissive when any side is; `A AND B` (or a comma list) when every side is."""
    expr = expression.strip()
    if not expr:
        return False
    alternatives = re.split(r"\s+or\s+|\s*/\s*|\s*\|\s*", expr, flags=re.IGNORECASE)
    for alt in alternatives:
        parts = [p for p in re.split(r"\s+and\s+|\s*,\s*", alt, flags=re.IGNORECASE) if p.strip()]
        if parts and all(normalise(p) in PERMISSIVE for p in parts):
            return True
    return False


def npm_licence(package_json: dict) -> Optional[str]:
    """The `license` field (or the old `licenses` array) of a package.json."""
    lic = package_json.get("license")
    if isinstance(lic, dict):
        lic = lic.get("type")
    if isinstance(lic, str) and lic.strip():
        return lic.strip()
    old = package_json.get("licenses")
    if isinstance(old, list) and old:
        names = [x.get("type") if isinstance(x, dict) else str(x) for x in old]
        return " OR ".join(n for n in names if n)
    return None


def debian_licence(copyright_text: str) -> Tuple[Optional[str], str]:
    """Licence of a Debian package's main files and how it was found: the `License:` of the `Files: *` paragraph
    of a machine-readable (DEP-5) copyright file, else the first `License:` line, else the licence text itself."""
    paragraphs = re.split(r"\n\s*\n", copyright_text)
    for p in paragraphs:
        if re.search(r"^Files:\s*\*\s*$", p, flags=re.MULTILINE):
            m = re.search(r"^License:[ \t]*(\S.*)$", p, flags=re.MULTILINE)
            if m:
                return m.group(1).strip(), "dep5 Files: *"
    m = re.search(r"^License:[ \t]*(.*)$", copyright_text, flags=re.MULTILINE)
    if m and m.group(1).strip() and len(m.group(1)) < 60:  # a name, not the first line of a licence text
        return m.group(1).strip(), "first License: line"
    if m:  # `License:` followed by the text itself: read that text, not a vendored part's licence further down
        return _from_text(copyright_text[m.end(): m.end() + 4000], "licence text after the first License:")
    return _from_text(copyright_text, "licence text")


def _from_text(copyright_text: str, how: str) -> Tuple[Optional[str], str]:
    """The licence whose text starts first (a packaging part's GPL further down does not count)."""
    text = " ".join(copyright_text.split())
    markers = [
        (r"GNU (Lesser |Library )?General Public License", "GPL-family"),
        (r"Permission is hereby granted, free of charge", "MIT"),
        (r"Redistribution and use in source and binary forms", "BSD"),
        (r"Apache License,? Version 2\.0", "Apache-2.0"),
    ]
    found = sorted((m.start(), name) for pattern, name in markers for m in [re.search(pattern, text)] if m)
    if not found:
        return None, "not found"
    name = found[0][1]
    if name == "BSD":
        name = "BSD-3-Clause" if "Neither the name" in text or "endorse or promote" in text else "BSD-2-Clause"
    return name, how
