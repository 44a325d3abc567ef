"""build/bootloader-sources.txt, the bootloader's sources pinned by sha256: one reader, for
the recipe's bootloader (which downloads and checks them) and its SBOM (which names them)."""

from __future__ import annotations

import re

from harness.paths import ROOT

SOURCES = ROOT / "build" / "bootloader-sources.txt"
LINE = re.compile(r"^([A-Za-z0-9][\w.-]*)==(\S+) --hash=sha256:([0-9a-f]{64})$")


def pinned_sources(path=SOURCES) -> dict[str, tuple[str, str]]:
    """{name: (version, sha256)}; ValueError naming the line that is not a pin."""
    pins = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            match = LINE.match(line)
            if not match:
                raise ValueError(f'{path}: not "name==version --hash=sha256:<64 hex>": {line}')
            pins[match[1]] = (match[2], match[3])
    return pins


def sdist_name(name: str, version: str) -> str:
    return f"{name}-{version}.tar.gz"
