"""`make tour`, run as a presenter runs it, on the real engine: every step's claim, its exit
status, and that it leaves nothing behind, also when something is wrong before or during it."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness.docker import docker
from harness.http import free_port, poll, port_free
from harness.image import NONROOT
from harness.paths import IMAGE_NAME, ROOT
from harness.testing import IS_ROOT, unavailable

pytestmark = [pytest.mark.docker, pytest.mark.root]

PYTHON = ROOT / ".venv" / "bin" / "python"
TOUR = ROOT / "docker" / "tour.py"

# Step -> the line saying what its output proves.
CLAIMS = {
    1: r"=> /bin/tinyapi loads no library from anywhere: one static executable",
    2: r"=> \d+\.\d\d MB pulled, \d+\.\d\dx the Go original's; unpacked \d+\.\d\d MB, "
    r"\d+\.\d\dx its; smaller than \d+ of the article's 13 base images",
    3: r"=> up and answering \d+\.\d\d s after `docker run`: no system boots, a process starts",
    4: r"=> the same \d+ PIDs, the same command lines: ordinary processes of this kernel; "
    r"the container's PID 1 is host PID \d+",
    5: r"=> the image's \d+ files \(in \d+ directories\) and the engine's \d+ additions: nothing else",
    6: rf"=> all \d+ processes run as uid {NONROOT} with no capability; there is no shell to exec into \(exit 12[67]\)",
    7: r"=> it answers as the article's service does \(/ 200, /alwaysok 200, /chaosmonkey (200|exit 1), "
    r"/healthcheck (200|503)\)",
    8: r"=> a signal to host PID \d+ stopped the container, exit 0",
    9: r"=> the process exited 1, the engine saw it and started it again \(RestartCount 1\), and it answers",
    10: r"=> nothing left: removed tour-{name}, tour-{name}-restart; port {port} free",
}


@pytest.fixture
def engine(image):
    """The tour needs root for steps 5 and 8 (another uid's /proc/<pid>/root, kill)."""
    if not IS_ROOT:
        unavailable("the tour's every step needs root (run: sudo make test)")
    return image


def tour_containers(name: str = IMAGE_NAME) -> list[str]:
    listed = docker("ps", "-a", "--filter", f"name=^tour-{name}", "--format", "{{.Names}}").stdout
    return listed.split()


def assert_clean(port: int, name: str = IMAGE_NAME, keep: tuple[str, ...] = ()) -> None:
    assert [c for c in tour_containers(name) if c not in keep] == []
    assert port_free(port), f"port {port} still taken after the tour"


def make_tour(port: int, image_name: str = IMAGE_NAME) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "tour", f"IMAGE_NAME={image_name}", f"PORT={port}"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def tour(port: int, image_name: str = IMAGE_NAME) -> subprocess.CompletedProcess:
    """The program itself, for its own exit status (make turns every failure into 2)."""
    return subprocess.run(
        [str(PYTHON), "-P", str(TOUR), "--image", image_name, "--port", str(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_tour_walks_every_step_and_leaves_nothing(engine):
    port = free_port()
    done = make_tour(port)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    for step, claim in CLAIMS.items():
        assert f"[{step}/10]" in out
        assert re.search(claim.format(name=re.escape(IMAGE_NAME), port=port), out), (
            f"step {step}'s claim:\n{out}"
        )
    assert (
        "skipped:" not in out and "\033[" not in out
    )  # root sees everything; no colour off a terminal
    # The commands a presenter types, shown before their output.
    for command in (
        "$ ldd ",
        f"$ docker top tour-{IMAGE_NAME}\n",
        "$ ps -o pid,ppid,user,args -p ",
        "$ ls -la /proc/",
        "$ docker exec ",
        "$ curl ",
        "$ kill -TERM ",
        "--restart on-failure",
    ):
        assert command in out
    assert re.search(r"^   /etc/hosts +engine-added$", out, re.M)
    assert re.search(r"^   /sbom\.cdx\.json +image$", out, re.M)
    assert out.rstrip().splitlines()[-1].startswith("tour: every step saw what it claims")
    assert_clean(port)


def test_a_leftover_tour_container_is_refused_in_one_line_and_left_alone(engine):
    port = free_port()
    planted = f"tour-{IMAGE_NAME}"
    docker("run", "-d", "--name", planted, engine)
    try:
        done = make_tour(port)
        out = done.stdout + done.stderr
        assert done.returncode != 0, out
        assert (
            f"tour: preflight: container {planted} left from an earlier tour "
            f"(remove it: docker rm -f {planted})"
        ) in out
        assert "[1/10]" not in out  # refused before the audience sees anything
        # Not the tour's to remove (it may be another presenter's): still running, nothing else left.
        assert docker("inspect", "-f", "{{.State.Running}}", planted).stdout.strip() == "true"
        assert_clean(port, keep=(planted,))
    finally:
        docker("rm", "-f", planted)


def test_a_taken_port_is_refused_in_one_line(engine):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = tour(port)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert (
        f"tour: preflight: port {port} is taken on this machine (pick another: make tour PORT=<n>)"
        in out
    )
    assert tour_containers() == []


def test_a_step_that_sees_something_else_stops_the_tour_and_it_still_cleans_up(engine):
    # The same image run as root: the files the server unpacks into /tmp are uid 0's, and its
    # processes' uid is 0: the tour must say what it expected, stop, and remove its containers.
    broken = f"{IMAGE_NAME}-tourroot"
    build = subprocess.run(
        ["docker", "build", "-q", "-t", broken, "-"],
        input=f"FROM {engine}\nUSER 0:0\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr
    port = free_port()
    try:
        done = tour(port, image_name=broken)
    finally:
        docker("rmi", f"{broken}:latest", check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    failures = re.findall(r"^tour: step (\d+): expected .+, saw .+$", out, re.M)
    assert failures in (["5"], ["6"]), out
    assert "[9/10]" not in out  # stopped where it saw something else
    assert re.search(
        rf"^=> nothing left: removed tour-{re.escape(broken)}\b.*; port {port} free$", out, re.M
    ), out
    assert_clean(port, name=broken)


def test_as_a_non_root_user_the_steps_it_cannot_see_are_skipped_not_failed(engine):
    # A member of the docker group, as many presenters are: it cannot read another uid's
    # /proc/<pid>/root or signal its processes; everything else runs. The venv and the
    # checkout may be under root's home (0700): Debian's python3 (3.11) runs a copy of the
    # tour and of what it imports, in a directory that user can read.
    python = shutil.which("python3", path="/usr/bin")
    group = subprocess.run(
        ["getent", "group", "docker"], capture_output=True, text=True
    ).stdout.split(":")
    if not python or len(group) < 3 or not shutil.which("setpriv"):
        unavailable(
            "a docker group, /usr/bin/python3 and setpriv (apt-get install docker.io python3 util-linux)"
        )
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="tour-nonroot-") as tmp:  # pytest's tmp_path is 0700
        copy = Path(tmp)
        shutil.copytree(
            ROOT / "harness", copy / "harness", ignore=shutil.ignore_patterns("__pycache__")
        )
        (copy / "bench").mkdir()
        for module in ("__init__.py", "article.py"):
            shutil.copy(ROOT / "bench" / module, copy / "bench" / module)
        (copy / "docker").mkdir()
        shutil.copy(TOUR, copy / "docker" / "tour.py")
        (copy / "home").mkdir()
        os.chown(copy / "home", 65534, 65534)
        os.chmod(copy, 0o755)
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                f"--groups={group[2]}",
                "env",
                f"HOME={copy / 'home'}",
                f"PYTHONPATH={copy}",
                python,
                "-P",
                str(copy / "docker" / "tour.py"),
                "--image",
                IMAGE_NAME,
                "--port",
                str(port),
            ],
            cwd=copy,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    skipped = re.findall(r"^\[(\d+)/10\].*\nskipped: a non-root user cannot", out, re.M)
    assert skipped == ["5", "8"], out
    for step in (1, 2, 3, 4, 6, 7, 9):
        assert re.search(CLAIMS[step], out), f"step {step}'s claim:\n{out}"
    assert_clean(port)


def test_on_a_terminal_enter_paces_it_and_ctrl_c_still_cleans_up(engine):
    port = free_port()
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [str(PYTHON), "-P", str(TOUR), "--image", IMAGE_NAME, "--port", str(port)],
        cwd=ROOT,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""

    def read_until(marker: bytes, timeout: float = 60) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen:
            ready, _, _ = select.select([controller], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no {marker!r} within {timeout} s:\n{seen.decode(errors='replace')}"
            try:
                seen += os.read(controller, 65536)
            except OSError:  # EIO: the tour has exited and closed the terminal
                raise AssertionError(
                    f"the tour ended before {marker!r}:\n{seen.decode(errors='replace')}"
                ) from None

    try:
        for step in (1, 2, 3):
            read_until(b"[Enter: next step]")
            # It waits for the presenter: half a second of silence, and no next step.
            assert select.select([controller], [], [], 0.5)[0] == []
            assert f"[{step + 1}/10]".encode() not in seen
            if step < 3:
                os.write(controller, b"\n")
                seen = seen.replace(b"[Enter: next step]", b"", 1)
        assert b"\033[" in seen  # colour on a terminal
        assert (
            docker("inspect", "-f", "{{.State.Running}}", f"tour-{IMAGE_NAME}").stdout.strip()
            == "true"
        )
        proc.send_signal(signal.SIGINT)  # Ctrl-C at the prompt, with the container running
        read_until(b"tour: stopped")
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    assert b"tour: interrupted" in seen
    assert_clean(port)


def test_a_sigterm_mid_step_still_cleans_up(engine):
    # Not at a prompt: while a step runs, with its container up (a closed terminal sends HUP,
    # a CI timeout TERM; both end the tour through the same cleanup).
    port = free_port()
    proc = subprocess.Popen(
        [str(PYTHON), "-P", str(TOUR), "--image", IMAGE_NAME, "--port", str(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        poll(
            lambda: f"tour-{IMAGE_NAME}" in tour_containers(),
            timeout=60,
            what="the tour's container",
        )
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "tour: interrupted" in out and "[10/10] cleanup" in out
    assert_clean(port)
