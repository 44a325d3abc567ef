"""The image under Podman, rootful and rootless, as Fedora and RHEL users run it.

The image is the one Docker built (the `image` fixture, `make image`), handed to Podman with
`docker save | podman load`: the same image, layer for layer. The rootless tests run as a user
the module creates (with subordinate ids) and deletes again, with every container, image and
pause process of its own.

A scratch image with a numeric USER and no /etc/passwd once kept Podman from starting it at all
(podman#7515, fixed in 2.0.6): every test here starts one, as 65532 or another --user.

Two quirks of the machines this runs on, not of Podman on a normal one:
- runc cannot raise rlimits there ("error setting rlimit type 6/7"): every run passes explicit
  --ulimit values no higher than this process's own;
- rootless networking has no /dev/net/tun (slirp4netns): the rootless runs use --network host.

Needs root (rootful Podman, useradd) and podman: without them the tests skip, except under
CI=true, where they fail.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import pwd
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from harness.container import PODMAN_ULIMITS as ULIMITS
from harness.container import START_TIMEOUT, Container, Containers, docker_to_podman, podman
from harness.docker import docker, export_image
from harness.http import free_port, poll
from harness.image import HARDENED_RUN as HARDENED
from harness.image import NONROOT
from harness.paths import ROOT
from harness.testing import AS_ROOT, IS_ROOT, unavailable

pytestmark = [pytest.mark.docker, pytest.mark.root]


@pytest.fixture(scope="module")
def podman_ready():
    if not IS_ROOT:
        unavailable("rootful Podman and the rootless test user need root", AS_ROOT)
    if shutil.which("podman") is None or shutil.which("newuidmap") is None:
        unavailable("no podman or newuidmap (Debian's podman, uidmap)")


def load_into_podman(image: str, user: str | None = None) -> str:
    """`docker save IMAGE | podman load` under a name of its own; the name Podman knows it by."""
    name = f"tinyapi-podman-test-{uuid.uuid4().hex[:12]}:latest"
    docker("tag", image, name)
    try:
        docker_to_podman(name, user=user)
    finally:
        docker("rmi", name, check=False)  # the tag only: the image stays
    return f"localhost/{name}"


@pytest.fixture(scope="module")
def rootful_image(podman_ready, image):
    loaded = load_into_podman(image)
    yield loaded
    podman("rmi", "-f", loaded, check=False)


def subordinate_ids(path: str, user: str) -> tuple[int, int]:
    """(first, count) of the user's range in /etc/subuid or /etc/subgid; (0, 0) if none."""
    for line in Path(path).read_text().splitlines():
        name, first, count = line.split(":")
        if name == user:
            return int(first), int(count)
    return 0, 0


def processes_of(uid: int) -> list[int]:
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue  # gone meanwhile
        if int(uids.split()[1]) == uid:  # the real uid
            pids.append(int(status.parent.name))
    return pids


@pytest.fixture(scope="module")
def rootless_user(podman_ready):
    """A new user with subordinate ids; removed with all its Podman state at teardown."""
    user = f"tinyapi-rl-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--create-home", "--shell", "/usr/sbin/nologin", user],
        check=True,
        capture_output=True,
    )
    uid = pwd.getpwnam(user).pw_uid
    try:
        for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
            if (
                subordinate_ids(path, user)[1] < 65536
            ):  # useradd gives them only where the file exists
                Path(path).touch()
                ranges = [line.split(":") for line in Path(path).read_text().splitlines()]
                first = max([100000, *(int(f) + int(c) for _, f, c in ranges)])
                subprocess.run(
                    ["usermod", flag, f"{first}-{first + 65535}", user],
                    check=True,
                    capture_output=True,
                )
            assert subordinate_ids(path, user)[1] >= 65536, f"{user} has too few ids in {path}"
        yield user
    finally:
        podman("system", "reset", "--force", user=user, check=False, timeout=120)
        # What outlives the reset: Podman's pause process holding the user namespace.
        for pid in processes_of(uid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        subprocess.run(["userdel", "--remove", user], capture_output=True, check=False)
        for leftover in (f"/tmp/podman-run-{uid}", f"/tmp/containers-user-{uid}"):
            shutil.rmtree(leftover, ignore_errors=True)


@pytest.fixture(scope="module")
def rootless_image(rootless_user, image):
    return load_into_podman(image, user=rootless_user)


class PodmanContainer(Container):
    def processes(self) -> list[tuple[str, str, str]]:
        """(user in the container, user on the host, host pid) of every process."""
        lines = self.engine("top", self.name, "user", "huser", "hpid").stdout.splitlines()[1:]
        return [tuple(line.split()) for line in lines]


def _starter(user: str | None, image: str):
    """start(*podman_run_args, host_network=False) -> PodmanContainer, and what removes them."""
    containers = Containers(
        image,
        engine=functools.partial(podman, user=user),
        prefix="tinyapi-podman-test",
        flags=ULIMITS,
        kind=PodmanContainer,
    )

    def start(*run_args: str, host_network: bool = False) -> PodmanContainer:
        if not host_network:
            return containers.run(*run_args)
        port = free_port()  # the server binds it itself
        net = ["--network", "host", "-e", "TINYAPI_SERVER_BIND_ADDRESS=127.0.0.1"]
        net += ["-e", f"TINYAPI_SERVER_BIND_PORT={port}"]
        return containers.run(*net, *run_args, publish=False, port=port)

    return start, lambda: containers.close(show_logs=True)


@pytest.fixture
def rootful(rootful_image):
    start, remove = _starter(None, rootful_image)
    yield start
    remove()


@pytest.fixture
def rootless(rootless_user, rootless_image):
    start, remove = _starter(rootless_user, rootless_image)
    yield start
    remove()


def assert_panic_exits_1(c: PodmanContainer) -> None:
    with pytest.raises((OSError, http.client.HTTPException)):
        c.get("/panic")  # the process ends before it answers
    assert c.wait_exit() == 1
    lines = [line for line in c.logs().splitlines() if "RoutePanic invoked. Exiting" in line]
    assert any("[CRIT]" in line for line in lines), c.logs()


def cap_eff(pids) -> set[str]:
    found = set()
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                found.add(line.split()[1])
    return found


# --- rootful ------------------------------------------------------------------------------------


def test_rootful_serves_every_endpoint(rootful):
    c = rootful()
    c.wait_ready()
    assert c.get("/").body == b"Index of tinyapi. These aren't the droids you're looking for\n"
    assert c.get("/alwaysok").body == b'{ "status": "OK" }'
    assert c.get("/alwaysok/").status == 301
    assert c.get("/nope").status == 404


def test_rootful_panic_exits_1_with_crit_line(rootful):
    c = rootful()
    c.wait_ready()
    assert_panic_exits_1(c)


def test_rootful_runs_as_the_images_numeric_user(rootful):
    """USER 65532:65532 with no /etc/passwd in the image (podman#7515): 65532 inside and out."""
    c = rootful()
    c.wait_ready()
    # The master and its two workers (staticx's bootloader execs the program): the first 200
    # may come before the second worker is up.
    procs = poll(
        lambda: found if len(found := c.processes()) == 3 else None,
        START_TIMEOUT,
        what="the master and two workers",
    )
    assert {(inside, host) for inside, host, _ in procs} == {(str(NONROOT), str(NONROOT))}, procs


@pytest.mark.parametrize("flags", [(), HARDENED], ids=["plain", "hardened"])
def test_rootful_no_process_has_capabilities(rootful, flags):
    c = rootful(*flags)
    c.wait_ready()
    assert cap_eff(pid for _, _, pid in c.processes()) == {"0000000000000000"}


@pytest.mark.parametrize("user", ["12345:12345", f"{NONROOT}:{NONROOT}"])
def test_rootful_hardened_read_only_run_serves(rootful, user):
    c = rootful(*HARDENED, "--user", user, "-e", "TINYAPI_HEALTHCHECK_TIMEOUT=2")
    c.wait_ready()
    assert c.get("/").status == 200 and c.get("/alwaysok").status == 200
    health = c.get("/healthcheck")  # no internet here: both checks fail, fast
    assert health.status in (200, 503)
    assert [r["name"] for r in json.loads(health.body)] == ["healthcheck1", "healthcheck2"]
    assert {inside for inside, _, _ in c.processes()} == {user.split(":")[0]}
    assert c.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    assert_panic_exits_1(c)


# --- make image ENGINE=podman ------------------------------------------------------------------

IMAGE_TOP = {"bin", "etc", "tmp", "sbom.cdx.json"}  # what the Dockerfile puts there
ENGINE_ADDS = {
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/mtab",
    "etc/passwd",
    "etc/group",
}


def files_of(engine: str, image: str) -> dict[str, str]:
    """path -> mode of every entry of the image's one layer, as ENGINE exports a created container."""
    entries, _ = export_image(image, prefix="tinyapi-podman-test", engine=engine)
    return {
        e.path: oct(e.mode)
        for e in entries
        if e.path.split("/")[0] in IMAGE_TOP and e.path not in ENGINE_ADDS
    }


def image_config(engine: str, ref: str) -> dict:
    return json.loads(
        subprocess.run(
            [engine, "image", "inspect", "-f", "{{json .Config}}", ref],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )


def test_make_image_engine_podman_builds_what_docker_builds(podman_ready, image):
    name = f"tinyapi-podman-test-{uuid.uuid4().hex[:12]}"
    built = subprocess.run(
        ["make", "--no-print-directory", "image", "ENGINE=podman", f"IMAGE_NAME={name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
        podman_config = image_config("podman", f"localhost/{name}:latest")
        docker_config = image_config("docker", image)
        podman_config["Labels"].pop("io.buildah.version")  # the one thing buildah adds
        for key in ("User", "Entrypoint", "ExposedPorts", "Env", "Labels"):
            assert podman_config.get(key) == docker_config.get(key), key
        assert files_of("podman", f"localhost/{name}:latest") == files_of("docker", image)
    finally:
        from tinyapi import __version__

        podman("rmi", f"localhost/{name}:latest", f"localhost/{name}:{__version__}", check=False)


# --- rootless -----------------------------------------------------------------------------------


def test_rootless_serves_as_an_unprivileged_host_user(rootless, rootless_user):
    c = rootless(host_network=True)
    c.wait_ready()
    assert c.get("/alwaysok").body == b'{ "status": "OK" }'
    procs = c.processes()
    assert {inside for inside, _, _ in procs} == {str(NONROOT)}, procs
    # 65532 in the container is a subordinate id of the user on the host: neither root nor 65532.
    # (The user's own uid is the container's 0; its subordinate ids from `first` are 1, 2, ...)
    first, _count = subordinate_ids("/etc/subuid", rootless_user)
    assert {os.stat(f"/proc/{pid}").st_uid for _, _, pid in procs} == {first + NONROOT - 1}


def test_rootless_panic_exits_1(rootless):
    c = rootless(host_network=True)
    c.wait_ready()
    assert_panic_exits_1(c)
