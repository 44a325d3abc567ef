"""The gunicorn worker: gunicorn's gthread worker (2 processes x 4 threads by default), made
so that slow or stalling clients cost the others nothing.

Request heads. gthread gives a connection to a pool thread as soon as its first byte arrives
(or after 5 s of silence, waited for in a pool thread too), and the thread then reads the rest
of the head from a blocking socket for as long as the client takes: workers x threads clients
sending a byte a second (8 with the defaults) stop the service. Here the event loop reads the
head (request line and headers) and a pool thread gets the connection only once the head is
whole, so a slow client costs a buffer (at most MAX_HEAD_BYTES), not a thread. A head that is
not whole server.header_timeout seconds (default 10) after the accept - or after the first
byte, on a kept-alive connection, which may idle server.keepalive seconds before that - is
cut off without an answer, like Go's http.Server with ReadHeaderTimeout.

Request bodies. The app reads none; gunicorn waits up to 5 s in the pool thread for the rest of
an unread body, to keep the connection alive. Here only what has already arrived is read (0.1 s
at most), else the connection is closed.

Closing. After the last answer gunicorn lingers up to 2 s on a connection (RFC 9112 9.6: so that
unread request bytes do not become a reset that truncates the answer), blocking its event loop:
a client that never closes its end stalls every connection of the worker. Here the event loop
lingers without blocking.

Refusals. What the server answers itself, before the app runs, is net/http's answer, byte for
byte: tinyapi.refusals writes it; the worker sends it and closes gracefully.

Gunicorn quirks fixed on the way: a quick stop (SIGINT, SIGQUIT) could deadlock a worker until
the master killed it graceful_timeout later; a malformed body the app had not read got a second
answer, a 400, after the app's.

Everything else (the request, keep-alive, graceful stop) is gunicorn's. TLS and cleartext
HTTP/2, which tinyapi does not use, keep gunicorn's own reading.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401  (gthread's pool: imported lazily, in each worker; here, once in the master)
import os
import selectors
import socket
import time
from functools import partial

from gunicorn.http.errors import ParseException
from gunicorn.http2 import negotiation
from gunicorn.workers import base, gthread

from tinyapi.heartbeat import Heartbeat
from tinyapi.refusals import Refusal, refusal, refuse

# gunicorn's Worker.__init__ makes each worker's heartbeat file by this module-level name.
base.WorkerTmp = Heartbeat

# A head this long without its blank line is refused with 431 by the event loop. gunicorn's
# own limits (4094 + 50 x 8192 bytes) would let each slow client park 400 KB here.
MAX_HEAD_BYTES = 64 * 1024
BODY_DRAIN_SECONDS = 0.1  # for an unread request body that has already arrived
LINGER_SECONDS = 2.0  # as gunicorn's close_graceful
LINGER_MAX_BYTES = 64 * 1024

_LINGER = object()  # handle()'s result for "answered, now close gracefully"


class ThreadWorker(gthread.ThreadWorker):
    header_timeout = 10.0  # seconds; see worker_class()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Connections the event loop is reading a head from, or lingering on: conn -> deadline.
        self.waiting: dict[gthread.TConn, float] = {}

    def enqueue_req(self, conn) -> None:
        """Every way to a pool thread passes here: a new connection, a kept-alive one that is
        readable again, one with a pipelined request already buffered."""
        if self.cfg.is_ssl or negotiation.prior_knowledge_allowed(self.cfg, conn.client):
            super().enqueue_req(conn)
            return
        # Bytes already read past the previous request are the start of this head.
        conn.head = bytearray(conn.parser.unreader.take_buffered() if conn.parser else b"")
        if _head_complete(conn.head):
            self._dispatch(conn)
            return
        conn.sock.setblocking(False)
        self._wait(conn, time.monotonic() + self.header_timeout, self._read_head)

    def _read_head(self, conn, _sock) -> None:
        try:
            data = conn.sock.recv(8192)
        except BlockingIOError:
            return
        except OSError:  # reset by the client
            self._close(conn)
            return
        conn.head += data
        end = conn.head.find(b"\r\n\r\n")
        if not conn.head:
            self._close(conn)  # closed between requests: nothing to answer
        elif (end + 4 if end >= 0 else len(conn.head)) > MAX_HEAD_BYTES:
            self._unwait(conn)
            refuse(conn.sock, Refusal(431))
            self._linger(conn)
        elif not data or _head_complete(conn.head):
            # Complete, or the client has half-closed: gunicorn's parser judges what is there.
            self._unwait(conn)
            self._dispatch(conn)

    def _dispatch(self, conn) -> None:
        """Hand a connection with its head in memory to a pool thread, for gunicorn's parser."""
        conn.init()  # plain HTTP: only makes the parser
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = None
        conn.data_ready = True  # so that the thread does not wait for the socket
        super().enqueue_req(conn)

    def handle(self, conn):
        keepalive = super().handle(conn)
        if keepalive is False and not self.cfg.is_ssl:
            return _LINGER
        return keepalive

    def _keepalive_after(self, conn, keepalive):
        # gunicorn waits up to 5 s here for the rest of a body the app did not read, so that
        # the connection can be kept alive: a slow client would hold this thread meanwhile.
        # Here the rest must be there already, else the connection closes (and lingers).
        if not keepalive:
            return False
        try:
            return conn.parser.finish_body(deadline=time.monotonic() + BODY_DRAIN_SECONDS)
        except ParseException as err:
            # A malformed body after the answer has gone: gunicorn would send a second answer,
            # a 400 that the client would take for the answer to its next request.
            self.log.warning("Invalid request body from ip=%s: %s", conn.client[0], err)
            return False

    def handle_error(self, req, client, addr, exc) -> None:
        answer = refusal(exc)
        if answer is None:  # not the request's fault: gunicorn's 500
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        refuse(client, answer)

    def finish_request(self, conn, fs) -> None:
        if not fs.cancelled() and fs.exception() is None and fs.result() is _LINGER:
            self._linger(conn)
        else:
            super().finish_request(conn, fs)

    def _linger(self, conn) -> None:
        """Send FIN after the answer, then read and drop what the client still sends until it
        closes too, or for LINGER_SECONDS at most; without a thread."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
        except OSError:
            self._close(conn)
            return
        conn.drained = 0
        self._wait(conn, time.monotonic() + LINGER_SECONDS, self._drain)

    def _drain(self, conn, _sock) -> None:
        try:
            data = conn.sock.recv(8192)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained > LINGER_MAX_BYTES:
            self._close(conn)

    def _wait(self, conn, deadline: float, on_readable) -> None:
        self.waiting[conn] = deadline
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(on_readable, conn))

    def _unwait(self, conn) -> None:
        del self.waiting[conn]
        self.poller.unregister(conn.sock)

    def _close(self, conn) -> None:
        if conn in self.waiting:
            self._unwait(conn)
        self.nr_conns -= 1
        conn.close()

    def handle_quit(self, sig, frame) -> None:
        # Quick stop (SIGINT: Ctrl-C; SIGQUIT from the master): exit now, dropping requests in
        # flight. gthread's handler shuts the thread pool down and raises SystemExit wherever
        # the event loop is; inside the pool's submit() that deadlocks on the pool's lock, or
        # leaves a thread that exit then waits for forever, until the master kills the worker
        # graceful_timeout later.
        self.alive = False
        os._exit(0)

    def murder_pending(self) -> None:
        """gunicorn's check for connections past their time, run by the event loop at least
        once a second: ours are those waiting too long for a head, or lingering too long."""
        super().murder_pending()
        now = time.monotonic()
        if not self.alive:
            # Stopping: a head under way gets as long as a kept-alive connection, no longer.
            stop_by = now + gthread.STOP_KEEPALIVE_LINGER
            self.waiting = {conn: min(deadline, stop_by) for conn, deadline in self.waiting.items()}
        for conn in [conn for conn, deadline in self.waiting.items() if deadline <= now]:
            self._close(conn)


def _head_complete(head: bytearray) -> bool:
    # A bare LF is a head gunicorn rejects at once, without waiting for more.
    return b"\r\n\r\n" in head or head.count(b"\n") != head.count(b"\r\n")


def worker_class(header_timeout: float) -> type[ThreadWorker]:
    """The worker class for gunicorn's worker_class setting, with this header timeout."""
    return type(
        "ThreadWorker", (ThreadWorker,), {"header_timeout": header_timeout, "__module__": __name__}
    )
