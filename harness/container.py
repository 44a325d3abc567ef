"""A container of an image on a published port: the one way the tests, the benchmarks and the
tour run the image. Started with flags (`run -d`), 8080 published on 127.0.0.1 (on a port the
engine picks, or a given one), waited for until its first 200 by polling, then asked for its
logs, inspected, stopped and removed. For Docker, and for Podman as root or as another user.

An engine is a callable like harness.docker.docker: engine(*args, check=, timeout=) -> the
CompletedProcess of `<engine> ARGS`, raising DockerError when check and it fails. Pass your own
(the tour shows each command before it runs it)."""

from __future__ import annotations

import pwd
import resource
import subprocess
import time
import uuid

from harness.docker import DockerError, docker
from harness.http import Answer, request
from harness.serve import NotServing, wait_for_200

PORT = 8080  # the image's EXPOSE: where the server listens inside the container
START_TIMEOUT = 30.0  # staticx unpacks to /tmp (at the first start) before Python starts
ALIVE_EVERY = 0.5  # seconds between two asks whether a container still runs, while polling


def _podman_ulimits() -> tuple[str, ...]:
    flags = []
    for name, limit, want in (
        ("nofile", resource.RLIMIT_NOFILE, 16384),
        ("nproc", resource.RLIMIT_NPROC, 4096),
    ):
        hard = resource.getrlimit(limit)[1]
        value = want if hard == resource.RLIM_INFINITY else min(want, hard)
        flags += ["--ulimit", f"{name}={value}:{value}"]
    return tuple(flags)


# runc cannot raise rlimits on the machines this runs on ("error setting rlimit type 6/7"):
# every Podman run passes explicit --ulimit values no higher than this process's own.
PODMAN_ULIMITS = _podman_ulimits()


def podman(
    *args: str, user: str | None = None, check: bool = True, timeout: float = 60, stdin=None
) -> subprocess.CompletedProcess:
    """`podman ARGS`, as root or (user=) as that user with a login's HOME and nothing else;
    text output unless stdin is given (a `podman load` of a tar); DockerError when check and
    it fails."""
    cmd, cwd = ["podman", *args], None
    if user is not None:
        home = pwd.getpwnam(user).pw_dir
        env = ["env", "-i", f"HOME={home}", f"USER={user}", "PATH=/usr/bin:/bin"]
        cmd = ["runuser", "-u", user, "--", *env, *cmd]
        cwd = home  # somewhere the user may be
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=stdin is None,
            timeout=timeout,
            check=False,
            cwd=cwd,
            stdin=stdin,
        )
    except FileNotFoundError:
        raise DockerError(f"no {cmd[0]} command on this machine") from None
    if check and proc.returncode != 0:
        raise DockerError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


def docker_to_podman(image: str, user: str | None = None) -> None:
    """`docker save IMAGE | podman load`: the same image, layer for layer, in Podman's store (as
    root, or as user: rootful and rootless Podman keep separate stores)."""
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as saved:
        podman("load", "-q", user=user, stdin=saved.stdout, timeout=300)
    if saved.returncode != 0:
        raise DockerError(f"docker save {image} exited {saved.returncode}")


class Container:
    """A container by name, on its engine; port: the host port of 127.0.0.1 its 8080 is
    published on (or, with host networking, the one the server binds itself)."""

    def __init__(self, name: str, port: int | None = None, engine=docker):
        self.name, self.port, self.engine = name, port, engine

    def published_port(self) -> int:
        """The host port the engine picked for 8080 (picked anew at each restart)."""
        mapping = self.engine("port", self.name, f"{PORT}/tcp").stdout.split()[0]
        return int(mapping.rsplit(":", 1)[1])  # 127.0.0.1:49153

    def inspect(self, fmt: str) -> str:
        return self.engine("inspect", "-f", fmt, self.name).stdout.strip()

    def running(self) -> bool:
        proc = self.engine("inspect", "-f", "{{.State.Running}}", self.name, check=False)
        return proc.stdout.strip() == "true"

    def alive(self) -> bool:
        """Running, or about to be started again by its restart policy."""
        return self.running() or self.inspect("{{.HostConfig.RestartPolicy.Name}}") not in (
            "",
            "no",
        )

    def logs(self) -> str:
        proc = self.engine("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def get(self, path: str, timeout: float = 10) -> Answer:
        return request(self.port, path, timeout=timeout)

    def wait_ready(
        self,
        path: str = "/alwaysok",
        timeout: float = START_TIMEOUT,
        interval: float = 0.1,
        since: float | None = None,
    ) -> float:
        """Poll GET path until it answers 200; the seconds from `since` (a time.monotonic(),
        default: the call) to it. Whether the container still runs (or will again) is asked
        at most every ALIVE_EVERY seconds, not at each miss: an `inspect` costs more than a
        poll. NotServing, with its exit code and logs, if it dies or times out first."""
        asked = [time.monotonic()]

        def alive() -> bool:
            if time.monotonic() - asked[0] < ALIVE_EVERY:
                return True
            asked[0] = time.monotonic()
            return self.alive()

        try:
            return wait_for_200(
                self.port, path, alive=alive, timeout=timeout, interval=interval, since=since
            )
        except NotServing as err:
            code = self.engine("inspect", "-f", "{{.State.ExitCode}}", self.name, check=False)
            raise NotServing(
                f"{self.name}: {err} (exit code {code.stdout.strip() or '?'}):\n{self.logs()}"
            ) from None

    def wait_exit(self, timeout: float = 15) -> int:
        """Block until the container stops; its exit code."""
        return int(self.engine("wait", self.name, timeout=timeout).stdout.strip())

    def remove(self) -> None:
        self.engine("rm", "-f", self.name, check=False)


class Containers:
    """The containers one test or tool starts from one image, each removed by close() (which
    prints each one's logs first, with show_logs: a failed test's output shows them)."""

    def __init__(
        self, image: str, engine=docker, prefix: str = "tinyapi-test", flags=(), kind=Container
    ):
        self.image, self.engine, self.prefix, self.flags = image, engine, prefix, tuple(flags)
        self.kind = kind  # Container, or a subclass with more questions to ask
        self.started: list[Container] = []

    def run(
        self,
        *flags: str,
        name: str | None = None,
        publish: bool = True,
        host_port: int | None = None,
        port: int | None = None,
        command: tuple[str, ...] = (),
    ) -> Container:
        """`run -d` the image with flags; publish 8080 on host_port of 127.0.0.1 (None: the
        engine picks one). publish=False: no publishing (port: where the server will answer,
        if anywhere, as with host networking)."""
        c = self.kind(name or f"{self.prefix}-{uuid.uuid4().hex[:12]}", port, self.engine)
        self.started.append(c)  # before `run`: a container that failed to start is removed too
        published = []
        if publish:
            published = ["-p", f"127.0.0.1:{host_port or ''}:{PORT}"]
        self.engine(
            "run", "-d", "--name", c.name, *self.flags, *flags, *published, self.image, *command
        )
        if publish:
            c.port = host_port or c.published_port()
        return c

    def close(self, show_logs: bool = False) -> None:
        for c in self.started:
            if show_logs:
                print(f"--- {c.name}'s logs\n{c.logs()}")
            c.remove()
        self.started.clear()
