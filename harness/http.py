"""Loopback HTTP without a library: a free port, one request, and polling for a condition."""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of host that nothing listens on (the kernel's pick); host "0.0.0.0": one
    free on every address, as host-mode publishing binds it."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now. SO_REUSEADDR, as servers bind: the
    TIME_WAIT of connections just closed does not hold a port, only a listener does."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class Answer:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def request(
    port: int, path: str, method: str = "GET", timeout: float = 10, host: str = "127.0.0.1"
) -> Answer:
    """One HTTP request to host:port; raises OSError/HTTPException if there is no answer."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return Answer(resp.status, resp.reason, resp.headers, resp.read())
    finally:
        conn.close()


def poll(condition, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Call condition() until it returns something truthy (a connection error counts as
    not yet); raise AssertionError after `timeout` seconds."""
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
