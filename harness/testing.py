"""What the tests share that is not a fixture (fixtures live in tests/conftest.py)."""

from __future__ import annotations

import importlib
import inspect
import os
import re

import pytest

IN_CI = os.environ.get("CI") == "true"
IS_ROOT = os.geteuid() == 0


# The commands that provide what a skipped test lacks, named in its skip reason.
SETUP = "make setup" if IS_ROOT else "sudo make setup"  # Debian packages, the Docker engine
AS_ROOT = "sudo make test"


def unavailable(reason: str, command: str = SETUP) -> None:
    """Skip for lack of something (root, Docker, a package) on a developer's machine, naming the
    command that would let the test run; under CI=true the same lack is a failure: CI runs
    docker/setup-machine (through .ci/run) as root, which provides everything the tests need."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(f"{reason} (to run it: {command})")


def resolve(dotted: str):
    """gunicorn.workers.gthread.ThreadWorker.handle -> that object, or a failure naming what is
    gone: the contract tests name upstream internals, and a rename must fail by its name."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            if not hasattr(obj, name):
                pytest.fail(f"there is no {dotted} any more ({name} is gone)", pytrace=False)
            obj = getattr(obj, name)
        return obj
    pytest.fail(f"no module for {dotted}", pytrace=False)


def assert_calls(dotted: str, calls: tuple[str, ...]) -> None:
    """The source of dotted still does each of calls: an override or a wrapper of something
    upstream stops calling does nothing at all."""
    source = inspect.getsource(resolve(dotted))
    for call in calls:
        assert call in source, f"{dotted} no longer does `{call}`"


def needs_root() -> None:
    if not IS_ROOT:
        unavailable("this test needs root (unshare, chroot, debootstrap)", AS_ROOT)


def signals_in(status: str, field: str) -> set[int]:
    """The signals of one mask line of /proc/<pid>/status (SigCgt, SigIgn, SigBlk, ...): its
    bit n - 1 is signal n."""
    mask = int(re.search(rf"^{field}:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return {n for n in range(1, mask.bit_length() + 1) if mask >> (n - 1) & 1}


# A command in its own mount namespace, where it may mount tmpfs: root's, or a user namespace's.
PRIVATE_MOUNTS = ["unshare", "--mount"] + ([] if IS_ROOT else ["--map-root-user"])


def unusable_tmp_line(tmp: str, why: str) -> str:
    """The bootloader's one line (patch 0006) for a TMPDIR it cannot unpack into and run from."""
    return (
        f"tinyapi: {tmp} is {why}, and this program runs from a copy unpacked there: mount a"
        f" tmpfs there that allows exec (docker run --tmpfs {tmp}:exec), or set TMPDIR to a"
        " writable directory that allows exec\n"
    )
