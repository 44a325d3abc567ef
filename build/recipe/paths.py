"""Where the recipe reads and writes: its inputs under build/, every output under dist/."""

from __future__ import annotations

import os

# The checkout this recipe is in, not harness.paths.ROOT: a venv's harness may be another
# checkout's (bench builds a copy of the sources with the repository's venv).
RECIPE = os.path.dirname(os.path.abspath(__file__))  # build/recipe
REPO = os.path.dirname(os.path.dirname(RECIPE))
SPEC = os.path.join(REPO, "build", "tinyapi.spec")
DIST = os.path.join(REPO, "dist")
# PyInstaller's work dir and its one-dir program: tinyapi + _internal/.
PYINSTALLER = os.path.join(DIST, "pyinstaller")
WORK = os.path.join(PYINSTALLER, "work")
FROZEN = os.path.join(PYINSTALLER, "dist", "tinyapi")
BINARY = os.path.join(DIST, "tinyapi")
SBOM = os.path.join(DIST, "tinyapi.cdx.json")
STAMP = BINARY + ".inputs"
LOCK = os.path.join(DIST, ".build.lock")
# The bootloader: pinned sdists, the patch series, where it is built.
BOOTLOADER_SOURCES = os.path.join(REPO, "build", "bootloader-sources.txt")
PATCHES = os.path.join(REPO, "build", "patches", "staticx")
BOOTLOADER_DIR = os.path.join(DIST, "bootloader")
BOOTLOADER = os.path.join(BOOTLOADER_DIR, "bootloader")
SDISTS = os.path.join(BOOTLOADER_DIR, "sources")


def shown(path: str) -> str:
    """path as a message names it: relative to the repository when it is inside it."""
    return os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path
