"""wrk: one run and its figures (requests, req/s, p50/p99, errors), a number of requests sent
in runs, and the summary of several runs."""

from __future__ import annotations

import math
import re

from bench.lib import run, stats


def wrk(url: str, seconds: float, threads=2, connections=32) -> dict:
    seconds = max(1, math.ceil(seconds))  # wrk takes whole seconds
    out = run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        timeout=seconds + 60,
    ).stdout
    return parse_wrk(out)


def _duration_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(out: str) -> dict:
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: _duration_ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    socket_errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        socket_errors = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non_2xx = int(m.group(1)) if m else 0
    return {
        "requests": requests,
        "rps": rps,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "socket_errors": socket_errors,
        "non_2xx": non_2xx,
        "errors": socket_errors + non_2xx,
    }


def load(url: str, until: int, done: int) -> int:
    """Send requests with wrk until `until` have been sent in all (`done` so far)."""
    while done < until:
        # ~5,000 req/s here; ask for a little more than what is missing, 1 s at least.
        seconds = max(1.0, min(10.0, (until - done) / 5000 * 1.1))
        done += wrk(url, seconds)["requests"]
    return done


def summarize(runs: list[dict]) -> dict:
    return {key: stats([r[key] for r in runs]) for key in ("rps", "p50_ms", "p99_ms", "errors")} | {
        "requests": sum(r["requests"] for r in runs),
        "runs": runs,
    }
