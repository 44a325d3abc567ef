#!/usr/bin/env python3
"""`make inspect`: what is in the image, on one screen.

Every file with its size, owner and mode (from `docker export` of a created, never started
container), the user it runs as, its entrypoint, the native libraries inside the binary with
the package and version each came from (the image's own /sbom.cdx.json), and its size beside
the base images of the article's table.

Usage: docker/inspect-image.py [IMAGE]   (default tinyapi:latest, or $TINYAPI_IMAGE_NAME:latest)
"""

from __future__ import annotations

import json
import re
import sys
import urllib.parse

try:
    from bench.article import beside_the_article
    from bench.sizes import compressed_image_bytes
    from harness.docker import DockerError, docker, export_image
    from harness.paths import IMAGE
except ModuleNotFoundError as err:  # a python3 without the project's venv
    sys.exit(
        f"docker/inspect-image.py: no module {err.name}: run it with the venv's python "
        "(make venv, then .venv/bin/python docker/inspect-image.py)"
    )


def image_files(image: str) -> tuple[list, dict | None]:
    """The image's entries (harness.docker.Entry), and its SBOM if it carries one."""
    entries, contents = export_image(image, read=("sbom.cdx.json",), prefix="tinyapi-inspect")
    sbom = json.loads(contents["sbom.cdx.json"]) if "sbom.cdx.json" in contents else None
    return entries, sbom


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
        files = {
            p["value"].removeprefix("staticx:").rsplit("/", 1)[-1]
            for p in component.get("properties", [])
            if p.get("name") == "tinyapi:file"
        }
        libraries = sorted(f for f in files if SHARED_OBJECT.search(f) and ".cpython-" not in f)
        extensions = [f for f in files if ".cpython-" in f]
        what = libraries + [
            f"({tool})"
            for tool in ("pyinstaller bootloader", "staticx bootloader")
            if f"({tool})" in files
        ]
        if extensions:
            what.append(f"+ {len(extensions)} extension module{'s' * (len(extensions) > 1)}")
        if what:
            purl = component["purl"].split("?")[0].split("@")[0]
            rows.append((purl, urllib.parse.unquote(component.get("version", "")), " ".join(what)))
    return rows


def report(image: str) -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    members, sbom = image_files(image)

    print(f"{image}: {size} bytes ({human(size)}), {len(members)} entries\n")
    print("files (docker export):")
    for m in sorted(members, key=lambda m: m.path):
        kind = {"dir": "d", "link": "l"}.get(m.kind, "-")
        print(f"  {kind}{m.mode:04o}  {m.uid}:{m.gid}  {m.size:>10}  /{m.path}")
    print(f"\nruns as:     {config.get('User') or 'root (no USER)'}")
    print(f"entrypoint:  {config.get('Entrypoint')}  cmd: {config.get('Cmd')}")
    print(f"exposes:     {', '.join(sorted(config.get('ExposedPorts') or {}))}")
    print("no shell, no package manager, no library outside the binary: the list above is all.")

    if sbom:
        print("\ninside /bin/tinyapi (from /sbom.cdx.json):")
        for package, version, files in native_libraries(sbom):
            print(f"  {package:<34} {version:<24} {files}")
        pypi = sorted(
            c["name"]
            for c in sbom["components"]
            if c["purl"].startswith("pkg:pypi/") and c["name"] not in ("pyinstaller", "staticx")
        )
        print(f"  Python distributions: {', '.join(pypi)}")
    else:
        print("\n(no /sbom.cdx.json in this image: `make image` puts one there)")

    compressed = compressed_image_bytes(image)
    print(
        f"\nsize compressed, as pulled ({compressed} bytes), beside the article's base images "
        "(Docker Hub's sizes, compressed too):"
    )
    print("\n".join(beside_the_article(image, compressed)))


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        report(argv[0] if argv else IMAGE)
    except DockerError as err:
        print(f"inspect: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
