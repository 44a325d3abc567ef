"""The gunicorn internals tinyapi relies on, by name: tinyapi.server, tinyapi.worker,
tinyapi.heartbeat and tinyapi.refusals lean on gunicorn beyond its documented BaseApplication
(load_config, load) and settings. An upgrade that renames, moves or stops calling one of them
fails here with its name, instead of tinyapi silently losing what it built on it (a renamed
_keepalive_after would just never be called again: bodies drained for 5 s in a pool thread,
slow clients holding threads).

pyproject.toml pins gunicorn to the minor version this was checked against; moving the pin
means going through this file."""

from __future__ import annotations

import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from gunicorn.http.parser import RequestParser
from packaging.requirements import Requirement

from harness.testing import assert_calls, resolve
from tinyapi import heartbeat, refusals, server, worker
from tinyapi.config import Config

ROOT = Path(__file__).resolve().parent.parent


def test_gunicorn_is_pinned_to_the_checked_minor_version():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(Requirement(d) for d in deps if Requirement(d).name == "gunicorn")
    assert str(pin.specifier) == "<27.1,>=27.0", "moved the pin? go through this file first"
    assert version("gunicorn") in pin.specifier


# What tinyapi calls or overrides, with the signature it calls or overrides it with.
SIGNATURES = {
    # server.py
    "gunicorn.app.base.BaseApplication.__init__": "(self, usage=None, prog=None)",
    "gunicorn.app.base.BaseApplication.run": "(self)",  # replaced by Server.run
    "gunicorn.arbiter.Arbiter.run": "(self)",
    "gunicorn.arbiter.Arbiter.halt": "(self, reason=None, exit_status=0)",  # Arbiter.halt
    "gunicorn.glogging.Logger.setup": "(self, cfg)",  # GunicornLogger.setup
    **{
        f"gunicorn.glogging.Logger.{level}": "(self, msg, *args, **kwargs)"  # _from_caller
        for level in ("debug", "info", "warning", "error", "critical", "exception")
    },
    "gunicorn.errors.HaltServer.__init__": "(self, reason, exit_status=1)",
    # worker.py: the methods ThreadWorker overrides or calls
    "gunicorn.workers.gthread.ThreadWorker.enqueue_req": "(self, conn)",
    "gunicorn.workers.gthread.ThreadWorker.handle": "(self, conn)",
    "gunicorn.workers.gthread.ThreadWorker._keepalive_after": "(self, conn, keepalive)",
    "gunicorn.workers.gthread.ThreadWorker.finish_request": "(self, conn, fs)",
    "gunicorn.workers.gthread.ThreadWorker.handle_quit": "(self, sig, frame)",
    "gunicorn.workers.gthread.ThreadWorker.murder_pending": "(self)",
    "gunicorn.workers.base.Worker.handle_error": "(self, req, client, addr, exc)",
    "gunicorn.workers.gthread.TConn.init": "(self)",
    "gunicorn.workers.gthread.TConn.close": "(self, graceful=False)",
    "gunicorn.http.unreader.Unreader.take_buffered": "(self)",
    "gunicorn.http.unreader.Unreader.unread": "(self, data)",
    "gunicorn.http.parser.Parser.finish_body": "(self, deadline=None, max_bytes=None)",
    "gunicorn.http2.negotiation.prior_knowledge_allowed": "(cfg, peer_addr)",
    # heartbeat.py: Heartbeat replaces WorkerTmp's __init__, keeps the rest
    "gunicorn.workers.workertmp.WorkerTmp.__init__": "(self, cfg)",
}


@pytest.mark.parametrize("dotted", SIGNATURES)
def test_signature(dotted):
    assert str(inspect.signature(resolve(dotted))) == SIGNATURES[dotted], dotted


# Module constants and classes, and what they must be.
NAMES = {
    "gunicorn.workers.gthread.STOP_KEEPALIVE_LINGER": float,  # worker.murder_pending
    "gunicorn.workers.gthread.TConn": type,  # worker.ThreadWorker.waiting's keys
    "gunicorn.workers.base.WorkerTmp": type,  # replaced by heartbeat.Heartbeat
    **{
        f"gunicorn.http.errors.{name}": type
        for name in (
            "ParseException",
            "ConfigurationProblem",
            "ExpectationFailed",
            "InvalidHeader",
            "InvalidHeaderName",
            "InvalidHTTPVersion",
            "InvalidResponseHeader",
            "InvalidResponseHeaderName",
            "LimitRequestHeaders",
            "LimitRequestLine",
            "UnsupportedTransferCoding",
        )
    },  # refusals.refusal
}


@pytest.mark.parametrize("dotted", NAMES)
def test_name(dotted):
    assert isinstance(resolve(dotted), NAMES[dotted]), dotted


# tinyapi's own additions to the classes it subclasses; everything else in them overrides.
OWN = {
    worker.ThreadWorker: {
        "header_timeout",
        "_read_head",
        "_dispatch",
        "_linger",
        "_drain",
        "_wait",
        "_unwait",
        "_close",
    },
    server.Arbiter: {"panicking", "kill_workers_now"},
    server.GunicornLogger: set(),
    heartbeat.Heartbeat: set(),
}


@pytest.mark.parametrize("ours", OWN, ids=lambda cls: cls.__qualname__)
def test_every_override_overrides_something(ours):
    """A method of tinyapi's subclass that gunicorn's class no longer has is never called."""
    base = ours.__mro__[1]
    for name in vars(ours):
        if name.startswith("__") or name in OWN[ours]:
            continue
        assert hasattr(base, name), (
            f"{ours.__qualname__}.{name} overrides nothing in {base.__module__}.{base.__qualname__}"
        )


# "X calls Y": an override or hook that gunicorn stops calling does nothing at all.
CALLS = {
    "gunicorn.workers.gthread.ThreadWorker.handle": (
        "self._keepalive_after(conn, ",
        "self.handle_error(req, conn.sock, conn.client, e)",
        "conn.init()",
        "next(conn.parser)",
    ),
    "gunicorn.workers.gthread.ThreadWorker.enqueue_req": (
        "self.tpool.submit(self.handle, conn)",
        "self.finish_request, conn, fut",
    ),
    "gunicorn.workers.gthread.ThreadWorker.accept": ("self.enqueue_req(conn)",),
    "gunicorn.workers.gthread.ThreadWorker.on_client_socket_readable": ("self.enqueue_req(conn)",),
    "gunicorn.workers.gthread.ThreadWorker.run": ("self.murder_pending()",),
    "gunicorn.workers.gthread.ThreadWorker.handle_request": ("self.cfg.pre_request(self, req)",),
    "gunicorn.workers.gthread.ThreadWorker.finish_request": (
        "conn.parser.unreader.buf.getvalue()",
    ),
    "gunicorn.arbiter.Arbiter.reap_workers": (
        "self.cfg.child_exit(self, worker)",
        "self.WORKERS.pop(wpid, None)",
    ),
    "gunicorn.workers.base.Worker.__init__": (
        "self.tmp = WorkerTmp(cfg)",
    ),  # Arbiter.kill_workers_now; heartbeat.Heartbeat, by that name
    # Heartbeat's memfd is self._tmp: what the rest of WorkerTmp works on
    **{
        f"gunicorn.workers.workertmp.WorkerTmp.{method}": ("self._tmp.fileno()",)
        for method in ("notify", "last_update", "fileno")
    },
    "gunicorn.workers.gthread.TConn.__init__": ("self.parser = None", "self.data_ready = False"),
    # _from_caller's stacklevel=3 counts this one frame between the caller and logging
    **{
        f"gunicorn.glogging.Logger.{level}": (f"self.error_log.{level}(msg, *args, **kwargs)",)
        for level in ("debug", "info", "warning", "error", "critical", "exception")
    },
    # Server.run is this, with tinyapi's Arbiter and the same errors caught
    "gunicorn.app.base.BaseApplication.run": ("Arbiter(self).run()", "except RuntimeError"),
}


@pytest.mark.parametrize("dotted", CALLS)
def test_calls(dotted):
    assert_calls(dotted, CALLS[dotted])


def test_settings_tinyapi_sets_exist():
    app = server.Server(Config())
    for name in (
        "pre_request",
        "permit_unconventional_http_method",
        "http_parser",
        "control_socket_disable",
        "forwarded_allow_ips",
        "child_exit",
        "logger_class",
    ):
        assert name in app.cfg.settings, f"gunicorn has no {name} setting any more"
    assert app.cfg.pre_request is refusals.check_request
    assert app.cfg.casefold_http_method is False  # `get` must stay `get`


# --- what gunicorn's parser raises, as refusals.refusal reads it -----------------------------
# Each row: a request head -> the status line tinyapi answers, or None: parsed, for the app.
OK = None
PARSER_VERDICTS = {
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n": OK,
    b"get / HTTP/1.1\r\nHost: x\r\n\r\n": OK,  # permit_unconventional_http_method
    b"G / HTTP/1.1\r\nHost: x\r\n\r\n": OK,
    b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n": OK,  # one leading empty line ignored
    b"GET / HTTP/1.0\r\n\r\n": OK,
    b"GET / HTTP/1.1\r\n\r\n": "400 Bad Request: missing required Host header",
    b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n": "400 Bad Request: malformed Host header",
    b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n": OK,
    b"GET / HTTP/1.1\r\nHost:\r\n\r\n": OK,  # empty, as net/http takes it
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n": "505 HTTP Version Not Supported: unsupported protocol version",
    b"GET / HTTP/0.9\r\nHost: x\r\n\r\n": "505 HTTP Version Not Supported: unsupported protocol version",
    b"GET / FOO/1.1\r\nHost: x\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.10\r\nHost: x\r\n\r\n": "400 Bad Request",
    b"GET /\r\nHost: x\r\n\r\n": "400 Bad Request",
    b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\r\nHost: x\r\nX : v\r\n\r\n": "400 Bad Request: invalid header name",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n": "400 Bad Request: invalid header name",
    b"GET / HTTP/1.1\r\n Host: x\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\r\nHost: x\r\nGarbage\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\nHost: x\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n": "501 Not Implemented",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n": "501 Not Implemented",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n": "501 Not Implemented",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n": "501 Not Implemented",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n": "501 Not Implemented",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n": "501 Not Implemented",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n": OK,
    b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n": "400 Bad Request",
    b"GET / HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n": "417 Expectation Failed",
    b"GET /" + b"u" * 4094 + b" HTTP/1.1\r\nHost: x\r\n\r\n": "414 Request URI Too Long",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: "
    + b"v" * 8190
    + b"\r\n\r\n": "431 Request Header Fields Too Large",
    b"GET / HTTP/1.1\r\nHost: x\r\n"
    + b"X: v\r\n" * 50
    + b"\r\n": "431 Request Header Fields Too Large",
}


@pytest.fixture(scope="module")
def cfg():
    return server.Server(Config()).cfg  # tinyapi's settings, not gunicorn's defaults


@pytest.mark.parametrize("head", PARSER_VERDICTS, ids=lambda head: repr(head[:60]))
def test_parser_verdict(cfg, head):
    try:
        req = next(RequestParser(cfg, [head], ("127.0.0.1", 1)))
        refusals.check_request(None, req)
    except Exception as exc:  # noqa: BLE001  (what the worker's handle() catches)
        answer = refusals.refusal(exc)
        assert answer is not None, f"{exc!r} would be a 500"
        status_line = answer.wire().split(b"\r\n")[0].decode()
        assert status_line == f"HTTP/1.1 {PARSER_VERDICTS[head]}", repr(exc)
    else:
        assert PARSER_VERDICTS[head] is OK, f"parsed, for the app: {req.method} {req.path}"


def test_server_run_keeps_base_applications_error_handling(monkeypatch):
    # What BaseApplication.run catches (see CALLS) becomes tinyapi's one-line start-up error.
    def fail(_arbiter):
        raise RuntimeError("invalid syslog address")

    monkeypatch.setattr(server.Arbiter, "run", fail)
    with pytest.raises(
        server.StartupError, match="^cannot start the server: invalid syslog address$"
    ):
        server.Server(Config()).run()
