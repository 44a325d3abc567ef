"""The tutorial's own commands from a clean clone: `docker build -t NAME .`, then `docker run`,
with nothing built beforehand (the Dockerfile's builder stage does it all), with Docker and with
Podman; `make binary-in-docker`; and the one-line errors of docker/build-image.

No registry is reachable here, so the builds name the base build/make-builder-base makes
(BUILDER_BASE), as the README says to do offline. The clone is of HEAD: uncommitted changes are
not in it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from harness.container import PODMAN_ULIMITS, Containers, docker_to_podman, podman
from harness.digest import sha256
from harness.docker import docker, docker_answers
from harness.elf import header
from harness.emptyroot import empty_root_server
from harness.image import LOCAL_BUILDER_BASE as BASE
from harness.paths import ROOT
from harness.testing import AS_ROOT, IS_ROOT, unavailable

INDEX = b"Index of tinyapi. These aren't the droids you're looking for\n"


def run(cmd: list[str], timeout: float, cwd: Path = ROOT, **env: str) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{out[-6000:]}"
    return out


@pytest.fixture(scope="module")
def clean_clone(tmp_path_factory) -> Path:
    """A clone of HEAD, as a new user gets it, with the offline builder base made."""
    if not docker_answers():
        unavailable("no Docker engine answers `docker info`")
    if not IS_ROOT:
        unavailable("build/make-builder-base (debootstrap) needs root", AS_ROOT)
    run([str(ROOT / "build" / "make-builder-base")], timeout=900)
    clone = tmp_path_factory.mktemp("clone") / "tinyapi"
    run(["git", "clone", "--quiet", "--no-local", str(ROOT), str(clone)], timeout=120)
    assert not (clone / "dist").exists()
    return clone


def check_the_tutorial(engine, tag: str, *flags: str) -> None:
    """`ENGINE run -p ...:8080 TAG`: the tutorial's curls, then /panic ends it with status 1."""
    containers = Containers(tag, engine=engine, prefix="tinyapi-clean", flags=flags)
    try:
        c = containers.run()
        c.wait_ready(timeout=60)
        assert c.get("/").body == INDEX
        assert c.get("/alwaysok").body == b'{ "status": "OK" }'
        assert c.get("/nope").status == 404
        moved = c.get("/alwaysok/")
        assert (moved.status, moved.headers["location"]) == (301, "/alwaysok")
        with pytest.raises(OSError):  # no answer: the process tree is gone
            c.get("/panic")
        assert c.wait_exit(timeout=30) == 1, c.logs()
        assert "RoutePanic invoked. Exiting" in c.logs()
    finally:
        containers.close(show_logs=True)


# The engine, the image's name in its store, and the flags a run needs on this machine (runc
# here cannot raise rlimits: Podman gets them set explicitly).
ENGINES = {
    "docker": (docker, "tinyapi-clean-test", ()),
    "podman": (podman, "localhost/tinyapi-clean-test", PODMAN_ULIMITS),
}


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("name", ENGINES)
def test_build_in_a_clean_clone_serves_the_tutorial(clean_clone, name):
    engine, repository, flags = ENGINES[name]
    if not shutil.which(name):
        unavailable(f"no {name} (apt-get install {name})")
    if name == "podman":  # Podman's store is its own: the base goes there as it is
        docker_to_podman(BASE)
    tag = f"{repository}:{uuid.uuid4().hex[:8]}"
    try:
        run([name, "build", "--build-arg", f"BUILDER_BASE={BASE}", "-t", tag, "."],
            timeout=1800, cwd=clean_clone)  # fmt: skip
        check_the_tutorial(engine, tag, *flags)
    finally:
        engine("rmi", "-f", tag, check=False)
        if name == "podman":
            podman("image", "prune", "-f", check=False)  # its build's stages


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
def test_binary_in_docker_copies_out_the_static_binary_and_its_sbom(clean_clone):
    out = run(["make", "--no-print-directory", "binary-in-docker"], timeout=1800, cwd=clean_clone)
    binary = clean_clone / "dist" / "tinyapi-amd64"
    assert f"copied out dist/tinyapi-amd64 ({binary.stat().st_size} bytes)" in out
    assert binary.stat().st_mode & 0o777 == 0o755
    assert header(binary.read_bytes()) == ("x86-64", True)
    sbom = json.loads(binary.with_name("tinyapi-amd64.cdx.json").read_text())
    subject = sbom["metadata"]["component"]
    assert subject["hashes"] == [{"alg": "SHA-256", "content": sha256(binary)}]
    # Built elsewhere, it runs as an image would: alone in an empty root, as nobody.
    with empty_root_server(binary) as server:
        assert server.get("/alwaysok").status == 200


# --- errors a user can act on, in one line ---------------------------------------------------


def build_image(*args: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, **env}
    if path is not None:
        environ["PATH"] = path
    return subprocess.run(
        [shutil.which("bash"), str(ROOT / "docker" / "build-image"), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_build_image_without_an_engine_says_so(tmp_path):
    # Only what the script needs before it looks for the engine: no docker on PATH.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    proc = build_image(path=str(bin_dir))
    assert proc.returncode == 1 and not proc.stdout
    assert proc.stderr.startswith("build-image: no `docker` command here: install Docker")
    assert len(proc.stderr.splitlines()) == 1


def test_build_image_names_the_platforms_it_knows():
    proc = build_image("--platform", "linux/riscv64")
    assert proc.returncode == 1
    assert proc.stderr == (
        "build-image: unknown platform 'linux/riscv64' (linux/amd64 or linux/arm64)\n"
    )


def test_another_platform_without_buildkit_or_podman_says_what_it_needs(tmp_path):
    """The interpreter is cross-compiled in a stage of the build machine's platform, which
    Docker's classic builder cannot copy from: without BuildKit or Podman, one line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "uname", "id", "grep", "sed"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    docker = bin_dir / "docker"  # answers, on x86_64, with the classic builder only
    docker.write_text("#!/bin/sh\ncase $1 in info) echo x86_64 ;; *) exit 1 ;; esac\n")
    docker.chmod(0o755)
    (tmp_path / "qemu-aarch64").write_text("enabled\n")
    proc = build_image("--platform", "linux/arm64", path=str(bin_dir), BINFMT_MISC=str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr == (
        "build-image: building linux/arm64 here needs BuildKit (docker buildx) or Podman: "
        "Docker's classic builder cannot copy between stages of two platforms\n"
    )


@pytest.mark.docker
def test_build_for_an_architecture_without_emulation_names_the_two_commands(tmp_path):
    if not docker_answers():
        unavailable("no Docker engine answers `docker info`")
    if os.uname().machine != "x86_64":
        pytest.skip("emulation of arm64 is what an x86_64 machine lacks")  # not CI's machine
    proc = build_image("--platform", "linux/arm64", BINFMT_MISC=str(tmp_path))  # no qemu entry
    assert proc.returncode == 1
    assert proc.stderr == (
        "build-image: this machine cannot run linux/arm64 programs: apt-get install "
        "qemu-user-static binfmt-support, then update-binfmts --enable qemu-aarch64\n"
    )


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
def test_a_builder_base_without_python_3_11_fails_in_one_line(clean_clone, tmp_path):
    # A base with a shell and nothing else: busybox, alone.
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    tag = f"tinyapi-test-nopython:{uuid.uuid4().hex[:8]}"
    with subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
        subprocess.run(
            ["docker", "import", "-", tag], stdin=tar.stdout, check=True, capture_output=True
        )
    assert tar.returncode == 0
    try:
        proc = subprocess.run(
            [
                "docker",
                "build",
                "--force-rm",
                "--build-arg",
                f"BUILDER_BASE={tag}",
                "-t",
                tag + "-x",
                ".",
            ],
            cwd=clean_clone,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode != 0
        # The line, whatever colour the engine gives its stderr.
        said = re.findall(r"^(?:\x1b\[\d+m)?(interpreter: .*)$", proc.stdout + proc.stderr, re.M)
        assert said == [
            "interpreter: INTERPRETER_BASE (default BUILDER_BASE) needs Python 3.11 as python3, "
            "and has none: use a Debian bookworm with it (python:3.11-slim-bookworm, "
            "build/make-builder-base)"
        ]
        # ... and leaves no container of the failed step behind.
        assert not docker("ps", "-aq", "--filter", f"ancestor={tag}").stdout.strip()
    finally:
        docker("rmi", "-f", tag, tag + "-x", check=False)
