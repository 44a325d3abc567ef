"""Who shipped each file of the binary: a Python distribution of the build venv, a Debian
package, or the kit's interpreter; the SBOM's components, keyed by PURL."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import urllib.parse


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
        self._versions: dict[str, tuple[str, str]] = {}
        if not os.path.isdir(self.INFO):
            return  # not a Debian system: nothing will be attributed to a Debian package
        for entry in sorted(os.listdir(self.INFO)):
            if entry.endswith(".list"):
                package = entry[: -len(".list")]
                path = os.path.join(self.INFO, entry)
                with open(path, encoding="utf-8", errors="replace") as handle:
                    for line in handle:
                        self.owner.setdefault(line.rstrip("\n"), package)

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
    """cpython as the kit built it (build/recipe/interpreter.py), its pedigree included."""
    from recipe.sbom.pedigree import kit_component

    return kit_component("cpython")


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
