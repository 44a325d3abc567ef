"""The two outbound checks behind /healthcheck.

Fixes over the original: the checks run concurrently; each has a deadline (the original hung
forever on a silent host); a failed GET is reported as status 3 instead of crashing the request;
every response is closed, whatever its status; HTTPS is verified against a CA bundle that is
frozen into the program, or the file that config names. What a check target can do to us is
bounded: redirects (urllib stops at 10), header size and count (http.client's limits), and the
body, which is never read.
"""
from __future__ import annotations

import functools
import http.client
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

STATUS_OK = 1         # got 200
STATUS_NOT_OK = 2     # got another status
STATUS_FAILED = 3     # no response: refused, timed out, bad certificate, ...


@dataclass(frozen=True)
class Result:
    name: str
    status: int
    completed: bool
    date: str
    verbose: str

    def as_json(self) -> dict:
        # Key order is the original's.
        return {"name": self.name, "status": self.status, "completed": self.completed,
                "date": self.date, "verbose": self.verbose}


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


def _opener(ca_file: str) -> urllib.request.OpenerDirector:
    # build_opener adds proxy handling from the environment; checks go straight to the target.
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=tls_context(ca_file)),
    )


def check(name: str, url: str, timeout: float, ca_file: str = "") -> Result:
    """GET url once and classify the answer. Never raises."""
    started = rfc3339_nano(time.time_ns())
    request = urllib.request.Request(url, headers={"User-Agent": "tinyapi-healthcheck"})
    try:
        response = _opener(ca_file).open(request, timeout=timeout)
    except urllib.error.HTTPError as answer:  # a non-2xx status is still an answer
        response = answer
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
    trickles bytes. A check past its deadline is reported as failed and left to end on its own:
    its thread is a daemon, so it never holds up a worker's exit."""
    results: list[Result | None] = [None] * len(targets)

    def run(index: int, name: str, url: str) -> None:
        results[index] = check(name, url, timeout, ca_file)

    started = rfc3339_nano(time.time_ns())
    threads = [threading.Thread(target=run, args=(i, name, url), daemon=True)
               for i, (name, url) in enumerate(targets)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 0.5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [result or Result(name, STATUS_FAILED, False, started, f"GET {url}: timed out after {timeout:g}s")
            for result, (name, url) in zip(results, targets)]
