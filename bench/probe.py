"""The cost of one `tinyapi probe`, the image's health check: what each probe costs the machine,
so that the HEALTHCHECK's interval can be chosen from it (docs/health.md).

Per probe of a serving server, the median of --runs runs:
  host    dist/tinyapi probe beside dist/tinyapi, both with TMPDIR=<a fresh directory>: wall
          time, CPU time (user + system of the probe's whole process tree, from wait4), peak
          memory (the largest process's maximum RSS), bytes it put into TMPDIR at its peak
          (the directory's files summed, sampled all along) and bytes it left there
  image   `docker exec <c> /bin/tinyapi probe` in the hardened run (read-only root, /tmp a
          tmpfs with exec): wall time of `docker exec`; the container's CPU time (its cgroup:
          the probe, and the server answering it); the engine's CPU time (dockerd, containerd
          and the container's shim, from /proc: a shared engine, so other containers' work
          shows up there too); the container's memory at the probe's peak above what it was
          before (cgroup v1's max_usage, reset first: the probe's processes and its /tmp
          files); bytes in /tmp at the peak and left after (statvfs of the tmpfs, from the
          host through /proc/<pid>/root/tmp, sampled all along)
Then the share of one core that a probe every HEALTHCHECK --interval (the Dockerfile's) costs.
Needs root (cgroup files, /proc/<pid>/root) and Docker.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time

from bench import lib
from harness.image import HARDENED_RUN
from harness.paths import ROOT
from harness.serve import server_env

BUDGET = 0.02  # of one core, for all the probes together (issue 15)
DOCKERFILE = ROOT / "Dockerfile"


class _PeakSampler:
    """Call measure() over and over on a thread until stop(); the largest value seen."""

    def __init__(self, measure):
        self._measure, self.peak = measure, measure()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._done.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, self._measure())
            time.sleep(0.001)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        with contextlib.suppress(OSError):
            self.peak = max(self.peak, self._measure())
        return self.peak


def tree_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def tmpfs_used(path: str) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


# --- host: the frozen binary -------------------------------------------------------------------


def probe_host(binary: str, env: dict, tmpdir: str) -> dict:
    before = tree_bytes(tmpdir)
    sampler = _PeakSampler(lambda: tree_bytes(tmpdir))
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [binary, "probe"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # rusage of the probe and all it waited for
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = sampler.stop()
        err.seek(0)
        message = err.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise lib.BenchError(f"{binary} probe exited {proc.returncode}: {message}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_bytes": usage.ru_maxrss * 1024,
        "tmp_peak_bytes": peak - before,
        "tmp_left_bytes": tree_bytes(tmpdir) - before,
    }


def bench_host(runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-probe-") as scratch:
        tmpdir = os.path.join(scratch, "tmp")
        os.mkdir(tmpdir)
        with lib.host_server([lib.BINARY], scratch, env={"TMPDIR": tmpdir}) as (_, port, started):
            lib.wait_200(port, "/alwaysok", started)
            env = server_env(port, TMPDIR=tmpdir)
            server_bytes = tree_bytes(tmpdir)
            probe_host(lib.BINARY, env, tmpdir)  # a first one off the record: page cache
            samples = [probe_host(lib.BINARY, env, tmpdir) for _ in range(runs)]
    return {
        "server_tmp_bytes": server_bytes,
        **{key: lib.stats([s[key] for s in samples]) for key in samples[0]},
    }


# --- the image -----------------------------------------------------------------------------------


def _cgroup_dirs(pid: int) -> dict[str, str]:
    """controller -> the container's cgroup directory, cgroup v1 ("cpuacct", "memory") or v2
    ("unified")."""
    dirs = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if not controllers:
                dirs["unified"] = "/sys/fs/cgroup" + path
            for name in controllers.split(","):
                base = f"/sys/fs/cgroup/{controllers}"
                dirs[name] = base + path
    return dirs


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _container_cpu_s(cg: dict[str, str]) -> float:
    if "cpuacct" in cg:
        return int(_read(os.path.join(cg["cpuacct"], "cpuacct.usage"))) / 1e9
    stat = _read(os.path.join(cg["unified"], "cpu.stat"))
    return int(re.search(r"usage_usec (\d+)", stat).group(1)) / 1e6


def _process_cpu_s(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _engine_pids(container_pid: int) -> list[int]:
    pids = []
    for name in ("dockerd", "containerd"):
        found = subprocess.run(["pidof", name], capture_output=True, text=True).stdout.split()
        pids += [int(p) for p in found]
    shim = int(_read(f"/proc/{container_pid}/stat").rsplit(")", 1)[1].split()[1])  # ppid
    return pids + [shim]


def probe_image(cid: str, pid: int, cg: dict[str, str], engine: list[int]) -> dict:
    tmp = f"/proc/{pid}/root/tmp"
    memory = cg.get("memory")
    if memory:
        with open(os.path.join(memory, "memory.max_usage_in_bytes"), "w") as f:
            f.write("0")
        mem_before = int(_read(os.path.join(memory, "memory.usage_in_bytes")))
    before, cpu, engine_cpu = tmpfs_used(tmp), _container_cpu_s(cg), _process_cpu_s(engine)
    sampler = _PeakSampler(lambda: tmpfs_used(tmp))
    started = time.perf_counter()
    proc = subprocess.run(
        ["docker", "exec", cid, "/bin/tinyapi", "probe"], capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    peak = sampler.stop()
    if proc.returncode != 0:
        raise lib.BenchError(f"docker exec ... probe exited {proc.returncode}: {proc.stderr}")
    out = {
        "wall_s": wall,
        "cpu_s": _container_cpu_s(cg) - cpu,
        "engine_cpu_s": _process_cpu_s(engine) - engine_cpu,
        "tmp_peak_bytes": peak - before,
        "tmp_left_bytes": tmpfs_used(tmp) - before,
    }
    if memory:
        peak_mem = int(_read(os.path.join(memory, "memory.max_usage_in_bytes")))
        out["memory_peak_bytes"] = peak_mem - mem_before
    return out


def bench_image(image: str, runs: int) -> dict:
    # The documented hardened run (docs/security.md): the probe's cost under the flags users run.
    with lib.container(image, *HARDENED_RUN) as (cid, _, _):
        pid = int(
            subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Pid}}", cid],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        cg, engine = _cgroup_dirs(pid), _engine_pids(pid)
        server_bytes = tmpfs_used(f"/proc/{pid}/root/tmp")
        probe_image(cid, pid, cg, engine)  # off the record
        samples = [probe_image(cid, pid, cg, engine) for _ in range(runs)]
    return {
        "server_tmp_bytes": server_bytes,
        **{key: lib.stats([s[key] for s in samples]) for key in samples[0]},
    }


def healthcheck_share(image_result: dict, interval_s: float) -> dict:
    """The share of one core that a probe every interval_s seconds costs (container + engine)."""
    per_probe = image_result["cpu_s"]["median"] + image_result["engine_cpu_s"]["median"]
    return {
        "interval_s": interval_s,
        "cpu_per_probe_s": per_probe,
        "share_of_one_core": per_probe / interval_s,
        "shortest_interval_within_budget_s": per_probe / BUDGET,
    }


def dockerfile_interval() -> float:
    """The HEALTHCHECK's --interval, in seconds, as the Dockerfile declares it."""
    m = re.search(r"^HEALTHCHECK\b.*?--interval=(\d+)s", DOCKERFILE.read_text(), re.M)
    if not m:
        raise lib.BenchError(f"{DOCKERFILE}: no HEALTHCHECK --interval=<N>s")
    return float(m.group(1))


def bench_probe(results: dict, image: str, runs: int) -> None:
    lib.say(
        f"probe: {runs} x `dist/tinyapi probe` beside a dist/tinyapi, then {runs} x "
        f"`docker exec ... probe` in the hardened run of {image}"
    )
    r = {"host": bench_host(runs), "image": bench_image(image, runs)}
    r["healthcheck"] = healthcheck_share(r["image"], dockerfile_interval())
    results["probe"] = r
    lib.say(
        f"  {r['healthcheck']['cpu_per_probe_s'] * 1000:.0f} ms CPU per probe: "
        f"{r['healthcheck']['share_of_one_core'] * 100:.2f} % of one core every "
        f"{r['healthcheck']['interval_s']:.0f} s"
    )
