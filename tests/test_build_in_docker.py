"""The static binary built inside a container: `make binary-in-docker` (build/build-in-docker
with build/builder.Dockerfile), the way to build where only Docker is installed.

The builder's default base, python:3.11-slim-bookworm, would have to be pulled; these tests
make their own instead: build/make-builder-base debootstraps a minimal Debian bookworm (Python
3.11, its venv and libpython, binutils, make) and `docker import`s it as
tinyapi-builder-base:bookworm, once per machine (about a minute; kept for the next runs). The
binary goes to a temporary directory, never to dist/tinyapi, which the other tests use.

Needs a Docker engine and root (debootstrap; the empty-root run): without them the tests skip,
except under CI=true, where they fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import tinyapi
from harness.docker import docker_answers
from harness.emptyroot import empty_root_server
from harness.paths import ROOT
from harness.testing import AS_ROOT, IS_ROOT, unavailable

BASE = "tinyapi-builder-base:bookworm"
BUILDER_TAG = "tinyapi-builder:test"


def run(cmd: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-6000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """(the binary built in the container, the script's output)."""
    if not docker_answers():
        unavailable("no Docker engine answers `docker info`")
    if not IS_ROOT:
        unavailable("debootstrap and the empty-root run need root", AS_ROOT)
    run([str(ROOT / "build" / "make-builder-base"), BASE], timeout=900)
    out = tmp_path_factory.mktemp("in-docker") / "tinyapi"
    proc = run(
        [str(ROOT / "build" / "build-in-docker"), str(out)],
        timeout=1500,
        BUILDER_BASE=BASE,
        BUILDER_TAG=BUILDER_TAG,
    )
    return out, proc.stdout + proc.stderr


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
def test_copies_out_the_binary(built):
    binary, output = built
    assert binary.stat().st_mode & 0o777 == 0o755
    assert f"sha256 {sha256(binary)}" in output  # the script's progress line names it
    assert "dist/tinyapi.inputs" not in output  # another OUTPUT: no stamp for dist/tinyapi


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
def test_is_static(built):
    binary, _ = built
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
def test_serves_alwaysok_in_empty_root(built):
    # As the recipe's verify stage (which no `docker build` step may run) and tests/test_binary.py:
    # a root holding only the binary, /tmp 1777 and /proc; new mount and pid namespaces;
    # uid 65534; a free loopback port.
    binary, _ = built
    with empty_root_server(binary) as server:
        answer = server.get("/alwaysok")
        assert (answer.status, answer.text) == (200, '{ "status": "OK" }')
        assert f"Initializing tinyapi v{tinyapi.__version__}" in server.log


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
def test_sbom_describes_the_container_build(built):
    # Made in the container, from its build/work and its package database: the libpython
    # inside is the base image's Debian package, whatever this machine has installed.
    binary, _ = built
    sbom = json.loads(binary.with_name("tinyapi.cdx.json").read_text())
    assert sbom["metadata"]["component"]["hashes"] == [
        {"alg": "SHA-256", "content": sha256(binary)}
    ]
    base_version = subprocess.run(
        ["docker", "run", "--rm", BASE, "dpkg-query", "-W", "-f=${Version}", "libpython3.11"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    names = {(c["name"], c["version"]) for c in sbom["components"]}
    assert ("libpython3.11", base_version) in names, sorted(names)


def test_says_so_without_docker(tmp_path):
    # Only what the script needs before it looks for docker: no docker on PATH.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    proc = subprocess.run(
        [shutil.which("bash"), str(ROOT / "build" / "build-in-docker"), str(tmp_path / "x")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "no `docker` command" in proc.stderr and "Docker Desktop" in proc.stderr
    assert not (tmp_path / "x").exists()
