"""The two lock files (`make lock`): requirements.lock, the venv's (everything), and
build/requirements.lock, the Dockerfile's builder stage's (the service and its build). Both are
for every platform, and the builder's must install on aarch64 with --require-hashes, where
staticx alone comes as an sdist (the bootloader's pinned source, built by build/install-lock).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from harness.paths import ROOT
from harness.pins import pinned_sources

VENV_LOCK = ROOT / "requirements.lock"
BUILDER_LOCK = ROOT / "build" / "requirements.lock"
REQUIREMENT = re.compile(r"^([a-z0-9][a-z0-9._-]*)==(\S+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
# pip's --platform takes exact tags: an aarch64 machine with glibc 2.36 (bookworm) accepts these.
AARCH64 = [f"manylinux_2_{minor}_aarch64" for minor in range(17, 37)] + ["manylinux2014_aarch64"]


def read_lock(path) -> dict[str, tuple[str, frozenset[str]]]:
    """{name: (version, {sha256, ...})} of a uv-generated lock file."""
    pins, name = {}, None
    for line in path.read_text().splitlines():
        if match := REQUIREMENT.match(line):
            name = match[1]
            pins[name] = (match[2], frozenset())
        elif name and (digest := HASH.search(line)):
            version, digests = pins[name]
            pins[name] = (version, digests | {digest[1]})
    return pins


def test_the_builders_lock_pins_what_the_venvs_does():
    venv, builder = read_lock(VENV_LOCK), read_lock(BUILDER_LOCK)
    assert {"flask", "gunicorn", "pyinstaller", "staticx", "scons", "wheel"} <= set(builder)
    assert {name: venv.get(name) for name in builder} == builder


def test_stacticx_is_the_sdist_the_bootloader_is_built_from():
    version, digest = pinned_sources(ROOT / "build" / "bootloader-sources.txt")["staticx"]
    assert read_lock(BUILDER_LOCK)["staticx"][0] == version
    assert digest in read_lock(BUILDER_LOCK)["staticx"][1]


@pytest.mark.slow
def test_the_builders_lock_installs_on_aarch64(tmp_path):
    """Every distribution but staticx has an aarch64 (or pure) wheel among the lock's hashes:
    pip resolves the lock for that platform without installing anything (it asks PyPI)."""
    lock = tmp_path / "wheels.lock"
    blocks = re.split(r"\n(?=[a-z0-9])", BUILDER_LOCK.read_text())
    lock.write_text("\n".join(b for b in blocks if not b.startswith("staticx==")) + "\n")
    report = tmp_path / "report.json"
    platforms = [flag for tag in AARCH64 for flag in ("--platform", tag)]
    proc = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--disable-pip-version-check", "--only-binary=:all:", *platforms,
            "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
            "--no-deps", "--require-hashes", "-r", str(lock), "--target", str(tmp_path / "t"),
            "--report", str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = [
        i["download_info"]["url"].rsplit("/", 1)[1]
        for i in json.loads(report.read_text())["install"]
    ]
    assert all(w.endswith(("-any.whl", "aarch64.whl")) for w in wheels), wheels
    # Those of another system (pywin32-ctypes, macholib ...) are left out by their markers.
    wanted = {n for n in read_lock(BUILDER_LOCK) if n != "staticx"}
    assert len(wheels) == len(wanted) - 3, sorted(wheels)
