"""Start tinyapi and wait for its first 200: the rule every tool and test that runs the server
shares (build's verify stage, the benchmarks, the tests, the Swarm demo).

wait_for_200() polls one URL path until it answers 200, and stops early when the caller says
the server is gone (a process that exited, a container that stopped). Process is a tinyapi
started in its own session with its output in a log file, stopped with everything it forked
(staticx, PyInstaller and gunicorn each fork: they share its process group)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.http import Answer, request


def source_command(*args: str) -> list[str]:
    """The server from source, with the interpreter running the tests."""
    return [sys.executable, "-m", "tinyapi", *args]


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without any TINYAPI_ setting of the developer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYAPI_")}
    env.update(overrides)
    return env


def server_env(port: int, **overrides: str) -> dict[str, str]:
    """clean_env() with the server bound to 127.0.0.1:port."""
    return clean_env(
        TINYAPI_SERVER_BIND_ADDRESS="127.0.0.1", TINYAPI_SERVER_BIND_PORT=str(port), **overrides
    )


def children(pid: int) -> set[int]:
    """The pids whose parent is pid (the master's workers), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


class NotServing(Exception):
    """The server died, or gave no 200 in time: the message says which."""


def wait_for_200(
    port: int,
    path: str = "/alwaysok",
    *,
    alive=None,
    timeout: float = 30.0,
    interval: float = 0.005,
    since: float | None = None,
    host: str = "127.0.0.1",
) -> float:
    """Poll GET path on host:port until it answers 200; the seconds from `since` (a
    time.monotonic(), default: the call) to that answer. alive(), when given, is asked after
    each miss: False means the server is gone, and NotServing is raised at once."""
    started = time.monotonic() if since is None else since
    last = "no answer yet"
    while True:
        try:
            status = request(port, path, timeout=max(1.0, interval), host=host).status
            if status == 200:
                return time.monotonic() - started
            last = f"status {status}"
        except (OSError, http.client.HTTPException) as err:
            last = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        if alive is not None and not alive():
            raise NotServing(f"the server on port {port} stopped before answering {path}")
        if time.monotonic() - started > timeout:
            raise NotServing(f"no 200 from {host}:{port}{path} within {timeout:g} s (last: {last})")
        time.sleep(interval)


def stop_group(proc: subprocess.Popen, grace: float = 5.0, term_group: bool = False) -> None:
    """SIGTERM, then SIGKILL to proc's process group: whatever is left after `grace` seconds.
    SIGTERM to proc alone by default: the bootloaders pass it on and gunicorn's master stops its
    workers (a SIGTERM to every process at once keeps the master waiting for its graceful
    timeout), and the frozen binary removes what it unpacked into /tmp only when let to exit.
    term_group: SIGTERM to the whole group, for a leader that passes no signal on (unshare)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM) if term_group else proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # and any worker left behind
    proc.wait()


class Process:
    """A tinyapi (or anything serving HTTP) in its own session, its output in log_path."""

    def __init__(
        self,
        command: list[str],
        env: dict[str, str],
        port: int,
        log_path: Path | str | None,
        cwd: Path | str | None = None,
        term_group: bool = False,
    ):
        """log_path None: the output is discarded (the benchmarks time start-up so).
        term_group: stop() sends SIGTERM to the whole group (see stop_group)."""
        self.port = port
        self.term_group = term_group
        self.log_path = Path(log_path) if log_path else None
        with open(self.log_path or os.devnull, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def get(self, path: str, method: str = "GET", timeout: float = 10) -> Answer:
        return request(self.port, path, method, timeout=timeout)

    def wait_ready(self, path: str = "/alwaysok", timeout: float = 30) -> Process:
        """Wait for the first 200 on path; NotServing, with the log, if it dies or never does."""
        try:
            wait_for_200(self.port, path, alive=self.alive, timeout=timeout, interval=0.05)
        except NotServing as err:
            code = self.proc.poll()
            exited = "" if code is None else f" (exit status {code})"
            raise NotServing(f"{err}{exited}; its output:\n{self.log}") from None
        return self

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self, grace: float = 5.0) -> None:
        stop_group(self.proc, grace, self.term_group)

    def group_alive(self) -> bool:
        """Whether any process of the server's process group is left (workers included)."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True


@contextlib.contextmanager
def served(
    command: list[str],
    env: dict[str, str],
    port: int,
    log_path: Path | str | None,
    cwd: Path | str | None = None,
    ready_path: str | None = "/alwaysok",
    timeout: float = 30,
    term_group: bool = False,
):
    """Start command, wait for the first 200 on ready_path (None: do not wait), yield the
    Process; stop it and its group at the end, whatever happened."""
    server = Process(command, env, port, log_path, cwd, term_group)
    try:
        if ready_path:
            server.wait_ready(ready_path, timeout)
        yield server
    finally:
        server.stop()
