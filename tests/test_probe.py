"""`tinyapi probe`, the health check of a shell-less image: from source, frozen, and as the
image's HEALTHCHECK under Docker.

From source: exit 0 and silence on a 200; against a closed port, a 503, a server that never
answers and one that trickles its answer, exit 1 with one line of its own each; usage and config
mistakes exit 2 with one line; no Flask or gunicorn imported. Frozen: the probe leaves nothing
in its TMPDIR, beside a frozen server or alone. In the image: `healthy` within the start period;
a server whose processes are SIGSTOPped turns `unhealthy`; a probe in the hardened run (any
user, read-only root, /tmp tmpfs at the size the Swarm stack ships) fits beside the server and
leaves nothing behind.

No Docker engine answering: the Docker tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from harness.container import Container, Containers
from harness.docker import docker, server_pids
from harness.http import free_port, poll
from harness.image import HARDENED_RUN
from harness.paths import ROOT
from harness.serve import clean_env, server_env, source_command
from harness.testing import IS_ROOT, unavailable
from tinyapi import config, probe

# A bound for a subprocess that should end by itself in a few seconds: only a hang trips it.
HANG_S = 60


def run_probe(
    *args: str, command=source_command, env: dict | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command("probe", *args),
        capture_output=True,
        text=True,
        timeout=HANG_S,
        env=env or clean_env(),
        cwd=cwd,
    )


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.stdout == "", proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# --- servers that fail in each way a probe must tell apart ---------------------------------------


class _Listener:
    """A loopback TCP server whose every connection is handed to `serve(conn)` on a thread."""

    def __init__(self, serve):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/alwaysok"
        self._serve = serve
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, self._stop), daemon=True).start()

    def close(self):
        self._stop.set()
        self.sock.close()


def _answer_503(conn, stop):
    with conn:
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n"
            b"Connection: close\r\n\r\nsorry"
        )


def _trickle(conn, stop):
    """A 200 that never ends: one header byte every 0.2 s. Only an overall deadline stops it."""
    with conn:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(0.2):
            try:
                conn.sendall(b"X")
            except OSError:
                return


@pytest.fixture
def listener():
    made = []

    def make(serve):
        made.append(_Listener(serve))
        return made[-1]

    yield make
    for each in made:
        each.close()


# --- from source -------------------------------------------------------------------------------


def test_probe_of_a_serving_server_exits_0_and_says_nothing(start_server):
    server = start_server()
    proc = run_probe(env=server_env(server.port))  # the default URL, from the environment
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert "GET /alwaysok" in server.log and "tinyapi-probe/" not in proc.stderr


@pytest.mark.parametrize("case", ["closed port", "503", "never answers", "trickles"])
def test_probe_of_a_failing_server_exits_1_with_a_line_of_its_own(
    case, listener, refused_url, silent_target
):
    url = {
        "closed port": lambda: refused_url + "alwaysok",
        "503": lambda: listener(_answer_503).url,
        "never answers": lambda: silent_target + "alwaysok",
        "trickles": lambda: listener(_trickle).url,
    }[case]()
    proc = run_probe(url, "--timeout", "1")
    assert proc.returncode == 1, proc
    expected = {
        "closed port": "connection refused",
        "503": "answered 503 Service Unavailable",
        "never answers": "no answer within 1 s",
        "trickles": "no answer within 1 s",
    }[case]
    assert one_line(proc) == f"tinyapi probe: GET {url}: {expected}" + (
        " (nothing listens there)" if case == "closed port" else ""
    )


@pytest.mark.parametrize(
    "args, says",
    [
        (["ftp://127.0.0.1/"], "URL must be http://"),
        (["http://127.0.0.1:99999/"], "bad port"),
        (["--timeout", "0"], "--timeout: must be a number of seconds above 0"),
        (["--timeout", "soon"], "--timeout: must be a number of seconds above 0"),
        (["http://127.0.0.1/", "extra"], "unrecognized arguments: extra"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args, says):
    proc = run_probe(*args)
    assert proc.returncode == 2, proc
    line = one_line(proc)
    assert line.startswith("tinyapi probe: error: ") and says in line, line


def test_a_bad_config_is_one_line_and_exit_2():
    proc = run_probe(env=clean_env(TINYAPI_SERVER_BIND_PORT="99999"))
    assert proc.returncode == 2
    assert one_line(proc) == (
        "tinyapi probe: error: environment variable "
        "TINYAPI_SERVER_BIND_PORT: must be an integer from 1 to 65535, "
        "got 99999"
    )


def test_help():
    proc = run_probe("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("usage: tinyapi probe ") and "--timeout S" in proc.stdout
    main_help = subprocess.run(
        source_command("--help"), capture_output=True, text=True, env=clean_env(), timeout=HANG_S
    ).stdout
    assert "tinyapi probe [URL]" in main_help


def test_default_url_follows_the_servers_config_and_environment(tmp_path):
    """The port the server would bind: config file (found or --config), then environment."""
    (tmp_path / "config.yml").write_text("server:\n  bind_address: 0.0.0.0\n  bind_port: 9311\n")
    other = tmp_path / "other.yml"
    other.write_text("server:\n  bind_port: 9312\n")
    found = run_probe(env=clean_env(TINYAPI_CFG_PATH=str(tmp_path)), cwd=tmp_path.parent)
    named = run_probe("--config", str(other), env=clean_env())
    env = run_probe("--config", str(other), env=clean_env(TINYAPI_SERVER_BIND_PORT="9313"))
    for proc, port in ((found, 9311), (named, 9312), (env, 9313)):
        assert f"GET http://127.0.0.1:{port}/alwaysok: " in one_line(proc)


@pytest.mark.parametrize(
    "address, url",
    [
        ("0.0.0.0", "http://127.0.0.1:8080/alwaysok"),  # the image's config
        ("127.0.0.1", "http://127.0.0.1:8080/alwaysok"),
        ("", "http://127.0.0.1:8080/alwaysok"),
        ("::", "http://[::1]:8080/alwaysok"),
        ("10.1.2.3", "http://10.1.2.3:8080/alwaysok"),  # a server bound there answers only there
    ],
)
def test_default_url_reaches_the_bind_address(address, url):
    settings = config.load(None, environ={"TINYAPI_SERVER_BIND_ADDRESS": repr(address)})
    assert probe.default_url(settings) == url


def test_probe_imports_neither_flask_nor_gunicorn(start_server):
    """What `tinyapi probe` loads, through the same entry point as the binary's."""
    server = start_server()
    code = (
        "import json, runpy, sys\n"
        "sys.argv = ['tinyapi', 'probe']\n"
        "try:\n"
        "    runpy.run_module('tinyapi', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    print(done.code)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=server_env(server.port),
        timeout=HANG_S,
    )
    status, modules = proc.stdout.splitlines()
    assert status == "0", proc.stderr
    loaded = set(json.loads(modules))
    assert "tinyapi" in loaded and "http" in loaded  # it did run
    assert not loaded & {"flask", "gunicorn", "werkzeug", "jinja2", "click"}, loaded


# --- the frozen binary ---------------------------------------------------------------------------


def tree(path: Path) -> dict[str, int]:
    """Every file under path with its size: what a probe might leave behind."""
    return {str(p.relative_to(path)): p.lstat().st_size for p in path.rglob("*")}


def frozen(binary: Path):
    return lambda *args: [str(binary), *args]


@pytest.mark.slow
def test_frozen_probe_leaves_nothing_beside_a_frozen_server(binary, start_server, tmp_path):
    """The binary unpacks into TMPDIR at every start; a probe's copy must be gone when it ends,
    whether it made one of its own or used the server's."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    server = start_server(command=frozen(binary), TMPDIR=str(tmp))
    before = tree(tmp)
    assert before, "the frozen server unpacks into TMPDIR"
    proc = run_probe(command=frozen(binary), env=server_env(server.port, TMPDIR=str(tmp)))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert tree(tmp) == before


@pytest.mark.slow
def test_frozen_probes_alone_leave_no_more_than_a_start_does(binary, tmp_path):
    """With no server to share with, a probe unpacks the binary like any start: what it leaves
    is at most that one copy (none, if the binary cleans up at exit; one, if it keeps a copy to
    reuse), and probe after probe nothing accumulates."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    url = f"http://127.0.0.1:{free_port()}/alwaysok"
    after = []
    for _ in range(3):
        proc = run_probe(url, command=frozen(binary), env=clean_env(TMPDIR=str(tmp)))
        assert proc.returncode == 1 and "connection refused" in one_line(proc)
        after.append(tree(tmp))
    assert len(os.listdir(tmp)) <= 1, os.listdir(tmp)
    assert after[0] == after[1] == after[2]


# --- the image's HEALTHCHECK ---------------------------------------------------------------------

STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yml"


def stack_tmp_size() -> str:
    """The smallest /tmp the project ships beside a health check: the Swarm stack's volume."""
    stack = yaml.safe_load(STACK_FILE.read_text())
    options = dict(
        o.partition("=")[::2] for o in stack["volumes"]["tmp"]["driver_opts"]["o"].split(",")
    )
    return options["size"]


class ProbedContainer(Container):
    """A container and its health, as the engine reports it."""

    def health(self) -> dict:
        return json.loads(self.inspect("{{json .State.Health}}"))

    def healthcheck(self) -> dict:
        """The health check in effect (the image's, with docker run's --health-* on top)."""
        return json.loads(self.inspect("{{json .Config.Healthcheck}}"))

    def wait_health(self, status: str, timeout: float) -> dict:
        def reached():
            if not self.running():
                raise AssertionError(f"the container stopped: {self.logs()}")
            return self.health()["Status"] == status or None

        try:
            poll(reached, timeout, interval=0.2, what=f"{self.name} {status}")
        except AssertionError as err:
            raise AssertionError(f"{err}; health: {self.health()}") from None
        return self.health()

    def tmp(self) -> Path:
        """The container's /tmp, seen from the host (needs root)."""
        return Path(f"/proc/{self.inspect('{{.State.Pid}}')}/root/tmp")


@pytest.fixture
def container(image):
    containers = Containers(image, prefix="tinyapi-probe-test", kind=ProbedContainer)
    yield containers.run
    containers.close()


def seconds(nanoseconds: int) -> float:
    return nanoseconds / 1e9


@pytest.mark.docker
@pytest.mark.slow
def test_image_reports_healthy_within_its_start_period(container):
    c = container()
    hc = c.healthcheck()
    assert hc["Test"] == ["CMD", "/bin/tinyapi", "probe"]
    # Docker runs the first probe one interval after the start: it must fall in the start period.
    assert seconds(hc["Interval"]) + seconds(hc["Timeout"]) <= seconds(hc["StartPeriod"])
    health = c.wait_health("healthy", timeout=seconds(hc["StartPeriod"]))
    assert health["FailingStreak"] == 0 and health["Log"][-1]["ExitCode"] == 0
    status = docker("ps", "--filter", f"name={c.name}", "--format", "{{.Status}}").stdout
    assert "(healthy)" in status, status


@pytest.mark.docker
@pytest.mark.root
def test_a_sigstopped_server_turns_unhealthy(container):
    """The server hangs without exiting (every process stopped from the host): the probe, a new
    process, is not stopped, finds no answer, and after `retries` failures Docker says so."""
    if not IS_ROOT:
        unavailable("signalling a container's processes from the host needs root")
    c = container(
        "--health-interval", "2s", "--health-retries", "2", "--health-start-period", "60s"
    )
    hc = c.healthcheck()
    c.wait_health("healthy", timeout=seconds(hc["StartPeriod"]))
    pids = server_pids(c.name)
    assert len(pids) >= 3, pids  # the master and its two workers, at least
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    # Each failing probe ends by its own 2 s limit, well inside the health timeout: a probe
    # takes at most interval + timeout, and `retries` of them in a row make it unhealthy.
    bound = (hc["Retries"] + 1) * (seconds(hc["Interval"]) + seconds(hc["Timeout"]))
    health = c.wait_health("unhealthy", timeout=bound)
    last = health["Log"][-1]
    assert last["ExitCode"] == 1, last
    assert last["Output"].strip() == (
        "tinyapi probe: GET http://127.0.0.1:8080/alwaysok: "
        f"no answer within {probe.DEFAULT_TIMEOUT:g} s"
    )


def hardened(size: str) -> list[str]:
    """The documented hardened run, as another user, with a /tmp of this size."""
    flags = list(HARDENED_RUN)
    flags[flags.index("--tmpfs") + 1] += f",size={size}"
    return [*flags, "--user", "12345:12345"]


@pytest.mark.docker
def test_probes_fit_beside_the_server_in_the_tmp_the_stack_ships(container):
    """The real HEALTHCHECK's probes, one a second, in the hardened run whose /tmp is as small
    as the Swarm stack's: each probe's unpacking (or its reuse of the server's) fits."""
    c = container(
        *hardened(stack_tmp_size()), "--health-interval", "1s", "--health-start-period", "60s"
    )
    c.wait_health("healthy", timeout=60)
    # Five probes from the first that passed on: one before the server answers (a loaded
    # machine, a 1 s interval) fails for want of an answer, not of room in /tmp.
    first_ok = next(e["Start"] for e in c.health()["Log"] if e["ExitCode"] == 0)

    def five_since_first_ok():
        log = c.health()["Log"]  # the last five, oldest first
        starts = [e["Start"] for e in log]
        log = log[starts.index(first_ok) :] if first_ok in starts else log
        return log if len(log) >= 5 else None

    log = poll(five_since_first_ok, timeout=60, interval=0.2, what="five probes")
    assert [entry["ExitCode"] for entry in log] == [0] * len(log), log


@pytest.mark.docker
@pytest.mark.root
def test_probe_as_any_user_read_only_leaves_nothing_in_tmp(container):
    """Any non-root user, read-only root, /tmp a tmpfs with exec: once a probe has ended, /tmp
    holds what the server holds, file for file and byte for byte."""
    if not IS_ROOT:
        unavailable("reading a container's /tmp from the host (/proc/PID/root) needs root")
    c = container(*hardened(stack_tmp_size()), "--no-healthcheck")  # only our probes run
    poll(
        lambda: docker("exec", c.name, "/bin/tinyapi", "probe", check=False).returncode == 0,
        timeout=60,
        interval=0.2,
        what="the server serving",
    )
    for _ in range(2):
        before = tree(c.tmp())
        used = os.statvfs(c.tmp())
        proc = docker("exec", c.name, "/bin/tinyapi", "probe", check=False)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
        assert tree(c.tmp()) == before
        after = os.statvfs(c.tmp())
        assert after.f_bfree == used.f_bfree
