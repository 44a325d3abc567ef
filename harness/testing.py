"""What the tests share that is not a fixture (fixtures live in tests/conftest.py)."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI") == "true"
IS_ROOT = os.geteuid() == 0


def unavailable(reason: str) -> None:
    """Skip for lack of something (root, Docker) on a developer's machine; under CI=true the
    same lack is a failure: CI installs and starts everything the tests need."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def needs_root() -> None:
    if not IS_ROOT:
        unavailable("this test needs root (unshare, chroot, debootstrap): run it as root")
