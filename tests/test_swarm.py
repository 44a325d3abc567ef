"""deploy/swarm/: the stack file's hardening, and the self-healing demo on a real Docker Swarm.

The demo (deploy/swarm/demo.py, what `make demo-swarm` runs) is run as a program, with a free
port, its own stack name and --json: it deploys the stack (making this node a one-node swarm
if it is in none), sends /panic, then /chaosmonkey until a roll kills the server, then hangs
it with SIGSTOP until its health check fails, and times how long Swarm takes to serve again. The tests read its JSON and then check, with docker
itself, that nothing was left behind: no service, container, network or volume of the
stack, and the swarm left again if the demo created it.

No Docker engine answering: the Docker tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import functools
import json
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

import harness.docker
from harness.http import free_port
from harness.image import NONROOT

REPO = Path(__file__).resolve().parent.parent
STACK_FILE = REPO / "deploy" / "swarm" / "stack.yml"
DEMO = REPO / "deploy" / "swarm" / "demo.py"
# Measured on a 2-core machine (one-node swarm, Engine 20.10, restart delay 1 s): GET /alwaysok
# answers again 2.5-4.5 s after /panic or the fatal /chaosmonkey. The bound is generous.
RECOVERY_BOUND_S = 30.0
DEMO_TIMEOUT_S = 300


# --- the stack file, without Docker --------------------------------------------------------------


@pytest.fixture(scope="module")
def service() -> dict:
    stack = yaml.safe_load(STACK_FILE.read_text())
    assert list(stack["services"]) == ["api"], "the demo names the service `api`"
    return stack["services"]["api"]


def test_stack_is_hardened_as_the_image(service):
    assert service["user"] == f"{NONROOT}:{NONROOT}"
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "cap_add" not in service and "privileged" not in service
    assert service["image"].endswith("tinyapi:latest}")  # ${TINYAPI_IMAGE:-tinyapi:latest}


def test_stack_tmp_is_a_tmpfs_that_allows_exec():
    """Swarm's own `tmpfs` mounts are noexec (the binary then cannot start): a local tmpfs
    volume, one per task slot, with exactly the options given."""
    stack = yaml.safe_load(STACK_FILE.read_text())
    mounts = {m["target"]: m for m in stack["services"]["api"]["volumes"]}
    assert set(mounts) == {"/tmp"}
    assert mounts["/tmp"]["type"] == "volume"
    volume = stack["volumes"][mounts["/tmp"]["source"]]
    assert volume["driver"] == "local"
    assert "{{.Task.Slot}}" in volume["name"] and "{{.Service.Name}}" in volume["name"]
    opts = volume["driver_opts"]
    assert opts["type"] == "tmpfs" and opts["device"] == "tmpfs"
    options = opts["o"].split(",")
    assert "noexec" not in options
    assert {"nosuid", "nodev", "mode=1777"} <= set(options)


def test_stack_heals_and_updates_safely(service):
    deploy = service["deploy"]
    assert deploy["restart_policy"]["condition"] in ("any", "on-failure")
    assert "max_attempts" not in deploy["restart_policy"]
    # Host-mode port: the old task must free it before a new one binds it.
    assert deploy["update_config"]["order"] == "stop-first"
    assert deploy["rollback_config"]["order"] == "stop-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["placement"]["max_replicas_per_node"] == 1
    assert service["ports"] == [
        {"target": 8080, "published": "${TINYAPI_PORT:-8080}", "protocol": "tcp", "mode": "host"}
    ]


def image_healthcheck() -> dict:
    """The Dockerfile's HEALTHCHECK: {"test": [...], "interval": "60s", ...}."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    line = re.search(r"^HEALTHCHECK (.*)$", text, re.M).group(1)
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", line))
    test = json.loads(line[line.index("CMD") + 3 :])
    options["retries"] = int(options["retries"])
    return {"test": ["CMD", *test], **{k.replace("-", "_"): v for k, v in options.items()}}


def test_stack_declares_the_images_healthcheck(service):
    """The same probe with the same settings; only the interval may be shortened, by the demo
    (TINYAPI_HEALTH_INTERVAL)."""
    hc = dict(service["healthcheck"])
    default = image_healthcheck()["interval"]
    assert hc.pop("interval") == f"${{TINYAPI_HEALTH_INTERVAL:-{default}}}"
    expected = image_healthcheck()
    del expected["interval"]
    assert hc == expected
    assert hc["test"] == ["CMD", "/bin/tinyapi", "probe"]


def test_stack_resources_are_sized_from_the_measurements(service):
    res = service["deploy"]["resources"]
    mib = {"limits": res["limits"]["memory"], "reservations": res["reservations"]["memory"]}
    assert all(v.endswith("M") for v in mib.values()), mib
    # Measured: 64.5 MiB idle, 87 MiB peak under load (the /tmp tmpfs included).
    assert int(mib["reservations"][:-1]) >= 64.5
    assert int(mib["limits"][:-1]) >= 1.5 * 87
    assert float(res["reservations"]["cpus"]) <= float(res["limits"]["cpus"])


# --- Docker ------------------------------------------------------------------------------------

# Swarm's state is read as it is, failures included: nothing here raises on a non-zero exit.
docker = functools.partial(harness.docker.docker, check=False)
ALL_ADDRESSES = "0.0.0.0"  # host-mode publishing binds the port on every address


def swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


def has_gwbridge() -> bool:
    return bool(docker("network", "ls", "-q", "--filter", "name=^docker_gwbridge$").stdout.strip())


def leftovers(stack: str) -> dict[str, list[str]]:
    """Whatever of the stack `stack` still exists; {} when nothing."""
    label = f"label=com.docker.stack.namespace={stack}"
    found = {
        "containers": docker("ps", "-aq", "--filter", label).stdout.split(),
        "networks": docker("network", "ls", "-q", "--filter", f"name=^{stack}_").stdout.split(),
        "volumes": [
            v for v in docker("volume", "ls", "-q").stdout.split() if v.startswith(f"{stack}_")
        ],
    }
    if swarm_state() == "active":
        found["services"] = docker("service", "ls", "-q", "--filter", label).stdout.split()
    return {k: v for k, v in found.items() if v}


@pytest.fixture
def demo_run(image, tmp_path):
    """demo_run(*args) -> (Popen, json path, stack); checks afterwards that all is cleaned up."""
    before = {"swarm": swarm_state(), "gwbridge": has_gwbridge()}
    stacks: list[str] = []
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, Path, str]:
        stack = f"tinyapi-test-{uuid.uuid4().hex[:8]}"
        stacks.append(stack)
        out = tmp_path / f"{stack}.json"
        proc = subprocess.Popen(
            [
                sys.executable,
                str(DEMO),
                "--stack",
                stack,
                "--image",
                image,
                "--json",
                str(out),
                "--within",
                str(RECOVERY_BOUND_S),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        return proc, out, stack

    yield start
    for proc in procs:  # a test that failed midway: let the demo clean up, as on Ctrl-C
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=120)
    left_behind = {}
    for stack in stacks:
        left = leftovers(stack)
        if left:  # clean up for the next run, then fail
            if swarm_state() == "active":
                docker("stack", "rm", stack)
            time.sleep(5)
            for volume in left.get("volumes", []):
                docker("volume", "rm", "-f", volume)
            left_behind[stack] = left
    # Put the swarm back as it was before failing on anything: a swarm left active here would
    # make every later run "already a swarm manager".
    after = {"swarm": swarm_state(), "gwbridge": has_gwbridge()}
    if before["swarm"] == "inactive" and after["swarm"] != "inactive":
        docker("swarm", "leave", "--force")
    if not before["gwbridge"] and has_gwbridge():
        docker("network", "rm", "docker_gwbridge")
    assert not left_behind, f"the demo left {left_behind} behind"
    assert after == before, "the demo must leave the swarm as it found it"


def finish(proc: subprocess.Popen, timeout: float = DEMO_TIMEOUT_S) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the demo cleans up on SIGTERM
        out, _ = proc.communicate(timeout=120)
        pytest.fail(f"the demo took more than {timeout}s:\n{out}", pytrace=False)
    print(out)  # shown with the test's output when it fails
    return proc.returncode, out


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
def test_demo_swarm_replaces_the_task_after_panic_chaosmonkey_and_a_hang(demo_run):
    began = time.monotonic()
    proc, out_json, stack = demo_run("--port", str(free_port(ALL_ADDRESSES)))
    status, out = finish(proc)
    took = time.monotonic() - began
    result = json.loads(out_json.read_text())
    assert status == 0, f"demo exited {status}: {result['error']}\n{out}"
    print(f"demo took {took:.1f}s")

    panic, chaos, hang = result["rounds"]
    assert [r["trigger"] for r in result["rounds"]] == ["/panic", "/chaosmonkey", "SIGSTOP"]
    for r in (panic, chaos, hang):
        assert r["reply"].startswith("no reply"), r  # dead or hung mid-request
        assert r["old_task"] != r["new_task"], r  # a new task, not the old one
        assert r["old_task"].startswith(f"task {stack}_api.1 ")
        assert r["new_task"].startswith(f"task {stack}_api.1 ")  # in the same slot
        assert 0 <= r["exited_after_s"] <= r["new_task_after_s"] <= r["serving_after_s"]
    for r in (panic, chaos):
        assert r["exit_code"] == 1, r
        assert r["serving_after_s"] <= RECOVERY_BOUND_S, r
    # The hang: the server's processes stopped (the master and its workers, and a bootloader
    # above them if the binary keeps one), the probe's failures mark the task unhealthy within (retries + 1) probes of
    # at most interval + timeout each, and Swarm kills it (137: a stopped process cannot act on
    # SIGTERM, so the engine's SIGKILL ends it) and starts another.
    assert len(hang["stopped_pids"]) >= 3, hang
    hc = image_healthcheck()
    bound = (hc["retries"] + 1) * (result["health_interval_s"] + float(hc["timeout"].rstrip("s")))
    assert hc["retries"] == 3
    assert 0 < hang["unhealthy_after_s"] <= bound, hang
    assert hang["unhealthy_after_s"] <= hang["exited_after_s"], hang
    assert hang["exit_code"] == 137, hang
    assert hang["probe_output"] == (
        "tinyapi probe: GET http://127.0.0.1:8080/alwaysok: no answer within 2 s"
    ), hang
    assert hang["serving_after_s"] <= bound + RECOVERY_BOUND_S, hang
    assert "RoutePanic invoked. Exiting" in panic["last_words"] and "[CRIT]" in panic["last_words"]
    assert "RouteChaosMonkey rolled" in chaos["last_words"]
    assert chaos["calls"] == len(chaos["rolls"]) + 1
    assert all(0 <= n <= 90 for n in chaos["rolls"]), chaos["rolls"]  # losing rolls only

    # The timeline a learner reads.
    for line in (
        "GET /panic sent",
        "exited (exit code 1)",
        "GET /alwaysok 200 again",
        '"task: non-zero exit (1)"',
        "kill -STOP ",
        "unhealthy, ",
        "unhealthy container",
        "kill -CONT: none of the processes round 3 stopped",
        "docker stack rm " + stack,
    ):
        assert line in out, line
    # The demo's swarm-made-here bookkeeping agrees with what the fixture saw.
    assert ("docker swarm leave --force" in out) == result["swarm_created"]


@pytest.mark.docker
@pytest.mark.slow
def test_demo_cleans_up_when_interrupted(demo_run):
    """SIGTERM (a CI time-out, Ctrl-C) mid-demo: it stops, and still removes everything."""
    proc, out_json, stack = demo_run("--port", str(free_port(ALL_ADDRESSES)))
    seen = []
    for line in proc.stdout:  # wait until it is serving, then interrupt the first round
        seen.append(line)
        if "GET /alwaysok 200: serving" in line:
            break
    else:
        pytest.fail("the demo ended before serving:\n" + "".join(seen), pytrace=False)
    proc.send_signal(signal.SIGTERM)
    status, rest = finish(proc, timeout=120)
    result = json.loads(out_json.read_text())
    assert status == 1 and result["error"] == "interrupted", "".join(seen) + rest
    assert f"docker stack rm {stack}" in rest


@pytest.mark.docker
@pytest.mark.root
@pytest.mark.slow
def test_demo_cleans_up_when_interrupted_with_the_server_stopped(demo_run):
    """SIGTERM during round 3, while the server's processes are stopped: the cleanup lets them
    go on and removes everything."""
    proc, out_json, stack = demo_run("--port", str(free_port(ALL_ADDRESSES)))
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "kill -STOP " in line:
            pids = [int(p) for p in line.split("kill -STOP ")[1].split(" (")[0].split()]
            break
    else:
        pytest.fail("the demo ended before round 3:\n" + "".join(seen), pytrace=False)
    states = {pid: process_state(pid) for pid in pids}  # read before the cleanup resumes them
    proc.send_signal(signal.SIGTERM)
    status, rest = finish(proc, timeout=120)
    assert set(states.values()) == {"T"}, states  # the demo says so once they all are
    result = json.loads(out_json.read_text())
    assert status == 1 and result["error"] == "interrupted", "".join(seen) + rest
    assert f"kill -CONT {' '.join(map(str, pids))} (stopped in round 3)" in rest
    assert not [pid for pid in pids if process_state(pid) == "T"], "still stopped"


def process_state(pid: int) -> str | None:
    """R, S, T (stopped), ... from /proc/PID/stat; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


@pytest.mark.docker
@pytest.mark.slow
def test_demo_refuses_a_taken_port_and_touches_nothing(demo_run):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        proc, out_json, _ = demo_run("--port", str(taken.getsockname()[1]))
        status, out = finish(proc, timeout=60)
    assert status == 2, out
    assert "is taken" in json.loads(out_json.read_text())["error"]
    assert "docker swarm init" not in out and "docker stack deploy" not in out
