"""What the benchmarks need before they start: root, wrk, a Docker engine (started if none
answers)."""

from __future__ import annotations

import os
import shutil
import subprocess

from bench.lib import BenchError, run, say
from harness import paths
from harness.docker import START_ENGINE


def preflight(sections: set[str]) -> None:
    if os.geteuid() != 0:
        raise BenchError(
            "run as root: smaps_rollup of the container's processes, the build's verify stage"
        )
    if shutil.which("wrk") is None and sections & {"memory", "throughput"}:
        raise BenchError("no wrk (apt-get install -y wrk)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        say(f"no Docker engine answers: starting one ({START_ENGINE.relative_to(paths.ROOT)})")
        run([str(START_ENGINE)])
