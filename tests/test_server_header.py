"""No answer of the real server names a version, for a scanner to match against a list of
known holes: `Server: gunicorn` without one, nothing in any body or header, error pages
included."""

import platform
import socket
from importlib.metadata import version

import tinyapi

VERSIONS = {
    version("gunicorn"),
    version("flask"),
    version("werkzeug"),
    platform.python_version(),
    tinyapi.__version__,
}
NAMES = (b"gunicorn/", b"python/", b"werkzeug/", b"flask/", b"tinyapi/", b"cpython")

REQUESTS = {
    "index": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "alwaysok": b"GET /alwaysok HTTP/1.1\r\nHost: x\r\n\r\n",
    "redirect": b"GET /alwaysok/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "not found": b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
    "wrong method": b"POST /alwaysok HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "healthcheck": b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n",
    "HTTP/1.0": b"GET /alwaysok HTTP/1.0\r\n\r\n",
    "bad request line (a refusal)": b"GET / HTTP/9\r\n\r\n",
    "URI too long (a refusal)": b"GET /" + b"u" * 5000 + b" HTTP/1.1\r\n\r\n",
    "header line too long (a refusal)": b"GET / HTTP/1.1\r\nX: " + b"v" * 8200 + b"\r\n\r\n",
    "head too big (a refusal, from the event loop)": b"GET / HTTP/1.1\r\n"
    + b"".join(b"X-%d: " % i + b"v" * 8000 + b"\r\n" for i in range(10))
    + b"\r\n",
}


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_no_version_anywhere(start_server, http_target, refused_url):
    server = start_server(
        TINYAPI_HEALTHCHECK_HC1_URL=http_target.url("/ok"), TINYAPI_HEALTHCHECK_HC2_URL=refused_url
    )
    for name, data in REQUESTS.items():
        answer = raw(server.port, data)
        assert answer.startswith(b"HTTP/1."), name
        head = answer.partition(b"\r\n\r\n")[0].lower()
        servers = [line for line in head.split(b"\r\n") if line.startswith(b"server:")]
        assert servers in ([], [b"server: gunicorn"]), (name, servers)
        leaks = [v for v in VERSIONS if v.encode() in answer] + [
            n for n in NAMES if n in answer.lower()
        ]
        assert not leaks, (name, leaks, answer[:500])
