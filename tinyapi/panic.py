"""The deliberate crash behind /panic and a losing /chaosmonkey roll.

The original is one Go process: `log.Critical(...); os.Exit(1)`. Here the request runs in a
gunicorn worker, and the server is the master and all of its workers, so a worker cannot just
exit: the master would start a new one and carry on with status 0. Instead the worker raises a
flag in memory it shares with the master (mapped before the fork), then exits at once; the
master sees the flag when it reaps that worker and stops everything with status 1
(see server.Arbiter). Status 1, never 0, is what lets `docker run --restart on-failure` or an
orchestrator bring the service back.
"""

from __future__ import annotations

import logging
import mmap
import os

from tinyapi import logger

EXIT_STATUS = 1

log = logging.getLogger(logger.LOGGER_NAME)


class PanicFlag:
    """One byte of anonymous memory, shared across fork(): set by a worker, read by the master."""

    def __init__(self) -> None:
        self._byte = mmap.mmap(-1, 1)

    def raise_flag(self) -> None:
        self._byte[0] = 1

    def is_raised(self) -> bool:
        return self._byte[0] == 1


_FLAG = PanicFlag()


def flag() -> PanicFlag:
    return _FLAG


def exit_process(message: str) -> None:
    """Log `message` at CRITICAL, write it out, and end this process without replying.

    os._exit, not sys.exit: no cleanup may run that could answer the request or wait on
    other threads; the client sees an empty reply, as with the original.
    """
    log.critical(message, stacklevel=2)
    logger.flush()
    _FLAG.raise_flag()
    os._exit(EXIT_STATUS)
