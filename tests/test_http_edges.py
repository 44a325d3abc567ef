"""HTTP edge cases, raw bytes over a socket, against the real server: from source, the frozen
binary and the image. Each row is a request as bytes and the whole answer tinyapi must give:
status line, headers in order (all but Date), body, and whether the server then closed the
connection. The three must answer every row the same, byte for byte.

The rows are the original's observed answers (../shared/reference/go-tinyapi.md, "HTTP edge
cases") unless `differs` says why not; docs/http.md lists each of those (a test checks). The
refusals (the answers made before the app runs) are net/http's byte for byte. The app's answers
carry gunicorn's framing, which differs from Go's and is not marked row by row: a
`Server: gunicorn` header, `Connection: keep-alive` (or `close`), gunicorn's header order,
`Content-Length: 0` on a body-less answer to HEAD.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.container import Containers
from harness.http import free_port
from harness.serve import Process, server_env, source_command

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=UTF-8"
NEXT = (
    b"GET /alwaysok HTTP/1.1\r\nHost: x\r\n\r\n"  # sent after an answer that keeps the connection
)
NEXT_ANSWER = b"HTTP/1.1 200 OK\r\n"


@dataclass(frozen=True)
class Row:
    request: bytes
    status: str  # the status line, "HTTP/1.1 301 Moved Permanently"
    headers: tuple[str, ...]  # in order, without Date
    body: bytes = b""
    closed: bool = False
    interim: bytes = b""  # a 1xx answer before this one
    differs: str = ""  # why tinyapi does not answer as the original did ("": it does)


def answer(status: str, *headers: str, body: bytes = b"", version: str = "HTTP/1.1", **kw) -> dict:
    """What the app answers, in gunicorn's framing: Server and Connection first; the connection
    stays open on HTTP/1.1 and is closed after an HTTP/1.0 request."""
    keep = version == "HTTP/1.1"
    framing = ("Server: gunicorn", f"Connection: {'keep-alive' if keep else 'close'}")
    return dict(
        status=f"{version} {status}", headers=framing + headers, body=body, closed=not keep, **kw
    )


def refused(status: str, body: str | None = None, **kw) -> dict:
    """A refusal, in net/http's form: plain text, no Content-Length, the connection closed."""
    return dict(
        status=f"HTTP/1.1 {status}",
        headers=("Content-Type: text/plain; charset=utf-8", "Connection: close"),
        body=(status if body is None else body).encode(),
        closed=True,
        **kw,
    )


def get(
    target: str,
    *headers: str,
    method: str = "GET",
    version: str = "HTTP/1.1",
    host=True,
    body: bytes = b"",
    prefix: bytes = b"",
) -> bytes:
    lines = [f"{method} {target} {version}", *(["Host: x"] if host else []), *headers]
    return prefix + "".join(f"{line}\r\n" for line in lines).encode("latin-1") + b"\r\n" + body


def moved(location: str) -> dict:
    """gorilla/mux's answer to a path that is not clean."""
    return answer("301 Moved Permanently", "Content-Length: 0", f"Location: {location}")


def redirect(location: str) -> dict:
    """gorilla/mux's StrictSlash redirect, with http.Redirect's body."""
    body = f'<a href="{location}">Moved Permanently</a>.\n\n'.encode()
    return answer(
        "301 Moved Permanently",
        "Content-Type: text/html; charset=utf-8",
        f"Content-Length: {len(body)}",
        f"Location: {location}",
        body=body,
    )


NOT_FOUND = answer(
    "404 Not Found",
    f"Content-Type: {TEXT}",
    "Content-Length: 19",
    "X-Content-Type-Options: nosniff",
    body=b"404 page not found\n",
)
ALLOW = "405 with Allow: GET, as HTTP asks (RFC 9110 15.5.6); the original sends none"
NOT_ALLOWED = answer("405 Method Not Allowed", "Content-Length: 0", "Allow: GET", differs=ALLOW)
OK = answer("200 OK", f"Content-Type: {JSON}", "Content-Length: 18", body=b'{ "status": "OK" }')
LIMIT = "tinyapi's own limits (docs/http.md); Go's is a 1 MB head, over which it answers 431"
SMUGGLING = "refused and closed: Go reads such a body one way, a proxy in front may read it another"

ROWS = {
    # the tutorial's, for a start
    "index": (
        get("/"),
        answer(
            "200 OK",
            f"Content-Type: {TEXT}",
            "Content-Length: 61",
            body=b"Index of tinyapi. These aren't the droids you're looking for\n",
        ),
    ),
    "alwaysok": (get("/alwaysok"), OK),
    "trailing slash": (get("/alwaysok/"), redirect("/alwaysok")),
    "trailing slash, query kept": (get("/alwaysok/?a=1"), redirect("/alwaysok?a=1")),
    # path cleaning first, for every method, before routing
    "doubled slash": (get("//alwaysok"), moved("/alwaysok")),
    "dot segment": (get("/./alwaysok"), moved("/alwaysok")),
    "dot-dot segment, query kept": (get("/x/../alwaysok?a=1&b=%3C"), moved("/alwaysok?a=1&b=%3C")),
    "root doubled": (get("//"), moved("/")),
    "doubled slash inside": (get("/alwaysok//x/"), moved("/alwaysok/x/")),
    "unclean POST": (get("//alwaysok", "Content-Length: 0", method="POST"), moved("/alwaysok")),
    "unclean HEAD": (get("/x/../", method="HEAD"), moved("/")),
    "unclean unknown path": (get("/nope/./x"), moved("/nope/x")),
    "unclean, escaped again": (get("//a%20b"), moved("/a%20b")),
    "routed on the decoded path": (get("/%61lwaysok"), OK),
    "encoded slash": (get("/alwaysok%2F"), redirect("/alwaysok")),
    # 404, 405, OPTIONS *
    "404": (get("/nope"), NOT_FOUND),
    "404 for a fragment of a path": (get("/alwaysok/extra"), NOT_FOUND),
    "POST on a route": (get("/alwaysok", "Content-Length: 0", method="POST"), NOT_ALLOWED),
    "HEAD on a route": (get("/alwaysok", method="HEAD"), NOT_ALLOWED),
    "lower-case get": (get("/alwaysok", method="get"), NOT_ALLOWED),
    "unknown method": (get("/alwaysok", method="FOO"), NOT_ALLOWED),
    "POST with a trailing slash": (
        get("/alwaysok/", "Content-Length: 0", method="POST"),
        NOT_ALLOWED,
    ),
    "OPTIONS *": (get("*", method="OPTIONS"), answer("200 OK", "Content-Length: 0")),
    # Host
    "HTTP/1.1 without Host": (
        get("/alwaysok", host=False),
        refused("400 Bad Request: missing required Host header"),
    ),
    "Host that is no host": (
        b"GET /alwaysok HTTP/1.1\r\nHost: x<y\r\n\r\n",
        refused("400 Bad Request: malformed Host header"),
    ),
    "HTTP/1.0 without Host": (
        get("/alwaysok", host=False, version="HTTP/1.0"),
        answer(
            "200 OK",
            f"Content-Type: {JSON}",
            "Content-Length: 18",
            body=b'{ "status": "OK" }',
            version="HTTP/1.0",
        ),
    ),
    # malformed: plain 400, nothing echoed
    "two Host headers": (get("/alwaysok", "Host: y"), refused("400 Bad Request")),
    "no HTTP version": (b"GET /alwaysok\r\nHost: x\r\n\r\n", refused("400 Bad Request")),
    "version FOO/1.1": (get("/alwaysok", version="FOO/1.1"), refused("400 Bad Request")),
    "method outside the token set": (get("/alwaysok", method="GE(T"), refused("400 Bad Request")),
    "non-numeric Content-Length": (
        get("/alwaysok", "Content-Length: 1x"),
        refused("400 Bad Request"),
    ),
    "space before the colon": (
        get("/alwaysok", "X-Echo<script> : v"),
        refused("400 Bad Request: invalid header name"),
    ),
    "bad %-escape": (get("/alway%zzsok"), refused("400 Bad Request")),
    "header without a colon": (
        get("/alwaysok", "<script>alert(1)</script>"),
        refused("400 Bad Request"),
    ),
    # versions, transfer codings
    "HTTP/2.0": (
        get("/alwaysok", version="HTTP/2.0"),
        refused("505 HTTP Version Not Supported: unsupported protocol version"),
    ),
    "HTTP/0.9": (
        get("/alwaysok", version="HTTP/0.9"),
        refused("505 HTTP Version Not Supported: unsupported protocol version"),
    ),
    "Transfer-Encoding gzip": (
        get("/alwaysok", "Transfer-Encoding: gzip"),
        refused("501 Not Implemented", "Unsupported transfer encoding"),
    ),
    "Transfer-Encoding unknown": (
        get("/alwaysok", "Transfer-Encoding: x-<script>"),
        refused("501 Not Implemented", "Unsupported transfer encoding"),
    ),
    "Transfer-Encoding gzip, chunked": (
        get("/alwaysok", "Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
        refused("501 Not Implemented", "Unsupported transfer encoding"),
    ),
    "chunked": (get("/alwaysok", "Transfer-Encoding: chunked", body=b"3\r\nabc\r\n0\r\n\r\n"), OK),
    # too large
    "request line too long": (
        get("/alwaysok?q=" + "u" * 4095),
        refused("414 Request URI Too Long", differs=LIMIT),
    ),
    "header line too long": (
        get("/alwaysok", "X-Long: " + "v" * 8183),
        refused("431 Request Header Fields Too Large", differs=LIMIT),
    ),
    "too many headers": (
        get("/alwaysok", *(f"X-{i}: v" for i in range(50))),
        refused("431 Request Header Fields Too Large", differs=LIMIT),
    ),
    "head over 64 KiB": (
        get("/alwaysok", *(f"X-{i}: " + "v" * 8000 for i in range(9))),
        refused("431 Request Header Fields Too Large", differs=LIMIT),
    ),
    # the original's bugs, fixed
    "Content-Length with chunked": (
        get("/alwaysok", "Content-Length: 3", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        refused("400 Bad Request", differs=SMUGGLING + " (the original kept the connection)"),
    ),
    "leading empty line": (
        get("/alwaysok", prefix=b"\r\n"),
        dict(OK, differs="RFC 9112 2.2: ignored; the original answered 400"),
    ),
    "fragment in the target": (
        get("/alwaysok#frag"),
        dict(OK, differs="the fragment is not the path; the original routed it (404)"),
    ),
    "Expect: 100-continue": (
        get("/alwaysok", "Expect: 100-continue", "Content-Length: 5", body=b"hello"),
        dict(
            OK,
            interim=b"HTTP/1.1 100 Continue\r\n\r\n",
            differs="100 Continue, then the answer; the original answered and "
            "closed, or waited for a body it never asked for",
        ),
    ),
    # refused on purpose where Go would serve
    "bare LF": (
        b"GET /alwaysok HTTP/1.1\nHost: x\n\n",
        refused("400 Bad Request", differs="RFC 9112 2.2: lines end with CRLF; Go takes a bare LF"),
    ),
    "obs-fold": (
        get("/alwaysok", "X-A: a", " folded"),
        refused(
            "400 Bad Request", differs="RFC 9112 5.2: obsolete line folding refused; Go unfolds it"
        ),
    ),
    "Content-Length twice": (
        get("/alwaysok", "Content-Length: 0", "Content-Length: 0"),
        refused("400 Bad Request", differs=SMUGGLING + " (Go takes equal values)"),
    ),
    "chunked on HTTP/1.0": (
        get(
            "/alwaysok",
            "Transfer-Encoding: chunked",
            version="HTTP/1.0",
            host=False,
            body=b"0\r\n\r\n",
        ),
        refused("400 Bad Request", differs=SMUGGLING + " (Go ignores it on HTTP/1.0)"),
    ),
    "raw byte above 0x7f in the path": (
        b"GET /alway\xffsok HTTP/1.1\r\nHost: x\r\n\r\n",
        refused(
            "400 Bad Request",
            differs="RFC 9112 3.2: a target is printable ASCII; Go routes it (404)",
        ),
    ),
    "asterisk with GET": (
        get("*"),
        refused(
            "400 Bad Request",
            differs="RFC 9112 3.2.4: `*` is for OPTIONS only; Go cleans it to /* (301)",
        ),
    ),
    "Expect: something else": (
        get("/alwaysok", "Expect: bogus"),
        refused(
            "417 Expectation Failed",
            differs="plain text like the other refusals; Go's 417 has an empty body",
        ),
    ),
}


# --- talking to a server -------------------------------------------------------------------------


class Reader:
    def __init__(self, sock: socket.socket):
        self.sock, self.buf, self.eof = sock, b"", False

    def fill(self) -> bool:
        """Read more; False at the end (FIN, or a reset after the server closed)."""
        try:
            chunk = b"" if self.eof else self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        self.eof = not chunk
        self.buf += chunk
        return bool(chunk)

    def head(self) -> bytes | None:
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                return None
        end = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end], self.buf[end:]
        return head

    def answer(self) -> bytes:
        """One answer (with a 1xx before it), or what came before the end."""
        interim = b""
        head = self.head()
        while head is not None and head.startswith(b"HTTP/1.1 1"):
            interim, head = interim + head, self.head()
        if head is None:
            rest, self.buf = self.buf, b""
            return interim + rest
        length = content_length(head)
        while (length is None or len(self.buf) < length) and self.fill():
            pass  # no Content-Length: the body ends with the connection
        body, self.buf = (
            (self.buf, b"") if length is None else (self.buf[:length], self.buf[length:])
        )
        return interim + head + body


def content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return int(value)
    return None


def exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    """Send data and read one answer; then whether the server closed the connection: either it
    did (FIN or reset), or the connection answers NEXT, and nothing came before that answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # closed on us mid-way (a head over the limits): what came is what counts
        reader = Reader(sock)
        answer = reader.answer()
        assert not reader.buf, f"more than one answer: {reader.buf[:300]!r}"
        if reader.eof:
            return answer, True
        try:
            sock.sendall(NEXT)
        except OSError:
            return answer, True
        after = reader.answer()
        if not after:
            return answer, True
        assert after.startswith(NEXT_ANSWER), f"more than one answer: {after[:300]!r}"
        return answer, False


def split(answer: bytes) -> tuple[bytes, str, tuple[str, ...], bytes]:
    """(interim answer, status line, headers without Date, body)."""
    interim = b""
    if answer.startswith(b"HTTP/1.1 1"):
        end = answer.index(b"\r\n\r\n") + 4
        interim, answer = answer[:end], answer[end:]
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *headers = head.decode("latin-1").split("\r\n")
    return interim, status, tuple(h for h in headers if not h.startswith("Date: ")), body


# --- the three servers ---------------------------------------------------------------------------


@pytest.fixture(
    scope="module",
    params=[
        "source",
        pytest.param("binary", marks=pytest.mark.slow),  # builds dist/tinyapi when it is stale
        pytest.param("image", marks=pytest.mark.docker),
    ],
)
def server_port(request, tmp_path_factory):
    """The port of a running tinyapi: from source, the frozen binary, or the image."""
    kind = request.param
    if kind == "image":
        containers = Containers(request.getfixturevalue("image"), prefix="tinyapi-edges")
        try:
            container = containers.run("-e", "TINYAPI_CHAOS_ENABLED=false")
            container.wait_ready()
            yield container.port
        finally:
            containers.close()
        return
    command = [str(request.getfixturevalue("binary"))] if kind == "binary" else source_command()
    port = free_port()
    process = Process(
        command,
        server_env(port, TINYAPI_CHAOS_ENABLED="false"),
        port,
        tmp_path_factory.mktemp(kind) / "tinyapi.log",
    )
    try:
        yield process.wait_ready().port
    finally:
        process.stop()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, id=f"{name} (differs from Go)" if expected.get("differs") else name)
        for name, (_data, expected) in ROWS.items()
    ],
)
def test_answer(server_port, name):
    data, expected = ROWS[name]
    expected = Row(data, **expected)
    received, closed = exchange(server_port, data)
    interim, status, headers, body = split(received)
    assert (status, headers, body) == (expected.status, expected.headers, expected.body), received[
        :600
    ]
    assert interim == expected.interim
    assert closed == expected.closed, "closed" if closed else "kept open"


def test_every_difference_is_in_the_docs():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "http.md").read_text()
    missing = [
        name
        for name, (_data, expected) in ROWS.items()
        if expected.get("differs") and f"`{name}`" not in doc
    ]
    assert not missing, f"docs/http.md names no row {missing}"
