"""The images tinyapi's image is measured against, built here: busybox httpd FROM scratch
(Docker's floor: the least a container can do to answer 200), and the same server from source
in a container (what a user would run instead of tinyapi)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from bench.lib import REPO, BenchError, run, say
from harness.image import LOCAL_BUILDER_BASE as BUILDER_BASE
from harness.image import NONROOT

BASELINE_IMAGE = "tinyapi-bench/busybox-httpd:latest"
SOURCE_IMAGE = "tinyapi-bench/source:latest"  # the same server from source, in a container
DEBIAN_PYTHON = "/usr/bin/python3"  # the builder base's Python is Debian's too


def build_baseline_image() -> None:
    """busybox httpd FROM scratch: Debian's busybox-static and one page to answer 200 with."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise BenchError("no busybox (apt-get install -y busybox-static)")
    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-") as ctx:
        os.makedirs(os.path.join(ctx, "root", "bin"))
        os.makedirs(os.path.join(ctx, "root", "www"))
        shutil.copy(busybox, os.path.join(ctx, "root", "bin", "busybox"))
        with open(os.path.join(ctx, "root", "www", "index.html"), "w") as f:
            f.write("ok\n")
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(
                "FROM scratch\nCOPY root/ /\nEXPOSE 8080\n"
                'ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n'
            )
        run(["docker", "build", "-q", "-t", BASELINE_IMAGE, ctx])


def runtime_requirements() -> str:
    """The lines of requirements.lock for what the service itself needs (tinyapi's requirements
    without extras, and theirs), hashes included."""
    import importlib.metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wanted, todo = set(), ["tinyapi"]
    while todo:
        for text in importlib.metadata.requires(todo.pop()) or ():
            req = Requirement(text)
            name = canonicalize_name(req.name)
            if (req.marker is None or req.marker.evaluate({"extra": ""})) and name not in wanted:
                wanted.add(name)
                todo.append(name)
    with open(os.path.join(REPO, "requirements.lock")) as f:
        blocks = re.split(r"\n(?=[A-Za-z0-9])", f.read())
    return "".join(
        block.rstrip() + "\n"
        for block in blocks
        if canonicalize_name(block.split("==", 1)[0]) in wanted
    )


def build_source_image() -> None:
    """The same server from source in a container: what a user would run instead of tinyapi.
    Debian's Python (the builder base, build/make-builder-base) and a venv of the service's
    locked requirements, made here with the same Debian Python (the image has no index to
    reach), at the same path; the sources, config.yml, user and port as in tinyapi's image.
    Nothing is unpacked at start. The venv is kept in dist/bench/ and made again only when the
    lock changes."""
    if subprocess.run(["docker", "image", "inspect", BUILDER_BASE], capture_output=True).returncode:
        raise BenchError(f"no {BUILDER_BASE}: build/make-builder-base makes it")
    if not os.path.exists(DEBIAN_PYTHON):
        raise BenchError(f"no {DEBIAN_PYTHON} (apt-get install -y python3-venv)")
    ctx = os.path.join(REPO, "dist", "bench", "source-image")
    venv = os.path.join(ctx, "venv")
    requirements = runtime_requirements()
    stamp = os.path.join(ctx, "venv.requirements")
    if not (os.path.exists(stamp) and open(stamp).read() == requirements):
        say(f"  a venv for the source baseline ({DEBIAN_PYTHON}, the lock's runtime requirements)")
        shutil.rmtree(ctx, ignore_errors=True)
        os.makedirs(ctx)
        with open(os.path.join(ctx, "requirements.txt"), "w") as f:
            f.write(requirements)
        run([DEBIAN_PYTHON, "-m", "venv", venv])
        run(
            [
                os.path.join(venv, "bin", "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "--no-deps",
                "-r",
                os.path.join(ctx, "requirements.txt"),
            ]
        )
        with open(stamp, "w") as f:
            f.write(requirements)
    shutil.rmtree(os.path.join(ctx, "src"), ignore_errors=True)
    shutil.copytree(
        os.path.join(REPO, "tinyapi"),
        os.path.join(ctx, "src", "tinyapi"),
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(os.path.join(REPO, "config.yml"), os.path.join(ctx, "config.yml"))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(
            f"FROM {BUILDER_BASE}\n"
            f"COPY venv {venv}\n"
            "COPY src /opt/tinyapi\n"
            "COPY config.yml /etc/tinyapi/config.yml\n"
            # Bytecode compiled in the image, as pip does in a venv: nothing to do at start.
            f"RUN {venv}/bin/python -m compileall -q /opt/tinyapi\n"
            "ENV PYTHONPATH=/opt/tinyapi TINYAPI_CFG_PATH=/etc/tinyapi\n"
            f"WORKDIR /tmp\nUSER {NONROOT}:{NONROOT}\nEXPOSE 8080\n"
            f'ENTRYPOINT ["{venv}/bin/python", "-m", "tinyapi"]\n'
        )
    run(["docker", "build", "-q", "-t", SOURCE_IMAGE, ctx])
