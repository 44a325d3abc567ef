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

import pytest

from harness import image as image_spec
from harness.container import Containers
from harness.docker import docker, docker_answers, export_image, server_pids
from harness.elf import header
from harness.http import poll
from harness.paths import DIST, IMAGE_NAME, ROOT
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


@pytest.fixture(scope="module")
def containers(arm64_image):
    started = Containers(arm64_image, prefix="tinyapi-arm64", flags=("--platform", "linux/arm64"))
    yield started
    started.close(show_logs=True)


@pytest.fixture(scope="module")
def serving(containers):
    c = containers.run()
    c.wait_ready(timeout=START_TIMEOUT)
    return c


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
    assert serving.get("/").body == (
        b"Index of tinyapi. These aren't the droids you're looking for\n"
    )
    assert serving.get("/alwaysok").body == b'{ "status": "OK" }'
    assert serving.get("/nope").status == 404
    assert serving.get("/alwaysok/").headers["location"] == "/alwaysok"


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
    def healthy() -> bool:
        status = serving.inspect("{{.State.Health.Status}}")
        assert status in ("starting", "healthy"), serving.inspect("{{json .State.Health}}")
        return status == "healthy"

    poll(healthy, timeout=120, interval=1, what=f"{serving.name} to turn healthy")


def test_panic_exits_1_with_its_log_line(containers):
    c = containers.run()
    c.wait_ready(timeout=START_TIMEOUT)
    with pytest.raises(OSError):
        c.get("/panic", timeout=30)
    assert c.wait_exit(timeout=60) == 1
    assert "RoutePanic invoked. Exiting" in c.logs()


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
