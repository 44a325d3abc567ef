"""The memory and throughput sections, on one running container (and the host pair): Pss idle,
after 10,000 and after 100,000 requests; wrk on /alwaysok and /."""

from __future__ import annotations

import math
import time

from bench.lib import BINARY, container, host_commands, host_server, interleaved, say, wait_200
from bench.memory import container_memory, idle_memory
from bench.wrk import load, summarize, wrk


def bench_memory_and_throughput(
    results: dict, image: str, runs: int, duration: float, sections: set[str], cwd: str
) -> None:
    with container(image) as (cid, port, _):
        url = f"http://127.0.0.1:{port}"
        if "memory" in sections:
            say(
                "memory: Pss of every process of the container, idle, after 10,000 and 100,000 requests"
            )
            idle = idle_memory(cid)
            sent = load(f"{url}/alwaysok", 10_000, 0)
            time.sleep(1)
            warm = container_memory(cid)
            sent = load(f"{url}/alwaysok", 100_000, sent)
            time.sleep(1)
            after = container_memory(cid)
            results["memory"] = {
                "idle": idle,
                "after_10k": warm,
                "after_100k": after,
                "requests": sent,
                "growth_pct": (after["pss_mb"] / idle["pss_mb"] - 1) * 100,
                "growth_after_warmup_pct": (after["pss_mb"] / warm["pss_mb"] - 1) * 100,
            }
            say(
                f"  idle {idle['pss_mb']:.1f} MB, after 10k {warm['pss_mb']:.1f} MB, "
                f"after {sent:,} {after['pss_mb']:.1f} MB"
            )
        if "throughput" in sections:
            say(
                f"throughput: wrk -t2 -c32 --latency on the container, /alwaysok ({duration:g} s) "
                f"and / ({math.ceil(duration / 2)} s), {runs} runs each, interleaved"
            )
            got = interleaved(
                runs,
                {
                    "/alwaysok": lambda: wrk(f"{url}/alwaysok", duration),
                    "/": lambda: wrk(f"{url}/", math.ceil(duration / 2)),
                },
            )
            results.setdefault("throughput", {})["docker"] = {
                path: summarize(r)
                | {"seconds": duration if path == "/alwaysok" else math.ceil(duration / 2)}
                for path, r in got.items()
            }
            for path, r in results["throughput"]["docker"].items():
                say(
                    f"  {path}: {r['rps']['median']:,.0f} req/s, p99 {r['p99_ms']['median']:.1f} ms, "
                    f"errors {r['errors']['max']}"
                )
    if "throughput" in sections:
        say(
            f"throughput: dist/tinyapi vs source on the host, /alwaysok, {duration:g} s, {runs} runs each"
        )
        with (
            host_server([BINARY], cwd) as (fp, fport, fstart),
            host_server(host_commands()["source"], cwd) as (sp, sport, sstart),
        ):
            wait_200(fport, "/alwaysok", fstart, alive=lambda: fp.poll() is None)
            wait_200(sport, "/alwaysok", sstart, alive=lambda: sp.poll() is None)
            got = interleaved(
                runs,
                {
                    "frozen": lambda: wrk(f"http://127.0.0.1:{fport}/alwaysok", duration),
                    "source": lambda: wrk(f"http://127.0.0.1:{sport}/alwaysok", duration),
                },
            )
        host = {name: summarize(r) | {"seconds": duration} for name, r in got.items()}
        host["frozen_vs_source_pct"] = (
            1 - host["frozen"]["rps"]["median"] / host["source"]["rps"]["median"]
        ) * 100
        results["throughput"]["host"] = host
        say(
            f"  frozen {host['frozen']['rps']['median']:,.0f} req/s, "
            f"source {host['source']['rps']['median']:,.0f} req/s"
        )
