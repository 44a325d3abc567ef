"""net/http's refusals: what the server answers itself, before the app runs (a malformed
request, one too large, an HTTP version or transfer coding it does not do), byte for byte as
Go's: a plain-text status line and body, `Connection: close`, nothing of the request echoed
(gunicorn's HTML pages quote the bad line back), then close. And the request checks net/http
makes that gunicorn's parser does not (check_request, gunicorn's pre_request hook).

HTTP semantics only: this depends on gunicorn's error classes, not on its workers. The worker
(tinyapi.worker) calls refusal() and refuse(); docs/http.md has the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
    UnsupportedTransferCoding,
)

# net/http's texts (Go 1.19 StatusText) for the statuses a refusal can have.
REASONS = {
    400: "Bad Request",
    414: "Request URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


@dataclass(frozen=True)
class Refusal:
    """A request the server answers itself. Go writes `<status> <reason>[: <detail>]` as the
    status line and, unless it says otherwise, as the body."""

    status: int
    detail: str = ""
    body: str | None = None

    def wire(self) -> bytes:
        text = f"{self.status} {REASONS[self.status]}" + (f": {self.detail}" if self.detail else "")
        # No Content-Length, as Go: the close ends the body.
        return (
            f"HTTP/1.1 {text}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\n\r\n{text if self.body is None else self.body}"
        ).encode()


def refuse(sock, answer: Refusal) -> None:
    """Write a refusal; the caller closes the connection (gracefully: the client may still be
    sending, and a reset would lose the answer)."""
    try:
        sock.sendall(answer.wire())
    except OSError:  # gone already, or its buffer full: nobody to tell
        pass


def refusal(exc: BaseException) -> Refusal | None:
    """net/http's answer to a request that gunicorn's parser (or check_request) refused with
    exc; None for an error that is not the request's (the app's, answered 500)."""
    if isinstance(exc, (InvalidResponseHeader, InvalidResponseHeaderName, ConfigurationProblem)):
        return None
    if isinstance(exc, LimitRequestLine):
        return Refusal(414)
    if isinstance(exc, LimitRequestHeaders):
        return Refusal(431)
    if isinstance(exc, InvalidHTTPVersion) and isinstance(exc.version, tuple):
        return Refusal(505, "unsupported protocol version")  # HTTP/d.d, d other than 1
    if isinstance(exc, UnsupportedTransferCoding) or _transfer_coding_not_chunked(exc):
        return Refusal(501, body="Unsupported transfer encoding")
    if isinstance(exc, InvalidHeaderName) and not exc.hdr.startswith((" ", "\t")):
        return Refusal(400, "invalid header name")  # (a first line indented is a bad head)
    if isinstance(exc, BadHost):
        return Refusal(400, str(exc))
    if isinstance(exc, ExpectationFailed):
        return Refusal(417)
    if isinstance(exc, ParseException):
        return Refusal(400)
    return None


def _transfer_coding_not_chunked(exc: BaseException) -> bool:
    """A Transfer-Encoding other than `chunked` alone (gzip, identity, chunked twice): 501 as
    for Go. Chunked on HTTP/1.0 (which Go ignores) stays a 400: its length is ambiguous."""
    req = getattr(exc, "req", None)
    return (
        isinstance(exc, InvalidHeader)
        and exc.hdr == "TRANSFER-ENCODING"
        and req is not None
        and req.version >= (1, 1)
    )


class BadHost(ParseException):
    """No Host header on HTTP/1.1, or one with a byte no host name or address has."""

    def __init__(self, missing: bool) -> None:
        self.missing = missing

    def __str__(self) -> str:
        return "missing required Host header" if self.missing else "malformed Host header"


class MalformedTarget(ParseException):
    def __str__(self) -> str:
        return "malformed percent-encoding in the path"


_PERCENT_ENCODED = re.compile(r"[^%]*(?:%[0-9A-Fa-f]{2}[^%]*)*")
# The bytes net/http takes in a Host value (a lenient RFC 3986 host [":" port]).
_HOST = re.compile(r"[0-9A-Za-z!$%&'()*+,\-.:;=\[\]_~]*")


def check_request(worker, req) -> None:
    """gunicorn's pre_request hook, run on each parsed request before the app: what net/http
    refuses and gunicorn's parser lets through. RFC 9112 3.2: an HTTP/1.1 request without Host
    is answered 400, as one with a Host value that is no host; so is a path with a `%` not
    followed by two hex digits (RFC 3986 2.1). A Transfer-Encoding other than `chunked` alone
    that gunicorn takes (`gzip, chunked`) is 501, as the ones it refuses."""
    hosts = [value for name, value in req.headers if name == "HOST"]
    if not hosts and req.version >= (1, 1) and req.method != "CONNECT":
        raise BadHost(missing=True)
    if hosts and not _HOST.fullmatch(hosts[0]):
        raise BadHost(missing=False)
    if not _PERCENT_ENCODED.fullmatch(req.path):
        raise MalformedTarget()
    codings = [value for name, value in req.headers if name == "TRANSFER-ENCODING"]
    if codings and [c.strip(" \t").lower() for c in codings] != ["chunked"]:
        raise UnsupportedTransferCoding(", ".join(codings))
