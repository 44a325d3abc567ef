"""The up-to-date check: what a build of dist/tinyapi reads, the stamp dist/tinyapi.inputs
that says which inputs made the binary there, and the lock that keeps two builds apart."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys

from harness.digest import sha256
from harness.epoch import source_date_epoch
from recipe.env import kit_interpreter
from recipe.paths import BINARY, BOOTLOADER_SOURCES, DIST, LOCK, RECIPE, REPO, SPEC, STAMP
from recipe.sources import patch_series


def input_files() -> list[str]:
    """Every file whose bytes make the binary: the service's sources, the spec, the recipe
    (build/__main__.py and build/recipe/*.py; the SBOM's package is not the binary's), the
    lock, the bootloader's pins and patches."""
    pkg = os.path.join(REPO, "tinyapi")
    sources = sorted(os.path.join(pkg, f) for f in os.listdir(pkg) if f.endswith(".py"))
    recipe = sorted(os.path.join(RECIPE, f) for f in os.listdir(RECIPE) if f.endswith(".py"))
    others = [
        SPEC,
        os.path.join(os.path.dirname(RECIPE), "__main__.py"),
        *recipe,
        BOOTLOADER_SOURCES,
        os.path.join(REPO, "requirements.lock"),
        os.path.join(REPO, "pyproject.toml"),
    ]
    return sources + [p for p in others if os.path.exists(p)] + patch_series()


def inputs_hash() -> str:
    h = hashlib.sha256()
    # The interpreter is an input: its build's key, and which venv runs on it.
    key = kit_interpreter().get("key", "none")
    h.update(f"python={sys.executable} {sys.version} interpreter={key}\n".encode())
    # So is the build's time, stamped into staticx's archive: after a new commit, a binary
    # built at the one before is not what a clean build of this commit gives.
    h.update(f"SOURCE_DATE_EPOCH={source_date_epoch()}\n".encode())
    for path in input_files():
        h.update(f"{os.path.relpath(path, REPO)}\n".encode())
        h.update(bytes.fromhex(sha256(path)))
    return h.hexdigest()


def read_stamp() -> dict:
    try:
        with open(STAMP) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_stamp(inputs: str, verified: bool) -> None:
    """dist/tinyapi.inputs: the inputs that built dist/tinyapi, and whether it was verified."""
    stamp = {
        "inputs": inputs,
        "binary": sha256(BINARY),
        "verified": verified,
        "python": sys.executable,
    }
    with open(STAMP + ".tmp", "w") as f:
        json.dump(stamp, f, indent=1)
    os.replace(STAMP + ".tmp", STAMP)


def forget_stamp() -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(STAMP)


def up_to_date(inputs: str) -> bool:
    """The stamp matches the inputs and dist/tinyapi is the binary it built."""
    stamp = read_stamp()
    return (
        stamp.get("inputs") == inputs
        and os.path.exists(BINARY)
        and stamp.get("binary") == sha256(BINARY)
    )


@contextlib.contextmanager
def exclusive():
    """One build at a time in this tree: a second `make binary` (a test's fixture, `make
    image`) waits here, then finds the binary up to date, instead of both writing
    dist/pyinstaller/ at once and staticx reading a torn archive."""
    os.makedirs(DIST, exist_ok=True)
    with open(LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("==> waiting for another build in this tree to finish", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield
