"""The benchmarks' library: running commands, timing (median, min, max; interleaved runs), a
tinyapi on the host or in a container (harness.container) timed to its first 200. The images it
is measured against are bench/baselines.py's, the checks before a run bench/preflight.py's."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time

from harness import paths
from harness.container import Containers
from harness.http import free_port
from harness.serve import NotServing, Process, server_env, wait_for_200

REPO = str(paths.ROOT)
RESULTS = os.path.join(REPO, "bench", "results")
BINARY = str(paths.BINARY)
IMAGE = paths.IMAGE  # the default: make image IMAGE_NAME=... / TINYAPI_IMAGE_NAME=...
LABEL = "tinyapi-bench=1"  # every container the bench starts carries it (cleanup)
INTERPRETER_RECIPE = os.path.join(REPO, "build", "recipe", "interpreter.py")


class BenchError(Exception):
    pass


def interpreter_recipe():
    """build/recipe/interpreter.py as a module (it is on no package path)."""
    spec = importlib.util.spec_from_file_location("tinyapi_interpreter_recipe", INTERPRETER_RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


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


@contextlib.contextmanager
def container(image: str, *flags: str, path: str = "/alwaysok"):
    """`docker run -d --no-healthcheck` of image with flags, 8080 published on a free port of
    127.0.0.1 (harness.container); yield (container name, port, seconds from `docker run` to
    the first 200 on path). The container is removed at the end."""
    # No health check: a probe is a whole new start of the binary (its processes, its copy in
    # /tmp) and would land in memory and CPU readings; bench/probe.py measures it on its own.
    containers = Containers(
        image, prefix="tinyapi-bench", flags=("--label", LABEL, "--no-healthcheck")
    )
    started = time.monotonic()
    try:
        c = containers.run(*flags, host_port=free_port())
        try:
            took = c.wait_ready(path, timeout=60, interval=0.005, since=started)
        except NotServing as err:
            raise BenchError(str(err)) from None
        yield c.name, c.port, took
    finally:
        containers.close()
