"""The Docker engine: `docker ...` as a call, whether an engine answers, a container's own
processes, and the files of an image (a created, never started container, exported: the one way
to read them all, with their owners and modes, from the classic builder's images and BuildKit's
alike)."""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
import uuid
from dataclasses import dataclass

from harness.paths import ROOT

# Starts an engine when none answers (as root): what `make image` runs.
START_ENGINE = ROOT / "docker" / "start-engine"

# What Docker adds to every container's filesystem: not the image's.
DOCKER_ADDS = {
    ".dockerenv",
    "dev",
    "proc",
    "sys",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/mtab",
}


class DockerError(Exception):
    """`docker ...` failed (or there is no docker): the message says which, with its stderr."""


def docker(
    *args: str,
    check: bool = True,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    engine: str = "docker",
) -> subprocess.CompletedProcess:
    """Run `docker ARGS` (or `podman ARGS`: engine=, same words) in env when given, text
    output; DockerError with stderr when check and it fails."""
    try:
        proc = subprocess.run(
            [engine, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except FileNotFoundError:
        raise DockerError(f"no {engine} command on this machine") from None
    if check and proc.returncode != 0:
        raise DockerError(
            f"{engine} {' '.join(args)} exited {proc.returncode}:\n"
            f"{proc.stdout}{proc.stderr}".rstrip()
        )
    return proc


def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def container_running(name: str) -> bool:
    return docker("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip() == "true"


def server_pids(name: str) -> list[int]:
    """Host PIDs of a container's own processes: its first process and all under it. Not a
    health-check probe (or any `docker exec`) in flight: the engine starts those beside it."""
    first = int(docker("inspect", "-f", "{{.State.Pid}}", name).stdout)
    parent = dict(
        tuple(map(int, row.split()))
        for row in docker("top", name, "-eo", "pid,ppid").stdout.splitlines()[1:]
    )

    def under_first(pid: int) -> bool:
        while pid in parent and pid != first:
            pid = parent[pid]
        return pid == first

    return sorted(pid for pid in parent if under_first(pid))


@dataclass(frozen=True)
class Entry:
    """One entry of an image's filesystem, as `docker export` lists it."""

    path: str  # without the leading slash: "bin/tinyapi"
    kind: str  # "dir", "file", "link" or "other"
    mode: int  # the permission bits only (Docker's tar keeps the type bits too)
    uid: int
    gid: int
    size: int
    sha256: str | None  # of a file's bytes, else None


def export_image(
    image: str,
    read: tuple[str, ...] = (),
    label: str | None = None,
    prefix: str = "tinyapi-export",
    engine: str = "docker",
) -> tuple[list[Entry], dict[str, bytes]]:
    """The image's own entries (not what Docker adds to every container), and the bytes of the
    files named in `read`. The container is created, never started, and removed at the end.
    engine="podman": the same through Podman (which adds more: /etc/passwd, /etc/group)."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    docker("create", "--name", name, *(["--label", label] if label else []), image, engine=engine)
    try:
        entries, contents = [], {}
        with (
            subprocess.Popen([engine, "export", name], stdout=subprocess.PIPE) as export,
            tarfile.open(fileobj=export.stdout, mode="r|") as tar,
        ):
            for member in tar:
                path = member.name.strip("/").removeprefix("./")
                if not path or path in DOCKER_ADDS or path.split("/")[0] in DOCKER_ADDS:
                    continue
                digest = None
                if member.isfile():
                    data = tar.extractfile(member).read()
                    digest = hashlib.sha256(data).hexdigest()
                    if path in read:
                        contents[path] = data
                kind = (
                    "dir"
                    if member.isdir()
                    else "file"
                    if member.isfile()
                    else "link"
                    if member.issym()
                    else "other"
                )
                entries.append(
                    Entry(
                        path,
                        kind,
                        member.mode & 0o7777,
                        member.uid,
                        member.gid,
                        member.size,
                        digest,
                    )
                )
        if export.wait(60) != 0:
            raise DockerError(f"{engine} export {name} exited {export.returncode}")
        return entries, contents
    finally:
        docker("rm", "-f", name, check=False, engine=engine)
