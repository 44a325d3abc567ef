#!/usr/bin/env python3
"""`make bench`: how small, how quick to start and how fast to serve tinyapi is, on this machine.

A benchmark, not a test: it prints and records numbers, and checks them against the targets of
issue 4 without failing on them. Writes bench/results/latest.json, bench/results/latest.md and
bench/results/image-sizes.png. bench/README.md says what each number means and how it is taken.

Every timing is the median of --runs runs (5 by default), with min and max beside it; the
commands compared with each other run interleaved (A B A B ...) so that drift hits both.

  sizes         the image, the binary, and what is inside the binary (staticx's xz archive
                holding the C libraries and the PyInstaller program, whose archive holds the
                interpreter, libraries, extension modules, data and the PYZ of modules)
  startup-host  process start to the first 200 on /alwaysok: dist/tinyapi vs the same server
                from source (.venv/bin/python -m tinyapi), same environment, polled every 5 ms
  startup-docker  `docker run -d` to the first 200 through a port published on 127.0.0.1:
                tinyapi:latest vs busybox httpd in a FROM scratch image built here;
                then `docker stop` of each tinyapi container
  memory        Pss summed over every process of the container (smaps_rollup of each pid of
                `docker top`), idle, after 10,000 and after 100,000 requests
  throughput    wrk -t2 -c32 --latency on /alwaysok and / of the container, and on /alwaysok of
                dist/tinyapi vs source on the host (the fair pair)
  build         clean and no-change `make binary`, in a copy of the sources (dist/ is left
                alone); every clean build must give the same sha256 as dist/tinyapi

Usage: bench/bench.py [--quick] [--runs N] [--only SECTION ...]   (run as root, with Docker)
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import http.client
import io
import json
import lzma
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
BINARY = os.path.join(REPO, "dist", "tinyapi")
IMAGE = f"{os.environ.get('TINYAPI_IMAGE_NAME', 'tinyapi')}:latest"  # make image IMAGE_NAME=...
BASELINE_IMAGE = "tinyapi-bench/busybox-httpd:latest"
LABEL = "tinyapi-bench=1"  # every container the bench starts carries it (cleanup)
SECTIONS = ("sizes", "startup-host", "startup-docker", "memory", "throughput", "build")

# The article's table ("Building Tiny Secure Docker Containers", linuxctl.com, base images on
# Docker Hub as of its writing), in bytes as `docker images` counts them (10^6), and the Go
# original's image as the brief gives it.
ARTICLE_URL = "https://linuxctl.com/p/building-tiny-secure-docker-containers/"
ARTICLE_IMAGES = [
    ("CentOS 7", 70e6), ("CentOS 6", 69e6), ("Debian 9", 42e6), ("Debian 8", 51e6),
    ("Debian 7", 36e6), ("Ubuntu 16.10", 41e6), ("Ubuntu 16.04", 50e6), ("Ubuntu 14.04", 66e6),
    ("OpenSuse 42.2", 48e6), ("OpenSuse 42.1", 38e6), ("Alpine 3.5", 2e6), ("Alpine 3.4", 2e6),
    ("busybox 1.26-musl", 723e3),
]
GO_ORIGINAL = ("go-tinyapi (the original, FROM scratch)", 9.58e6)

# Issue 4's targets: (key, label, limit, unit, "max"|"min").
TARGETS = [
    ("image_bytes", "image size", 8.0e6, "MB", "max"),
    ("startup_ratio_host", "frozen start to first 200 / from source", 1.5, "x", "max"),
    ("startup_ratio_docker", "`docker run` to first 200 / busybox baseline", 2.0, "x", "max"),
    ("memory_idle_mb", "idle memory of the container (Pss)", 45.0, "MB", "max"),
    ("memory_growth_pct", "growth after 100,000 requests", 10.0, "%", "max"),
    ("rps_alwaysok", "/alwaysok req/s (wrk -t2 -c32 -d10s)", 2000.0, "req/s", "min"),
    ("errors_alwaysok", "/alwaysok errors", 0, "", "max"),
    ("p99_alwaysok_ms", "/alwaysok p99", 50.0, "ms", "max"),
    ("frozen_vs_source_pct", "frozen req/s vs source, on the host", 5.0, "% slower", "max"),
    ("build_clean_s", "clean `make binary`", 90.0, "s", "max"),
    ("build_nochange_s", "no-change `make binary`", 5.0, "s", "max"),
]


class BenchError(Exception):
    pass


def say(msg: str) -> None:
    print(f"==> bench: {msg}", flush=True)


def stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def interleaved(runs: int, commands: dict) -> dict:
    """Run each callable of commands once per round, in turn (A B A B ...); their results
    by name, in run order."""
    out = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            out[name].append(command())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    done = subprocess.run(cmd, **kwargs)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {done.returncode}:\n"
                         f"{(done.stdout or '')[-2000:]}{(done.stderr or '')[-2000:]}")
    return done


def answers_200(port: int, path: str) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


def wait_200(port: int, path: str, started: float, alive=lambda: True, timeout=60.0) -> float:
    """Seconds from `started` (time.monotonic()) to the first 200, polling every 5 ms."""
    while True:
        if answers_200(port, path):
            return time.monotonic() - started
        if not alive():
            raise BenchError(f"the server on port {port} died before answering {path}")
        if time.monotonic() - started > timeout:
            raise BenchError(f"no 200 from :{port}{path} within {timeout:.0f} s")
        time.sleep(0.005)


# --- sizes -------------------------------------------------------------------------------

XZ_FILTERS = [{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2, "preset": 6}]  # staticx's


def xz_size(data: bytes) -> int:
    """Size of data xz-compressed alone, as staticx compresses its archive."""
    return len(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                             filters=XZ_FILTERS))


STDLIB = set(sys.stdlib_module_names)
PYI_RUNTIME = ("pyimod", "pyiboot", "pyi_rth_", "struct", "__main__")


def classify_pkg_entry(name: str, typ: str) -> tuple[str, str]:
    """(category, item) of an entry of PyInstaller's archive."""
    base = os.path.basename(name)
    if base.startswith("libpython"):
        return "interpreter", base
    if name == "base_library.zip":
        return "stdlib", "base_library.zip (modules Python needs to start)"
    if typ in "ms" or name.startswith(PYI_RUNTIME):
        return "bootloaders", "PyInstaller bootstrap modules"
    if "lib-dynload/" in name:
        return "stdlib", "extension modules (lib-dynload/*.so)"
    if ".dist-info/" in name:
        return "Python packages", name.split("-")[0].lower() + " (dist-info)"
    if "/" in name:  # a package's own extension module or data
        return "Python packages", name.split("/")[0].lower() + " (" + base + ")"
    if re.search(r"\.so(\.\d+)*$", name):
        return "native libraries", base
    return "other", name


def classify_module(name: str) -> tuple[str, str]:
    top = name.split(".")[0]
    if top == "tinyapi":
        return "tinyapi", "tinyapi (its own modules)"
    if top in STDLIB or top.startswith("_"):
        return "stdlib", "modules in the PYZ"
    return "Python packages", top.lower()


def _outside(size: int, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The (start, end) spans of [0, size) that no range covers."""
    spans, at = [], 0
    for start, end in sorted(ranges):
        if start > at:
            spans.append((at, start))
        at = max(at, end)
    if at < size:
        spans.append((at, size))
    return spans


def inside_binary(binary: str) -> dict:
    """Where the bytes of the binary go: every part with its size as stored (what staticx
    unpacks at each start) and xz-compressed alone with staticx's filters (roughly what it
    costs in the binary: the archive is one xz stream, so its parts share a little). The
    staticx bootloader is not compressed: both columns give its size."""
    from elftools.elf.elffile import ELFFile
    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    total = os.path.getsize(binary)
    with open(binary, "rb") as f:
        archive_xz = ELFFile(f).get_section_by_name(".staticx.archive").data()
    raw_tar = lzma.decompress(archive_xz)
    parts: dict[tuple[str, str], list] = {}  # (category, item) -> [stored bytes, [data]]

    def add(category: str, item: str, data: bytes) -> None:
        entry = parts.setdefault((category, item), [0, []])
        entry[0] += len(data)
        entry[1].append(data)

    with tarfile.open(fileobj=io.BytesIO(raw_tar)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        program_name = members[".staticx.prog"].linkname
        for m in tar.getmembers():
            if m.isfile() and m.name != program_name:
                add("native libraries", f"{m.name} (staticx's)", tar.extractfile(m).read())
        program = tar.extractfile(members[program_name]).read()

    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-") as scratch:
        program_path = os.path.join(scratch, "program")
        with open(program_path, "wb") as out:
            out.write(program)
        pkg = CArchiveReader(program_path)
        base = pkg._start_offset
        used = []
        for name, (dpos, dlen, _, _, typ) in pkg.toc.items():
            used.append((base + dpos, base + dpos + dlen))
            data = program[base + dpos:base + dpos + dlen]
            if typ != "z":
                add(*classify_pkg_entry(name, typ), pkg.extract(name))
                continue
            pyz_path = os.path.join(scratch, "pyz")
            with open(pyz_path, "wb") as out:
                out.write(data)
            pyz_used = []
            for module, (_, offset, length) in ZlibArchiveReader(pyz_path).toc.items():
                pyz_used.append((offset, offset + length))
                add(*classify_module(module), data[offset:offset + length])
            for a, b in _outside(len(data), pyz_used):
                add("bootloaders", "PyInstaller's indexes (archive and PYZ tables)", data[a:b])
        for a, b in _outside(len(program), used):
            add("bootloaders", "PyInstaller bootloader (+ its archive's table)", program[a:b])

    rows = [{"category": "bootloaders", "item": "staticx bootloader (not compressed)",
             "raw": total - len(archive_xz), "xz": total - len(archive_xz)}]
    for (category, item), (raw, chunks) in parts.items():
        if raw:
            rows.append({"category": category, "item": item, "raw": raw,
                         "xz": xz_size(b"".join(chunks))})
    categories: dict[str, dict] = {}
    for row in rows:
        c = categories.setdefault(row["category"], {"raw": 0, "xz": 0})
        c["raw"] += row["raw"]
        c["xz"] += row["xz"]
    return {
        "binary_bytes": total,
        "staticx_bootloader_bytes": total - len(archive_xz),
        "staticx_archive_xz_bytes": len(archive_xz),
        "staticx_archive_raw_bytes": len(raw_tar),
        "pyinstaller_program_bytes": len(program),
        "parts": sorted(rows, key=lambda r: (r["category"], -r["xz"])),
        "categories": categories,
    }


def bench_sizes(results: dict) -> None:
    say("sizes: image, binary, and what is inside the binary")
    image_bytes = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", IMAGE]).stdout)
    files = []
    export = tempfile.mkdtemp(prefix="tinyapi-bench-")
    try:
        name = f"tinyapi-bench-export-{os.getpid()}"
        run(["docker", "create", "--label", LABEL, "--name", name, IMAGE])
        try:
            tar_path = os.path.join(export, "image.tar")
            run(["docker", "export", "-o", tar_path, name])
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        with tarfile.open(tar_path) as tar:
            for m in tar.getmembers():
                # Not what Docker adds to every container: /.dockerenv, /dev, /etc/hosts ...
                if m.isfile() and not m.name.startswith((".dockerenv", "dev/", "etc/hosts",
                                                         "etc/hostname", "etc/resolv.conf")):
                    files.append({"path": "/" + m.name, "bytes": m.size})
    finally:
        shutil.rmtree(export)
    inside = inside_binary(BINARY)
    results["sizes"] = {
        "image": IMAGE,
        "image_bytes": image_bytes,
        "image_files": sorted(files, key=lambda f: -f["bytes"]),
        **inside,
    }
    say(f"  image {image_bytes:,} B, binary {inside['binary_bytes']:,} B")


# --- start-up on the host -------------------------------------------------------------------

def host_env(port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYAPI_")}
    env.update(TINYAPI_SERVER_BIND_ADDRESS="127.0.0.1", TINYAPI_SERVER_BIND_PORT=str(port))
    return env


@contextlib.contextmanager
def host_server(cmd: list[str], cwd: str, port: int | None = None):
    """Start cmd (a tinyapi) in its own session; yield (process, port, start time)."""
    port = port or free_port()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=host_env(port), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        yield proc, port, started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def host_commands() -> dict:
    return {"frozen": [BINARY], "source": [os.path.join(REPO, ".venv", "bin", "python"), "-m", "tinyapi"]}


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

    def once(cmd):
        def measure():
            with host_server(cmd, cwd) as (proc, port, started):
                return wait_200(port, "/alwaysok", started, alive=lambda: proc.poll() is None)
        return measure

    def decode(cmd):
        def measure():
            started = time.monotonic()
            run(cmd, stdout=subprocess.DEVNULL, capture_output=False)
            return time.monotonic() - started
        return measure

    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-") as scratch:
        archives = archive_files(scratch)
        commands = {name: once(cmd) for name, cmd in host_commands().items()}
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


# --- Docker -----------------------------------------------------------------------------------

def build_baseline_image() -> None:
    """busybox httpd FROM scratch: Debian's busybox-static and one page to answer 200 with."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise BenchError("no busybox (apt-get install -y busybox-static)")
    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-") as ctx:
        os.makedirs(os.path.join(ctx, "root", "bin"))
        os.makedirs(os.path.join(ctx, "root", "www"))
        shutil.copy(busybox, os.path.join(ctx, "root", "bin", "busybox"))
        with open(os.path.join(ctx, "root", "www", "index.html"), "w") as f:
            f.write("ok\n")
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY root/ /\nEXPOSE 8080\n"
                    'ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n')
        run(["docker", "build", "-q", "-t", BASELINE_IMAGE, ctx])


def docker_rm(cid: str) -> None:
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def container_running(cid: str) -> bool:
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", cid],
                         capture_output=True, text=True).stdout.strip()
    return out == "true"


def bench_startup_docker(results: dict, runs: int) -> None:
    say(f"startup-docker: `docker run -d` to first 200, tinyapi vs busybox httpd, {runs} runs each")
    build_baseline_image()
    stops = []

    def tinyapi():
        with container(IMAGE) as (cid, _, took):
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
    results["startup_docker"] = {"tinyapi_s": t, "busybox_s": b, "ratio": t["median"] / b["median"],
                                 "busybox_image_bytes": baseline_bytes}
    results["docker_stop_s"] = stats(stops)
    say(f"  tinyapi {t['median'] * 1000:.0f} ms, busybox {b['median'] * 1000:.0f} ms, "
        f"docker stop {statistics.median(stops) * 1000:.0f} ms")


# --- memory -------------------------------------------------------------------------------------

def pss_kb(pid: str) -> dict:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Pss_Anon", "Pss_File"):
                out[key] = int(rest.split()[0])
    return out


# A tinyapi container's process tree, from its PID 1 down.
ROLES = ("staticx bootloader", "PyInstaller bootloader", "gunicorn master", "worker")


def container_memory(cid: str) -> dict:
    """Pss and Rss summed over every process of the container, read on the host."""
    lines = run(["docker", "top", cid, "-eo", "pid,ppid,comm"]).stdout.splitlines()[1:]
    parent = {}
    for line in lines:
        pid, ppid, _ = line.split(None, 2)
        parent[int(pid)] = int(ppid)

    def depth(pid: int) -> int:
        return 0 if parent[pid] not in parent else 1 + depth(parent[pid])

    procs = []
    for pid in sorted(parent, key=lambda p: (depth(p), p)):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            role = ROLES[min(depth(pid), len(ROLES) - 1)]
            procs.append({"pid": pid, "role": role, **pss_kb(str(pid))})
    total = {k: sum(p.get(k, 0) for p in procs) / 1024 for k in ("Pss", "Rss", "Pss_Anon", "Pss_File")}
    return {"pss_mb": total["Pss"], "rss_mb": total["Rss"], "pss_anon_mb": total["Pss_Anon"],
            "pss_file_mb": total["Pss_File"], "processes": procs}


# staticx's and PyInstaller's bootloaders, the gunicorn master and its 2 workers (the default).
CONTAINER_PROCESSES = 5


def idle_memory(cid: str, timeout: float = 15.0) -> dict:
    """container_memory() once every process of the container is up: the first 200 can come
    from the first worker while the second is still booting."""
    deadline = time.monotonic() + timeout
    while True:
        memory = container_memory(cid)
        if len(memory["processes"]) >= CONTAINER_PROCESSES or time.monotonic() > deadline:
            return memory
        time.sleep(0.05)


def wrk(url: str, seconds: float, threads=2, connections=32) -> dict:
    seconds = max(1, math.ceil(seconds))  # wrk takes whole seconds
    out = run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
              timeout=seconds + 60).stdout
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
    return {"requests": requests, "rps": rps, "p50_ms": latency.get("50"),
            "p99_ms": latency.get("99"), "socket_errors": socket_errors, "non_2xx": non_2xx,
            "errors": socket_errors + non_2xx}


@contextlib.contextmanager
def container(*run_args: str, path: str = "/alwaysok"):
    """`docker run -d` of run_args (options, the image, its command), 8080 published on a free
    port of 127.0.0.1; yield (container id, port, seconds from `docker run` to the first 200
    on path). The container is removed at the end."""
    port = free_port()
    started = time.monotonic()
    cid = run(["docker", "run", "-d", "--label", LABEL, "-p", f"127.0.0.1:{port}:8080",
               *run_args]).stdout.strip()
    try:
        took = wait_200(port, path, started, alive=lambda: container_running(cid))
        yield cid, port, took
    finally:
        docker_rm(cid)


def load(url: str, until: int, done: int) -> int:
    """Send requests with wrk until `until` have been sent in all (`done` so far)."""
    while done < until:
        # ~5,000 req/s here; ask for a little more than what is missing, 1 s at least.
        seconds = max(1.0, min(10.0, (until - done) / 5000 * 1.1))
        done += wrk(url, seconds)["requests"]
    return done


def summarize(runs: list[dict]) -> dict:
    return {key: stats([r[key] for r in runs]) for key in ("rps", "p50_ms", "p99_ms", "errors")} | {
        "requests": sum(r["requests"] for r in runs), "runs": runs}


def bench_memory_and_throughput(results: dict, runs: int, duration: float, quick: bool,
                                sections: set[str], cwd: str) -> None:
    with container(IMAGE) as (cid, port, _):
        url = f"http://127.0.0.1:{port}"
        if "memory" in sections:
            say("memory: Pss of every process of the container, idle, after 10,000 and 100,000 requests")
            idle = idle_memory(cid)
            sent = load(f"{url}/alwaysok", 10_000, 0)
            time.sleep(1)
            warm = container_memory(cid)
            sent = load(f"{url}/alwaysok", 100_000, sent)
            time.sleep(1)
            after = container_memory(cid)
            results["memory"] = {
                "idle": idle, "after_10k": warm, "after_100k": after, "requests": sent,
                "growth_pct": (after["pss_mb"] / idle["pss_mb"] - 1) * 100,
                "growth_after_warmup_pct": (after["pss_mb"] / warm["pss_mb"] - 1) * 100,
            }
            say(f"  idle {idle['pss_mb']:.1f} MB, after 10k {warm['pss_mb']:.1f} MB, "
                f"after {sent:,} {after['pss_mb']:.1f} MB")
        if "throughput" in sections:
            say(f"throughput: wrk -t2 -c32 --latency on the container, /alwaysok ({duration:g} s) "
                f"and / ({math.ceil(duration / 2)} s), {runs} runs each, interleaved")
            got = interleaved(runs, {
                "/alwaysok": lambda: wrk(f"{url}/alwaysok", duration),
                "/": lambda: wrk(f"{url}/", math.ceil(duration / 2)),
            })
            results.setdefault("throughput", {})["docker"] = {
                path: summarize(r) | {"seconds": duration if path == "/alwaysok" else math.ceil(duration / 2)}
                for path, r in got.items()}
            for path, r in results["throughput"]["docker"].items():
                say(f"  {path}: {r['rps']['median']:,.0f} req/s, p99 {r['p99_ms']['median']:.1f} ms, "
                    f"errors {r['errors']['max']}")
    if "throughput" in sections:
        say(f"throughput: dist/tinyapi vs source on the host, /alwaysok, {duration:g} s, {runs} runs each")
        with host_server([BINARY], cwd) as (fp, fport, fstart), \
                host_server(host_commands()["source"], cwd) as (sp, sport, sstart):
            wait_200(fport, "/alwaysok", fstart, alive=lambda: fp.poll() is None)
            wait_200(sport, "/alwaysok", sstart, alive=lambda: sp.poll() is None)
            got = interleaved(runs, {
                "frozen": lambda: wrk(f"http://127.0.0.1:{fport}/alwaysok", duration),
                "source": lambda: wrk(f"http://127.0.0.1:{sport}/alwaysok", duration),
            })
        host = {name: summarize(r) | {"seconds": duration} for name, r in got.items()}
        host["frozen_vs_source_pct"] = (1 - host["frozen"]["rps"]["median"]
                                        / host["source"]["rps"]["median"]) * 100
        results["throughput"]["host"] = host
        say(f"  frozen {host['frozen']['rps']['median']:,.0f} req/s, "
            f"source {host['source']['rps']['median']:,.0f} req/s")


# --- build ---------------------------------------------------------------------------------------

BUILD_INPUTS = ["Makefile", "pyproject.toml", "requirements.lock", "build/build.py",
                "build/source-date-epoch", "build/tinyapi.spec"]


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def bench_build(results: dict, runs: int, clean_runs: int) -> None:
    """`make binary` in a copy of the build's inputs (the sources, spec, build.py, Makefile,
    lock): clean (no build/work, no dist) and with nothing changed, interleaved. The copy
    keeps the files' mtimes, so make takes the venv as up to date, and gets the repository's
    SOURCE_DATE_EPOCH, so its binary must be byte-identical to dist/tinyapi."""
    say(f"build: clean `make binary` x{clean_runs}, no-change x{runs}, in a copy of the sources")
    venv = os.path.join(REPO, ".venv")
    epoch = run(["git", "-C", REPO, "log", "-1", "--format=%ct"]).stdout.strip()
    env = dict(os.environ, SOURCE_DATE_EPOCH=epoch)
    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-build-") as copy:
        files = BUILD_INPUTS + [os.path.join("tinyapi", f) for f in
                                sorted(os.listdir(os.path.join(REPO, "tinyapi"))) if f.endswith(".py")]
        for rel in files:
            os.makedirs(os.path.dirname(os.path.join(copy, rel)) or copy, exist_ok=True)
            shutil.copy2(os.path.join(REPO, rel), os.path.join(copy, rel))
        # -o: never remake the venv from here (it is the repository's own).
        make = ["make", "-C", copy, "--no-print-directory", "-o", f"{venv}/.installed",
                "binary", f"VENV={venv}"]
        digests = []

        def clean():
            shutil.rmtree(os.path.join(copy, "build", "work"), ignore_errors=True)
            shutil.rmtree(os.path.join(copy, "dist"), ignore_errors=True)
            t = time.monotonic()
            run(make, env=env, timeout=900)
            took = time.monotonic() - t
            digests.append(sha256(os.path.join(copy, "dist", "tinyapi")))
            return took

        def nochange():
            t = time.monotonic()
            out = run(make, env=env, timeout=900).stdout
            took = time.monotonic() - t
            if "is up to date" not in out:
                raise BenchError(f"a second `make binary` rebuilt:\n{out[-1500:]}")
            return took

        cleans, nochanges = [], []
        for i in range(max(runs, clean_runs)):
            if i < clean_runs:
                cleans.append(clean())
            if i < runs:
                nochanges.append(nochange())
    dist = sha256(BINARY)
    results["build"] = {
        "clean_s": stats(cleans), "nochange_s": stats(nochanges),
        "sha256": sorted(set(digests)), "dist_sha256": dist,
        "reproducible": set(digests) == {dist},
    }
    say(f"  clean {statistics.median(cleans):.1f} s, no-change {statistics.median(nochanges):.2f} s, "
        f"reproducible: {results['build']['reproducible']}")


# --- report --------------------------------------------------------------------------------------

def measured_values(r: dict) -> dict:
    out = {}
    if "sizes" in r:
        out["image_bytes"] = r["sizes"]["image_bytes"]
    if "startup_host" in r:
        out["startup_ratio_host"] = r["startup_host"]["ratio"]
    if "startup_docker" in r:
        out["startup_ratio_docker"] = r["startup_docker"]["ratio"]
    if "memory" in r:
        out["memory_idle_mb"] = r["memory"]["idle"]["pss_mb"]
        out["memory_growth_pct"] = r["memory"]["growth_pct"]
    docker = r.get("throughput", {}).get("docker", {})
    if "/alwaysok" in docker:
        out["rps_alwaysok"] = docker["/alwaysok"]["rps"]["median"]
        out["errors_alwaysok"] = sum(x["errors"] for x in docker["/alwaysok"]["runs"])
        out["p99_alwaysok_ms"] = docker["/alwaysok"]["p99_ms"]["median"]
    host = r.get("throughput", {}).get("host")
    if host:
        out["frozen_vs_source_pct"] = host["frozen_vs_source_pct"]
    if "build" in r:
        out["build_clean_s"] = r["build"]["clean_s"]["median"]
        out["build_nochange_s"] = r["build"]["nochange_s"]["median"]
    return out


def check_targets(r: dict) -> list[dict]:
    values = measured_values(r)
    rows = []
    for key, label, limit, unit, kind in TARGETS:
        if key not in values:
            continue
        v = values[key]
        met = v <= limit if kind == "max" else v >= limit
        rows.append({"key": key, "target": label, "limit": limit, "unit": unit, "kind": kind,
                     "measured": v, "met": met})
    return rows


def fmt_value(v: float, unit: str) -> str:
    if unit == "MB" and v > 1e5:
        return f"{v / 1e6:.2f} MB"
    if unit in ("req/s",):
        return f"{v:,.0f} req/s"
    if unit == "x":
        return f"{v:.2f}x"
    if unit in ("%", "% slower"):
        return f"{v:+.1f} %" if unit == "% slower" else f"{v:.1f} %"
    if unit == "":
        return f"{v:g}"
    return f"{v:.1f} {unit}" if isinstance(v, float) else f"{v} {unit}"


def ms(s: dict, scale=1000.0, digits=0) -> str:
    return (f"{s['median'] * scale:,.{digits}f} ({s['min'] * scale:,.{digits}f} - "
            f"{s['max'] * scale:,.{digits}f})")


def to_markdown(r: dict) -> str:
    lines = [f"# tinyapi benchmark: {r['when']}", "",
             f"Commit `{r['commit']}`{' + uncommitted changes' if r['dirty'] else ''}, "
             f"{r['machine']['cpus']} CPUs, Linux {r['machine']['kernel']}, "
             f"Docker {r['machine']['docker']}; 1-minute load average when it began: "
             f"{r['machine']['loadavg_before']:.1f}. `make bench` ({'quick' if r['settings']['quick'] else 'full'} run): "
             f"each timing is the median of {r['settings']['runs']} runs, (min - max) beside it; "
             "compared commands ran interleaved. How each number is taken: [bench/README.md](../README.md).",
             ""]
    if r["targets"]:
        lines += ["## Targets", "", "| target | limit | measured | met |", "|---|---|---|---|"]
        for t in r["targets"]:
            limit = ("<= " if t["kind"] == "max" else ">= ") + fmt_value(t["limit"], t["unit"])
            lines.append(f"| {t['target']} | {limit} | {fmt_value(t['measured'], t['unit'])} | "
                         f"{'yes' if t['met'] else '**no**'} |")
        lines.append("")
    if "sizes" in r:
        s = r["sizes"]
        lines += ["## Sizes", "",
                  f"- image `{s['image']}`: **{s['image_bytes']:,} bytes** ({s['image_bytes'] / 1e6:.2f} MB)",
                  f"- binary `dist/tinyapi`: **{s['binary_bytes']:,} bytes**: staticx bootloader "
                  f"{s['staticx_bootloader_bytes']:,} + xz archive {s['staticx_archive_xz_bytes']:,} "
                  f"(unpacked at each start: {s['staticx_archive_raw_bytes']:,} bytes)", "",
                  "Files of the image:", "", "| file | bytes |", "|---|---:|"]
        lines += [f"| `{f['path']}` | {f['bytes']:,} |" for f in s["image_files"]]
        lines += ["", "Inside the binary, by part: *stored* is the bytes unpacked at start-up, "
                  "*xz* each part compressed alone as staticx compresses its archive (what it costs "
                  "in the binary, roughly; the parts of one stream share a little).", "",
                  "| part | stored | xz | share of xz |", "|---|---:|---:|---:|"]
        xz_total = sum(c["xz"] for c in s["categories"].values())
        for cat, c in sorted(s["categories"].items(), key=lambda kv: -kv[1]["xz"]):
            lines.append(f"| **{cat}** | **{c['raw']:,}** | **{c['xz']:,}** | **{c['xz'] / xz_total:.0%}** |")
            for p in sorted((p for p in s["parts"] if p["category"] == cat), key=lambda p: -p["xz"]):
                lines.append(f"| &nbsp;&nbsp;{p['item']} | {p['raw']:,} | {p['xz']:,} | "
                             f"{p['xz'] / xz_total:.1%} |")
        lines += [f"| total | {sum(c['raw'] for c in s['categories'].values()):,} | {xz_total:,} | |",
                  "", "![image sizes](image-sizes.png)", ""]
    if "startup_host" in r or "startup_docker" in r:
        lines += ["## Start-up (ms, to the first 200)", "", "| what | median (min - max) |", "|---|---:|"]
        decode = r.get("startup_host", {}).get("decode", {})
        if "startup_host" in r:
            h = r["startup_host"]
            lines += [f"| `dist/tinyapi` on the host | {ms(h['frozen_s'])} |",
                      f"| `.venv/bin/python -m tinyapi` on the host | {ms(h['source_s'])} |",
                      f"| ratio frozen / source | {h['ratio']:.2f}x |"]
            if "xz" in decode:
                lines.append(f"| decoding staticx's xz archive alone, `xz -dc` ({decode['xz']['archive_bytes']:,} B) "
                             f"| {ms(decode['xz']['s'])} |")
            if "zstd" in decode:
                lines.append(f"| the same archive as `zstd -19 --long=24` ({decode['zstd']['archive_bytes']:,} B), "
                             f"`zstd -dc` | {ms(decode['zstd']['s'])} |")
        if "startup_docker" in r:
            d = r["startup_docker"]
            lines += [f"| `docker run -d` {IMAGE} | {ms(d['tinyapi_s'])} |",
                      f"| `docker run -d` busybox httpd FROM scratch ({d['busybox_image_bytes']:,} B image) | {ms(d['busybox_s'])} |",
                      f"| ratio tinyapi / busybox | {d['ratio']:.2f}x |",
                      f"| `docker stop` of tinyapi | {ms(r['docker_stop_s'])} |"]
        lines.append("")
        if "xz" in decode:
            source_ms = r["startup_host"]["source_s"]["median"] * 1000
            xz_ms = decode["xz"]["s"]["median"] * 1000
            lines += [f"The 1.5x target leaves {0.5 * source_ms:.0f} ms (half the source's start-up) for "
                      f"everything the frozen binary adds; decoding staticx's xz archive alone takes "
                      f"{xz_ms:.0f} ms, {xz_ms / source_ms:.1f}x the source's whole start-up."
                      + (f" Recompressed with zstd, the same archive is "
                         f"{(decode['zstd']['archive_bytes'] - decode['xz']['archive_bytes']) / 1e6:+.2f} MB "
                         f"and decodes in {decode['zstd']['s']['median'] * 1000:.0f} ms, but staticx "
                         "decodes only xz." if "zstd" in decode else ""), ""]
    if "memory" in r:
        m = r["memory"]
        lines += ["## Memory of the container (MB, summed over its processes)", "",
                  "| when | Pss | Pss anon | Pss file | Rss | processes |", "|---|---:|---:|---:|---:|---:|"]
        for label, key in (("idle (after start-up)", "idle"), ("after 10,000 requests", "after_10k"),
                           (f"after {m['requests']:,} requests", "after_100k")):
            x = m[key]
            lines.append(f"| {label} | {x['pss_mb']:.1f} | {x['pss_anon_mb']:.1f} | {x['pss_file_mb']:.1f} | "
                         f"{x['rss_mb']:.1f} | {len(x['processes'])} |")
        lines += ["", f"Growth: {m['growth_pct']:+.1f} % from idle, {m['growth_after_warmup_pct']:+.1f} % "
                  "after the first 10,000 requests.", "",
                  "Pss per process, idle: " + ", ".join(f"{p['role']} {p['Pss'] / 1024:.1f}"
                                                        for p in m["idle"]["processes"])
                  + " MB; after the requests: " + ", ".join(f"{p['role']} {p['Pss'] / 1024:.1f}"
                                                           for p in m["after_100k"]["processes"])
                  + " MB.", ""]
    if "throughput" in r:
        t = r["throughput"]
        lines += ["## Throughput (wrk -t2 -c32 --latency)", "",
                  "| where | path | seconds | req/s | p50 ms | p99 ms | errors (all runs) |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        rows = [("container, published port", p, x) for p, x in t.get("docker", {}).items()]
        rows += [(f"host, {name}", "/alwaysok", t["host"][name]) for name in ("frozen", "source")
                 if "host" in t]
        for where, path, x in rows:
            errors = sum(run_["errors"] for run_ in x["runs"])
            lines.append(f"| {where} | `{path}` | {x['seconds']:g} | {ms(x['rps'], 1, 0)} | "
                         f"{ms(x['p50_ms'], 1, 2)} | {ms(x['p99_ms'], 1, 2)} | {errors} |")
        if "host" in t:
            lines += ["", f"Frozen vs source on the host: {t['host']['frozen_vs_source_pct']:+.1f} % "
                      "(positive: the frozen binary is slower)."]
        lines.append("")
    if "build" in r:
        b = r["build"]
        lines += ["## Build (`make binary`, s)", "", "| what | median (min - max) |", "|---|---:|",
                  f"| clean (no build/work, no dist), {len(b['clean_s']['runs'])} runs | {ms(b['clean_s'], 1, 1)} |",
                  f"| nothing changed, {len(b['nochange_s']['runs'])} runs | {ms(b['nochange_s'], 1, 2)} |",
                  "", f"Reproducible: {'yes' if b['reproducible'] else '**no**'}: the clean builds gave "
                  f"{', '.join('`' + d[:16] + '`' for d in b['sha256'])}; dist/tinyapi is `{b['dist_sha256'][:16]}`.", ""]
    return "\n".join(lines)


def chart(r: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(name, size, "article") for name, size in ARTICLE_IMAGES]
    rows.append((GO_ORIGINAL[0], GO_ORIGINAL[1], "go"))
    rows.append((f"tinyapi (this port, measured {r['when'][:10]})", r["sizes"]["image_bytes"], "tinyapi"))
    rows.sort(key=lambda row: row[1])
    colors = {"article": "#9e9e9e", "go": "#1f77b4", "tinyapi": "#2ca02c"}
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    ax.barh([row[0] for row in rows], [row[1] / 1e6 for row in rows],
            color=[colors[row[2]] for row in rows])
    for i, row in enumerate(rows):
        label = f"{row[1] / 1e6:.2f} MB" if row[1] < 10e6 else f"{row[1] / 1e6:.0f} MB"
        ax.text(row[1] / 1e6 * 1.05, i, label, va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(0.3, 200)
    ax.set_xlabel("image size, MB (10^6 bytes), log scale")
    ax.set_title("Image sizes: the article's base images, the Go original, this port")
    fig.text(0.01, 0.01, f"Base images: the article's table ({ARTICLE_URL}). "
             "Go original: 9.58 MB as given. tinyapi: `docker image inspect` here.",
             fontsize=6.5, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------------

def preflight(sections: set[str]) -> None:
    if os.geteuid() != 0:
        raise BenchError("run as root: smaps_rollup of the container's processes, the build's verify stage")
    if shutil.which("wrk") is None and sections & {"memory", "throughput"}:
        raise BenchError("no wrk (apt-get install -y wrk)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        say("no Docker engine answers: starting one (.ci/start-docker)")
        run([os.path.join(REPO, ".ci", "start-docker")])


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def machine() -> dict:
    docker = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"],
                            capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "docker": docker, "wrk": "wrk -t2 -c32 --latency"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="shorter wrk runs (3 s), one clean build: for trying a change, not for the record")
    p.add_argument("--runs", type=int, default=5, help="runs per timing (default 5)")
    p.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    p.add_argument("--output", default=RESULTS, help="directory for latest.json/.md and the chart")
    p.add_argument("--image", help="measure this image instead of building tinyapi:latest (make image)")
    args = p.parse_args(argv)
    sections = set(args.only or SECTIONS)
    duration = 3.0 if args.quick else 10.0
    clean_runs = 1 if args.quick else args.runs

    started = time.monotonic()
    load_before = loadavg()
    if load_before > 1.5:
        say(f"the load average is {load_before:.1f} on {os.cpu_count()} CPUs: something else is "
            "running, and the timings will show it (they record it)")
    try:
        preflight(sections)
        global IMAGE
        if args.image:
            IMAGE = args.image
        else:
            say("make image (builds dist/tinyapi first, if anything changed)")
            run(["make", "-C", REPO, "--no-print-directory", "image"], timeout=1800)
        commit = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = bool(run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"]).stdout.strip())
        results = {
            "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit, "dirty": dirty, "machine": machine(),
            "settings": {"runs": args.runs, "quick": args.quick, "wrk_seconds": duration,
                         "clean_build_runs": clean_runs, "sections": sorted(sections)},
        }
        with tempfile.TemporaryDirectory(prefix="tinyapi-bench-cwd-") as cwd:  # no config.yml here
            if "sizes" in sections:
                bench_sizes(results)
            if "startup-host" in sections:
                bench_startup_host(results, args.runs, cwd)
            if "startup-docker" in sections:
                bench_startup_docker(results, args.runs)
            if sections & {"memory", "throughput"}:
                bench_memory_and_throughput(results, args.runs, duration, args.quick, sections, cwd)
        if "build" in sections:
            bench_build(results, args.runs, clean_runs)
    except BenchError as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1
    finally:
        leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"],
                                   capture_output=True, text=True).stdout.split()
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
    say(f"done in {results['seconds']:.0f} s: {os.path.relpath(args.output, REPO)}/latest.md, latest.json"
        + (", image-sizes.png" if "sizes" in results else ""))
    for t in results["targets"]:
        print(f"  {'ok ' if t['met'] else 'MISS'} {t['target']}: {fmt_value(t['measured'], t['unit'])} "
              f"(target {'<=' if t['kind'] == 'max' else '>='} {fmt_value(t['limit'], t['unit'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
