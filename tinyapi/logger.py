"""Logging in the original's format, on stdout, for tinyapi and gunicorn alike:

    2006/01/02 15:04:05 handlers.py:33 [CRIT](01a) RoutePanic invoked. Exiting

The id in brackets is a per-process sequence number in hex (op/go-logging's %{id:03x}); each
gunicorn worker counts its own lines, so read it together with the process, not across them.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time

LOGGER_NAME = "tinyapi"

# op/go-logging prints four letters.
_LEVELS = {
    logging.DEBUG: "DEBU",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERRO",
    logging.CRITICAL: "CRIT",
}


class GoFormatter(logging.Formatter):
    """`%Y/%m/%d %H:%M:%S file:line [LEVL](seq) message`, local time like Go's log package."""

    def __init__(self) -> None:
        super().__init__()
        self._sequence = itertools.count(1)

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(record.created))
        level = _LEVELS.get(record.levelno, record.levelname[:4])
        line = (
            f"{stamp} {record.filename}:{record.lineno} [{level}]"
            f"({next(self._sequence):03x}) {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(level: int = logging.INFO) -> logging.Logger:
    """Send every logger of the process (tinyapi's, and gunicorn's, which propagate to the root)
    to stdout in the Go format. StreamHandler flushes after each line, so nothing is lost when
    the process exits, or is made to exit by /panic."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, GoFormatter) for h in root.handlers):
        out = logging.StreamHandler(sys.stdout)
        out.setFormatter(GoFormatter())
        root.handlers = [out]
    root.setLevel(level)
    return logging.getLogger(LOGGER_NAME)


def access(environ: dict, route: str, status: int, seconds: float) -> None:
    """One line per request, as the original's logger.go: remote address, method, URI, route
    name (or -), then the status, which the original left out, and the duration."""
    remote = environ.get("REMOTE_ADDR", "-")
    if environ.get("REMOTE_PORT"):
        remote = f"{remote}:{environ['REMOTE_PORT']}"
    uri = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    logging.getLogger(LOGGER_NAME).info(
        "%s %s %s %s %d %s",
        remote,
        environ.get("REQUEST_METHOD"),
        uri,
        route,
        status,
        go_duration(seconds),
    )


def flush() -> None:
    """Write out everything logged so far: called just before a deliberate exit."""
    for each in logging.getLogger().handlers:
        each.flush()
    sys.stdout.flush()


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it: 950ns, 7.77µs, 1.5ms, 2.000001s."""
    nanos = round(seconds * 1e9)
    if nanos < 1000:
        return f"{nanos}ns"
    for unit, size in (("µs", 10**3), ("ms", 10**6), ("s", 10**9)):
        if nanos < size * 1000 or unit == "s":
            whole, frac = divmod(nanos, size)
            digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
            return f"{whole}.{digits}{unit}" if digits else f"{whole}{unit}"
    raise AssertionError("unreachable")
