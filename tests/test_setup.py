"""docker/setup-machine, docker/start-engine and docker/run: what `make run` and `make test` do
first on a machine, told by what they print and how they exit.

The machine cannot be made unready for a test (the engine is shared, the packages stay), so the
cases it cannot provide run the real scripts from a copy of docker/ with a package list of its
own, as a user who is not root, or with a PATH that has no apt-get. The engine start runs with
stand-ins for `docker` and `dockerd`, in a mount namespace of its own with an empty /run, so
the real engine and its pid file are never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.http import free_port
from harness.paths import ROOT
from harness.serve import clean_env, served
from harness.testing import AS_ROOT, IS_ROOT, unavailable

SCRIPTS = ("setup-machine", "start-engine", "run")


def needs_root() -> None:
    if not IS_ROOT:
        unavailable(
            "running the scripts as another user, in a mount namespace, needs root", AS_ROOT
        )


@pytest.fixture
def checkout():
    """checkout(packages) -> a tree with docker/'s scripts and a package list of the test's own,
    where a user who is not root may read it (pytest's tmp_path is root's alone)."""
    made = []

    def make(packages: str) -> Path:
        tree = Path(tempfile.mkdtemp(prefix="tinyapi-setup-test-"))
        made.append(tree)
        tree.chmod(0o755)
        (tree / "docker").mkdir()
        for script in SCRIPTS:
            shutil.copy2(ROOT / "docker" / script, tree / "docker" / script)
        (tree / "docker" / "apt-packages").write_text(packages)
        return tree

    yield make
    for tree in made:
        shutil.rmtree(tree)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kwargs)


def listed_packages() -> list[str]:
    lines = (ROOT / "docker" / "apt-packages").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


@pytest.mark.docker
def test_ready_machine_says_so_in_one_line():
    wanted = listed_packages()
    status = run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *wanted])
    # A package installed for two architectures (multiarch) has a line for each.
    installed = {
        line.split()[0] for line in status.stdout.splitlines() if line.endswith(" installed")
    }
    if not set(wanted) <= installed:
        unavailable("not every package of docker/apt-packages is installed")
    if run(["docker", "info"]).returncode != 0:
        unavailable("no Docker engine answers `docker info`")
    done = run([str(ROOT / "docker" / "setup-machine")])
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"setup: ready: the {len(wanted)} packages of docker/apt-packages are installed,"
        " the Docker engine answers\n"
    )
    assert done.stderr == ""


@pytest.mark.root
def test_missing_package_not_root_names_the_command_and_exits_2(checkout):
    needs_root()
    tree = checkout("busybox-static\ntinyapi-no-such-package  # absent everywhere\n")
    done = run(["runuser", "-u", "nobody", "--", str(tree / "docker" / "setup-machine")])
    assert (done.returncode, done.stdout) == (2, "")
    assert (
        done.stderr
        == "setup: missing Debian packages: tinyapi-no-such-package; run: sudo make setup\n"
    )


@pytest.mark.docker
@pytest.mark.root
def test_engine_this_user_may_not_use_names_the_command_and_exits_2(checkout):
    needs_root()
    if run(["docker", "info"]).returncode != 0:
        unavailable("no Docker engine answers `docker info`")
    if os.stat("/var/run/docker.sock").st_mode & 0o002:
        pytest.skip("this machine's Docker socket is open to every user")
    tree = checkout("busybox-static\n")
    done = run(["runuser", "-u", "nobody", "--", str(tree / "docker" / "setup-machine")])
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "setup: the Docker engine runs but user nobody may not use it; run: "
        "sudo usermod -aG docker nobody, then log in again\n"
    )


def test_no_apt_get_names_what_to_install_and_exits_2(checkout, tmp_path):
    tree = checkout("busybox-static\n")
    bin_dir = tmp_path / "bin"  # what the script needs, and no apt-get, dpkg-query or podman
    bin_dir.mkdir()
    for tool in ("bash", "sed", "id", "dirname", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    done = run(
        [str(bin_dir / "bash"), str(tree / "docker" / "setup-machine"), "podman"],
        env={"PATH": str(bin_dir)},
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "setup: no apt-get on this machine: install podman and the tools of "
        "docker/apt-packages with this system's package manager (docs/setup.md), "
        "then run this again\n"
    )


# --- docker/start-engine ---------------------------------------------------------------------

FAKE_DOCKER = """#!/bin/sh
# `docker info` answers once the fake engine is up.
[ -e "$STATE/up" ]
"""
FAKE_DOCKERD = """#!/bin/sh
# Starts, then comes up when the test says so, and stays until it is killed.
echo $$ >> "$STATE/started"
while [ ! -e "$STATE/go" ]; do sleep 0.05; done
touch "$STATE/up"
exec sleep 600
"""


@pytest.fixture
def fake_engine(tmp_path):
    """(env, state dir): PATH with stand-ins for docker and dockerd; their dockerds killed after."""
    needs_root()
    if shutil.which("unshare") is None:
        unavailable("no unshare (util-linux)")
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("dockerd", FAKE_DOCKERD)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        STATE=str(state),
        DOCKERD_LOG=str(state / "dockerd.log"),
        ENGINE_START_TIMEOUT="60",
    )
    yield env, state
    started = state / "started"
    for pid in started.read_text().split() if started.exists() else []:
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass


def in_private_run(script: str) -> list[str]:
    """bash -c SCRIPT in a mount namespace whose /run (and /var/run) is an empty tmpfs."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "bash",
        "-c",
        f"mount -t tmpfs tmpfs /run && {script}",
    ]


@pytest.mark.root
def test_second_start_waits_for_the_first_instead_of_starting_another(fake_engine, tmp_path):
    env, state = fake_engine
    start = ROOT / "docker" / "start-engine"
    out = {n: tmp_path / f"start{n}.out" for n in (1, 2)}
    # Both starters in one namespace: they share its /run, the lock's place.
    script = (
        f"{start} > {out[1]} 2>&1 & first=$!; "
        f"while [ ! -s {state}/started ]; do sleep 0.05; done; "
        f"{start} > {out[2]} 2>&1 & second=$!; "
        f"while ! grep -q waiting {out[2]}; do sleep 0.05; done; "
        f"touch {state}/go; wait $first; a=$?; wait $second; b=$?; echo $a $b"
    )
    done = run(in_private_run(script), env=env)
    assert done.stdout.split() == ["0", "0"], (
        done.stdout,
        done.stderr,
        out[1].read_text(),
        out[2].read_text(),
    )
    assert len((state / "started").read_text().split()) == 1  # one dockerd, not two
    assert "start-engine: starting dockerd" in out[1].read_text()
    assert (
        out[2].read_text()
        == "start-engine: another start-engine is starting the engine; waiting for it\n"
    )


@pytest.mark.root
def test_stale_pid_files_are_removed_before_starting(fake_engine):
    env, state = fake_engine
    (state / "go").touch()
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that is gone
    script = (
        f"mkdir -p /run/docker/containerd && echo {dead.pid} > /run/docker.pid && "
        f"echo {dead.pid} > /run/docker/containerd/containerd.pid && {ROOT / 'docker' / 'start-engine'}"
    )
    done = run(in_private_run(script), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"removing stale /var/run/docker.pid (pid {dead.pid} is gone)" in done.stdout
    assert (
        f"removing stale /var/run/docker/containerd/containerd.pid (pid {dead.pid} is gone)"
        in done.stdout
    )
    assert "Docker engine up" in done.stdout


# --- make run where setup cannot -------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
def test_run_falls_back_to_the_binary_in_one_line(binary, tmp_path):
    """As a user who may not use the engine: setup's line, run's line, then the bare binary serves."""
    needs_root()
    if run(["docker", "info"]).returncode != 0:
        unavailable("no Docker engine answers `docker info`")
    if os.stat("/var/run/docker.sock").st_mode & 0o002:
        pytest.skip("this machine's Docker socket is open to every user")
    port = free_port()
    command = ["runuser", "-u", "nobody", "--", str(ROOT / "docker" / "run")]
    env = clean_env(PORT=str(port), TINYAPI_SERVER_BIND_ADDRESS="127.0.0.1")
    with served(command, env, port, tmp_path / "run.log") as server:
        assert server.get("/alwaysok").status == 200
        assert server.log.splitlines()[:2] == [
            "setup: the Docker engine runs but user nobody may not use it; run: "
            "sudo usermod -aG docker nobody, then log in again",
            f"run: no container then: serving dist/tinyapi directly on :{port} instead",
        ]


def test_docs_name_exactly_the_packages_of_the_list():
    """docs/setup.md's table of packages is the list docker/setup-machine installs."""
    rows = [
        line.split("|")[1].strip().strip("`")
        for line in (ROOT / "docs" / "setup.md").read_text().splitlines()
        if line.startswith("| `")
    ]
    assert rows == listed_packages()
