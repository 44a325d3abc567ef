"""What the kit built from sources: the staticx component's pedigree (the upstream sdist and
each patch of build/patches/staticx/), zstd, whose decoder the bootloader links, and the
interpreter's cpython and openssl (their Debian sources, patches and configure options, from
the manifest build/recipe/interpreter.py leaves beside the interpreter)."""

from __future__ import annotations

import os
import re
import sys
import tarfile

from harness import pins
from recipe.interpreter import MANIFEST, read_manifest
from recipe.paths import BOOTLOADER_SOURCES, SDISTS, shown
from recipe.sbom import SbomError
from recipe.sources import patch_series


def pinned_sdist(name: str) -> tuple[str, str, str]:
    """(version, sha256, path in dist/bootloader/sources) of a bootloader source."""
    try:
        version, digest = pins.pinned_sources(BOOTLOADER_SOURCES)[name]
    except (ValueError, KeyError) as err:
        raise SbomError(f"{BOOTLOADER_SOURCES}: no pin for {name} ({err})") from None
    return version, digest, os.path.join(SDISTS, pins.sdist_name(name, version))


def patch_entry(path: str) -> dict:
    """One patch of the series, as a CycloneDX patch: its diff, and the upstream issue it
    resolves when its DEP-3 header names one."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    patch = {
        "type": "unofficial",
        "diff": {"text": {"contentType": "text/x-diff", "content": text}, "url": shown(path)},
    }
    issue = re.search(r"^Forwarded: .*staticx issue (\d+)", text, re.M)
    summary = re.search(r"^Description: (.*)$", text, re.M)
    if issue:
        patch["resolves"] = [
            {
                "type": "enhancement",
                "id": issue[1],
                "name": summary[1] if summary else os.path.basename(path),
                "source": {
                    "name": "staticx issues",
                    "url": "https://github.com/JonathonReinhart/staticx/issues",
                },
            }
        ]
    return patch


def staticx_pedigree(version: str) -> dict:
    """The upstream sdist the bootloader was built from, and each patch of the series."""
    upstream, digest, _ = pinned_sdist("staticx")
    if upstream != version:
        raise SbomError(
            f"the bootloader is built from staticx {upstream}, the venv has {version}: "
            f"re-pin {shown(BOOTLOADER_SOURCES)}"
        )
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
        "patches": [patch_entry(path) for path in patch_series()],
        "notes": "The bootloader is built from the upstream sdist with these patches "
        "(python build, stage bootloader); libnssfix.so is the wheel's, unpatched.",
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


def linked_into_libpython() -> list[str]:
    """The components of the kit's interpreter with no file of their own: openssl, and musl
    (its math functions) when the build took them."""
    manifest = read_manifest(sys.base_prefix)
    return [c["name"] for c in manifest.get("components", ()) if c["name"] != "cpython"]


def kit_component(name: str) -> tuple[str, dict]:
    """A component (cpython, openssl, musl) of the interpreter the build ran on, as its
    manifest describes it: version, licence, and a pedigree of the pinned Debian sources
    (ancestors), the patches applied (Debian's backported fixes, each by its name in the
    debian.tar.xz) and the configure options (a property each)."""
    manifest = read_manifest(sys.base_prefix)
    found = [c for c in manifest.get("components", ()) if c["name"] == name]
    if not found:
        raise SbomError(
            f"{sys.base_prefix}/{MANIFEST} does not describe {name}: "
            "the SBOM is written with the kit's interpreter (make sbom)"
        )
    part = found[0]
    version = part["version"]
    ancestors = [
        {
            "type": "library",
            "bom-ref": f"{name}-{version}-source-{i}",
            "name": os.path.basename(source["url"]),
            "externalReferences": [{"type": "distribution", "url": source["url"]}],
            "hashes": [{"alg": "SHA-256", "content": source["sha256"]}],
        }
        for i, source in enumerate(part["sources"])
    ]
    debian = part["sources"][-1]["url"]
    patches = [
        {"type": "backport", "diff": {"url": f"{debian}#debian/patches/{patch}"}}
        for patch in part["patches"]
    ]
    built = "the interpreter" if name == "cpython" else "linked into libpython"
    fields = {
        "name": name,
        "version": version,
        "licenses": [{"license": {"id": part["license"]}}],
        "description": f"{built}, built by the kit from Debian's sources "
        "(build/recipe/interpreter.py)",
        "pedigree": {
            "ancestors": ancestors,
            "patches": patches,
            "notes": "configure: " + " ".join(part["configure"]),
        },
    }
    return f"pkg:generic/{name}@{version}", fields
