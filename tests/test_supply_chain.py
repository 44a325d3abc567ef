"""Supply chain: the SBOM accounts for everything inside the binary, `make inspect` shows the
image, and two builds of one commit are byte-identical."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import tinyapi
from harness.paths import ROOT as REPO
from harness.paths import SBOM

SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")


def shared_libraries_inside(binary_path: Path) -> set[str]:
    """Every shared object in the binary, read from the binary itself: staticx's archive (the
    libraries it bundled, and the one-dir program's _internal/ directory)."""
    from harness import staticx_archive

    found = set()
    prefix = staticx_archive.INTERNAL + "/"
    with staticx_archive.open_archive(str(binary_path)) as archive:
        for member in archive.getmembers():
            if member.isfile() and SHARED_OBJECT.search(member.name):
                inside = member.name.startswith(prefix)
                found.add(member.name[len(prefix) :] if inside else f"staticx:{member.name}")
    return found


@pytest.mark.slow
def test_sbom_names_every_shared_library_inside_the_binary(sbom):
    listed = {
        p["value"]
        for c in sbom["components"]
        for p in c.get("properties", [])
        if p["name"] == "tinyapi:file"
    }
    inside = shared_libraries_inside(REPO / "dist" / "tinyapi")
    # libpython (OpenSSL, musl's math and the service's modules inside), and staticx's glibc
    # and libz (one libz: PyInstaller's bootloader's serves libpython too).
    assert {"libpython3.11.so.1.0", "staticx:libz.so.1.2.13", "staticx:libc.so.6"} <= inside
    assert not [name for name in inside if name.startswith("libz.")], sorted(inside)
    assert inside <= listed, f"not in the SBOM: {sorted(inside - listed)}"


@pytest.mark.slow
def test_sbom_describes_the_binary(sbom, binary):
    import hashlib

    assert (sbom["bomFormat"], sbom["specVersion"]) == ("CycloneDX", "1.5")
    subject = sbom["metadata"]["component"]
    assert subject["name"] == "tinyapi" and subject["version"] == tinyapi.__version__
    digest = hashlib.sha256((REPO / "dist" / "tinyapi").read_bytes()).hexdigest()
    assert subject["hashes"] == [{"alg": "SHA-256", "content": digest}]
    assert all(c["purl"] and "version" in c for c in sbom["components"])
    assert not [c for c in sbom["components"] if c["name"] == "unknown"]


@pytest.mark.slow
def test_sbom_names_the_platform_it_describes(sbom):
    """The binary runs where it was built: this machine's architecture, as OCI names it."""
    import platform

    arch = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    assert {"name": "tinyapi:platform", "value": f"linux/{arch}"} in sbom["metadata"]["properties"]


@pytest.mark.slow
def test_sbom_is_valid_cyclonedx_1_5(sbom):
    """Against the CycloneDX 1.5 JSON schema (strict: no keys the spec does not know), offline:
    cyclonedx-python-lib carries the schemas."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(SBOM.read_text())
    assert error is None, error


@pytest.mark.slow
def test_sbom_lists_python_distributions_with_version_and_license(sbom):
    from importlib.metadata import version

    pypi = {c["name"]: c for c in sbom["components"] if c["purl"].startswith("pkg:pypi/")}
    for name in ("flask", "werkzeug", "jinja2", "gunicorn", "pyyaml", "certifi", "click"):
        assert pypi[name]["version"] == version(name)
        assert pypi[name]["purl"] == f"pkg:pypi/{name}@{version(name)}"
        assert pypi[name].get("licenses"), name
    assert not {"pytest", "hypothesis", "cryptography", "pip"} & set(pypi)


@pytest.mark.slow
def test_sbom_traces_native_libraries_to_their_packages(sbom):
    """glibc and zlib come from Debian's packages; CPython and OpenSSL from the kit's own build
    (test_interpreter checks their pedigree), so no Debian libssl3 is inside."""
    names = {c["name"] for c in sbom["components"]}
    assert {"libc6", "zlib1g", "cpython", "openssl"} <= names
    assert "libssl3" not in names
    libc = next(c for c in sbom["components"] if c["name"] == "libc6")
    assert re.match(r"\d+\.\d+", libc["version"])
    assert libc["purl"].startswith("pkg:deb/debian/libc6@")


@pytest.mark.slow
def test_sbom_says_what_was_patched(sbom):
    """The bootloader is staticx's with build/patches/staticx/: the staticx component names the
    upstream sdist it came from and carries each patch, as it is in the tree; zstd, whose decoder
    the bootloader links, is a component of its own."""
    from importlib.metadata import version

    staticx = next(c for c in sbom["components"] if c["name"] == "staticx")
    pedigree = staticx["pedigree"]
    assert [a["version"] for a in pedigree["ancestors"]] == [version("staticx")]
    assert (
        pedigree["ancestors"][0]["hashes"][0]["content"]
        in (REPO / "build" / "bootloader-sources.txt").read_text()
    )
    directory = REPO / "build" / "patches" / "staticx"
    series = sorted(directory.glob("*.patch"))
    assert len(pedigree["patches"]) == len(list(directory.iterdir()))  # every file a patch
    assert [p["diff"]["text"]["content"] for p in pedigree["patches"]] == [
        f.read_text() for f in series
    ]
    assert all(p["type"] == "unofficial" for p in pedigree["patches"])
    zstd = next(c for c in sbom["components"] if c["name"] == "zstd")
    assert re.fullmatch(r"1\.\d+\.\d+", zstd["version"]) and zstd["licenses"]


def make(target: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.docker
def test_make_inspect_shows_the_image(image):
    done = make("inspect", timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "/bin/tinyapi" in out and "d1777  0:0" in out and "/sbom.cdx.json" in out
    assert "runs as:     65532:65532" in out
    assert "entrypoint:  ['/bin/tinyapi']" in out
    assert "pkg:deb/debian/libc6" in out and "Alpine 3.5" in out


@pytest.mark.docker
@pytest.mark.slow
def test_two_builds_of_one_commit_are_identical(image):
    """`make verify-reproducible`: two clones in two directories, each built by the Dockerfile
    with no build cache; the same image layer digests."""
    done = make("verify-reproducible", timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "identical: the image's layers" in done.stdout
