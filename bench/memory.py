"""Memory of a container: Pss and Rss summed over every process of it, read on the host from
/proc/PID/smaps_rollup of each pid `docker top` lists."""

from __future__ import annotations

import contextlib
import time

from bench.lib import run


def pss_kb(pid: str) -> dict:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Pss_Anon", "Pss_File"):
                out[key] = int(rest.split()[0])
    return out


# A tinyapi container's process tree, from its deepest level up: PID 1 is gunicorn's master
# (staticx's bootloader execs the program); a staticx parent above it only on the bootloader's
# fallback path (docs/binary.md).
ROLES = ("worker", "gunicorn master", "staticx bootloader (fallback)")


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
    deepest = max(map(depth, parent), default=0)
    for pid in sorted(parent, key=lambda p: (depth(p), p)):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            role = ROLES[min(deepest - depth(pid), len(ROLES) - 1)]
            procs.append({"pid": pid, "role": role, **pss_kb(str(pid))})
    total = {
        k: sum(p.get(k, 0) for p in procs) / 1024 for k in ("Pss", "Rss", "Pss_Anon", "Pss_File")
    }
    return {
        "pss_mb": total["Pss"],
        "rss_mb": total["Rss"],
        "pss_anon_mb": total["Pss_Anon"],
        "pss_file_mb": total["Pss_File"],
        "processes": procs,
    }


# The gunicorn master and its 2 workers (the default).
CONTAINER_PROCESSES = 3


def idle_memory(cid: str, timeout: float = 15.0) -> dict:
    """container_memory() once every process of the container is up: the first 200 can come
    from the first worker while the second is still booting."""
    deadline = time.monotonic() + timeout
    while True:
        memory = container_memory(cid)
        if len(memory["processes"]) >= CONTAINER_PROCESSES or time.monotonic() > deadline:
            return memory
        time.sleep(0.05)
