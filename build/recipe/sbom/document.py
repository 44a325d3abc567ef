"""The SBOM as a document: its components assembled, its subject (the binary, by sha256, and
the platform it runs on), written to dist/tinyapi.cdx.json unless it already describes the
binary there."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform as host
import tempfile
import time
import uuid

from harness import staticx_archive
from harness.digest import sha256
from harness.epoch import source_date_epoch
from recipe.paths import REPO, shown
from recipe.sbom import SbomError
from recipe.sbom.inside import find_library, program_entries
from recipe.sbom.owners import (
    Components,
    DebianFiles,
    classify,
    distribution_files,
    interpreter_component,
    python_license,
)
from recipe.sbom.pedigree import (
    kit_component,
    linked_into_libpython,
    staticx_pedigree,
    zstd_component,
)

# platform.machine() -> the OCI platform's architecture (the binary is the build machine's).
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}


def platform() -> str:
    """The platform the binary runs on, as OCI names it: the machine that built it."""
    machine = host.machine()
    return f"linux/{ARCHITECTURES.get(machine, machine)}"


def components_of(binary: str) -> list[dict]:
    try:
        entries, modules, bundled = program_entries(binary)
    except staticx_archive.ArchiveError as err:
        raise SbomError(str(err)) from None
    owners, debian = distribution_files(), DebianFiles()
    components = Components()
    own_code = os.path.join(REPO, "tinyapi") + os.sep
    for name, source in entries:
        if ".dist-info/" in name:
            continue  # metadata of a distribution, counted with its modules
        if name == "base_library.zip":  # the stdlib modules Python needs to start, zipped
            purl, fields = interpreter_component()
            components.add(purl, name, **fields)
            continue
        classify(components, owners, debian, name, source)
    for name, source in modules:
        if source == "-" or source.startswith(own_code):
            continue  # a namespace package (no file), or tinyapi itself: the SBOM's subject
        classify(components, owners, debian, f"PYZ:{name}", source)

    # The two bootloaders: PyInstaller's runs the program, staticx's (patched) unpacks it.
    for tool in ("pyinstaller", "staticx"):
        dist = importlib.metadata.distribution(tool)
        components.add(
            f"pkg:pypi/{tool}@{dist.version}",
            f"({tool} bootloader)",
            name=tool,
            version=dist.version,
            licenses=[python_license(dist) or {}],
        )
    staticx = components.by_purl[f"pkg:pypi/staticx@{importlib.metadata.version('staticx')}"]
    staticx["pedigree"] = staticx_pedigree(staticx["version"])
    purl, fields = zstd_component()
    components.add(purl, "(staticx bootloader: zstd decoder)", **fields)
    # OpenSSL (for _ssl), and musl's math functions where taken, are linked into libpython.
    libpython = [name for name, _ in entries if os.path.basename(name).startswith("libpython")]
    for linked in linked_into_libpython():
        purl, fields = kit_component(linked)
        for name in libpython:
            components.add(purl, f"{name} (linked in)", **fields)

    for name in bundled:
        if name.startswith(".staticx.") or name == "tinyapi":
            continue  # the program itself (above) and staticx's own symlinks
        if name == "libnssfix.so":  # staticx's shim, shipped in its wheel
            version = importlib.metadata.version("staticx")
            components.add(f"pkg:pypi/staticx@{version}", f"staticx:{name}")
            continue
        classify(components, owners, debian, f"staticx:{name}", find_library(name))
    return components.sorted()


def build_sbom(binary: str) -> dict:
    components = components_of(binary)
    digest = sha256(binary)
    version = importlib.metadata.version("tinyapi")
    epoch = int(source_date_epoch())
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        # Derived from the binary, so the same binary always gets the same SBOM.
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'tinyapi:' + digest)}",
        "version": 1,
        "metadata": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
            "tools": {"components": [{"type": "application", "name": "tinyapi python build sbom"}]},
            "component": {
                "type": "application",
                "bom-ref": f"pkg:generic/tinyapi@{version}",
                "name": "tinyapi",
                "version": version,
                "purl": f"pkg:generic/tinyapi@{version}",
                "licenses": [{"license": {"id": "MIT"}}],
                "hashes": [{"alg": "SHA-256", "content": digest}],
            },
            "properties": [{"name": "tinyapi:platform", "value": platform()}],
        },
        "components": components,
    }


def describes(sbom_path: str, binary: str) -> bool:
    """Whether the SBOM at sbom_path was made for this very binary (same sha256)."""
    try:
        with open(sbom_path, encoding="utf-8") as handle:
            hashes = json.load(handle)["metadata"]["component"]["hashes"]
    except (OSError, ValueError, KeyError):
        return False
    return {"alg": "SHA-256", "content": sha256(binary)} in hashes


def write_sbom(binary: str, output: str, force: bool = False) -> None:
    if not os.path.exists(binary):
        raise SbomError(f"{binary} is missing: build it first (make binary)")
    if not force and describes(output, binary):
        print(f"sbom: {shown(output)} already describes {shown(binary)}")
        return
    sbom = build_sbom(binary)
    text = json.dumps(sbom, indent=2, sort_keys=False) + "\n"
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(output) or ".", delete=False) as out:
        out.write(text)
    os.chmod(out.name, 0o644)
    os.replace(out.name, output)
    counts = {}
    for component in sbom["components"]:
        kind = component["purl"].split("/")[0]
        counts[kind] = counts.get(kind, 0) + 1
    print(
        f"sbom: wrote {shown(output)}: {len(sbom['components'])} components "
        f"({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))})"
    )
