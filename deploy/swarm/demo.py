#!/usr/bin/env python3
"""Self-healing on Docker Swarm, step by step: `make demo-swarm`.

On the local Docker engine:
  1. joins nothing: uses this node's swarm, or makes it a one-node swarm
     (`docker swarm init --advertise-addr 127.0.0.1`) when it is in none;
  2. deploys deploy/swarm/stack.yml as the stack `tinyapi-demo` and waits for GET /alwaysok;
  3. sends GET /panic: the server exits 1, Swarm starts a new task, /alwaysok answers again;
  4. calls GET /chaosmonkey until a roll above 90 kills the server, and shows the same;
  5. hangs the server without ending it: SIGSTOP to each of its processes, from the host (their
     host PIDs from `docker top`; this needs root, and is skipped without it). The health
     check (`tinyapi probe`, a new process each time, so not stopped) gets no answer; after
     `retries` failures Swarm marks the task unhealthy and replaces it. The stack's health
     check runs every --health-interval seconds here (5, to keep the demo short);
  6. always cleans up (also after an error or Ctrl-C): lets any process it stopped go on
     (SIGCONT), removes the stack, waits until its containers and network are gone, removes
     its /tmp volumes, and leaves the swarm only if step 1 created it.

It prints a timeline with wall-clock times, taken from the engine's own events
(`docker events`: the container's `die` with its exit code, its `health_status`, the new
container's `start`).

Run it with the project's venv (`make demo-swarm`): it polls the server with the harness
package's helpers. Traffic goes to 127.0.0.1 only.

Exit status: 0 the service came back each time within its bound; 1 it did not, or
something failed on the way; 2 it could not start (no engine, no image, port taken, ...).
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

try:
    from harness.docker import DockerError, docker, docker_answers, server_pids
    from harness.http import port_free, request
    from harness.serve import NotServing, wait_for_200
except ModuleNotFoundError as err:  # a python3 without the project's venv
    sys.exit(
        f"deploy/swarm/demo.py: no module {err.name}: run it with the venv's python "
        "(make venv, then .venv/bin/python deploy/swarm/demo.py)"
    )

HERE = Path(__file__).resolve().parent
STACK_FILE = HERE / "stack.yml"
SERVICE = "api"  # the service's name in stack.yml
MAX_CHAOS_CALLS = 300  # P(no roll above 90 in 300) = 0.91^300 ~ 5e-13


class DemoError(Exception):
    """Something went wrong: the message says what; exit status 1."""


class CannotStart(DemoError):
    """A precondition is missing: exit status 2."""


# --- output ----------------------------------------------------------------------------------


def clock(t: float) -> str:
    """10:01:02.345, local time."""
    return datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


def say(t: float | None, text: str) -> None:
    stamp = clock(t) if t is not None else " " * 12
    print(f"{stamp}  {text}", flush=True)


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


# --- docker ----------------------------------------------------------------------------------


def lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.strip()]


@dataclass
class Event:
    action: str  # "start", "die", "health_status: healthy" or "...: unhealthy"
    time: float  # the engine's clock, seconds since the epoch
    container: str
    task: str  # e.g. tinyapi-demo_api.1
    task_id: str
    exit_code: int | None = None

    def who(self) -> str:
        return f"task {self.task} [{self.task_id[:12]}]"


class Events:
    """`docker events` for one service's containers (start, die), read on a thread."""

    def __init__(self, service: str, since: float):
        self._queue: queue.Queue[Event] = queue.Queue()
        self._proc = subprocess.Popen(
            [
                "docker",
                "events",
                "--since",
                f"{since:.3f}",
                "--format",
                "{{json .}}",
                "--filter",
                "type=container",
                "--filter",
                f"label=com.docker.swarm.service.name={service}",
                "--filter",
                "event=start",
                "--filter",
                "event=die",
                "--filter",
                "event=health_status",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            try:
                raw = json.loads(line)
            except ValueError:
                continue
            attrs = raw.get("Actor", {}).get("Attributes", {})
            task = attrs.get("com.docker.swarm.task.name", "")
            code = attrs.get("exitCode")
            self._queue.put(
                Event(
                    action=raw.get("Action") or raw.get("status", ""),
                    time=raw["timeNano"] / 1e9,
                    container=raw.get("id", "")[:12],
                    task=task.rsplit(".", 1)[0] if task.count(".") >= 2 else task,
                    task_id=attrs.get("com.docker.swarm.task.id", ""),
                    exit_code=int(code) if code is not None else None,
                )
            )

    def wait(
        self,
        action: str,
        timeout: float,
        container: str | None = None,
        not_container: str | None = None,
    ) -> Event:
        """The next `action` event (for `container`, or for any but `not_container`)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DemoError(f"no container `{action}` event within {timeout:.0f} s")
            try:
                event = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if event.action != action:
                continue
            if container and event.container != container:
                continue
            if not_container and event.container == not_container:
                continue
            return event

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


# --- HTTP ------------------------------------------------------------------------------------


def get(port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path; raises OSError/HTTPException when nothing answers."""
    answer = request(port, path, timeout=timeout)
    return answer.status, answer.text


def wait_alwaysok(port: int, timeout: float) -> float:
    """Poll GET /alwaysok until it answers 200; the time it did."""
    try:
        wait_for_200(port, timeout=timeout, interval=0.05)
    except NotServing as err:
        raise DemoError(str(err)) from None
    return time.time()


# --- the demo --------------------------------------------------------------------------------


@dataclass
class Round:
    trigger: str  # "/panic", "/chaosmonkey" or "SIGSTOP"
    sent: float = 0.0  # when the fatal request (or the SIGSTOP) was sent
    calls: int = 0  # requests sent, the fatal one included
    rolls: list[int] = field(default_factory=list)  # the losing calls' rolls (chaos)
    reply: str = ""  # what the fatal request got back
    old_task: str = ""
    exit_code: int | None = None
    exited: float = 0.0
    last_words: str = ""  # the dead container's [CRIT] log line
    new_task: str = ""
    started: float = 0.0
    serving: float = 0.0
    stopped: list[int] = field(default_factory=list)  # host PIDs sent SIGSTOP (hang)
    unhealthy: float = 0.0  # when the engine said `unhealthy` (hang)
    probe_output: str = ""  # the last failing probe's line (hang)

    def as_json(self) -> dict:
        hang = (
            {
                "stopped_pids": self.stopped,
                "probe_output": self.probe_output,
                "unhealthy_after_s": round(self.unhealthy - self.sent, 3),
            }
            if self.stopped
            else {}
        )
        return {
            "trigger": self.trigger,
            "calls": self.calls,
            "rolls": self.rolls,
            "reply": self.reply,
            "old_task": self.old_task,
            "exit_code": self.exit_code,
            "last_words": self.last_words,
            "new_task": self.new_task,
            **hang,
            "exited_after_s": round(self.exited - self.sent, 3),
            "new_task_after_s": round(self.started - self.sent, 3),
            "serving_after_s": round(self.serving - self.sent, 3),
        }


def stack_interval() -> str:
    """The stack's own health-check interval, what TINYAPI_HEALTH_INTERVAL stands in for."""
    m = re.search(r"\$\{TINYAPI_HEALTH_INTERVAL:-([^}]+)\}", STACK_FILE.read_text())
    return m.group(1) if m else "?"


def proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command's name: [state, ppid, ...]."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def start_time(pid: int) -> str:
    """The process's start time (field 22 of /proc/PID/stat): a PID with its process."""
    return proc_stat(pid)[19]


class Demo:
    def __init__(self, stack: str, port: int, image: str, within: float, health_interval: float):
        self.stack, self.port, self.image, self.within = stack, port, image, within
        self.health_interval = health_interval
        self.stopped: dict[int, str] = {}  # host PID -> start time, of what we SIGSTOPped
        self.skipped = ""  # why round 3 did not run, if it did not
        self.service = f"{stack}_{SERVICE}"
        self.swarm_created = False
        self.gwbridge_created = False
        self.deployed = False
        self.events: Events | None = None
        self.current = ""  # the running task's container
        self.rounds: list[Round] = []
        self.cleanup_log: list[str] = []

    # 1. the swarm
    def check(self) -> None:
        if not docker_answers():
            raise CannotStart("no Docker engine answers `docker info` (start one: make setup)")
        if docker("image", "inspect", self.image, check=False).returncode != 0:
            raise CannotStart(f"no image {self.image} on this engine: build it with `make image`")
        if lines(docker("stack", "ls", "--format", "{{.Name}}", check=False)).count(self.stack):
            raise CannotStart(
                f"a stack named {self.stack} is already deployed; "
                f"remove it (docker stack rm {self.stack}) or choose --stack"
            )
        if not port_free(self.port, host="0.0.0.0"):  # host-mode publishing binds 0.0.0.0
            raise CannotStart(
                f"port {self.port} is taken on this machine: "
                f"choose another (--port, or TINYAPI_PORT=... make demo-swarm)"
            )

    def join_swarm(self) -> None:
        heading("swarm")
        state = docker(
            "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"
        ).stdout.split()
        if state[0] == "active":
            if state[1:] != ["true"]:
                raise CannotStart("this node is a swarm worker; run the demo on a manager")
            say(time.time(), "this node is already a swarm manager: using its swarm")
            return
        if state[0] != "inactive":
            raise CannotStart(
                f"this node's swarm state is {state[0]!r}; expected active or inactive"
            )
        had_gwbridge = bool(
            lines(docker("network", "ls", "-q", "--filter", "name=^docker_gwbridge$"))
        )
        docker("swarm", "init", "--advertise-addr", "127.0.0.1", timeout=120)
        self.swarm_created = True
        self.gwbridge_created = not had_gwbridge
        say(
            time.time(),
            "docker swarm init --advertise-addr 127.0.0.1: a one-node swarm "
            "(left again at the end)",
        )

    # 2. deploy
    def deploy(self) -> None:
        heading(f"deploy: stack {self.stack}, port {self.port}")
        self.events = Events(self.service, since=time.time() - 1)
        env = dict(
            os.environ,
            TINYAPI_PORT=str(self.port),
            TINYAPI_IMAGE=self.image,
            TINYAPI_HEALTH_INTERVAL=f"{self.health_interval:g}s",
        )
        t = time.time()
        self.deployed = True  # from here on, cleanup removes the stack (even if deploy failed)
        docker(
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            str(STACK_FILE),
            self.stack,
            env=env,
            timeout=120,
        )
        say(
            t,
            f"docker stack deploy --resolve-image never -c deploy/swarm/stack.yml {self.stack}"
            f" (TINYAPI_HEALTH_INTERVAL={self.health_interval:g}s: a health check every "
            f"{self.health_interval:g} s; the stack's default: {stack_interval()})",
        )
        started = self.events.wait("start", timeout=60)
        self.current = started.container
        say(started.time, f"{started.who()} running (container {started.container})")
        try:
            ok = wait_alwaysok(self.port, timeout=60)
        except DemoError as err:
            errors = lines(
                docker(
                    "service",
                    "ps",
                    "--no-trunc",
                    "--format",
                    "{{.Error}}",
                    self.service,
                    check=False,
                )
            )
            raise DemoError(f"{err}; Swarm's task errors: {errors or 'none'}") from None
        say(
            ok, f"GET /alwaysok 200: serving on 127.0.0.1:{self.port} ({ok - t:.2f} s after deploy)"
        )

    # 3 and 4. kill it, watch it come back
    def panic(self) -> Round:
        heading("round 1: GET /panic")
        r = Round("/panic", sent=time.time(), calls=1)
        say(r.sent, "GET /panic sent")
        r.reply = self._fatal_request("/panic")
        self._heal(r)
        return r

    def chaos(self) -> Round:
        heading("round 2: GET /chaosmonkey until a roll above 90")
        r = Round("/chaosmonkey")
        first = time.time()
        while r.calls < MAX_CHAOS_CALLS:
            r.calls += 1
            r.sent = time.time()
            try:
                status, body = get(self.port, "/chaosmonkey")
            except (OSError, http.client.HTTPException) as err:
                r.reply = f"no reply ({type(err).__name__})"
                break
            if status == 200 and body.startswith("Not Enough Chaos!"):
                r.rolls.append(int(body.split()[3]))
                continue
            r.reply = f"{status} {body.strip()!r}"  # the reply raced the exit
            break
        else:
            raise DemoError(f"{MAX_CHAOS_CALLS} calls to /chaosmonkey and no chaos")
        if r.rolls:
            say(
                first,
                f"GET /chaosmonkey x{len(r.rolls)}: Not Enough Chaos! "
                f"(rolls {', '.join(map(str, r.rolls))})",
            )
        say(r.sent, f"GET /chaosmonkey #{r.calls} sent: {r.reply}")
        self._heal(r)
        return r

    def hang(self) -> Round | None:
        heading("round 3: SIGSTOP every server process: it hangs without exiting")
        if os.geteuid() != 0:
            self.skipped = (
                "round 3: skipped: SIGSTOP to the container's processes (another "
                "user's) needs root: sudo make demo-swarm"
            )
            say(time.time(), self.skipped)
            return None
        hc = json.loads(
            docker("inspect", "-f", "{{json .Config.Healthcheck}}", self.current).stdout
        )
        interval, timeout, retries = hc["Interval"] / 1e9, hc["Timeout"] / 1e9, hc["Retries"]
        healthy = self._wait_healthy(timeout=hc.get("StartPeriod", 0) / 1e9 + interval + timeout)
        say(
            healthy,
            f"container {self.current} healthy: `tinyapi probe` (every "
            f"{interval:g} s, {retries} failures in a row make it unhealthy)",
        )
        r = Round("SIGSTOP")
        pids = server_pids(self.current)
        r.sent = time.time()
        for pid in pids:
            self.stopped[pid] = start_time(pid)
            os.kill(pid, signal.SIGSTOP)
        r.stopped = pids
        deadline = time.monotonic() + 10  # a signal takes effect when the process next runs
        while any(proc_stat(pid)[0] != "T" for pid in pids):
            if time.monotonic() > deadline:
                raise DemoError(f"SIGSTOP sent, but not all of {pids} stopped within 10 s")
            time.sleep(0.01)
        say(
            r.sent,
            f"kill -STOP {' '.join(map(str, pids))} (the host PIDs of `docker top "
            f"{self.current}`): every server process stopped, none exited",
        )
        r.reply = self._fatal_request("/alwaysok", timeout=2)
        bound = (retries + 1) * (interval + timeout)
        ill = self.events.wait("health_status: unhealthy", timeout=bound, container=self.current)
        r.unhealthy = ill.time
        r.probe_output = self._last_probe(self.current)
        say(
            ill.time,
            f"container {self.current} unhealthy, {ill.time - r.sent:.2f} s after "
            f"SIGSTOP: {r.probe_output}",
        )
        # Swarm stops the unhealthy task: SIGTERM waits for a stopped process (it cannot act
        # on it), so the engine kills it at the end of stop_grace_period.
        self._heal(r, exit_codes=(137,), within=bound + self.within)
        return r

    def _wait_healthy(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = docker(
                "inspect", "-f", "{{.State.Health.Status}}", self.current, check=False
            ).stdout.strip()
            if status == "healthy":
                return time.time()
            time.sleep(0.2)
        raise DemoError(f"container {self.current} not healthy within {timeout:.0f} s")

    @staticmethod
    def _last_probe(container: str) -> str:
        health = docker("inspect", "-f", "{{json .State.Health}}", container, check=False)
        try:
            log = json.loads(health.stdout)["Log"]
        except (ValueError, KeyError, TypeError):
            return ""
        failed = [entry["Output"].strip() for entry in log if entry["ExitCode"] != 0]
        return failed[-1] if failed else ""

    def _resume_stopped(self) -> None:
        """SIGCONT whatever we stopped and is still there (the same process, not a new one
        with its PID): an interrupted round 3 must not leave processes stopped."""
        resumed = []
        for pid, started in self.stopped.items():
            try:
                if start_time(pid) == started:
                    os.kill(pid, signal.SIGCONT)
                    resumed.append(pid)
            except (OSError, IndexError):
                pass  # gone: killed with its container
        self.stopped.clear()
        text = (
            f"kill -CONT {' '.join(map(str, resumed))} (stopped in round 3)"
            if resumed
            else "kill -CONT: none of the processes round 3 stopped is left"
        )
        say(time.time(), text)
        self.cleanup_log.append(text)

    def _fatal_request(self, path: str, timeout: float = 5) -> str:
        try:
            status, body = get(self.port, path, timeout=timeout)
            reply = f"{status} {body.strip()!r}"
        except (OSError, http.client.HTTPException) as err:
            reply = f"no reply ({type(err).__name__})"
        say(time.time(), reply)
        return reply

    def _heal(self, r: Round, exit_codes=(1,), within: float | None = None) -> None:
        within = within or self.within
        died = self.events.wait("die", timeout=30, container=self.current)
        r.old_task, r.exit_code, r.exited = died.who(), died.exit_code, died.time
        say(
            died.time,
            f"{died.who()} exited (exit code {died.exit_code}), "
            f"{died.time - r.sent:.2f} s after {r.trigger}",
        )
        r.last_words = self._crit_line(died.container)
        if r.last_words:
            say(None, f"its last log line: {r.last_words}")
        started = self.events.wait("start", timeout=within, not_container=self.current)
        self.current = started.container
        r.new_task, r.started = started.who(), started.time
        say(
            started.time,
            f"new {started.who()} running, {started.time - r.sent:.2f} s after {r.trigger}",
        )
        left = max(1.0, within - (time.time() - r.sent))
        r.serving = wait_alwaysok(self.port, timeout=left)
        say(r.serving, f"GET /alwaysok 200 again, {r.serving - r.sent:.2f} s after {r.trigger}")
        if r.exit_code not in exit_codes:
            raise DemoError(
                f"{r.trigger}: the task exited {r.exit_code}, expected "
                f"{' or '.join(map(str, exit_codes))}"
            )
        if r.serving - r.sent > within:
            raise DemoError(
                f"{r.trigger}: serving again took {r.serving - r.sent:.2f} s, "
                f"more than {within:.0f} s"
            )

    @staticmethod
    def _crit_line(container: str) -> str:
        logs = docker("logs", container, check=False)
        crit = [line for line in (logs.stdout + logs.stderr).splitlines() if "[CRIT]" in line]
        return crit[-1] if crit else ""

    def history(self) -> None:
        heading(f"docker service ps {self.service}: Swarm's record of the tasks")
        table = docker(
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "table {{.ID}}\t{{.Name}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}",
            self.service,
            check=False,
        )
        for line in lines(table):
            # Task IDs are 25 characters; 12 are enough to match them with the timeline.
            first, _, rest = line.partition(" ")
            print(
                f"  {first[:12]:<12} {rest.strip()}"
                if first != "ID"
                else f"  {'ID':<12} {rest.strip()}",
                flush=True,
            )

    # 5. cleanup
    def cleanup(self) -> None:
        heading("cleanup")
        if self.events:
            self.events.close()
        if self.stopped:
            self._resume_stopped()
        if self.deployed:
            self._step(
                f"docker stack rm {self.stack}",
                lambda: docker("stack", "rm", self.stack, check=False, timeout=120),
            )
            self._wait_gone(
                "containers",
                lambda: lines(
                    docker(
                        "ps",
                        "-aq",
                        "--filter",
                        f"label=com.docker.stack.namespace={self.stack}",
                        check=False,
                    )
                ),
            )
            self._wait_gone(
                f"network {self.stack}_default",
                lambda: lines(
                    docker(
                        "network",
                        "ls",
                        "-q",
                        "--filter",
                        f"name=^{self.stack}_default$",
                        check=False,
                    )
                ),
            )
            self._remove_volumes()
        if self.swarm_created:
            self._step(
                "docker swarm leave --force (the demo initialised this swarm)",
                lambda: docker("swarm", "leave", "--force", check=False, timeout=120),
            )
            if self.gwbridge_created:
                # `swarm init` (or the first task) creates it; `swarm leave` keeps it.
                self._step(
                    "docker network rm docker_gwbridge (created with the swarm)",
                    lambda: docker("network", "rm", "docker_gwbridge", check=False),
                )

    def _step(self, text: str, action) -> None:
        proc = action()
        ok = proc.returncode == 0
        note = "" if ok else f": FAILED ({(proc.stderr or proc.stdout).strip()})"
        say(time.time(), text + note)
        self.cleanup_log.append(text + note)

    def _wait_gone(self, what: str, listing, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while listing():
            if time.monotonic() > deadline:
                say(time.time(), f"{what}: still there after {timeout:.0f} s")
                self.cleanup_log.append(f"{what}: still there")
                return
            time.sleep(0.25)
        say(time.time(), f"{what}: gone")
        self.cleanup_log.append(f"{what}: gone")

    def _remove_volumes(self) -> None:
        # stack.yml names them "{{.Service.Name}}-tmp-{{.Task.Slot}}"; `stack rm` leaves them.
        names = [
            n
            for n in lines(
                docker("volume", "ls", "-q", "--filter", f"name={self.service}-tmp-", check=False)
            )
            if n.startswith(f"{self.service}-tmp-")
        ]
        for name in names:
            self._step(
                f"docker volume rm {name}", lambda n=name: docker("volume", "rm", n, check=False)
            )

    def summary(self) -> None:
        heading("summary")
        for r in self.rounds:
            ill = f"unhealthy after {r.unhealthy - r.sent:.2f} s, " if r.unhealthy else ""
            print(
                f"  {r.trigger:<13} {ill}exit {r.exit_code} after {r.exited - r.sent:.2f} s, "
                f"new task running after {r.started - r.sent:.2f} s, "
                f"GET /alwaysok 200 again after {r.serving - r.sent:.2f} s",
                flush=True,
            )
        if self.skipped:
            print(f"  {self.skipped}", flush=True)
        print(
            "  Nobody restarted anything by hand: Swarm saw the task fail (or its health "
            "check fail) and replaced it (restart_policy and healthcheck in "
            "deploy/swarm/stack.yml).",
            flush=True,
        )

    def as_json(self, status: int, error: str) -> dict:
        return {
            "status": status,
            "error": error,
            "stack": self.stack,
            "port": self.port,
            "within_s": self.within,
            "health_interval_s": self.health_interval,
            "swarm_created": self.swarm_created,
            "skipped": self.skipped,
            "rounds": [r.as_json() for r in self.rounds],
            "cleanup": self.cleanup_log,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", default="tinyapi-demo", help="stack name (tinyapi-demo)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("TINYAPI_PORT", 8080)),
        help="host port to publish (TINYAPI_PORT, else 8080)",
    )
    parser.add_argument(
        "--image",
        default=os.environ.get("TINYAPI_IMAGE", "tinyapi:latest"),
        help="image to deploy (TINYAPI_IMAGE, else tinyapi:latest)",
    )
    parser.add_argument(
        "--within",
        type=float,
        default=30.0,
        help="seconds the service may take to answer again (30)",
    )
    parser.add_argument(
        "--health-interval",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between health checks, for round 3 (5; the stack's "
        f"default: {stack_interval()})",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    # SIGTERM (a CI time-out, `kill`) must run the cleanup too: turn it into an exception.
    def _terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)

    demo = Demo(args.stack, args.port, args.image, args.within, args.health_interval)
    status, error = 0, ""
    try:
        demo.check()
        demo.join_swarm()
        demo.deploy()
        demo.rounds.append(demo.panic())
        demo.rounds.append(demo.chaos())
        hang = demo.hang()
        if hang:
            demo.rounds.append(hang)
        demo.history()
        demo.summary()
    except CannotStart as err:
        status, error = 2, str(err)
    except (DemoError, DockerError) as err:
        status, error = 1, str(err)
    except KeyboardInterrupt:
        status, error = 1, "interrupted"
    except Exception as err:  # a bug or a hung docker command: still clean up, then say what
        traceback.print_exc()
        status, error = 1, f"{type(err).__name__}: {err}"
    finally:
        # Ignore further Ctrl-C/SIGTERM while cleaning up: a half-done cleanup is worse.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if demo.swarm_created or demo.deployed:
            demo.cleanup()
        if error:
            print(f"\ndemo-swarm: {error}", file=sys.stderr, flush=True)
        if args.json:
            args.json.write_text(json.dumps(demo.as_json(status, error), indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
