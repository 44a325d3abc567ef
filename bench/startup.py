"""The start-up sections: process start to the first 200 on the host (dist/tinyapi vs the same
server from source, and decoding staticx's archive alone), and `docker run` to the first 200
(tinyapi vs busybox httpd), then `docker stop`."""
from __future__ import annotations

import lzma
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from bench.lib import (
    BASELINE_IMAGE,
    BINARY,
    build_baseline_image,
    container,
    host_commands,
    interleaved,
    run,
    say,
    stats,
    time_to_200,
)


def archive_files(scratch: str) -> dict:
    """staticx's archive of dist/tinyapi as a file, as it is (xz), and recompressed with
    `zstd -19 --long=24` when zstd is installed (what a staticx that decoded zstd would
    carry): {"xz"|"zstd": (decode command, archive bytes)}."""
    from elftools.elf.elffile import ELFFile

    with open(BINARY, "rb") as f:
        archive_xz = ELFFile(f).get_section_by_name(".staticx.archive").data()
    xz_path = os.path.join(scratch, "archive.tar.xz")
    with open(xz_path, "wb") as f:
        f.write(archive_xz)
    files = {"xz": (["xz", "-dc", xz_path], len(archive_xz))}
    if shutil.which("zstd") is None:
        say("  no zstd (apt-get install -y zstd): the zstd comparison is left out")
        return files
    tar_path, zst_path = os.path.join(scratch, "archive.tar"), os.path.join(scratch, "archive.tar.zst")
    with open(tar_path, "wb") as f:
        f.write(lzma.decompress(archive_xz))
    say("  recompressing staticx's archive with zstd -19 --long=24 (~10 s)")
    run(["zstd", "-q", "-19", "--long=24", tar_path, "-o", zst_path])
    files["zstd"] = (["zstd", "-dc", "--long=24", zst_path], os.path.getsize(zst_path))
    return files


def bench_startup_host(results: dict, runs: int, cwd: str) -> None:
    say(f"startup-host: start to first 200, dist/tinyapi vs source, {runs} runs each, interleaved;"
        " and decoding staticx's archive alone")

    def decode(cmd):
        def measure():
            started = time.monotonic()
            run(cmd, stdout=subprocess.DEVNULL, capture_output=False)
            return time.monotonic() - started
        return measure

    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-") as scratch:
        archives = archive_files(scratch)
        commands = {name: time_to_200(cmd, cwd) for name, cmd in host_commands().items()}
        commands.update({name: decode(cmd) for name, (cmd, _) in archives.items()})
        times = interleaved(runs, commands)
    frozen, source = stats(times["frozen"]), stats(times["source"])
    results["startup_host"] = {
        "frozen_s": frozen, "source_s": source, "ratio": frozen["median"] / source["median"],
        "decode": {name: {"archive_bytes": size, "s": stats(times[name])}
                   for name, (_, size) in archives.items()},
    }
    say(f"  frozen {frozen['median'] * 1000:.0f} ms, source {source['median'] * 1000:.0f} ms, "
        + ", ".join(f"{name} decode {stats(times[name])['median'] * 1000:.0f} ms" for name in archives))


def bench_startup_docker(results: dict, runs: int, image: str) -> None:
    say(f"startup-docker: `docker run -d` to first 200, tinyapi vs busybox httpd, {runs} runs each")
    build_baseline_image()
    stops = []

    def tinyapi():
        with container(image) as (cid, _, took):
            t = time.monotonic()
            run(["docker", "stop", cid])
            stops.append(time.monotonic() - t)
            return took

    def busybox():
        # Removed unstopped: busybox as PID 1 ignores SIGTERM, `docker stop` would wait 10 s.
        with container(BASELINE_IMAGE, path="/") as (_, _, took):
            return took

    times = interleaved(runs, {"tinyapi": tinyapi, "busybox": busybox})
    t, b = stats(times["tinyapi"]), stats(times["busybox"])
    baseline_bytes = int(run(["docker", "image", "inspect", "-f", "{{.Size}}",
                              BASELINE_IMAGE]).stdout)
    results["startup_docker"] = {"image": image, "tinyapi_s": t, "busybox_s": b,
                                 "ratio": t["median"] / b["median"],
                                 "busybox_image_bytes": baseline_bytes}
    results["docker_stop_s"] = stats(stops)
    say(f"  tinyapi {t['median'] * 1000:.0f} ms, busybox {b['median'] * 1000:.0f} ms, "
        f"docker stop {statistics.median(stops) * 1000:.0f} ms")
