"""The sha256 of a file: the one reader every tool and test shares (the binary's stamp, the
SBOM, the image's files, the benchmarks' reproducibility check)."""

from __future__ import annotations

import hashlib
import os


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of the file at path, read in chunks (the binary is several MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
