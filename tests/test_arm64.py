"""The arm64 image (Apple Silicon, Graviton, Raspberry Pi), built from the same Dockerfile with
`make image PLATFORM=linux/arm64` and run here under emulation (qemu-user-static through
binfmt_misc, which docker/setup-machine enables): the checks the amd64 image passes, and the one
OCI archive holding both (`make image-multiarch`).

Lean on purpose: one build under emulation per session (its builder base is made once per
machine), one long-lived container for what a running server shows, one for /panic.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
import uuid

import pytest

from harness import image as image_spec
from harness.docker import docker, docker_answers, export_image, server_pids
from harness.elf import header
from harness.http import request
from harness.paths import DIST, IMAGE_NAME, ROOT
from harness.serve import wait_for_200
from harness.testing import AS_ROOT, IS_ROOT, unavailable

pytestmark = [pytest.mark.docker, pytest.mark.root, pytest.mark.slow]

ARM64 = f"{IMAGE_NAME}:latest-arm64"
START_TIMEOUT = 120.0  # Python under qemu-user starts ~20x slower than natively


def make(*args: str, timeout: float) -> str:
    proc = subprocess.run(
        ["make", "--no-print-directory", *args, f"IMAGE_NAME={IMAGE_NAME}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"make {' '.join(args)} exited {proc.returncode}:\n{out[-6000:]}"
    return out


@pytest.fixture(scope="module")
def arm64_image() -> str:
    if not docker_answers():
        unavailable("no Docker engine answers `docker info`")
    if not IS_ROOT:
        unavailable("the arm64 builder base (debootstrap) needs root", AS_ROOT)
    make("image", "PLATFORM=linux/arm64", timeout=2400)
    return ARM64


class Arm64Container:
    def __init__(self, image: str):
        self.name = f"tinyapi-arm64-{uuid.uuid4().hex[:12]}"
        docker(
            "run", "-d", "--name", self.name, "--platform", "linux/arm64",
            "-p", "127.0.0.1::8080", image,
        )  # fmt: skip
        mapping = docker("port", self.name, "8080/tcp").stdout.split()[0]
        self.port = int(mapping.rsplit(":", 1)[1])

    def running(self) -> bool:
        return docker("inspect", "-f", "{{.State.Running}}", self.name).stdout.strip() == "true"

    def logs(self) -> str:
        proc = docker("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def remove(self) -> None:
        print(f"--- docker logs {self.name}\n{self.logs()}")
        docker("rm", "-f", self.name, check=False)


@pytest.fixture(scope="module")
def serving(arm64_image):
    c = Arm64Container(arm64_image)
    try:
        wait_for_200(c.port, alive=c.running, timeout=START_TIMEOUT)
        yield c
    finally:
        c.remove()


def test_the_image_is_arm64_and_within_the_size_limit(arm64_image):
    fields = docker("image", "inspect", "-f", "{{.Os}} {{.Architecture}} {{.Size}}", arm64_image)
    os_name, arch, size = fields.stdout.split()
    assert (os_name, arch) == ("linux", "arm64")
    assert int(size) <= image_spec.MAX_IMAGE_BYTES, f"{size} bytes"


def test_the_binary_is_static_aarch64_and_its_sbom_says_so(arm64_image):
    _, files = export_image(arm64_image, read=("bin/tinyapi", "sbom.cdx.json"))
    assert header(files["bin/tinyapi"]) == ("AArch64", True)
    sbom = json.loads(files["sbom.cdx.json"])
    properties = {p["name"]: p["value"] for p in sbom["metadata"].get("properties", [])}
    assert properties.get("tinyapi:platform") == "linux/arm64"


def test_serves_the_tutorials_curls(serving):
    assert request(serving.port, "/").body == (
        b"Index of tinyapi. These aren't the droids you're looking for\n"
    )
    assert request(serving.port, "/alwaysok").body == b'{ "status": "OK" }'
    assert request(serving.port, "/nope").status == 404
    assert request(serving.port, "/alwaysok/").headers["location"] == "/alwaysok"


def test_runs_as_nonroot_with_no_capabilities(serving):
    pids = server_pids(serving.name)
    assert len(pids) == 3  # the master and its two workers, as on amd64
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        assert fields["Uid"].split()[0] == str(image_spec.NONROOT), pid
        assert int(fields["CapEff"], 16) == 0, pid


def test_turns_healthy(serving):
    # Its own probe, as on amd64: the first one an interval (15 s) after the start.
    deadline = time.monotonic() + 120
    while (status := health(serving.name)) != "healthy" and time.monotonic() < deadline:
        assert status in ("starting", "healthy"), docker("inspect", serving.name).stdout
        time.sleep(1)
    assert status == "healthy", docker("inspect", "-f", "{{json .State.Health}}", serving.name)


def health(name: str) -> str:
    return docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()


def test_panic_exits_1_with_its_log_line(arm64_image):
    c = Arm64Container(arm64_image)
    try:
        wait_for_200(c.port, alive=c.running, timeout=START_TIMEOUT)
        with pytest.raises(OSError):
            request(c.port, "/panic", timeout=30)
        assert docker("wait", c.name, timeout=60).stdout.strip() == "1"
        assert "RoutePanic invoked. Exiting" in c.logs()
    finally:
        c.remove()


def test_one_oci_archive_holds_both_platforms(arm64_image):
    make("image-multiarch", timeout=2400)
    archive = DIST / "tinyapi.oci.tar"
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
        (manifest_list,) = index["manifests"]  # Podman's list, whose blob is the real index
        inner = json.load(tar.extractfile(blob(manifest_list)))
        platforms = {}
        for entry in inner["manifests"]:
            manifest = json.load(tar.extractfile(blob(entry)))
            config = json.load(tar.extractfile(blob(manifest["config"])))
            platforms[entry["platform"]["architecture"]] = config["architecture"]
    assert platforms == {"amd64": "amd64", "arm64": "arm64"}


def blob(descriptor: dict) -> str:
    algorithm, digest = descriptor["digest"].split(":")
    return f"blobs/{algorithm}/{digest}"
