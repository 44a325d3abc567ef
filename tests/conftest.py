"""Shared test helpers: free loopback ports, a real tinyapi server process, plain HTTP calls,
and local HTTP/HTTPS targets for the outbound health checks (never the internet)."""
from __future__ import annotations

import http.client
import importlib.util
import http.server
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "dist" / "tinyapi"
IN_CI = os.environ.get("CI") == "true"
IS_ROOT = os.geteuid() == 0
# The image the tests build and run: NAME:latest (make image IMAGE_NAME=...).
IMAGE_NAME = os.environ.get("TINYAPI_IMAGE_NAME", "tinyapi")
IMAGE = f"{IMAGE_NAME}:latest"


def _load_build_script():
    # build/ is no package (and `build` is a PyPI name): load the script by path.
    spec = importlib.util.spec_from_file_location("tinyapi_build", ROOT / "build" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build_script()  # build/build.py, for its empty-root runner and input hash


def unavailable(reason: str) -> None:
    """Skip for lack of something (root, Docker) on a developer's machine; under CI=true the
    same lack is a failure: CI installs and starts everything the tests need."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `docker ARGS`, text output; raise with stderr when check and it fails."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}{proc.stderr}")
    return proc


def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def binary() -> Path:
    """dist/tinyapi, built (or found up to date) by build/build.py with this interpreter."""
    cmd = [sys.executable, str(ROOT / "build" / "build.py")]
    if not IS_ROOT:
        cmd.append("--skip-verify")  # verify chroots; the root-only tests do the same
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"build/build.py exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    assert BINARY.exists()
    return BINARY


@pytest.fixture(scope="session")
def image() -> str:
    """IMAGE, built once per session by `make image` (builds the binary if missing)."""
    if not docker_answers():
        unavailable("no Docker engine answers `docker info` (start one: .ci/start-docker)")
    proc = subprocess.run(["make", "--no-print-directory", "image", f"IMAGE_NAME={IMAGE_NAME}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr)[-6000:]
        pytest.fail(f"`make image` exited {proc.returncode}:\n{out}", pytrace=False)
    return IMAGE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Answer:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def request(port: int, path: str, method: str = "GET", timeout: float = 10) -> Answer:
    """One HTTP request to 127.0.0.1:port; raises OSError/HTTPException if there is no answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return Answer(resp.status, resp.reason, resp.headers, resp.read())
    finally:
        conn.close()


def poll(condition, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Call condition() until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except (OSError, http.client.HTTPException):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class TinyapiProcess:
    """The real server as a subprocess in its own process group, logs captured to a file."""

    def __init__(self, command: list[str], workdir: Path, env: dict[str, str], port: int):
        self.port = port
        self.log_path = workdir / "tinyapi.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, method: str = "GET") -> Answer:
        return request(self.port, path, method)

    def wait_ready(self, timeout: float = 30) -> "TinyapiProcess":
        def answering():
            if self.proc.poll() is not None:
                raise AssertionError(f"tinyapi exited with {self.proc.returncode}:\n{self.log}")
            return self.get("/alwaysok").status == 200
        poll(answering, timeout, what=f"tinyapi on port {self.port}")
        return self

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        # SIGTERM first: the frozen binary removes what it unpacked into /tmp (40 MB) only
        # when it is let to exit. SIGKILL of the group is for a server that will not stop.
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # and any worker left behind
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._log.close()

    def group_alive(self) -> bool:
        """Whether any process of the server's process group is left (workers included)."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True


def source_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tinyapi", *args]


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without any TINYAPI_ setting of the developer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYAPI_")}
    env.update(PYTHONPATH=str(ROOT), **overrides)
    return env


def server_env(port: int, **overrides: str) -> dict[str, str]:
    return clean_env(TINYAPI_SERVER_BIND_ADDRESS="127.0.0.1", TINYAPI_SERVER_BIND_PORT=str(port),
                     **overrides)


@pytest.fixture
def start_server(tmp_path):
    """start_server(**env) -> a running TinyapiProcess from source, stopped at teardown."""
    started = []

    def start(*args: str, command=None, wait=True, **env) -> TinyapiProcess:
        port = free_port()
        server = TinyapiProcess((command or source_command)(*args), tmp_path,
                                server_env(port, **env), port)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


# --- outbound targets for /healthcheck ---------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if self.path == "/ok" else 404
        body = b"fine\n" if status == 200 else b"missing\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TargetServer:
    """A local HTTP(S) server: /ok answers 200, anything else 404."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def test_ca():
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(test_ca, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ca") / "test-ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return str(path)


def _tls_server(ca: trustme.CA) -> TargetServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return TargetServer(context)


@pytest.fixture(scope="session")
def https_target(test_ca):
    server = _tls_server(test_ca)
    yield server
    server.close()


@pytest.fixture(scope="session")
def untrusted_https_target():
    """HTTPS signed by a CA that no bundle of ours trusts."""
    server = _tls_server(trustme.CA())
    yield server
    server.close()


@pytest.fixture(scope="session")
def http_target():
    server = TargetServer()
    yield server
    server.close()


@pytest.fixture
def silent_target():
    """Accepts connections and never answers: a check against it must time out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


@pytest.fixture
def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}/"
