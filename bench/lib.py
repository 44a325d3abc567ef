"""The benchmarks' library, which bench/soak.py, docker/inspect-image and bench/zstd-prototype
use too: running commands, timing (median, min, max; interleaved runs), a tinyapi on the host
or in a container timed to its first 200, and the preflight checks."""
from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from harness import paths
from harness.docker import START_ENGINE, container_running
from harness.http import free_port
from harness.serve import NotServing, Process, server_env, wait_for_200

REPO = str(paths.ROOT)
RESULTS = os.path.join(REPO, "bench", "results")
BINARY = str(paths.BINARY)
IMAGE = paths.IMAGE  # the default: make image IMAGE_NAME=... / TINYAPI_IMAGE_NAME=...
BASELINE_IMAGE = "tinyapi-bench/busybox-httpd:latest"
LABEL = "tinyapi-bench=1"  # every container the bench starts carries it (cleanup)


class BenchError(Exception):
    pass


def say(msg: str) -> None:
    print(f"==> bench: {msg}", flush=True)


def stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def interleaved(runs: int, commands: dict) -> dict:
    """Run each callable of commands once per round, in turn (A B A B ...); their results
    by name, in run order."""
    out = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            out[name].append(command())
    return out


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    done = subprocess.run(cmd, **kwargs)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {done.returncode}:\n"
                         f"{(done.stdout or '')[-2000:]}{(done.stderr or '')[-2000:]}")
    return done


def wait_200(port: int, path: str, started: float, alive=lambda: True, timeout=60.0) -> float:
    """Seconds from `started` (time.monotonic()) to the first 200, polling every 5 ms."""
    try:
        return wait_for_200(port, path, alive=alive, timeout=timeout, since=started)
    except NotServing as err:
        raise BenchError(str(err)) from None


# --- tinyapi on the host -------------------------------------------------------------------

@contextlib.contextmanager
def host_server(cmd: list[str], cwd: str, port: int | None = None, env: dict | None = None):
    """Start cmd (a tinyapi) in its own session, env on top of its environment; yield
    (process, port, start time)."""
    port = port or free_port()
    started = time.monotonic()
    server = Process(cmd, server_env(port, **(env or {})), port, None, cwd=cwd)
    try:
        yield server.proc, port, started
    finally:
        server.stop(grace=15)


def host_commands() -> dict:
    return {"frozen": [BINARY], "source": [os.path.join(REPO, ".venv", "bin", "python"), "-m", "tinyapi"]}


def time_to_200(cmd: list[str], cwd: str):
    """A callable for interleaved(): start cmd on the host, the seconds to its first 200."""
    def measure():
        with host_server(cmd, cwd) as (proc, port, started):
            return wait_200(port, "/alwaysok", started, alive=lambda: proc.poll() is None)
    return measure


# --- tinyapi in a container ----------------------------------------------------------------

def build_baseline_image() -> None:
    """busybox httpd FROM scratch: Debian's busybox-static and one page to answer 200 with."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise BenchError("no busybox (apt-get install -y busybox-static)")
    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-") as ctx:
        os.makedirs(os.path.join(ctx, "root", "bin"))
        os.makedirs(os.path.join(ctx, "root", "www"))
        shutil.copy(busybox, os.path.join(ctx, "root", "bin", "busybox"))
        with open(os.path.join(ctx, "root", "www", "index.html"), "w") as f:
            f.write("ok\n")
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY root/ /\nEXPOSE 8080\n"
                    'ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n')
        run(["docker", "build", "-q", "-t", BASELINE_IMAGE, ctx])


def docker_rm(cid: str) -> None:
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


@contextlib.contextmanager
def container(*run_args: str, path: str = "/alwaysok"):
    """`docker run -d --no-healthcheck` of run_args (options, the image, its command), 8080
    published on a free port of 127.0.0.1; yield (container id, port, seconds from `docker run`
    to the first 200 on path). The container is removed at the end."""
    port = free_port()
    started = time.monotonic()
    # No health check: a probe is a whole new start of the binary (its processes, its copy in
    # /tmp) and would land in memory and CPU readings; bench/probe.py measures it on its own.
    cid = run(["docker", "run", "-d", "--label", LABEL, "--no-healthcheck",
               "-p", f"127.0.0.1:{port}:8080", *run_args]).stdout.strip()
    try:
        took = wait_200(port, path, started, alive=lambda: container_running(cid))
        yield cid, port, took
    finally:
        docker_rm(cid)


# --- preflight -------------------------------------------------------------------------------

def preflight(sections: set[str]) -> None:
    if os.geteuid() != 0:
        raise BenchError("run as root: smaps_rollup of the container's processes, the build's verify stage")
    if shutil.which("wrk") is None and sections & {"memory", "throughput"}:
        raise BenchError("no wrk (apt-get install -y wrk)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        say(f"no Docker engine answers: starting one ({START_ENGINE.relative_to(paths.ROOT)})")
        run([str(START_ENGINE)])
