"""`tinyapi probe [URL]`: is the server answering? The image's health check, which has no shell
and no curl to run one with: HEALTHCHECK CMD ["/bin/tinyapi", "probe"].

It GETs URL (by default the server's own /alwaysok, on the port the same config and environment
give the server) and exits 0 on a 200 within --timeout seconds; otherwise it prints one line
naming the URL and what went wrong, and exits 1. Usage and config mistakes exit 2.

It imports the standard library and tinyapi.config only, never Flask or gunicorn: a probe costs
what starting the binary costs, and nothing more (tests/test_probe.py checks the imports).
"""

from __future__ import annotations

import argparse
import http.client
import signal
import socket
import sys
import urllib.parse

from tinyapi import __version__, config

PATH = "/alwaysok"  # answers 200 from the server itself; /healthcheck calls the internet
DEFAULT_TIMEOUT = 2.0  # the HTTP exchange only; the HEALTHCHECK's timeout adds the start-up
MAX_BODY = 64 * 1024  # read the answer to its end, but never a stream without one
EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_USAGE = 0, 1, 2
# A wildcard bind is reached on loopback; any other address, as it is.
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class _Late(Exception):
    """The deadline passed (SIGALRM): whatever the socket was doing, the answer is too late."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="tinyapi probe",
        description="GET URL and exit 0 if it answers 200 within the timeout; otherwise print "
        "one line saying why and exit 1. The image's HEALTHCHECK runs it. "
        "Standard library only: it starts neither Flask nor gunicorn.",
        epilog="exit status: 0 healthy (200), 1 unhealthy (one line on stderr), "
        "2 bad usage or config",
    )
    parser.add_argument(
        "url",
        nargs="?",
        metavar="URL",
        help=f"what to GET (default: http://127.0.0.1:<server.bind_port>{PATH}, "
        "the port from the config and environment the server reads)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds the whole HTTP exchange may take (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="the server's config file, if it was started with --config FILE",
    )
    args = parser.parse_args(argv)
    if args.url is not None:
        parts = urllib.parse.urlsplit(args.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            parser.error(f"URL must be http://HOST[:PORT][/PATH] or https://..., got {args.url!r}")
        try:
            _ = parts.port  # urllib checks the port only when asked
        except ValueError:
            parser.error(f"URL has a bad port: {args.url!r}")
    return args


def default_url(settings: config.Config) -> str:
    host = _LOOPBACK.get(settings.server.bind_address, settings.server.bind_address)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.server.bind_port}{PATH}"


def _on_alarm(signum, frame):
    raise _Late


def check(url: str, timeout: float) -> str | None:
    """None if url answers 200 within timeout seconds; else what went wrong, in a few words."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    # The socket's timeout bounds each step; the alarm bounds them all together (a server
    # trickling its answer a byte a second would otherwise never time out).
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        conn.request(
            "GET",
            target,
            headers={"User-Agent": f"tinyapi-probe/{__version__}", "Connection": "close"},
        )
        response = conn.getresponse()
        response.read(MAX_BODY)
    except (_Late, TimeoutError):
        return f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return "connection refused (nothing listens there)"
    except socket.gaierror as err:
        return f"cannot resolve {parts.hostname}: {err.strerror}"
    except http.client.RemoteDisconnected:
        return "connection closed without an answer"
    except http.client.HTTPException as err:
        return f"not an HTTP answer ({type(err).__name__}: {err})"
    except OSError as err:
        return err.strerror or str(err) or type(err).__name__
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        conn.close()
    if response.status != 200:
        return f"answered {response.status} {response.reason}".rstrip()
    return None


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    url = args.url
    if url is None:
        try:
            url = default_url(config.load(args.config))
        except config.ConfigError as err:
            print(f"tinyapi probe: error: {err}", file=sys.stderr)
            return EXIT_USAGE
    try:
        problem = check(url, args.timeout)
    except _Late:  # the alarm landed between the request and its clean-up
        problem = f"no answer within {args.timeout:g} s"
    if problem:
        print(f"tinyapi probe: GET {url}: {problem}", file=sys.stderr)
        return EXIT_UNHEALTHY
    return EXIT_HEALTHY
