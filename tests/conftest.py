"""The tests' fixtures: the binary and the image (built once per session), a real tinyapi server
process, and local HTTP/HTTPS targets for the outbound health checks (never the internet).
The helpers the tests share beside them live in the harness package (harness.http, .serve,
.docker, .testing)."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import trustme

from harness.docker import docker_answers
from harness.http import free_port
from harness.paths import BINARY, IMAGE, IMAGE_NAME, ROOT, SBOM
from harness.serve import Process, server_env, source_command
from harness.testing import IS_ROOT, unavailable

# A fixture that needs something make test-quick leaves out, and the marker that says so.
NEEDS = {"image": "docker", "binary": "slow"}


def pytest_collection_modifyitems(items):
    """A test that uses the image or the binary (even through another fixture) must say so
    with its marker: else `make test-quick` would build them. (A fixture that asks for them
    with request.getfixturevalue escapes this check: mark its params.)"""
    for item in items:
        for fixture, marker in NEEDS.items():
            if fixture in item.fixturenames and item.get_closest_marker(marker) is None:
                raise pytest.UsageError(
                    f"{item.nodeid} uses the {fixture} fixture: mark it @pytest.mark.{marker}"
                )


@pytest.fixture(scope="session")
def binary() -> Path:
    """dist/tinyapi, built (or found up to date) by `make binary`: the kit's interpreter, its
    venv, then the binary (the first time in a clone, about 5 min on 2 cores)."""
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), "binary"]
    if not IS_ROOT:
        cmd.append("BUILD_FLAGS=--skip-verify")  # verify chroots; the root-only tests do the same
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (
        f"make binary exited {proc.returncode}:\n{proc.stdout[-6000:]}{proc.stderr[-6000:]}"
    )
    assert BINARY.exists()
    return BINARY


@pytest.fixture(scope="session")
def sbom(binary) -> dict:
    """dist/tinyapi.cdx.json, written once per session by `make sbom`, as JSON."""
    subprocess.run(
        ["make", "--no-print-directory", "sbom"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return json.loads(SBOM.read_text())


@pytest.fixture(scope="session")
def image() -> str:
    """IMAGE, built once per session by `make image` (builds the binary if missing)."""
    if not docker_answers():
        unavailable("no Docker engine answers `docker info`")
    proc = subprocess.run(
        ["make", "--no-print-directory", "image", f"IMAGE_NAME={IMAGE_NAME}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr)[-6000:]
        pytest.fail(f"`make image` exited {proc.returncode}:\n{out}", pytrace=False)
    return IMAGE


@pytest.fixture
def start_server(tmp_path):
    """start_server(*args, command=source_command, wait=True, **env) -> a harness.serve.Process
    of the server from source (or command(*args)) on a free port, stopped at teardown."""
    started = []

    def start(*args: str, command=None, wait=True, **env) -> Process:
        port = free_port()
        server = Process(
            (command or source_command)(*args),
            server_env(port, **env),
            port,
            tmp_path / f"tinyapi-{len(started)}.log",
            cwd=tmp_path,
        )
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


# --- outbound targets for /healthcheck ---------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if isinstance(self.connection, ssl.SSLSocket):
            self.server.tls_versions.append(self.connection.version())
        status = 200 if self.path == "/ok" else 404
        body = b"fine\n" if status == 200 else b"missing\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TargetServer:
    """A local HTTP(S) server: /ok answers 200, anything else 404; tls_versions lists the TLS
    version of each request."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self.httpd.server_address[1]
        self.tls_versions = self.httpd.tls_versions = []
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

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


def _tls_server(
    ca: trustme.CA, names=("127.0.0.1", "localhost"), maximum=ssl.TLSVersion.TLSv1_3
) -> TargetServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.maximum_version = maximum
    ca.issue_cert(*names).configure_cert(context)
    return TargetServer(context)


@pytest.fixture
def tls_target():
    """tls_target(ca, *names, maximum=TLSv1_3) -> an HTTPS TargetServer with a certificate of
    ca for names, offering TLS up to maximum; closed at teardown."""
    started = []

    def start(ca: trustme.CA, *names: str, maximum=ssl.TLSVersion.TLSv1_3) -> TargetServer:
        started.append(_tls_server(ca, names, maximum))
        return started[-1]

    yield start
    for server in started:
        server.close()


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
