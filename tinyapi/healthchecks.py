"""The two outbound checks behind /healthcheck.

Fixes over the original: the checks run concurrently; each has a deadline (the original hung
forever on a silent host); a failed GET is reported as status 3 instead of crashing the request;
every response is closed, whatever its status; HTTPS is verified against a CA bundle that is
frozen into the program, or the file that config names. What a check target can do to us is
bounded: redirects (urllib stops at 10, and a loop is a failed check), header size and count
(http.client's limits), the time it takes (its connection is shut at the deadline), and the
body, which is never read.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

STATUS_OK = 1  # got 200
STATUS_NOT_OK = 2  # got another status
STATUS_FAILED = 3  # no response: refused, timed out, bad certificate, ...


@dataclass(frozen=True)
class Result:
    name: str
    status: int
    completed: bool
    date: str
    verbose: str

    def as_json(self) -> dict:
        # Key order is the original's.
        return {
            "name": self.name,
            "status": self.status,
            "completed": self.completed,
            "date": self.date,
            "verbose": self.verbose,
        }


def rfc3339_nano(epoch_ns: int) -> str:
    """UTC with nanoseconds, as Go's time.RFC3339Nano prints it (trailing zeros trimmed)."""
    seconds, nanos = divmod(epoch_ns, 10**9)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


@functools.lru_cache(maxsize=4)
def tls_context(ca_file: str) -> ssl.SSLContext:
    """Verifying context (hostname and chain) for ca_file, or the bundled CA if it is empty.

    Built on first use, not at start-up: loading 140 certificates costs more than a request."""
    if not ca_file:
        import certifi  # frozen into the binary with its cacert.pem

        ca_file = certifi.where()
    return ssl.create_default_context(cafile=ca_file)


class Cutter:
    """The sockets of one check, to shut when run_all gives up on it. The socket timeout
    bounds each read, not a target that trickles its answer a byte at a time: that one would
    keep the check's thread and socket busy long after /healthcheck has answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._cut = False

    def connected(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            cut = self._cut
        if cut:
            _shut(sock)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            socks = list(self._socks)
        for sock in socks:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # Shut the TCP connection, not close the socket: the check's thread still owns it, and a
    # read blocked in that thread returns at once. socket.socket's shutdown, also for an
    # SSLSocket, whose own would drop its TLS state under the reading thread.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Cuttable:
    """An http.client connection that hands its socket, once connected, to a Cutter."""

    def __init__(self, *args, cutter: Cutter, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._cutter = cutter

    def connect(self) -> None:
        super().connect()
        self._cutter.connected(self.sock)


class _HTTPConnection(_Cuttable, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Cuttable, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, cutter: Cutter) -> None:
        super().__init__()
        self._cutter = cutter

    def http_open(self, req):
        return self.do_open(functools.partial(_HTTPConnection, cutter=self._cutter), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, cutter: Cutter) -> None:
        super().__init__(context=context)
        self._cutter = cutter

    def https_open(self, req):
        return self.do_open(
            functools.partial(_HTTPSConnection, cutter=self._cutter), req, context=self._context
        )


def _opener(ca_file: str, cutter: Cutter) -> urllib.request.OpenerDirector:
    # build_opener adds proxy handling from the environment; checks go straight to the target.
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        _HTTPHandler(cutter),
        _HTTPSHandler(tls_context(ca_file), cutter),
    )


# The redirects urllib follows; one of them as an error is a loop, more than 10 redirects, or
# no Location: no answer, as Go's client says "stopped after 10 redirects".
_REDIRECTS = {301, 302, 303, 307, 308}


def check(
    name: str, url: str, timeout: float, ca_file: str = "", cutter: Cutter | None = None
) -> Result:
    """GET url once and classify the answer. Never raises."""
    started = rfc3339_nano(time.time_ns())
    request = urllib.request.Request(url, headers={"User-Agent": "tinyapi-healthcheck"})
    try:
        response = _opener(ca_file, cutter or Cutter()).open(request, timeout=timeout)
    except urllib.error.HTTPError as answer:  # a non-2xx status is still an answer...
        response = answer
        if answer.code in _REDIRECTS:  # ...but not a redirect that was not followed
            answer.close()
            why = str(answer.reason).partition("\n")[0]  # urllib's says "infinite loop" on 3 lines
            return Result(
                name, STATUS_FAILED, False, started, f"GET {url}: redirect not followed: {why}"
            )
    except (OSError, http.client.HTTPException, ValueError) as err:
        return Result(name, STATUS_FAILED, False, started, f"GET {url}: {_reason(err)}")
    with response:  # closed whatever the status: the original leaked non-200 bodies
        code, reason = response.status, response.reason
    status = STATUS_OK if code == 200 else STATUS_NOT_OK
    return Result(name, status, True, started, f"{code} {reason}".rstrip())


def _reason(err: Exception) -> str:
    if isinstance(err, urllib.error.URLError) and not isinstance(err.reason, str):
        err = err.reason
    if isinstance(err, TimeoutError):
        return "timed out"
    return str(err) or type(err).__name__


def run_all(targets: list[tuple[str, str]], timeout: float, ca_file: str = "") -> list[Result]:
    """Run every check at once; each gets `timeout` seconds for the whole exchange.

    The socket timeout bounds each read; the deadline here bounds the total, for a target that
    trickles bytes. A check past its deadline is reported as failed and its connection is shut,
    which ends its thread (a daemon, so it never holds up a worker's exit anyway)."""
    results: list[Result | None] = [None] * len(targets)
    cutters = [Cutter() for _ in targets]

    def run(index: int, name: str, url: str) -> None:
        results[index] = check(name, url, timeout, ca_file, cutters[index])

    started = rfc3339_nano(time.time_ns())
    threads = [
        threading.Thread(target=run, args=(i, name, url), daemon=True)
        for i, (name, url) in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 0.5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for thread, cutter in zip(threads, cutters, strict=True):
        if thread.is_alive():
            cutter.cut()
    return [
        result
        or Result(name, STATUS_FAILED, False, started, f"GET {url}: timed out after {timeout:g}s")
        for result, (name, url) in zip(results, targets, strict=True)
    ]
