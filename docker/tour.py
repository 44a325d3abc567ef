#!/usr/bin/env -S python3 -P
"""`make tour`: "a container is just a process", shown live on this machine.

Every step runs real commands, shows each one as a presenter would type it, then its output,
then one line saying what that output proves. A step that sees something else stops the tour
with one line (expected X, saw Y); the containers it started are removed whatever happened.

  1 ldd on the binary          6 uid, capabilities; no shell to exec
  2 the image's size           7 the endpoints, with curl
  3 docker run, first 200      8 kill -TERM from the host stops the container
  4 docker top = host ps       9 /panic under --restart on-failure: the engine restarts it
  5 the filesystem from /proc  10 cleanup: no tour container, the port free

Exit status: 0 every step saw what it claims (a skipped step is not a failed one), 1 a step
saw something else, 2 the preflight refused (one line says how to fix it), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    from bench.article import (
        ARTICLE_IMAGES,
        GO_ORIGINAL,
        GO_ORIGINAL_COMPRESSED,
        beside_the_article,
    )
    from harness.container import Container, Containers
    from harness.docker import (
        DOCKER_ADDS,
        START_ENGINE,
        DockerError,
        container_running,
        export_image,
    )
    from harness.http import port_free
    from harness.image import NONROOT  # the Dockerfile's USER (distroless' "nonroot")
    from harness.paths import IMAGE_NAME, ROOT
    from harness.serve import NotServing
except ImportError:
    sys.exit(
        "tour: run it from the project's venv: make tour (or .venv/bin/python -P docker/tour.py)"
    )

CHART = ROOT / "bench" / "results" / "image-sizes.png"
NEITHER = "neither the image's nor the engine's"
RUNTIME_DIRS = {"tmp"}  # the image's own, empty; the server unpacks itself here at start
WAIT_200_S = 30
STEPS = 10


class Refused(Exception):
    """The preflight found something missing: one line on how to fix it."""


class Mismatch(Exception):
    """A step saw something else than it claims: what it expected, what it saw."""

    def __init__(self, expected: str, saw: str):
        super().__init__(f"expected {expected}, saw {saw}")


class Skip(Exception):
    """The host cannot see what the step needs: the reason, in one line."""


# --- output ------------------------------------------------------------------------------


class Screen:
    def __init__(self, colour: bool, pause: bool):
        self.colour, self.pause = colour, pause

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        print(text, flush=True)

    def heading(self, n: int, title: str) -> None:
        self.line()
        self.line(self._paint("1", f"[{n}/{STEPS}] {title}"))

    def command(self, text: str) -> None:
        self.line(self._paint("1;36", f"$ {text}"))

    def output(self, text: str) -> None:
        if text:
            self.line(text.rstrip("\n"))

    def claim(self, text: str) -> None:
        self.line(self._paint("32", f"=> {text}"))

    def note(self, text: str) -> None:
        self.line(self._paint("2", f"   ({text})"))

    def skipped(self, text: str) -> None:
        self.line(self._paint("33", f"skipped: {text}"))

    def failed(self, text: str) -> None:
        self.line(self._paint("1;31", f"tour: {text}"))

    def wait_for_enter(self) -> None:
        if self.pause:
            input(self._paint("2", "[Enter: next step]"))


# --- commands ----------------------------------------------------------------------------


def quiet(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command the audience does not need to see (preflight, checks, cleanup)."""
    try:
        return subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise Mismatch(
            f"`{shlex.join(argv)}` to finish within {timeout:.0f} s", "it still running"
        ) from None


def inspect_field(name: str, template: str) -> str | None:
    """`docker inspect -f TEMPLATE NAME`, or None when there is no such container or image."""
    done = quiet("docker", "inspect", "-f", template, name)
    return done.stdout.strip() if done.returncode == 0 else None


def image_files(image: str) -> dict[str, bool]:
    """Every path of the image (harness.docker.export_image, the one way to read them): is it a
    directory."""
    try:
        entries, _ = export_image(image, prefix="tour-export")
    except DockerError as err:
        raise Mismatch(f"`docker export` of {image} to work", str(err).splitlines()[0]) from None
    return {entry.path: entry.kind == "dir" for entry in entries}


@dataclass
class Process:
    pid: int
    cmd: str


def parse_top(text: str) -> list[Process]:
    """`docker top`'s table (ps -ef's columns): the PID and the command line, the last column."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split()
    rows = [line.split(None, len(header) - 1) for line in lines[1:]]
    return [
        Process(int(row[header.index("PID")]), row[-1] if len(row) == len(header) else "")
        for row in rows
    ]


@dataclass
class Tour:
    screen: Screen
    image: str
    port: int
    names: dict[str, str]
    host_view: str | None = None  # why the host cannot see the container's processes
    pid: int = 0  # the running container's first process, as the host sees it
    workdir: Path | None = None
    created: list[str] = field(default_factory=list)

    # --- running what the audience sees ---

    def run(
        self, argv: list[str], *, shell: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """Show the command, run it, show what it wrote (stderr first: a warning comes before
        the output it is about). The checks read stdout, or stderr + stdout where an answer
        comes on stderr (ldd's)."""
        self.screen.command(shell or shlex.join(argv))
        try:
            # stdin: nothing; the presenter's Enter is for the tour.
            done = subprocess.run(
                shell or argv,
                shell=bool(shell),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise Mismatch(f"it to finish within {timeout:.0f} s", "it still running") from None
        self.screen.output(done.stderr)
        self.screen.output(done.stdout)
        return done

    def shown_docker(self, *args: str, check: bool = True, timeout: float = 60):
        """An engine for harness.container that shows each command, as the audience sees it."""
        done = self.run(["docker", *args], timeout=timeout)
        if check and done.returncode != 0:
            raise Mismatch(f"docker {args[0]} to work", f"exit {done.returncode}")
        return done

    def docker_run(self, name: str, *extra: str) -> float:
        """`docker run -d` NAME (harness.container); seconds from the command to the first 200."""
        self.created.append(name)
        start = time.monotonic()
        Containers(self.image, engine=self.shown_docker).run(*extra, name=name, host_port=self.port)
        return self.wait_200(name, start)

    def wait_200(self, name: str, start: float) -> float:
        """Seconds from `start` to the first 200 on /alwaysok (harness.container's poll)."""
        try:
            return Container(name, self.port).wait_ready(
                timeout=WAIT_200_S, interval=0.02, since=start
            )
        except NotServing as why:
            if container_running(name):
                first_line = str(why).splitlines()[0]
                raise Mismatch(f"a 200 on /alwaysok within {WAIT_200_S} s", first_line) from None
            status = inspect_field(name, "{{.State.ExitCode}}")
            raise Mismatch(
                f"{name} to answer 200 on /alwaysok", f"it exit with status {status}"
            ) from None

    def stable_top(self, name: str) -> list[Process]:
        """docker top, retaken while one of its processes has just ended (a health probe)."""
        for _ in range(5):
            done = quiet("docker", "top", name)
            if done.returncode != 0:
                raise Mismatch(f"`docker top {name}` to list processes", done.stderr.strip())
            processes = parse_top(done.stdout)
            if all(Path(f"/proc/{p.pid}").exists() for p in processes):
                break
        return processes

    def require_host_view(self) -> None:
        if self.host_view:
            raise Skip(self.host_view)

    def require_root(self, what: str) -> None:
        self.require_host_view()
        if os.geteuid() != 0:
            raise Skip(
                f"a non-root user cannot {what} another uid's process (sudo make tour shows it)"
            )

    # --- the steps ---

    def step_ldd(self) -> None:
        """ldd on the binary: not a dynamic executable"""
        if not shutil.which("ldd"):
            raise Skip("no ldd on this host (it is glibc's, on Linux)")
        entry = json.loads(inspect_field(self.image, "{{json .Config.Entrypoint}}") or "null") or [
            "/bin/tinyapi"
        ]
        name = self.names["files"]
        self.created.append(name)
        local = self.workdir / Path(entry[0]).name
        if self.run(["docker", "create", "--name", name, self.image]).returncode != 0:
            raise Mismatch("docker create to work", "an error")
        if self.run(["docker", "cp", f"{name}:{entry[0]}", str(local)]).returncode != 0:
            raise Mismatch(f"docker cp of {entry[0]} out of the image", "an error")
        self.run(["docker", "rm", name])
        done = self.run(["ldd", str(local)])
        said = done.stderr + done.stdout
        if "not a dynamic executable" not in said:
            raise Mismatch("'not a dynamic executable'", repr(said.strip()[:120]))
        self.screen.claim(
            f"{entry[0]} loads no library from anywhere: one static executable, "
            "so the image needs nothing else"
        )

    def step_size(self) -> None:
        """the image's size, beside the article's table and the Go original"""
        done = self.run(["docker", "image", "inspect", "-f", "{{.Size}}", self.image])
        unpacked = int(done.stdout.strip())
        # The article's sizes are Docker Hub's, compressed: compare what is pulled with that.
        done = self.run([], shell=f"docker save {shlex.quote(self.image)} | gzip -6 | wc -c")
        size = int(done.stdout.strip())
        go = GO_ORIGINAL_COMPRESSED
        self.screen.line("  compressed, as pulled (the article's sizes are Docker Hub's):")
        for line in beside_the_article(f"{self.image} (this one)", size):
            self.screen.line(line)
        if CHART.exists():
            self.screen.note(f"the same as a chart: {CHART.relative_to(ROOT)}")
        smaller = [n for n, b in ARTICLE_IMAGES if size < b]
        bigger = [n for n, b in ARTICLE_IMAGES if size >= b]
        self.screen.claim(
            f"{size / 1e6:.2f} MB pulled, {size / go:.2f}x the Go original's; "
            f"unpacked {unpacked / 1e6:.2f} MB, {unpacked / GO_ORIGINAL[1]:.2f}x its; "
            f"smaller than {len(smaller)} of the article's {len(ARTICLE_IMAGES)} "
            "base images"
            + (f" (not {', '.join(bigger)})" if bigger else "")
            + ", with the service inside"
        )

    def step_run(self) -> None:
        """docker run -d, and the time until the first 200"""
        seconds = self.docker_run(self.names["main"])
        self.pid = int(inspect_field(self.names["main"], "{{.State.Pid}}") or 0)
        self.screen.line(f"first 200 on /alwaysok {seconds:.2f} s after `docker run`")
        # Workers may still be forking after the first answer: let the next steps see them all.
        seen, same, deadline = None, 0, time.monotonic() + 10
        while same < 5 and time.monotonic() < deadline:
            pids = {p.pid for p in self.stable_top(self.names["main"])}
            same, seen = (same + 1, seen) if pids == seen else (0, pids)
            time.sleep(0.1)
        self.screen.claim(
            f"up and answering {seconds:.2f} s after `docker run`: no system boots, a process starts"
        )

    def step_top(self) -> None:
        """docker top: the container's processes with their host PIDs; ps on the host shows them"""
        name = self.names["main"]
        for attempt in range(3):
            processes = parse_top(self.run(["docker", "top", name]).stdout)
            if not processes:
                raise Mismatch(f"docker top to list the processes of {name}", "none")
            self.require_host_view()
            done = self.run(
                ["ps", "-o", "pid,ppid,user,args", "-p", ",".join(str(p.pid) for p in processes)]
            )
            host = {
                int(row[0]): row[3] if len(row) > 3 else ""
                for row in (
                    line.split(None, 3) for line in done.stdout.splitlines()[1:] if line.strip()
                )
            }
            gone = [str(p.pid) for p in processes if p.pid not in host]
            if not gone or attempt == 2:
                break
            self.screen.note(
                f"PID {', '.join(gone)} ended between the two (a health probe): once more"
            )
        for p in processes:
            if host.get(p.pid) != p.cmd:
                raise Mismatch(
                    f"host PID {p.pid} running {p.cmd!r}", repr(host.get(p.pid, "no such process"))
                )
        nspid = self.run(["grep", "NSpid", f"/proc/{self.pid}/status"]).stdout.split()
        if nspid[1:] and nspid[-1] != "1":
            raise Mismatch(
                f"host PID {self.pid} to be PID 1 inside the container", f"NSpid {nspid[1:]}"
            )
        parent = next(
            (
                row
                for row in (line.split() for line in done.stdout.splitlines()[1:])
                if row[0] == str(self.pid)
            ),
            None,
        )
        try:
            shim = (
                f", a child of {Path(f'/proc/{parent[1]}/comm').read_text().strip()} ({parent[1]})"
                if parent
                else ""
            )
        except OSError:
            shim = ""
        self.screen.claim(
            f"the same {len(processes)} PIDs, the same command lines: ordinary processes "
            f"of this kernel; the container's PID 1 is host PID {self.pid}{shim}"
        )

    def step_filesystem(self) -> None:
        """/proc/<pid>/root/: the container's whole filesystem, seen from the host"""
        self.require_root("read /proc/<pid>/root of")
        root = Path(f"/proc/{self.pid}/root")
        image = image_files(self.image)
        labels, unexpected = self.label(root, "", image)
        # The root, then each directory of the image the engine put files into (/etc).
        mixed = sorted(
            {p.split("/")[0] for p, label in labels.items() if "/" in p and label == "engine-added"}
        )
        for rel in ["", *mixed]:
            done = self.run(["ls", "-la", f"{root}/{rel}/" if rel else f"{root}/"])
            for line in done.stdout.splitlines()[1:]:
                fields = line.split(None, 8)
                if len(fields) == 9 and fields[8] not in (".", ".."):
                    path = f"{rel}/{fields[8].split(' -> ')[0]}".strip("/")
                    self.screen.line(f"   /{path:<20} {labels.get(path, NEITHER)}")
        if unexpected:
            raise Mismatch("only the image's files and what the engine adds", ", ".join(unexpected))
        files = [p for p, is_dir in image.items() if not is_dir]
        engine = [p for p, label in labels.items() if label == "engine-added"]
        self.screen.claim(
            f"the image's {len(files)} files (in {len(image) - len(files)} directories) and the "
            f"engine's {len(engine)} additions: nothing else is in this container"
        )

    def label(
        self, root: Path, rel: str, image: dict[str, bool]
    ) -> tuple[dict[str, str], list[str]]:
        """Each entry under root/rel: the image's or the engine's; and what is neither."""
        labels: dict[str, str] = {}
        unexpected: list[str] = []
        for entry in sorted(os.scandir(root / rel), key=lambda e: e.name):
            path = f"{rel}/{entry.name}".strip("/")
            if path in DOCKER_ADDS:  # what the engine adds to every container at run time
                labels[path] = "engine-added"
            elif path in RUNTIME_DIRS and image.get(path):
                # What is in it now, the running server wrote: it must all be its own uid's.
                labels[path] = "image (empty there); now holds what the server unpacked at start"
                unexpected += [
                    f"/{path}/{e.name} (uid {e.stat(follow_symlinks=False).st_uid})"
                    for e in os.scandir(entry.path)
                    if e.stat(follow_symlinks=False).st_uid != NONROOT
                ]
            elif path in image:
                inside = [
                    p.removeprefix(path + "/")
                    for p, is_dir in image.items()
                    if p.startswith(path + "/") and not is_dir
                ]
                labels[path] = "image" + (f": {', '.join(sorted(inside))}" if inside else "")
                if entry.is_dir(follow_symlinks=False):
                    more_labels, more_unexpected = self.label(root, path, image)
                    labels.update(more_labels)
                    unexpected += more_unexpected
            else:
                unexpected.append("/" + path)
        return labels, unexpected

    def step_identity(self) -> None:
        """/proc/<pid>/status: uid 65532, no capability; and no shell to exec into"""
        name = self.names["main"]
        try:
            self.require_host_view()
        except Skip as why:
            self.screen.skipped(f"/proc/<pid>/status: {why}")
            checked = 0
        else:
            for _ in range(3):
                processes = self.stable_top(name)
                if not processes:
                    raise Mismatch(f"docker top to list the processes of {name}", "none")
                files = [f"/proc/{p.pid}/status" for p in processes]
                done = self.run(["grep", "-E", "^(Uid|CapEff)", *files])
                if done.returncode != 2:  # 2: a file gone (a probe that ended): retake the list
                    break
            seen: dict[str, dict[str, str]] = {}
            for line in done.stdout.splitlines():
                file, _, rest = line.partition(":")
                key, _, value = rest.partition(":")
                seen.setdefault(file, {})[key] = value.split()
            for file in files:
                uids, capeff = seen.get(file, {}).get("Uid"), seen.get(file, {}).get("CapEff")
                if uids != [str(NONROOT)] * 4:
                    raise Mismatch(f"uid {NONROOT} for {file}", f"Uid {uids}")
                if capeff != ["0000000000000000"]:
                    raise Mismatch(f"CapEff 0000000000000000 for {file}", f"CapEff {capeff}")
            checked = len(files)
        done = self.run(["docker", "exec", name, "sh"])
        if done.returncode == 0:
            raise Mismatch(
                "`docker exec ... sh` to fail (no shell in the image)", "it start a shell"
            )
        self.screen.claim(
            (
                f"all {checked} processes run as uid {NONROOT} with no capability; "
                if checked
                else ""
            )
            + f"there is no shell to exec into (exit {done.returncode})"
        )

    def step_curl(self) -> None:
        """the endpoints, with curl"""
        base = f"localhost:{self.port}"
        seen = []
        for path in ("/", "/alwaysok", "/chaosmonkey", "/healthcheck"):
            done = self.run(
                ["curl", "-sS", "--max-time", "30", "-w", " [%{http_code}]\\n", f"{base}{path}"]
            )
            body, _, code = done.stdout.rstrip("\n").rpartition(" [")
            code = code.rstrip("]")
            if path == "/chaosmonkey" and done.returncode == 52:
                self.monkey_won()
                seen.append(f"{path} exit 1")
                continue
            if done.returncode != 0:
                raise Mismatch(f"an answer from {path}", f"curl exit {done.returncode}")
            self.check_answer(path, code, body.strip())
            seen.append(f"{path} {code}")
        self.screen.claim(f"it answers as the article's service does ({', '.join(seen)})")

    @staticmethod
    def check_answer(path: str, code: str, body: str) -> None:
        if path == "/" and not (code == "200" and body.startswith("Index of tinyapi")):
            raise Mismatch("200 'Index of tinyapi...'", f"{code} {body[:60]!r}")
        if path == "/alwaysok" and not (code == "200" and body == '{ "status": "OK" }'):
            raise Mismatch('200 { "status": "OK" }', f"{code} {body[:60]!r}")
        if path == "/chaosmonkey" and not (
            code == "200" and re.fullmatch(r"Not Enough Chaos! \d+ /100", body)
        ):
            raise Mismatch("200 'Not Enough Chaos! N /100'", f"{code} {body[:60]!r}")
        if path == "/healthcheck":
            try:
                checks = json.loads(body)
                healthy = all(c["status"] == 1 for c in checks)
                names = [c["name"] for c in checks]
            except (ValueError, TypeError, KeyError):
                raise Mismatch("a JSON list of checks from /healthcheck", repr(body[:60])) from None
            if names != ["healthcheck1", "healthcheck2"] or code != ("200" if healthy else "503"):
                raise Mismatch(
                    "healthcheck1, healthcheck2 and 200 only if both pass", f"{code} {names}"
                )

    def monkey_won(self) -> None:
        """A roll over 90 ends the server, as the original's does: show it, start it again."""
        name = self.names["main"]
        done = self.run(["docker", "wait", name])
        if done.stdout.strip() != "1":
            raise Mismatch(
                "the server to exit 1 after the monkey's roll over 90",
                f"exit {done.stdout.strip()}",
            )
        self.screen.note(
            "the monkey rolled over 90: the server exits 1, as the original does; starting it again"
        )
        start = time.monotonic()
        if self.run(["docker", "start", name]).returncode != 0:
            raise Mismatch(f"docker start {name} to work", "an error")
        self.wait_200(name, start)
        self.pid = int(inspect_field(name, "{{.State.Pid}}") or 0)

    def step_kill(self) -> None:
        """kill -TERM from the host: the container stops, exit 0"""
        self.require_root("signal")
        name = self.names["main"]
        self.run(["kill", "-TERM", str(self.pid)])
        done = self.run(["docker", "wait", name])
        self.run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                f"name=^{name}$",
                "--format",
                "{{.Names}}\t{{.Status}}",
            ]
        )
        if done.stdout.strip() != "0":
            raise Mismatch(f"{name} to exit 0 on SIGTERM", f"exit {done.stdout.strip()}")
        self.screen.claim(
            f"a signal to host PID {self.pid} stopped the container, exit 0: "
            "stopping a container is signalling a process"
        )

    def step_restart(self) -> None:
        """docker run --restart on-failure, then /panic: the engine starts it again"""
        first = self.names["main"]
        if container_running(first):  # step 8 skipped: free the port
            self.run(["docker", "stop", first])
        name = self.names["restart"]
        self.screen.line(
            f"first 200 {self.docker_run(name, '--restart', 'on-failure'):.2f} s after `docker run`"
        )
        started = time.time()
        curl = self.run(["curl", "-sS", "--max-time", "30", f"localhost:{self.port}/panic"])
        if curl.returncode != 52:
            raise Mismatch("no reply from /panic (curl exit 52)", f"curl exit {curl.returncode}")
        deadline = time.monotonic() + WAIT_200_S
        while (
            inspect_field(name, "{{.RestartCount}}") in ("0", None) and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        # `--until 0s` is now in whole seconds: an event of this second would be left out.
        time.sleep(1.05 - time.time() % 1)
        since = int(time.time() - started) + 2
        logs = self.run([], shell=f"docker logs {name} 2>&1 | grep CRIT")
        died = self.run(
            [
                "docker",
                "events",
                "--since",
                f"{since}s",
                "--until",
                "0s",
                "--filter",
                f"container={name}",
                "--filter",
                "event=die",
                "--format",
                "{{.Action}} exitCode={{.Actor.Attributes.exitCode}}",
            ]
        )
        self.wait_200(name, time.monotonic())
        state = self.run(
            ["docker", "inspect", "-f", "RestartCount={{.RestartCount}} {{.State.Status}}", name]
        )
        answer = self.run(
            ["curl", "-sS", "-w", " [%{http_code}]\\n", f"localhost:{self.port}/alwaysok"]
        )
        if "RoutePanic" not in logs.stdout:
            raise Mismatch(
                "the log's CRIT line 'RoutePanic invoked'", repr(logs.stdout.strip()[:80])
            )
        if died.stdout.split() != ["die", "exitCode=1"]:
            raise Mismatch("one die event with exitCode=1", repr(died.stdout.strip()))
        if state.stdout.split() != ["RestartCount=1", "running"]:
            raise Mismatch("RestartCount=1 running", state.stdout.strip())
        if not answer.stdout.rstrip().endswith("[200]"):
            raise Mismatch("a 200 after the restart", answer.stdout.strip())
        self.screen.claim(
            "the process exited 1, the engine saw it and started it again "
            "(RestartCount 1), and it answers: the restart policy supervises a process"
        )

    def cleanup(self) -> None:
        """cleanup: no tour container or published port is left"""
        created = list(dict.fromkeys(self.created))
        ours = [n for n in created if inspect_field(n, "{{.Name}}") is not None]
        if ours:
            self.run(["docker", "rm", "-f", *ours])
        if set(created) - set(ours):
            # A `docker run` interrupted mid-way: the engine may create its container just after.
            quiet("docker", "rm", "-f", *(set(created) - set(ours)))
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        left = [n for n in created if inspect_field(n, "{{.Name}}") is not None]
        deadline = time.monotonic() + 10
        while not port_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if left:
            raise Mismatch("no tour container left", ", ".join(left))
        if not port_free(self.port):
            raise Mismatch(f"port {self.port} free again", "it still taken")
        self.screen.claim(
            f"nothing left: {'removed ' + ', '.join(ours) if ours else 'no container to remove'}; "
            f"port {self.port} free"
        )


# --- preflight ----------------------------------------------------------------------------


def preflight(screen: Screen, image: str, port: int, names: dict[str, str]) -> str | None:
    """Refuse with one line anything the tour cannot do; return why the host cannot see the
    container's processes (None when it can)."""
    for tool, fix in (("docker", "apt-get install docker.io"), ("curl", "apt-get install curl")):
        if not shutil.which(tool):
            raise Refused(f"no {tool} on this machine ({fix})")
    info = quiet("docker", "info", "-f", "{{.OperatingSystem}}")
    if info.returncode != 0:
        raise Refused(
            f"no Docker engine answers `docker info` (start one: {START_ENGINE.relative_to(ROOT)}, as root)"
        )
    left = [n for n in names.values() if inspect_field(n, "{{.Name}}") is not None]
    if left:
        raise Refused(
            f"container{'s' * (len(left) > 1)} {', '.join(left)} left from an earlier tour "
            f"(remove it: docker rm -f {' '.join(left)})"
        )
    if not port_free(port):
        raise Refused(f"port {port} is taken on this machine (pick another: make tour PORT=<n>)")
    if quiet("docker", "image", "inspect", image).returncode != 0:
        name, _, tag = image.rpartition(":")
        if tag != "latest":
            raise Refused(f"no image {image} (build it, or pass --image)")
        screen.line(f"tour: no image {image}: building it (make image IMAGE_NAME={name}; minutes)")
        built = subprocess.run(
            ["make", "--no-print-directory", "-C", str(ROOT), "image", f"IMAGE_NAME={name}"]
        )
        if built.returncode != 0:
            raise Refused(
                f"make image IMAGE_NAME={name} exited {built.returncode} (its output is above)"
            )
    if sys.platform != "linux" or "Docker Desktop" in info.stdout:
        return (
            "Docker Desktop runs containers inside a VM: their processes are not this host's, "
            "so the host cannot show them"
        )
    return None


def container_names(image: str) -> dict[str, str]:
    base = "tour-" + re.sub(r"[^a-zA-Z0-9_.-]", "-", image.removesuffix(":latest"))
    return {"main": base, "restart": f"{base}-restart", "files": f"{base}-files"}


def main(argv: list[str]) -> int:
    intro, steps, status = __doc__.split("\n\n", 2)
    parser = argparse.ArgumentParser(
        prog="docker/tour.py",
        description=intro,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"{steps}\n\n{status}",
    )
    parser.add_argument(
        "--image",
        metavar="NAME[:TAG]",
        default=IMAGE_NAME,
        help="the image to show (default $TINYAPI_IMAGE_NAME, else tinyapi; :latest without a tag)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8080,
        help="the host port it publishes on 127.0.0.1 (default 8080)",
    )
    parser.add_argument(
        "--no-pause",
        action="store_true",
        help="run straight through (it does anyway when stdin is not a terminal)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: not a port (1-65535)")
    image = args.image if ":" in args.image.rsplit("/", 1)[-1] else f"{args.image}:latest"
    colour = (
        sys.stdout.isatty() and os.environ.get("TERM") != "dumb" and "NO_COLOR" not in os.environ
    )
    screen = Screen(colour=colour, pause=sys.stdin.isatty() and not args.no_pause)
    names = container_names(image)

    try:
        host_view = preflight(screen, image, args.port, names)
    except (Refused, Mismatch) as why:
        screen.failed(f"preflight: {why}")
        return 2
    except KeyboardInterrupt:  # during make image: nothing of the tour's exists yet
        screen.failed("interrupted in the preflight")
        return 130

    # A TERM or HUP (a closed terminal) ends the tour through the same cleanup as Ctrl-C.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    tour = Tour(
        screen,
        image,
        args.port,
        names,
        host_view=host_view,
        workdir=Path(tempfile.mkdtemp(prefix=f"{names['main']}-")),
    )
    screen.line(
        f"tour: {image}, published on 127.0.0.1:{args.port}; "
        f"containers {names['main']}, {names['restart']}"
    )
    steps = [
        tour.step_ldd,
        tour.step_size,
        tour.step_run,
        tour.step_top,
        tour.step_filesystem,
        tour.step_identity,
        tour.step_curl,
        tour.step_kill,
        tour.step_restart,
    ]
    status = 0
    started = time.monotonic()
    try:
        for n, step in enumerate(steps, 1):
            screen.heading(n, step.__doc__.splitlines()[0])
            try:
                step()
            except Skip as why:
                screen.skipped(str(why))
            except Mismatch as why:
                screen.failed(f"step {n}: {why}")
                status = 1
                break
            except (OSError, ValueError, LookupError) as why:  # what the step did not foresee
                screen.failed(
                    f"step {n}: expected what the step shows, saw {type(why).__name__}: {why}"
                )
                status = 1
                break
            screen.wait_for_enter()
    except (KeyboardInterrupt, EOFError):
        screen.line()
        screen.failed("interrupted")
        status = 130
    finally:
        for sig in (
            signal.SIGINT,
            signal.SIGTERM,
            signal.SIGHUP,
        ):  # a second one must not stop the cleanup
            signal.signal(sig, signal.SIG_IGN)
        screen.heading(STEPS, tour.cleanup.__doc__)
        try:
            tour.cleanup()
        except Mismatch as why:
            screen.failed(f"step {STEPS}: {why}")
            status = status or 1
    screen.line()
    screen.line(
        f"tour: {'every step saw what it claims' if status == 0 else 'FAILED' if status == 1 else 'stopped'}"
        f" ({time.monotonic() - started:.1f} s)"
    )
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
