"""Where the recipe reads and writes: its inputs under build/, every output under dist/."""

from __future__ import annotations

import os

from harness import paths, pins

REPO = str(paths.ROOT)
RECIPE = os.path.dirname(os.path.abspath(__file__))  # build/recipe
SPEC = os.path.join(REPO, "build", "tinyapi.spec")
DIST = str(paths.DIST)
# PyInstaller's work dir and its one-dir program: tinyapi + _internal/.
PYINSTALLER = os.path.join(DIST, "pyinstaller")
WORK = os.path.join(PYINSTALLER, "work")
FROZEN = os.path.join(PYINSTALLER, "dist", "tinyapi")
BINARY = str(paths.BINARY)
SBOM = str(paths.SBOM)
STAMP = BINARY + ".inputs"
LOCK = os.path.join(DIST, ".build.lock")
# The bootloader: pinned sdists, the patch series, where it is built.
BOOTLOADER_SOURCES = str(pins.SOURCES)
PATCHES = os.path.join(REPO, "build", "patches", "staticx")
BOOTLOADER_DIR = os.path.join(DIST, "bootloader")
BOOTLOADER = os.path.join(BOOTLOADER_DIR, "bootloader")
SDISTS = os.path.join(BOOTLOADER_DIR, "sources")


def shown(path: str) -> str:
    """path as a message names it: relative to the repository when it is inside it."""
    return os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path
