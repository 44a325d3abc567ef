"""`make soak`: the container at saturation for a while, and nothing may give.

wrk (-t2 -c64) on /alwaysok through the port published on 127.0.0.1, for --seconds (60 by
default) after a 5-second warm-up. It must end with zero socket errors, zero answers other than
2xx, the container still running, and its memory (Pss summed over its processes) less than 10%
above what it was after the warm-up: the first requests make each worker build its own copies
of what it touches, once; growth that goes on after that is a leak. The growth from the idle
container is printed too.

Usage: python -m bench.soak [--seconds N] [--image IMAGE]   (exit 1 when an assertion fails)
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.lib import IMAGE, BenchError, container, say
from bench.memory import container_memory, idle_memory
from bench.preflight import preflight
from bench.wrk import wrk
from harness.docker import DockerError, container_running

WARM_UP_SECONDS = 5
CONNECTIONS = 64  # twice the bench's 32: past saturation for 2 workers x 4 threads
MAX_GROWTH_PCT = 10.0


def soak(image: str, seconds: float) -> tuple[dict, list[str]]:
    """Run the soak; (figures, failures)."""
    with container(image) as (cid, port, _):
        url = f"http://127.0.0.1:{port}/alwaysok"
        idle = idle_memory(cid)["pss_mb"]
        warm_up = wrk(url, WARM_UP_SECONDS, connections=CONNECTIONS)
        warm = container_memory(cid)["pss_mb"]
        say(f"soak: {seconds:g} s of wrk -t2 -c{CONNECTIONS} on {url}")
        load = wrk(url, seconds, connections=CONNECTIONS)
        time.sleep(0.5)  # let the last connections close before reading memory
        after = container_memory(cid)["pss_mb"]
        running = container_running(cid)
    figures = {
        "seconds": seconds,
        "requests": load["requests"],
        "rps": load["rps"],
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "socket_errors": warm_up["socket_errors"] + load["socket_errors"],
        "non_2xx": warm_up["non_2xx"] + load["non_2xx"],
        "pss_idle_mb": idle,
        "pss_warm_mb": warm,
        "pss_after_mb": after,
        "growth_pct": 100 * (after - warm) / warm,
        "growth_from_idle_pct": 100 * (after - idle) / idle,
        "still_running": running,
    }
    failures = []
    if figures["socket_errors"]:
        failures.append(f"{figures['socket_errors']} socket errors")
    if figures["non_2xx"]:
        failures.append(f"{figures['non_2xx']} answers other than 2xx")
    if figures["growth_pct"] >= MAX_GROWTH_PCT:
        failures.append(f"memory grew {figures['growth_pct']:.1f}% (limit {MAX_GROWTH_PCT:g}%)")
    if not running:
        failures.append("the container stopped")
    return figures, failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=60, help="how long to soak (default 60)")
    parser.add_argument("--image", default=IMAGE, help=f"the image (default {IMAGE})")
    args = parser.parse_args(argv)
    try:
        preflight({"memory"})
        f, failures = soak(args.image, args.seconds)
    except (BenchError, DockerError) as err:  # DockerError: `docker run` refused
        print(f"soak: {err}", file=sys.stderr)
        return 2
    print(
        f"soak: {f['requests']:,} requests in {f['seconds']:g} s: {f['rps']:,.0f} req/s, "
        f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms"
    )
    print(
        f"soak: socket errors {f['socket_errors']}, non-2xx {f['non_2xx']}, "
        f"container {'running' if f['still_running'] else 'STOPPED'}"
    )
    print(
        f"soak: memory (Pss) idle {f['pss_idle_mb']:.1f} MB, after warm-up {f['pss_warm_mb']:.1f} MB, "
        f"after the soak {f['pss_after_mb']:.1f} MB: {f['growth_pct']:+.1f}% "
        f"({f['growth_from_idle_pct']:+.1f}% from idle)"
    )
    if failures:
        print(f"soak: FAILED: {'; '.join(failures)}", file=sys.stderr)
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
