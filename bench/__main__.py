#!/usr/bin/env python3
"""`make bench`: how small, how quick to start and how fast to serve tinyapi is, on this machine.

A benchmark, not a test: it prints and records numbers, and checks them against the targets of
issues 4 and 16 without failing on them. Writes bench/results/latest.json, bench/results/latest.md and
bench/results/image-sizes.png. bench/README.md says what each number means and how it is taken.

Every timing is the median of --runs runs (5 by default), with min and max beside it; the
commands compared with each other run interleaved (A B A B ...) so that drift hits both.

  sizes         the image (unpacked, and compressed: `docker save | gzip -6`), the binary, and
                what is inside the binary (staticx's zstd archive holding the C libraries and
                PyInstaller's one-dir program: interpreter, libraries, extension modules, data
                and the PYZ of modules)
  startup-host  process start to the first 200 on /alwaysok: dist/tinyapi (its unpacked copy
                reused, and at a first start) vs the same server from source
                (.venv/bin/python -m tinyapi), same environment, polled every 5 ms
  startup-docker  `docker run -d` to the first 200 through a port published on 127.0.0.1:
                tinyapi:latest vs the same server from source in a container (built here from
                the builder base) vs busybox httpd in a FROM scratch image built here;
                then `docker stop` of each tinyapi container
  memory        Pss summed over every process of the container (smaps_rollup of each pid of
                `docker top`), idle, after 10,000 and after 100,000 requests
  throughput    wrk -t2 -c32 --latency on /alwaysok and / of the container, and on /alwaysok of
                dist/tinyapi vs source on the host (the fair pair)
  probe         one `tinyapi probe` (the image's health check): wall and CPU time, peak memory,
                bytes written to /tmp, on the host and through the image; the share of one
                core at the HEALTHCHECK's interval
  build         clean and no-change `make binary`, in a copy of the sources (dist/ is left
                alone); every clean build must give the same sha256 as dist/tinyapi

Usage: python -m bench [--quick] [--runs N] [--only SECTION ...]   (run as root, with Docker)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from bench.build import bench_build
from bench.chart import chart
from bench.lib import LABEL, REPO, RESULTS, BenchError, run, say
from bench.preflight import preflight
from bench.probe import bench_probe
from bench.report import to_markdown
from bench.sizes import bench_sizes
from bench.startup import bench_startup_docker, bench_startup_host
from bench.steady_state import bench_memory_and_throughput
from bench.targets import check_targets, fmt_value
from harness.docker import DockerError
from harness.paths import IMAGE

SECTIONS = ("sizes", "startup-host", "startup-docker", "memory", "throughput", "probe", "build")


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def machine() -> dict:
    docker = subprocess.run(
        ["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": docker,
        "wrk": "wrk -t2 -c32 --latency",
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="shorter wrk runs (3 s), one clean build: for trying a change, not for the record",
    )
    p.add_argument("--runs", type=int, default=5, help="runs per timing (default 5)")
    p.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    p.add_argument("--output", default=RESULTS, help="directory for latest.json/.md and the chart")
    p.add_argument(
        "--image", help="measure this image instead of building tinyapi:latest (make image)"
    )
    args = p.parse_args(argv)
    sections = set(args.only or SECTIONS)
    duration = 3.0 if args.quick else 10.0
    # A clean build includes the interpreter (minutes each): two are enough for a median.
    clean_runs = 1 if args.quick else min(args.runs, 2)

    started = time.monotonic()
    load_before = loadavg()
    if load_before > 1.5:
        say(
            f"the load average is {load_before:.1f} on {os.cpu_count()} CPUs: something else is "
            "running, and the timings will show it (they record it)"
        )
    try:
        preflight(sections)
        image = args.image or IMAGE
        if not args.image:
            say("make image (builds dist/tinyapi first, if anything changed)")
            run(["make", "-C", REPO, "--no-print-directory", "image"], timeout=1800)
        commit = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = bool(
            run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        )
        results = {
            "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit,
            "dirty": dirty,
            "machine": machine(),
            "settings": {
                "runs": args.runs,
                "quick": args.quick,
                "wrk_seconds": duration,
                "clean_build_runs": clean_runs,
                "sections": sorted(sections),
            },
        }
        with tempfile.TemporaryDirectory(prefix="tinyapi-bench-cwd-") as cwd:  # no config.yml here
            if "sizes" in sections:
                bench_sizes(results, image)
            if "startup-host" in sections:
                bench_startup_host(results, args.runs, cwd)
            if "startup-docker" in sections:
                bench_startup_docker(results, args.runs, image)
            if sections & {"memory", "throughput"}:
                bench_memory_and_throughput(results, image, args.runs, duration, sections, cwd)
            if "probe" in sections:
                bench_probe(results, image, args.runs)
        if "build" in sections:
            bench_build(results, args.runs, clean_runs)
    except (BenchError, DockerError) as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1
    finally:
        leftovers = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={LABEL}"], capture_output=True, text=True
        ).stdout.split()
        if leftovers:
            subprocess.run(["docker", "rm", "-f", *leftovers], capture_output=True)

    results["machine"]["loadavg_before"] = load_before
    results["targets"] = check_targets(results)
    results["seconds"] = round(time.monotonic() - started, 1)
    os.makedirs(args.output, exist_ok=True)
    json_path = os.path.join(args.output, "latest.json")
    with open(json_path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    os.replace(json_path + ".tmp", json_path)
    if "sizes" in results:
        chart(results, os.path.join(args.output, "image-sizes.png"))
    with open(os.path.join(args.output, "latest.md"), "w") as f:
        f.write(to_markdown(results))
    say(
        f"done in {results['seconds']:.0f} s: {os.path.relpath(args.output, REPO)}/latest.md, latest.json"
        + (", image-sizes.png" if "sizes" in results else "")
    )
    for t in results["targets"]:
        print(
            f"  {'ok ' if t['met'] else 'MISS'} {t['target']}: {fmt_value(t['measured'], t['unit'])} "
            f"(target {'<=' if t['kind'] == 'max' else '>='} {fmt_value(t['limit'], t['unit'])})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
