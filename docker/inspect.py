#!/usr/bin/env python3
"""`make inspect`: what is in the image, on one screen.

Every file with its size, owner and mode (from `docker export` of a created, never started
container), the user it runs as, its entrypoint, the native libraries inside the binary with
the package and version each came from (the image's own /sbom.cdx.json), and its size beside
the base images of the article's table.

Usage: docker/inspect.py [IMAGE]   (default tinyapi:latest)
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.parse
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
from bench import ARTICLE_IMAGES, GO_ORIGINAL  # noqa: E402  (the article's table, kept once)

# Entries Docker itself adds to every container: not the image's.
DOCKER_ADDS = {".dockerenv", "dev", "proc", "sys", "etc/hosts", "etc/hostname",
               "etc/resolv.conf", "etc/mtab"}


class InspectError(Exception):
    pass


def docker(*args: str) -> str:
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise InspectError("no docker command on this machine") from None
    if done.returncode != 0:
        raise InspectError(f"docker {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def image_files(image: str) -> tuple[list[tarfile.TarInfo], dict | None]:
    """The image's files, and its SBOM if it carries one."""
    name = f"tinyapi-inspect-{uuid.uuid4().hex[:12]}"
    docker("create", "--name", name, image)
    try:
        export = subprocess.Popen(["docker", "export", name], stdout=subprocess.PIPE)
        members, sbom = [], None
        with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
            for member in tar:
                path = member.name.strip("/").removeprefix("./")
                if not path or path in DOCKER_ADDS or path.split("/")[0] in DOCKER_ADDS:
                    continue
                member.name = "/" + path
                members.append(member)
                if path == "sbom.cdx.json":
                    sbom = json.load(tar.extractfile(member))
        export.wait(60)
        return members, sbom
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def human(size: int) -> str:
    for unit, scale in (("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size} B"


SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")


def native_libraries(sbom: dict) -> list[tuple[str, str, str]]:
    """(package, version, what) for each component that ships machine code."""
    rows = []
    for component in sbom.get("components", []):
        files = {p["value"].removeprefix("staticx:").rsplit("/", 1)[-1]
                 for p in component.get("properties", []) if p.get("name") == "tinyapi:file"}
        libraries = sorted(f for f in files if SHARED_OBJECT.search(f) and ".cpython-" not in f)
        extensions = [f for f in files if ".cpython-" in f]
        what = libraries + [f"({tool})" for tool in ("pyinstaller bootloader", "staticx bootloader")
                            if f"({tool})" in files]
        if extensions:
            what.append(f"+ {len(extensions)} extension module{'s' * (len(extensions) > 1)}")
        if what:
            purl = component["purl"].split("?")[0].split("@")[0]
            rows.append((purl, urllib.parse.unquote(component.get("version", "")), " ".join(what)))
    return rows


def report(image: str) -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image))
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image))
    members, sbom = image_files(image)

    print(f"{image}: {size} bytes ({human(size)}), {len(members)} entries\n")
    print("files (docker export):")
    for m in sorted(members, key=lambda m: m.name):
        kind = "d" if m.isdir() else "l" if m.issym() else "-"
        print(f"  {kind}{m.mode & 0o7777:04o}  {m.uid}:{m.gid}  {m.size:>10}  {m.name}")
    print(f"\nruns as:     {config.get('User') or 'root (no USER)'}")
    print(f"entrypoint:  {config.get('Entrypoint')}  cmd: {config.get('Cmd')}")
    print(f"exposes:     {', '.join(sorted(config.get('ExposedPorts') or {}))}")
    print("no shell, no package manager, no library outside the binary: the list above is all.")

    if sbom:
        print("\ninside /bin/tinyapi (from /sbom.cdx.json):")
        for package, version, files in native_libraries(sbom):
            print(f"  {package:<34} {version:<24} {files}")
        pypi = sorted(c["name"] for c in sbom["components"] if c["purl"].startswith("pkg:pypi/")
                      and c["name"] not in ("pyinstaller", "staticx"))
        print(f"  Python distributions: {', '.join(pypi)}")
    else:
        print("\n(no /sbom.cdx.json in this image: `make image` puts one there)")

    print("\nsize beside the article's base images:")
    rows = [(name, int(bytes_)) for name, bytes_ in [*ARTICLE_IMAGES, GO_ORIGINAL]] + [(image, size)]
    widest = max(s for _, s in rows)
    for name, bytes_ in sorted(rows, key=lambda r: -r[1]):
        bar = "#" * max(1, round(40 * bytes_ / widest))
        print(f"  {name:<42} {human(bytes_):>9}  {bar}")


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        report(argv[0] if argv else "tinyapi:latest")
    except InspectError as err:
        print(f"inspect: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
