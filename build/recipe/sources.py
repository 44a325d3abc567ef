"""The bootloader's sources: the pinned sdists of build/bootloader-sources.txt (staticx's, and
zstandard's for zstd's single-file library), unpacked, with build/patches/staticx/ applied."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile

from harness import pins
from harness.digest import sha256
from recipe.env import BuildError
from recipe.paths import BOOTLOADER_SOURCES, PATCHES, SDISTS, shown


def patch_series(directory: str | None = None) -> list[str]:
    """build/patches/staticx/*.patch (or directory's), in the order they apply."""
    directory = directory or PATCHES
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".patch"))


def pinned_sources() -> dict[str, tuple[str, str]]:
    """{name: (version, sha256)} of build/bootloader-sources.txt."""
    try:
        return pins.pinned_sources(BOOTLOADER_SOURCES)
    except ValueError as err:
        raise BuildError(str(err)) from None


def fetch_sources(env: dict[str, str]) -> dict[str, str]:
    """The pinned sdists in dist/bootloader/sources (downloaded once, checked by sha256 every
    time): {name: path}."""
    os.makedirs(SDISTS, exist_ok=True)
    paths, wanted = {}, []
    for name, (version, digest) in pinned_sources().items():
        path = os.path.join(SDISTS, pins.sdist_name(name, version))
        paths[name] = path
        if not (os.path.exists(path) and sha256(path) == digest):
            wanted.append(name)
    if wanted:
        print(f"    downloading {', '.join(wanted)} (pip --require-hashes)", flush=True)
        # fmt: off
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--no-binary", ":all:", "--no-build-isolation", "--require-hashes",
            "-r", BOOTLOADER_SOURCES, "-d", SDISTS,
        ]
        # fmt: on
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(
                f"could not download the bootloader sources of "
                f"{shown(BOOTLOADER_SOURCES)}:\n{proc.stderr.strip()}"
            )
    for path in paths.values():
        if not os.path.exists(path):
            raise BuildError(f"pip download gave no {os.path.basename(path)}")
    return paths


def apply_patches(tree: str, version: str, patches: str | None = None) -> None:
    """Apply the series to the staticx source tree; one clear line when a patch no longer applies."""
    for patch in patch_series(patches):
        # fmt: off
        cmd = [
            "patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-s",
            "-d", tree, "-i", patch,
        ]
        # fmt: on
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            # patch's own first line ("1 out of 5 hunks FAILED"), without its .rej file name:
            # the tree is a temporary one.
            first = (proc.stdout + proc.stderr).strip().splitlines()[:1]
            why = (
                first[0].split(" -- saving rejects")[0]
                if first
                else f"patch exited {proc.returncode}"
            )
            raise BuildError(f"{shown(patch)} no longer applies to staticx {version}: {why}")


def unpack(sdist: str, dest: str) -> str:
    """sdist unpacked in dest: its top directory."""
    with tarfile.open(sdist) as tar:
        # Extraction filters came in Python 3.11.4 (Debian 12 has 3.11.2); the sdist's sha256
        # is checked before this, so without a filter is safe too.
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = os.listdir(dest)
    return os.path.join(dest, top)


def patched_tree(scratch: str, env: dict[str, str], patches: str | None = None) -> tuple[str, str]:
    """(tree, staticx's version): the staticx sdist, unpacked in scratch and patched, with
    zstd's single-file library in libzstd/: the tree the bootloader is compiled from."""
    sdists = fetch_sources(env)
    version = pinned_sources()["staticx"][0]
    tree = unpack(sdists["staticx"], os.path.join(scratch, "staticx"))
    apply_patches(tree, version, patches)
    zstd = os.path.join(unpack(sdists["zstandard"], os.path.join(scratch, "zstandard")), "zstd")
    for name in ("zstd.c", "zstd.h", "zstd_errors.h"):
        shutil.copy(os.path.join(zstd, name), os.path.join(tree, "libzstd", name))
    return tree, version
