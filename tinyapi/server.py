"""The server: gunicorn embedded in the program, as a custom gunicorn application, so that one
frozen executable is the whole server (master + workers) with no `gunicorn` command around it."""

from __future__ import annotations

import contextlib
import errno
import gc
import io
import logging
import os
import signal
import socket
import sys

import gunicorn.arbiter
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.errors import HaltServer

from tinyapi import logger, panic, refusals, worker
from tinyapi.app import create_app
from tinyapi.config import Config

log = logging.getLogger(logger.LOGGER_NAME)

# Limits on what a client may send before a request is refused with a 4xx (gunicorn enforces
# them while parsing): request line bytes, header count, bytes per header line.
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 50
LIMIT_REQUEST_FIELD_SIZE = 8190


class StartupError(Exception):
    """The server cannot start for a reason the user can fix (port taken, bad address)."""


class GunicornLogger(glogging.Logger):
    """Gunicorn's own lines in tinyapi's format: its loggers propagate to the root handler that
    logger.setup() installed, instead of gunicorn's own stderr handlers."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for each in (self.error_log, self.access_log):
            each.handlers = []
            each.propagate = True


def _from_caller(method):
    """Make a gunicorn log call report its caller (arbiter.py:NN), not glogging.py's wrapper."""

    def log_from_caller(self, msg, *args, **kwargs):
        kwargs.setdefault("stacklevel", 3)  # 1 glogging's method, 2 this wrapper, 3 the caller
        return method(self, msg, *args, **kwargs)

    return log_from_caller


for _level in ("debug", "info", "warning", "error", "critical", "exception"):
    setattr(GunicornLogger, _level, _from_caller(getattr(glogging.Logger, _level)))


def _halt_on_panic(arbiter, worker) -> None:
    """gunicorn's child_exit hook, run in the master for each worker it reaps (once more for
    each while it stops: hence `panicking`, so that it halts only once)."""
    if panic.flag().is_raised() and not arbiter.panicking:
        arbiter.panicking = True
        raise HaltServer("a worker panicked (/panic or /chaosmonkey)", panic.EXIT_STATUS)


class Arbiter(gunicorn.arbiter.Arbiter):
    """Gunicorn's master, which stops at once when a worker has panicked."""

    panicking = False

    def halt(self, reason=None, exit_status=0):
        if exit_status == panic.EXIT_STATUS:
            self.kill_workers_now()
        super().halt(reason, exit_status)

    def kill_workers_now(self) -> None:
        """Like the original's os.Exit(1): every worker goes now, in-flight requests too.

        SIGKILL, not gunicorn's quick-stop SIGQUIT: a worker still booting has no SIGQUIT
        handler yet and would hold the exit for the whole graceful timeout."""
        for pid in list(self.WORKERS):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.WORKERS.pop(pid).tmp.close()


class Server(BaseApplication):
    def __init__(self, config: Config) -> None:
        self.config = config
        super().__init__()

    def load_config(self) -> None:
        s = self.config.server
        settings = {
            "bind": [bind_address(s.bind_address, s.bind_port)],
            "workers": s.workers,
            # gthread is tinyapi.worker's: gunicorn's, with request heads read without a
            # thread. A class object, not a dotted path: the frozen binary holds it for sure.
            "worker_class": (
                worker.worker_class(s.header_timeout)
                if s.worker_class == "gthread"
                else s.worker_class
            ),
            "threads": s.threads,
            "timeout": s.timeout,
            "graceful_timeout": s.graceful_timeout,
            "keepalive": s.keepalive,
            # Import Flask and build the app once, in the master: workers start fast and share
            # those pages copy-on-write.
            "preload_app": True,
            # Gunicorn 25+ opens a control socket under $HOME; a scratch image has no home.
            "control_socket_disable": True,
            "logger_class": GunicornLogger,
            "accesslog": None,  # tinyapi writes its own access line, for every request
            "child_exit": _halt_on_panic,
            "proc_name": "tinyapi",
            # Trust no front end's forwarding headers (X-Forwarded-Proto, SCRIPT_NAME): tinyapi
            # builds no absolute URL and is not mounted under a prefix. gunicorn trusts
            # 127.0.0.1 by default, whose SCRIPT_NAME header could turn a request into a 500.
            "forwarded_allow_ips": "",
            # Refusals as net/http's (tinyapi.refusals): what Go refuses and gunicorn's
            # parser lets through (an HTTP/1.1 request without Host, a bad %-escape), checked
            # before the app runs.
            "pre_request": refusals.check_request,
            # A method is any token, as for Go: `get` is a method of its own (405 on a route),
            # not a 400. Still no case folding: `get` is not GET.
            "permit_unconventional_http_method": True,
            "limit_request_line": LIMIT_REQUEST_LINE,
            "limit_request_fields": LIMIT_REQUEST_FIELDS,
            "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
            # Gunicorn's own parser, said outright: its C parser (gunicorn_h1c) is not shipped,
            # and "auto" would look for it in every worker.
            "http_parser": "python",
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self):
        app = create_app(self.config)
        _warm_up(app)
        # Everything imported and built so far lives as long as the process. Frozen, the
        # collector never writes to those objects, so the workers keep sharing the master's
        # pages instead of copying them at their first collections (measured: the server's
        # memory grew 56% under load without this, 11% with it, 9% with the warm-up too).
        gc.freeze()
        return app

    def run(self) -> None:
        # BaseApplication.run() with our Arbiter, and its handling of what stops gunicorn
        # starting (a RuntimeError: a logger, pidfile or parser it cannot set up), as one line
        # and exit status 2 like the other start-up errors, not a traceback.
        try:
            Arbiter(self).run()
        except RuntimeError as err:
            raise StartupError(f"cannot start the server: {err}") from None


def _warm_up(app) -> None:
    """Answer one GET /alwaysok in the master, before the fork, unlogged: what the first
    request builds lazily (routing tables, codecs) is then built once and shared by every
    worker, instead of once in each."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/alwaysok",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "0",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
    }
    logging.disable(logging.INFO)
    try:
        b"".join(app(environ, lambda status, headers: None))
    finally:
        logging.disable(logging.NOTSET)


def bind_address(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def check_port(address: str, port: int) -> None:
    """Fail fast with one line when the address cannot be bound: gunicorn would retry for
    five seconds and then exit 1, which looks like a panic to a supervisor."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as err:
            where = bind_address(address, port)
            if err.errno == errno.EADDRINUSE:
                raise StartupError(f"cannot listen on {where}: address already in use") from None
            raise StartupError(f"cannot listen on {where}: {err.strerror or err}") from None


def serve(config: Config) -> None:
    """Run the server until it is stopped; exits the process with gunicorn's status (0 on
    SIGTERM/SIGINT, 1 after a panic)."""
    s = config.server
    check_port(s.bind_address, s.bind_port)
    log.info("Starting server on: %s", bind_address(s.bind_address, s.bind_port))
    Server(config).run()
