"""Slow clients against the real server (tinyapi.worker): more of them than workers x threads
cost the others nothing, and the server cuts them off."""

import socket
import time

import pytest

from harness.http import request
from tinyapi.config import ServerConfig

HEADER_TIMEOUT = 3  # seconds: the test's, to keep it short; the default is 10
DEFAULTS = ServerConfig()
THREADS = DEFAULTS.workers * DEFAULTS.threads
HEAD = b"GET /alwaysok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 64 + b"\r\n\r\n"


def test_defaults():
    assert (DEFAULTS.header_timeout, DEFAULTS.keepalive) == (10, 5)
    assert (DEFAULTS.worker_class, DEFAULTS.workers, DEFAULTS.threads) == ("gthread", 2, 4)


class SlowClient:
    """A raw connection that sends `data` one byte per tick after `prefix` at once."""

    def __init__(self, port: int, prefix: bytes = b"", data: bytes = b""):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.opened = time.monotonic()
        self.data, self.sent = data, 0
        self.received = b""
        self.closed_at = None
        if prefix:
            self.sock.sendall(prefix)
        self.sock.setblocking(False)

    def tick(self) -> None:
        """Send the next byte, then note what the server sent back or whether it hung up."""
        if self.closed_at:
            return
        try:
            if self.sent < len(self.data):
                self.sock.send(self.data[self.sent : self.sent + 1])
                self.sent += 1
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionResetError
                self.received += chunk
        except BlockingIOError:
            pass
        except OSError:  # FIN, RST or EPIPE: the server has closed it
            self.closed_at = time.monotonic() - self.opened
            self.sock.close()


def assert_others_served_quickly(port: int) -> None:
    started = time.monotonic()
    r = request(port, "/alwaysok", timeout=5)
    assert r.status == 200 and time.monotonic() - started < 1.0


@pytest.mark.slow  # waits a timeout out
def test_slow_heads_starve_nobody_and_are_cut_off(start_server):
    server = start_server(TINYAPI_SERVER_HEADER_TIMEOUT=str(HEADER_TIMEOUT))
    # More slow connections than threads, of three kinds: silent; a head at a byte a second;
    # the same after a first request answered on that connection (kept alive).
    silent = [SlowClient(server.port) for _ in range(4)]
    trickling = [SlowClient(server.port, data=HEAD) for _ in range(THREADS)]
    kept_alive = [SlowClient(server.port, prefix=HEAD, data=HEAD) for _ in range(4)]
    slow = silent + trickling + kept_alive
    assert len(slow) > THREADS

    # Slow on purpose: one byte per client per second, until the server has cut off them all.
    while not all(c.closed_at for c in slow):
        elapsed = time.monotonic() - slow[0].opened
        assert elapsed < HEADER_TIMEOUT + 3, [c.closed_at for c in slow]
        for client in slow:
            client.tick()
        if elapsed < HEADER_TIMEOUT - 1:  # all of them still hold a connection
            assert not any(c.closed_at for c in slow)
            assert_others_served_quickly(server.port)
        time.sleep(1)

    for client in slow:
        # Cut off after the header timeout (checked once a second), never answered...
        assert HEADER_TIMEOUT - 0.1 < client.closed_at < HEADER_TIMEOUT + 2.1
    assert all(c.received == b"" for c in silent + trickling)
    for client in kept_alive:  # ...except for the first request of the kept-alive ones.
        assert client.received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert client.received.count(b"HTTP/1.1") == 1
    assert_others_served_quickly(server.port)


def test_slow_bodies_do_not_hold_threads(start_server):
    # A body the app does not read, trickled: answered, then the connection is closed rather
    # than a thread waiting for the rest of the body to keep the connection alive.
    server = start_server()
    head = b"POST /alwaysok HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nx"
    slow = [SlowClient(server.port, prefix=head, data=b"y" * 99) for _ in range(THREADS + 4)]
    assert_others_served_quickly(server.port)
    while not all(c.closed_at for c in slow):
        assert time.monotonic() - slow[0].opened < 5, [c.closed_at for c in slow]
        for client in slow:
            client.tick()
        assert_others_served_quickly(server.port)
        time.sleep(1)  # slow on purpose: a byte a second
    for client in slow:
        assert client.received.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")


def test_clients_that_never_close_stall_nobody(start_server):
    # Answered with "Connection: close", they keep their end open: gunicorn's own gthread
    # lingers 2 s on each in its event loop, stalling every other connection of the worker.
    server = start_server()
    held = []
    for _ in range(THREADS + 4):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /alwaysok HTTP/1.0\r\n\r\n")
        held.append(sock)
        assert_others_served_quickly(server.port)
    for sock in held:
        answer = b""
        while chunk := sock.recv(4096):  # the answer, then FIN: the server has half-closed
            answer += chunk
        assert answer.startswith(b"HTTP/1.0 200 OK\r\n") and answer.endswith(b'{ "status": "OK" }')
        sock.close()


@pytest.mark.slow  # waits a timeout out
def test_idle_keepalive_connection_is_closed_after_keepalive(start_server):
    server = start_server()
    with socket.create_connection(
        ("127.0.0.1", server.port), timeout=DEFAULTS.keepalive + 5
    ) as sock:
        sock.sendall(HEAD)
        answer = b""
        while not answer.endswith(b'{ "status": "OK" }'):
            answer += sock.recv(4096)
        idle_from = time.monotonic()
        assert sock.recv(4096) == b""  # blocks until the server closes the idle connection
        idle = time.monotonic() - idle_from
    assert b"Connection: close" not in answer
    assert DEFAULTS.keepalive - 0.1 < idle < DEFAULTS.keepalive + 1.5
