"""The benchmarks' library, which bench/soak.py and docker/inspect-image.py use too: running commands, timing (median, min, max; interleaved runs), a tinyapi on the host
or in a container timed to its first 200, and the preflight checks."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

from harness import paths
from harness.docker import START_ENGINE, container_running
from harness.http import free_port
from harness.image import NONROOT
from harness.serve import NotServing, Process, server_env, wait_for_200

REPO = str(paths.ROOT)
RESULTS = os.path.join(REPO, "bench", "results")
BINARY = str(paths.BINARY)
IMAGE = paths.IMAGE  # the default: make image IMAGE_NAME=... / TINYAPI_IMAGE_NAME=...
BASELINE_IMAGE = "tinyapi-bench/busybox-httpd:latest"
SOURCE_IMAGE = "tinyapi-bench/source:latest"  # the same server from source, in a container
BUILDER_BASE = "tinyapi-builder-base:bookworm"  # build/make-builder-base
DEBIAN_PYTHON = "/usr/bin/python3"  # the builder base's Python is Debian's too
LABEL = "tinyapi-bench=1"  # every container the bench starts carries it (cleanup)


class BenchError(Exception):
    pass


def say(msg: str) -> None:
    print(f"==> bench: {msg}", flush=True)


def stats(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


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
        raise BenchError(
            f"{' '.join(cmd)} exited {done.returncode}:\n"
            f"{(done.stdout or '')[-2000:]}{(done.stderr or '')[-2000:]}"
        )
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
    """Start cmd (a tinyapi) in its own session; yield (process, port, start time)."""
    port = port or free_port()
    started = time.monotonic()
    server = Process(cmd, {**server_env(port), **(env or {})}, port, None, cwd=cwd)
    try:
        yield server.proc, port, started
    finally:
        server.stop(grace=15)


def host_commands() -> dict:
    return {
        "frozen": [BINARY],
        "source": [os.path.join(REPO, ".venv", "bin", "python"), "-m", "tinyapi"],
    }


def time_to_200(cmd: list[str], cwd: str, env=None):
    """A callable for interleaved(): start cmd on the host, the seconds to its first 200.
    env: more environment, or a callable giving it anew at each run."""

    def measure():
        with host_server(cmd, cwd, env=env() if callable(env) else env) as (proc, port, started):
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
            f.write(
                "FROM scratch\nCOPY root/ /\nEXPOSE 8080\n"
                'ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n'
            )
        run(["docker", "build", "-q", "-t", BASELINE_IMAGE, ctx])


def runtime_requirements() -> str:
    """The lines of requirements.lock for what the service itself needs (tinyapi's requirements
    without extras, and theirs), hashes included."""
    import importlib.metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wanted, todo = set(), ["tinyapi"]
    while todo:
        for text in importlib.metadata.requires(todo.pop()) or ():
            req = Requirement(text)
            name = canonicalize_name(req.name)
            if (req.marker is None or req.marker.evaluate({"extra": ""})) and name not in wanted:
                wanted.add(name)
                todo.append(name)
    with open(os.path.join(REPO, "requirements.lock")) as f:
        blocks = re.split(r"\n(?=[A-Za-z0-9])", f.read())
    return "".join(
        block.rstrip() + "\n"
        for block in blocks
        if canonicalize_name(block.split("==", 1)[0]) in wanted
    )


def build_source_image() -> None:
    """The same server from source in a container: what a user would run instead of tinyapi.
    Debian's Python (the builder base, build/make-builder-base) and a venv of the service's
    locked requirements, made here with the same Debian Python (the image has no index to
    reach), at the same path; the sources, config.yml, user and port as in tinyapi's image.
    Nothing is unpacked at start. The venv is kept in dist/bench/ and made again only when the
    lock changes."""
    if subprocess.run(["docker", "image", "inspect", BUILDER_BASE], capture_output=True).returncode:
        raise BenchError(f"no {BUILDER_BASE}: build/make-builder-base makes it")
    if not os.path.exists(DEBIAN_PYTHON):
        raise BenchError(f"no {DEBIAN_PYTHON} (apt-get install -y python3-venv)")
    ctx = os.path.join(REPO, "dist", "bench", "source-image")
    venv = os.path.join(ctx, "venv")
    requirements = runtime_requirements()
    stamp = os.path.join(ctx, "venv.requirements")
    if not (os.path.exists(stamp) and open(stamp).read() == requirements):
        say(f"  a venv for the source baseline ({DEBIAN_PYTHON}, the lock's runtime requirements)")
        shutil.rmtree(ctx, ignore_errors=True)
        os.makedirs(ctx)
        with open(os.path.join(ctx, "requirements.txt"), "w") as f:
            f.write(requirements)
        run([DEBIAN_PYTHON, "-m", "venv", venv])
        run(
            [
                os.path.join(venv, "bin", "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "--no-deps",
                "-r",
                os.path.join(ctx, "requirements.txt"),
            ]
        )
        with open(stamp, "w") as f:
            f.write(requirements)
    shutil.rmtree(os.path.join(ctx, "src"), ignore_errors=True)
    shutil.copytree(
        os.path.join(REPO, "tinyapi"),
        os.path.join(ctx, "src", "tinyapi"),
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(os.path.join(REPO, "config.yml"), os.path.join(ctx, "config.yml"))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(
            f"FROM {BUILDER_BASE}\n"
            f"COPY venv {venv}\n"
            "COPY src /opt/tinyapi\n"
            "COPY config.yml /etc/tinyapi/config.yml\n"
            # Bytecode compiled in the image, as pip does in a venv: nothing to do at start.
            f"RUN {venv}/bin/python -m compileall -q /opt/tinyapi\n"
            "ENV PYTHONPATH=/opt/tinyapi TINYAPI_CFG_PATH=/etc/tinyapi\n"
            f"WORKDIR /tmp\nUSER {NONROOT}:{NONROOT}\nEXPOSE 8080\n"
            f'ENTRYPOINT ["{venv}/bin/python", "-m", "tinyapi"]\n'
        )
    run(["docker", "build", "-q", "-t", SOURCE_IMAGE, ctx])


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
    cid = run(
        [
            "docker",
            "run",
            "-d",
            "--label",
            LABEL,
            "--no-healthcheck",
            "-p",
            f"127.0.0.1:{port}:8080",
            *run_args,
        ]
    ).stdout.strip()
    try:
        took = wait_200(port, path, started, alive=lambda: container_running(cid))
        yield cid, port, took
    finally:
        docker_rm(cid)


# --- preflight -------------------------------------------------------------------------------


def preflight(sections: set[str]) -> None:
    if os.geteuid() != 0:
        raise BenchError(
            "run as root: smaps_rollup of the container's processes, the build's verify stage"
        )
    if shutil.which("wrk") is None and sections & {"memory", "throughput"}:
        raise BenchError("no wrk (apt-get install -y wrk)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        say(f"no Docker engine answers: starting one ({START_ENGINE.relative_to(paths.ROOT)})")
        run([str(START_ENGINE)])
