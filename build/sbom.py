#!/usr/bin/env python3
"""Write dist/tinyapi.cdx.json: a CycloneDX SBOM of what is inside dist/tinyapi.

Built from what actually went into the binary, read back out of dist/tinyapi, not from a
list kept by hand (harness.staticx_archive reads it):
  - staticx's archive: the C libraries it bundled, and the PyInstaller one-dir program (the
    executable, whose own archive holds the PYZ, and its _internal/ directory);
  - the modules of that PYZ;
and the build's tables in dist/pyinstaller/work/tinyapi (Analysis-00.toc, COLLECT-00.toc,
PKG-00.toc, PYZ-00.toc) for where on this machine each of those files came from.
Each file is traced to what shipped it: a Python distribution of the build venv (name,
version, license, PURL), a Debian package (`dpkg -S`, `dpkg-query`), or the interpreter's
own build (pyenv). Every shared library inside the binary lands in some component's
`tinyapi:file` properties; tests/test_supply_chain.py checks that.
The bootloader is staticx's, patched (build/patches/staticx/): the staticx component carries a
CycloneDX pedigree (the upstream sdist, each patch as a diff), and zstd, whose decoder the
patched bootloader links, is a component of its own.

Run it with the build's interpreter after a build: `make sbom`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import uuid

from harness import pins, staticx_archive

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, "dist", "pyinstaller", "work", "tinyapi")
BINARY = os.path.join(REPO, "dist", "tinyapi")
PATCHES = os.path.join(REPO, "build", "patches", "staticx")
BOOTLOADER_SOURCES = str(pins.SOURCES)
SDISTS = os.path.join(REPO, "dist", "bootloader", "sources")
OUTPUT = BINARY + ".cdx.json"
# Where staticx finds the libraries it bundles (it asks ldd; these are ldd's answers here).
LIBRARY_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


class SbomError(Exception):
    pass


# --- what is inside -------------------------------------------------------------------


def read_toc(name: str):
    path = os.path.join(WORK, name)
    if not os.path.exists(path):
        raise SbomError(f"{path} is missing: build the binary first (make binary)")
    with open(path, encoding="utf-8") as handle:
        return ast.literal_eval(handle.read())


def program_entries(binary: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """What the binary holds, read from the binary itself: (the one-dir program's files, as
    (name under _internal/ or in the executable's archive, source path on this machine); the
    modules of its PYZ, likewise; the names of the rest of staticx's archive: the libraries it
    bundled). The build's tables only say where each name came from; a name they do not know
    means dist/pyinstaller is from another build than this binary."""
    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    prefix = staticx_archive.INTERNAL + "/"
    with tempfile.TemporaryDirectory() as scratch, staticx_archive.open_archive(binary) as tar:
        members = tar.getmembers()
        executable = os.path.join(scratch, "program")
        with open(executable, "wb") as out:
            out.write(tar.extractfile(staticx_archive.PROGRAM).read())
        archive = CArchiveReader(executable)
        pyz_name = next(name for name, entry in archive.toc.items() if entry[-1] == "z")
        pyz_path = os.path.join(scratch, "pyz")
        with open(pyz_path, "wb") as out:
            out.write(archive.extract(pyz_name))
        modules = list(ZlibArchiveReader(pyz_path).toc)
    internal = [m.name[len(prefix) :] for m in members if m.isfile() and m.name.startswith(prefix)]
    # Only files: modules stored beside the PYZ ('m', 's') are PyInstaller's own bootstrap.
    packed = [name for name, entry in archive.toc.items() if entry[-1] in "bxdZ"]
    bundled = [
        m.name
        for m in members
        if (m.isfile() or m.issym())
        and not m.name.startswith(prefix)
        and m.name != staticx_archive.PROGRAM
    ]

    analysis = read_toc("Analysis-00.toc")
    sources = {name: src for name, src, _ in read_toc("COLLECT-00.toc")[0]}
    sources.update({name: src for name, src, _ in read_toc("PKG-00.toc")[2]})
    # The spec collects patched copies (dist/pyinstaller/work/.../elf-stage); the analysis
    # remembers the originals, which is what a package database knows.
    sources.update({name: src for name, src, _ in analysis[15]})
    module_sources = {name: src for name, src, _ in read_toc("PYZ-00.toc")[1]}
    files = internal + packed
    unknown = [n for n in files + modules if n not in sources and n not in module_sources]
    if unknown:
        raise SbomError(
            f"dist/pyinstaller does not describe {binary} (it lacks {unknown[0]}): "
            "rebuild with `make binary`"
        )
    return [(n, sources[n]) for n in files], [(n, module_sources[n]) for n in modules], bundled


def find_library(name: str) -> str | None:
    for directory in LIBRARY_DIRS:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None


# --- who shipped it ---------------------------------------------------------------------


def distribution_files() -> dict[str, importlib.metadata.Distribution]:
    """Absolute path of every file installed in the venv -> its distribution."""
    owner = {}
    for dist in importlib.metadata.distributions():
        for file in dist.files or ():
            owner[os.path.realpath(dist.locate_file(file))] = dist
    return owner


class DebianFiles:
    """Which Debian package installed a file: dpkg's own file lists, read once (`dpkg -S`
    per file would take seconds for the few hundred files of a build)."""

    INFO = "/var/lib/dpkg/info"

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}
        if not os.path.isdir(self.INFO):
            return  # not a Debian system: nothing will be attributed to a Debian package
        for entry in sorted(os.listdir(self.INFO)):
            if entry.endswith(".list"):
                package = entry[: -len(".list")]
                with open(
                    os.path.join(self.INFO, entry), encoding="utf-8", errors="replace"
                ) as handle:
                    for line in handle:
                        self.owner.setdefault(line.rstrip("\n"), package)
        self._versions: dict[str, tuple[str, str]] = {}

    def package(self, path: str) -> tuple[str, str, str] | None:
        """(package, version, arch), or None. Debian 12 merges /lib into /usr/lib, and dpkg
        knows each file under the name its package gave it: try both spellings."""
        real = os.path.realpath(path)
        candidates = [path, real]
        for p in (path, real):
            if p.startswith("/usr/"):
                candidates.append(p[len("/usr") :])
            else:
                candidates.append("/usr" + p)
        for candidate in candidates:
            package = self.owner.get(candidate)
            if package:
                name = package.split(":")[0]
                if name not in self._versions:
                    out = subprocess.run(
                        ["dpkg-query", "-W", "-f=${Version} ${Architecture}", package],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout.split()
                    self._versions[name] = (out[0], out[1])
                return (name, *self._versions[name])
        return None


def python_license(dist) -> dict | None:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return {"expression": expression}
    for classifier in meta.get_all("Classifier") or ():
        if classifier.startswith("License :: OSI Approved :: "):
            return {"license": {"name": classifier.rsplit(" :: ", 1)[-1]}}
    text = meta.get("License")
    if text and len(text) < 80 and "\n" not in text:
        return {"license": {"name": text}}
    return None


class Components:
    """Components keyed by PURL, each with the list of files of the binary it accounts for."""

    def __init__(self) -> None:
        self.by_purl: dict[str, dict] = {}

    def add(self, purl: str, file: str, **fields) -> None:
        component = self.by_purl.get(purl)
        if component is None:
            component = {
                "type": "library",
                "bom-ref": purl,
                **fields,
                "purl": purl,
                "properties": [],
            }
            self.by_purl[purl] = component
        component["properties"].append({"name": "tinyapi:file", "value": file})

    def sorted(self) -> list[dict]:
        result = []
        for purl in sorted(self.by_purl):
            component = self.by_purl[purl]
            component["properties"].sort(key=lambda p: p["value"])
            result.append(component)
        return result


def interpreter_component() -> tuple[str, dict]:
    version = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    return (
        f"pkg:generic/cpython@{version}",
        {
            "name": "cpython",
            "version": version,
            "licenses": [{"license": {"id": "PSF-2.0"}}],
            "description": f"the Python interpreter of the build ({sys.base_prefix})",
        },
    )


def deb_purl(package: str, version: str, arch: str) -> str:
    return f"pkg:deb/debian/{package}@{urllib.parse.quote(version, safe='')}?arch={arch}"


def classify(
    components: Components, owners, debian: DebianFiles, file: str, source: str | None
) -> None:
    """Account for one file of the binary, found at `source` on this machine."""
    if source and os.path.realpath(source) in owners:
        dist = owners[os.path.realpath(source)]
        name, version = dist.metadata["Name"].lower(), dist.version
        fields = {"name": name, "version": version}
        license_ = python_license(dist)
        if license_:
            fields["licenses"] = [license_]
        components.add(f"pkg:pypi/{name}@{version}", file, **fields)
        return
    package = debian.package(source) if source else None
    if package:
        components.add(deb_purl(*package), file, name=package[0], version=package[1])
        return
    if source and os.path.realpath(source).startswith(os.path.realpath(sys.base_prefix) + os.sep):
        purl, fields = interpreter_component()
        components.add(purl, file, **fields)
        return
    components.add(
        "pkg:generic/unknown",
        file,
        name="unknown",
        version="",
        description="no package database knows where this file came from",
    )


def build_sbom(binary: str) -> dict:
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

    for name in bundled:
        if name.startswith(".staticx.") or name == "tinyapi":
            continue  # the program itself (above) and staticx's own symlinks
        if name == "libnssfix.so":  # staticx's shim, shipped in its wheel
            version = importlib.metadata.version("staticx")
            components.add(f"pkg:pypi/staticx@{version}", f"staticx:{name}")
            continue
        classify(components, owners, debian, f"staticx:{name}", find_library(name))

    digest = sha256(binary)
    version = importlib.metadata.version("tinyapi")
    epoch = source_date_epoch()
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        # Derived from the binary, so the same binary always gets the same SBOM.
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'tinyapi:' + digest)}",
        "version": 1,
        "metadata": {
            "timestamp": _iso(epoch),
            "tools": {"components": [{"type": "application", "name": "tinyapi build/sbom.py"}]},
            "component": {
                "type": "application",
                "bom-ref": f"pkg:generic/tinyapi@{version}",
                "name": "tinyapi",
                "version": version,
                "purl": f"pkg:generic/tinyapi@{version}",
                "licenses": [{"license": {"id": "MIT"}}],
                "hashes": [{"alg": "SHA-256", "content": digest}],
            },
        },
        "components": components.sorted(),
    }


def pinned_sdist(name: str) -> tuple[str, str, str]:
    """(version, sha256, path in dist/bootloader/sources) of a bootloader source."""
    try:
        version, digest = pins.pinned_sources(BOOTLOADER_SOURCES)[name]
    except (ValueError, KeyError) as err:
        raise SbomError(f"{BOOTLOADER_SOURCES}: no pin for {name} ({err})") from None
    return version, digest, os.path.join(SDISTS, pins.sdist_name(name, version))


def staticx_pedigree(version: str) -> dict:
    """The upstream sdist the bootloader was built from, and each patch of the series."""
    upstream, digest, _ = pinned_sdist("staticx")
    if upstream != version:
        raise SbomError(
            f"the bootloader is built from staticx {upstream}, the venv has {version}: "
            f"re-pin {os.path.relpath(BOOTLOADER_SOURCES, REPO)}"
        )
    patches = []
    for name in sorted(os.listdir(PATCHES)):
        if not name.endswith(".patch"):
            continue
        with open(os.path.join(PATCHES, name), encoding="utf-8") as handle:
            text = handle.read()
        patch = {
            "type": "unofficial",
            "diff": {
                "text": {"contentType": "text/x-diff", "content": text},
                "url": f"build/patches/staticx/{name}",
            },
        }
        issue = re.search(r"^Forwarded: .*staticx issue (\d+)", text, re.M)
        summary = re.search(r"^Description: (.*)$", text, re.M)
        if issue:
            patch["resolves"] = [
                {
                    "type": "enhancement",
                    "id": issue[1],
                    "name": summary[1] if summary else name,
                    "source": {
                        "name": "staticx issues",
                        "url": "https://github.com/JonathonReinhart/staticx/issues",
                    },
                }
            ]
        patches.append(patch)
    return {
        "ancestors": [
            {
                "type": "library",
                "bom-ref": f"staticx-{upstream}-upstream-sdist",
                "name": "staticx",
                "version": upstream,
                "purl": f"pkg:pypi/staticx@{upstream}",
                "hashes": [{"alg": "SHA-256", "content": digest}],
            }
        ],
        "patches": patches,
        "notes": "The bootloader is built from the upstream sdist with these patches "
        "(build/build.py, stage bootloader); libnssfix.so is the wheel's, unpatched.",
    }


def zstd_component() -> tuple[str, dict]:
    """zstd's single-file library, which the patched bootloader links: its version read from
    the zstd.h of the pinned zstandard sdist it was taken from."""
    carrier, digest, path = pinned_sdist("zstandard")
    if not os.path.exists(path):
        raise SbomError(f"{path} is missing: build the binary first (make binary)")
    with tarfile.open(path) as sdist:
        header = sdist.extractfile(f"zstandard-{carrier}/zstd/zstd.h").read().decode()
    parts = [
        re.search(rf"#define ZSTD_VERSION_{part}\s+(\d+)", header)[1]
        for part in ("MAJOR", "MINOR", "RELEASE")
    ]
    version = ".".join(parts)
    return (
        f"pkg:generic/zstd@{version}",
        {
            "name": "zstd",
            "version": version,
            "licenses": [{"expression": "BSD-3-Clause OR GPL-2.0-only"}],
            "description": f"zstd's single-file library (zstd.c), from the zstandard {carrier} sdist "
            f"(sha256 {digest}); its decoder is linked into staticx's bootloader",
        },
    )


def source_date_epoch() -> int:
    """The build's time, by the one rule every step shares (build/source-date-epoch)."""
    return int(
        subprocess.run(
            [os.path.join(REPO, "build", "source-date-epoch")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def describes(sbom_path: str, binary: str) -> bool:
    """Whether the SBOM at sbom_path was made for this very binary (same sha256)."""
    try:
        with open(sbom_path, encoding="utf-8") as handle:
            hashes = json.load(handle)["metadata"]["component"]["hashes"]
    except (OSError, ValueError, KeyError):
        return False
    return {"alg": "SHA-256", "content": sha256(binary)} in hashes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--binary", default=BINARY, help="the static binary (default: dist/tinyapi)"
    )
    parser.add_argument(
        "--output", default=OUTPUT, help="where to write (default: dist/tinyapi.cdx.json)"
    )
    parser.add_argument("--force", action="store_true", help="write it even if it is up to date")
    args = parser.parse_args(argv)
    try:
        if not os.path.exists(args.binary):
            raise SbomError(f"{args.binary} is missing: build it first (make binary)")
        if not args.force and describes(args.output, args.binary):
            # e.g. made in the builder container by `make binary-in-docker`, whose build/work
            # this machine does not have.
            print(f"sbom: {args.output} already describes {args.binary}")
            return 0
        sbom = build_sbom(args.binary)
    except SbomError as err:
        print(f"sbom: {err}", file=sys.stderr)
        return 2
    text = json.dumps(sbom, indent=2, sort_keys=False) + "\n"
    with tempfile.NamedTemporaryFile(
        "w", dir=os.path.dirname(args.output) or ".", delete=False
    ) as out:
        out.write(text)
    os.chmod(out.name, 0o644)
    os.replace(out.name, args.output)
    counts = {}
    for component in sbom["components"]:
        kind = component["purl"].split("/")[0]
        counts[kind] = counts.get(kind, 0) + 1
    print(
        f"sbom: wrote {args.output}: {len(sbom['components'])} components "
        f"({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
