"""The start-up sections: process start to the first 200 on the host (dist/tinyapi, at its first
start and again, vs the same server from source, and decoding staticx's archive alone), and
`docker run` to the first 200 (tinyapi vs the same server from source in a container, and
busybox httpd, Docker's floor), then `docker stop`."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time

from bench.baselines import (
    BASELINE_IMAGE,
    SOURCE_IMAGE,
    build_baseline_image,
    build_source_image,
)
from bench.lib import (
    BINARY,
    container,
    host_commands,
    interleaved,
    run,
    say,
    stats,
    time_to_200,
)
from harness import staticx_archive


def archive_file(scratch: str) -> tuple[list[str], int, str]:
    """staticx's archive of dist/tinyapi as a file: (its decode command, its bytes, its
    compression)."""
    data = staticx_archive.section(BINARY)
    kind = staticx_archive.compression(data)
    path = os.path.join(scratch, "archive")
    with open(path, "wb") as f:
        f.write(data)
    decode = {
        "zstd": ["zstd", "-dc", "--long=31", path],
        "xz": ["xz", "-dc", path],
        "none": ["cat", path],
    }[kind]
    return decode, len(data), kind


def bench_startup_host(results: dict, runs: int, cwd: str) -> None:
    say(
        f"startup-host: start to first 200, dist/tinyapi (first start and again) vs source, {runs} "
        "runs each, interleaved; and decoding staticx's archive alone"
    )

    def decode(cmd):
        def measure():
            started = time.monotonic()
            run(cmd, stdout=subprocess.DEVNULL, capture_output=False)
            return time.monotonic() - started

        return measure

    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-") as scratch:
        cmd, size, kind = archive_file(scratch)
        # Again: a TMPDIR that keeps the unpacked copy between starts, as /tmp does on a host
        # (made by a first start before the runs). First: a new, empty TMPDIR for each run.
        again = os.path.join(scratch, "again")
        os.mkdir(again)
        first_dirs = []

        def first_tmpdir():
            first_dirs.append(tempfile.mkdtemp(prefix="first-", dir=scratch))
            return {"TMPDIR": first_dirs[-1]}

        commands = host_commands()
        time_to_200(commands["frozen"], cwd, env={"TMPDIR": again})()
        times = interleaved(
            runs,
            {
                "frozen": time_to_200(commands["frozen"], cwd, env={"TMPDIR": again}),
                "frozen_first": time_to_200(commands["frozen"], cwd, env=first_tmpdir),
                "source": time_to_200(commands["source"], cwd),
                "decode": decode(cmd),
            },
        )
    frozen, first, source = (
        stats(times["frozen"]),
        stats(times["frozen_first"]),
        stats(times["source"]),
    )
    results["startup_host"] = {
        "frozen_s": frozen,
        "frozen_first_s": first,
        "source_s": source,
        "ratio": frozen["median"] / source["median"],
        "ratio_first": first["median"] / source["median"],
        "decode": {kind: {"archive_bytes": size, "s": stats(times["decode"])}},
    }
    say(
        f"  frozen {frozen['median'] * 1000:.0f} ms (first start {first['median'] * 1000:.0f} ms), "
        f"source {source['median'] * 1000:.0f} ms, {kind} decode {stats(times['decode'])['median'] * 1000:.0f} ms"
    )


def bench_startup_docker(results: dict, runs: int, image: str) -> None:
    say(
        f"startup-docker: `docker run -d` to first 200, tinyapi vs the server from source in a "
        f"container vs busybox httpd, {runs} runs each, interleaved"
    )
    build_baseline_image()
    build_source_image()
    stops = []

    def tinyapi():
        with container(image) as (cid, _, took):
            t = time.monotonic()
            run(["docker", "stop", cid])
            stops.append(time.monotonic() - t)
            return took

    def source():
        with container(SOURCE_IMAGE) as (_, _, took):
            return took

    def busybox():
        # Removed unstopped: busybox as PID 1 ignores SIGTERM, `docker stop` would wait 10 s.
        with container(BASELINE_IMAGE, path="/") as (_, _, took):
            return took

    times = interleaved(runs, {"tinyapi": tinyapi, "source": source, "busybox": busybox})
    t, src, b = stats(times["tinyapi"]), stats(times["source"]), stats(times["busybox"])
    baseline_bytes = int(
        run(["docker", "image", "inspect", "-f", "{{.Size}}", BASELINE_IMAGE]).stdout
    )
    results["startup_docker"] = {
        "image": image,
        "tinyapi_s": t,
        "source_s": src,
        "busybox_s": b,
        "ratio": t["median"] / src["median"],
        "ratio_busybox": t["median"] / b["median"],
        "source_ratio_busybox": src["median"] / b["median"],
        "busybox_image_bytes": baseline_bytes,
    }
    results["docker_stop_s"] = stats(stops)
    say(
        f"  tinyapi {t['median'] * 1000:.0f} ms, source {src['median'] * 1000:.0f} ms, "
        f"busybox {b['median'] * 1000:.0f} ms, docker stop {statistics.median(stops) * 1000:.0f} ms"
    )
