"""The FROM scratch image against a real Docker engine.

The image is built once per session with `make image`. Every test starts its own
container(s), publishes 8080 on a free port of 127.0.0.1 (Docker picks it), and
removes them with `docker rm -f` whatever happens. Nothing sleeps a fixed time:
each wait polls until its deadline.

No Docker engine answering: the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import signal
import ssl
import threading
from pathlib import Path

import pytest

from harness import image as image_spec
from harness.container import START_TIMEOUT, Container, Containers
from harness.digest import sha256
from harness.docker import docker, export_image
from harness.http import free_port, poll
from harness.image import NONROOT
from harness.paths import IMAGE_NAME
from harness.paths import ROOT as REPO
from harness.testing import signals_in, unusable_tmp_line

pytestmark = pytest.mark.docker


@pytest.fixture
def start(image):
    """start(*docker_run_args, publish=True, port=None) -> Container, removed at teardown
    (its logs shown with a failed test's output)."""
    containers = Containers(image)
    yield containers.run
    containers.close(show_logs=True)


# --- endpoints ---------------------------------------------------------------------------------

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=UTF-8"


@pytest.mark.parametrize(
    ("path", "status", "body", "headers"),
    [
        (
            "/",
            200,
            b"Index of tinyapi. These aren't the droids you're looking for\n",
            {"content-type": TEXT},
        ),
        ("/alwaysok", 200, b'{ "status": "OK" }', {"content-type": JSON}),
        ("/nope", 404, b"404 page not found\n", {}),
        ("/alwaysok/", 301, None, {"location": "/alwaysok"}),
    ],
    ids=["index", "alwaysok", "not-found", "trailing-slash-redirect"],
)
def test_endpoint_through_published_port(start, path, status, body, headers):
    c = start()
    c.wait_ready()
    got = c.get(path)
    assert got.status == status
    if body is not None:
        assert got.body == body
    for key, value in headers.items():
        assert got.headers.get(key) == value, got.headers


def test_chaosmonkey_answers_or_dies_with_1(start):
    c = start()
    c.wait_ready()
    try:
        got = c.get("/chaosmonkey")
    except (OSError, http.client.HTTPException):
        # Enough chaos: the process ended mid-request.
        assert c.wait_exit() == 1
        return
    if got.status == 200:
        assert re.fullmatch(rb"Not Enough Chaos! \d{1,2} /100\n", got.body), got.body
    else:  # the response raced the exit
        assert c.wait_exit() == 1


def test_panic_exits_1_with_crit_log(start):
    c = start()
    c.wait_ready()
    with pytest.raises((OSError, http.client.HTTPException)):
        c.get("/panic")  # the process ends before it answers
    assert c.wait_exit() == 1
    lines = [line for line in c.logs().splitlines() if "RoutePanic invoked. Exiting" in line]
    assert lines, c.logs()
    assert any("[CRIT]" in line for line in lines), lines


def test_restart_on_failure_serves_again_after_panic(start):
    c = start("--restart", "on-failure")
    c.wait_ready()
    with pytest.raises((OSError, http.client.HTTPException)):
        c.get("/panic")
    poll(
        lambda: int(c.inspect("{{.RestartCount}}")) >= 1 and c.running(),
        30,
        what="Docker to restart the container",
    )
    # A restarted container gets a new ephemeral host port: ask again.
    c.port = c.published_port()
    c.wait_ready()
    assert c.get("/").status == 200


def test_docker_stop_exits_0(start):
    # 0, not 137: PID 1 handled the SIGTERM (a dropped one is a SIGKILL after the timeout).
    c = start()
    c.wait_ready()
    docker("stop", "-t", "30", c.name, timeout=60)
    assert c.inspect("{{.State.ExitCode}}") == "0", c.logs()


def caught_signals(pid: int) -> set[int]:
    """The signals the process has a handler for."""
    return signals_in(Path(f"/proc/{pid}/status").read_text(), "SigCgt")


def test_docker_stop_while_the_app_loads_is_not_dropped(start):
    """A stop after tinyapi's entry point runs and before gunicorn installs its own handlers
    (Flask imported, the app built and warmed up) ends the container with 0: PID 1 without a
    handler has the kernel drop the SIGTERM, and the stop waits out its timeout and SIGKILLs
    (137). The moment: tinyapi's SIGTERM handler in place, gunicorn's SIGHUP one not yet."""
    c = start()
    pid = int(c.inspect("{{.State.Pid}}"))
    # The program (not the bootloader, which catches SIGTERM while it unpacks: patch 0004).
    program = re.compile(r"/staticx-\d+-[0-9a-f]+/")
    poll(
        lambda: (
            program.search(os.readlink(f"/proc/{pid}/exe"))
            and caught_signals(pid) & {signal.SIGTERM, signal.SIGHUP} == {signal.SIGTERM}
        ),
        30,
        interval=0.002,
        what="PID 1 the program, with tinyapi's SIGTERM handler and not yet gunicorn's",
    )
    docker("stop", "-t", "30", c.name, timeout=60)
    assert c.inspect("{{.State.ExitCode}}") == "0", c.logs()


def process_uids(c: Container) -> set[str]:
    """The uids of every process in the container, as the host's ps sees them."""
    lines = docker("top", c.name, "-eo", "pid,uid").stdout.splitlines()[1:]  # minus the header
    return {line.split()[1] for line in lines}


def test_runs_as_nonroot_by_default(start):
    c = start()
    c.wait_ready()
    assert process_uids(c) == {str(NONROOT)}


HARDENED = image_spec.HARDENED_RUN  # docs/security.md's hardened run


@pytest.mark.parametrize("user", ["12345:12345", f"{NONROOT}:{NONROOT}", "1:1"])
def test_hardened_run_serves_every_endpoint(start, user):
    c = start(*HARDENED, "--user", user, "-e", "TINYAPI_HEALTHCHECK_TIMEOUT=2")
    c.wait_ready()
    assert c.get("/").body == b"Index of tinyapi. These aren't the droids you're looking for\n"
    assert c.get("/alwaysok").body == b'{ "status": "OK" }'
    assert c.get("/alwaysok/").status == 301 and c.get("/nope").status == 404
    health = c.get("/healthcheck")  # no internet here: both checks fail, fast
    assert health.status in (200, 503)
    assert [r["name"] for r in json.loads(health.body)] == ["healthcheck1", "healthcheck2"]
    assert process_uids(c) == {user.split(":")[0]}
    try:
        chaos = c.get("/chaosmonkey")
        assert chaos.status == 200 and chaos.body.startswith(b"Not Enough Chaos! ")
    except (OSError, http.client.HTTPException):
        assert c.wait_exit() == 1  # the roll was above 90
        return
    with pytest.raises((OSError, http.client.HTTPException)):
        c.get("/panic")
    assert c.wait_exit() == 1


def capabilities(c: Container) -> dict[str, str]:
    """pid -> CapEff of every process in the container, read from the host's /proc."""
    pids = [line.split()[0] for line in docker("top", c.name, "-eo", "pid").stdout.splitlines()[1:]]
    found = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                found[pid] = line.split()[1]
    return found


@pytest.mark.parametrize("flags", [(), HARDENED], ids=["plain", "hardened"])
def test_no_process_in_the_container_has_capabilities(start, flags):
    c = start(*flags)
    c.wait_ready()
    # The master and its two workers (test_processes_are_the_server_alone): the first 200 may
    # come before the second worker is up.
    caps = poll(
        lambda: found if len(found := capabilities(c)) == 3 else None,
        START_TIMEOUT,
        what="the master and two workers",
    )
    assert set(caps.values()) == {"0000000000000000"}, caps


# --- a container is just a process: start-up, signals, what is unpacked --------------------------


def processes(c: Container) -> dict[int, int]:
    """host pid -> host ppid of every process in the container."""
    lines = docker("top", c.name, "-eo", "pid,ppid").stdout.splitlines()[1:]
    return {int(pid): int(ppid) for pid, ppid in (line.split() for line in lines)}


def workers(c: Container) -> set[int]:
    """The gunicorn workers: the children of the container's PID 1 (the master)."""
    master = int(c.inspect("{{.State.Pid}}"))
    return {pid for pid, ppid in processes(c).items() if ppid == master}


def test_processes_are_the_server_alone(start):
    """PID 1 is gunicorn's master itself (staticx's bootloader execs the program, PyInstaller's
    one-dir program is one process), and its two workers: nothing else."""
    c = start()
    c.wait_ready()
    poll(lambda: len(workers(c)) == 2, START_TIMEOUT, what="two workers")
    master = int(c.inspect("{{.State.Pid}}"))
    assert set(processes(c)) == {master} | workers(c)
    assert Path(f"/proc/{master}/cmdline").read_bytes().split(b"\0")[0].endswith(b"/tinyapi")


class Load:
    """GET /alwaysok one after the other from a thread, until stopped: every answer counted."""

    def __init__(self, c: Container):
        self.c, self.answered, self.failed = c, 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = self.c.get("/alwaysok", timeout=10).status
                if status == 200:
                    self.answered += 1
                else:
                    self.failed.append(status)
            except (OSError, http.client.HTTPException) as err:
                self.failed.append(repr(err))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


def test_hup_replaces_the_workers_and_every_request_is_answered(start):
    c = start()
    c.wait_ready()
    old = poll(lambda: w if len(w := workers(c)) == 2 else None, START_TIMEOUT, what="two workers")
    with Load(c) as load:
        poll(lambda: load.answered > 0, 10, what="the first answer under load")
        docker("kill", "-s", "HUP", c.name)
        poll(lambda: len(w := workers(c)) == 2 and not w & old, 30, what="two new workers")
        before = load.answered
        poll(lambda: load.answered > before, 10, what="an answer from the new workers")
    assert load.failed == [], load.failed
    assert "Hang up: Master" in c.logs()
    assert c.running()


def test_ttin_adds_a_worker_and_ttou_removes_one(start):
    c = start()
    c.wait_ready()
    poll(lambda: len(workers(c)) == 2, START_TIMEOUT, what="two workers")
    docker("kill", "-s", "TTIN", c.name)
    poll(lambda: len(workers(c)) == 3, 30, what="a third worker after TTIN")
    docker("kill", "-s", "TTOU", c.name)
    poll(lambda: len(workers(c)) == 2, 30, what="back to two workers after TTOU")
    assert c.get("/alwaysok").status == 200


def unpacked(c: Container) -> list[str]:
    """What the container has put in /tmp (its writable layer: `docker diff`)."""
    return sorted(
        line.split()[1]
        for line in docker("diff", c.name).stdout.splitlines()
        if line.split()[1].count("/") == 2 and line.split()[1].startswith("/tmp/")
    )


def test_sigkill_and_start_five_times_leave_one_unpacked_copy(start):
    """An OOM kill, a `docker stop` past its timeout, `--restart always`: the container's /tmp
    outlives its process. The bundle dir is reused, never copied again."""
    c = start()
    c.wait_ready()
    first = unpacked(c)
    assert len(first) == 1 and first[0].startswith(f"/tmp/staticx-{NONROOT}-"), first
    for _ in range(5):
        docker("kill", "-s", "KILL", c.name)
        assert c.wait_exit() == 137
        docker("start", c.name)
        c.port = c.published_port()
        c.wait_ready()
    assert unpacked(c) == first


@pytest.mark.parametrize(
    ("flags", "why"),
    [(("--read-only",), "read-only"), (("--read-only", "--tmpfs", "/tmp"), "mounted noexec")],
    ids=["read-only", "noexec-tmpfs"],
)
def test_a_tmp_it_cannot_run_from_is_one_line_saying_what_to_do(image, flags, why):
    """Docker's --tmpfs is noexec unless told otherwise: the run ends before unpacking, with
    the way out, instead of a bare "Permission denied" after 18 MB written."""
    done = docker("run", "--rm", *flags, image, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", unusable_tmp_line("/tmp", why))


def test_no_shell_to_exec(start):
    c = start()
    c.wait_ready()
    for shell in ("sh", "/bin/sh"):
        proc = docker("exec", c.name, shell, "-c", "echo pwned", check=False)
        assert proc.returncode != 0, proc.stdout
        assert "pwned" not in proc.stdout
    assert c.running()


# --- the image itself --------------------------------------------------------------------------


def exported_files(image: str) -> dict[str, tuple[str, int, int, int, str | None]]:
    """`docker export` of a created (never started) container: path -> (kind, mode, uid, gid, sha256)."""
    entries, _ = export_image(image, prefix="tinyapi-test")
    return {e.path: (e.kind, e.mode, e.uid, e.gid, e.sha256) for e in entries}


def test_image_holds_exactly_what_the_dockerfile_puts_there(image):
    files = exported_files(image)
    assert {p: (kind, oct(mode)) for p, (kind, mode, *_rest) in files.items()} == {
        f.path: (f.kind, oct(f.mode)) for f in image_spec.FILES
    }
    assert {(uid, gid) for _, _, uid, gid, _ in files.values()} == {(0, 0)}
    # ... the config is the repo's, and the SBOM describes the very binary beside it (both made
    # in the builder stage).
    assert files["etc/tinyapi/config.yml"][4] == sha256(REPO / "config.yml")
    _, contents = export_image(image, read=("sbom.cdx.json",), prefix="tinyapi-test")
    subject = json.loads(contents["sbom.cdx.json"])["metadata"]["component"]
    assert subject["hashes"] == [{"alg": "SHA-256", "content": files["bin/tinyapi"][4]}]


def test_nothing_in_the_image_is_writable_but_tmp(image):
    """Every entry belongs to root and only /tmp is writable by anyone else: the container's
    user (harness.image.NONROOT, or any --user but 0) can write nowhere but /tmp."""
    for path, (_kind, mode, uid, gid, _) in exported_files(image).items():
        assert (uid, gid) == (0, 0), path
        if path != "tmp":
            assert mode & 0o022 == 0, f"{path} is writable by group or others: {oct(mode)}"


def test_image_size_within_the_limit(image):
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    print(f"{image}: {size} bytes ({size / 1e6:.2f} MB)")
    assert size <= image_spec.MAX_IMAGE_BYTES, f"{size} bytes"


def test_image_config(image):
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
    assert config["User"] == f"{NONROOT}:{NONROOT}"
    assert config["Entrypoint"] == ["/bin/tinyapi"]
    assert not config.get("Cmd")
    assert set(config["ExposedPorts"]) == {"8080/tcp"}
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["TINYAPI_CFG_PATH"] == "/etc/tinyapi"
    # No CA bundle beside the binary's own (certifi's, inside it): each file is there once.
    assert "TINYAPI_HEALTHCHECK_CA_FILE" not in env
    labels = config["Labels"]
    from tinyapi import __version__

    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["org.opencontainers.image.title"] == "tinyapi"
    assert "org.opencontainers.image.description" in labels
    assert "org.opencontainers.image.source" in labels
    assert labels["tinyapi.sbom.path"] == "/sbom.cdx.json"
    # Both tags name the same image.
    ids = {
        docker("image", "inspect", "-f", "{{.Id}}", tag).stdout.strip()
        for tag in (image, f"{IMAGE_NAME}:{__version__}")
    }
    assert len(ids) == 1


# --- /healthcheck from inside the container, against a local HTTPS server ---------------------


class _OkHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a trustme CA: (port, ca_pem, other_ca_pem)."""
    trustme = pytest.importorskip("trustme")
    ca, other_ca = trustme.CA(), trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OkHandler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pems = []
    for which, authority in (("ca", ca), ("other-ca", other_ca)):
        pem = tmp_path / f"{which}.pem"
        authority.cert_pem.write_to_path(str(pem))
        pem.chmod(0o644)  # readable by the container's non-root user
        pems.append(pem)
    try:
        yield server.server_address[1], pems[0], pems[1]
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(start, port: int, ca_pem: Path | None):
    """/healthcheck of a host-network container whose two checks hit the local HTTPS server."""
    bind_port = free_port()
    args = [
        "--network",
        "host",
        "-e",
        "TINYAPI_SERVER_BIND_ADDRESS=127.0.0.1",
        "-e",
        f"TINYAPI_SERVER_BIND_PORT={bind_port}",
        "-e",
        f"TINYAPI_HEALTHCHECK_HC1_URL=https://127.0.0.1:{port}/hc1",
        "-e",
        f"TINYAPI_HEALTHCHECK_HC2_URL=https://127.0.0.1:{port}/hc2",
        "-e",
        "TINYAPI_HEALTHCHECK_TIMEOUT=5",
    ]
    if ca_pem is not None:  # else: the image's own bundle (certifi), which can't know a test CA
        args += [
            "-v",
            f"{ca_pem}:/run/test-ca.pem:ro",
            "-e",
            "TINYAPI_HEALTHCHECK_CA_FILE=/run/test-ca.pem",
        ]
    c = start(*args, publish=False, port=bind_port)
    c.wait_ready()
    health = c.get("/healthcheck", timeout=20)
    assert health.headers.get("content-type") == JSON
    results = json.loads(health.body)
    assert [r["name"] for r in results] == ["healthcheck1", "healthcheck2"], results
    return health.status, results


def test_healthcheck_passes_with_the_right_ca(start, https_server):
    port, ca_pem, _ = https_server
    status, results = run_healthcheck(start, port, ca_pem)
    assert status == 200, results
    assert [r["status"] for r in results] == [1, 1], results
    assert all(r["completed"] for r in results), results


@pytest.mark.parametrize("which", ["other-ca", "image-bundle"])
def test_healthcheck_fails_with_a_wrong_ca(start, https_server, which):
    port, _, other_pem = https_server
    status, results = run_healthcheck(start, port, other_pem if which == "other-ca" else None)
    assert status == 503, results
    assert [r["status"] for r in results] == [3, 3], results
