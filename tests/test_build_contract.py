"""The PyInstaller and staticx internals the binary's recipe relies on, by name: build/recipe/
(the staticx driver wraps four functions, the SBOM reads PyInstaller's tables by position) and
build/tinyapi.spec lean on both beyond their documented use. An upgrade that renames, moves or
stops calling one of them fails here with its name, instead of the binary silently changing
(a renamed run_hooks would never be wrapped again: a binary without its _internal/ directory).

pyproject.toml pins both to the minor version this was checked against; moving a pin means
going through this file."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement

from harness.paths import ROOT
from harness.testing import assert_calls, resolve
from recipe.freeze import PYZ_ZLIB_LEVEL
from recipe.sbom.inside import TOCS

SPEC = (ROOT / "build" / "tinyapi.spec").read_text()


PINS = {"pyinstaller": "<6.23,>=6.22", "staticx": "<0.15,>=0.14.2"}


@pytest.mark.parametrize("name", PINS)
def test_pinned_to_the_checked_minor_version(name):
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = extra["optional-dependencies"]["build"]
    pin = next(Requirement(d) for d in deps if Requirement(d).name == name)
    assert str(pin.specifier) == PINS[name], "moved the pin? go through this file first"
    assert version(name) in pin.specifier


# What the recipe calls or wraps, with the signature it calls or wraps it with.
SIGNATURES = {
    # recipe/staticx_driver.py: the four wrapped functions, and what the wrappers call
    "tarfile.TarFile.addfile": "(self, tarinfo, fileobj=None)",
    "staticx.api.copy_asset_to_tempfile": "(assetname, debug, **kwargs)",
    "staticx.api.run_hooks": "(sx)",
    "staticx.api.elf_add_section": "(elfpath, secname, secfilename)",
    "staticx.api.generate": "(prog, output, libs=None, strip=False, compress=True, debug=False)",
    "staticx.elf.get_shobj_deps": "(path, libpath=None)",
    "staticx.elf.is_dynamic_elf": "(path)",
    "staticx.utils.copy_fileobj_to_tempfile": "(fsrc, **kwargs)",
    "staticx.api.StaticxGenerator.add_library": "(self, libpath, exist_ok=False)",
    "staticx.archive.SxArchive.add_file": "(self, path, arcname=None)",
    # recipe/sbom/inside.py: the executable's archive and its PYZ, read back
    "PyInstaller.archive.readers.CArchiveReader.__init__": "(self, filename)",
    "PyInstaller.archive.readers.CArchiveReader.extract": "(self, name)",
    "PyInstaller.archive.readers.ZlibArchiveReader.__init__": (
        "(self, filename, start_offset=None, check_pymagic=False)"
    ),
}


@pytest.mark.parametrize("dotted", SIGNATURES)
def test_signature(dotted):
    assert str(inspect.signature(resolve(dotted))) == SIGNATURES[dotted], dotted


# "X calls Y": a function the driver wraps is only wrapped if staticx calls it through the
# module's name; a keyword the spec passes to an EXE or COLLECT (**kwargs) is read by name.
CALLS = {
    "staticx.api.StaticxGenerator.generate": (
        "self._get_bootloader()",
        "run_hooks(self)",
        "elf_add_section(self.tmpoutput, ARCHIVE_SECTION, arf.name)",
    ),
    "staticx.api.StaticxGenerator._get_bootloader": ("copy_asset_to_tempfile('bootloader', ",),
    "staticx.api.StaticxGenerator.__init__": ("self.sxar = SxArchive(",),  # sx.sxar.add_file
    "staticx.api.generate": ("compress=compress,", "gen.generate(output=output)"),
    "PyInstaller.building.api.EXE.__init__": tuple(
        f"kwargs.get('{name}'"
        for name in ("exclude_binaries", "name", "debug", "strip", "upx", "console", "cdict")
    ),
    "PyInstaller.building.api.COLLECT.__init__": tuple(
        f"kwargs.get('{name}'" for name in ("strip", "upx", "name")
    ),
    # The spec's names: SPECPATH and workpath, injected into its namespace.
    "PyInstaller.building.build_main.build": ("'SPECPATH': ", "'workpath': "),
}


@pytest.mark.parametrize("dotted", CALLS)
def test_calls(dotted):
    assert_calls(dotted, CALLS[dotted])


def test_collect_data_files_takes_a_package():
    """The spec's datas: collect_data_files('certifi'), certifi.where()'s cacert.pem."""
    hook = inspect.signature(resolve("PyInstaller.utils.hooks.collect_data_files"))
    assert list(hook.parameters)[0] == "package"
    assert "collect_data_files('certifi')" in SPEC


def test_analysis_takes_the_keywords_the_spec_passes():
    analysis = inspect.signature(resolve("PyInstaller.building.build_main.Analysis.__init__"))
    passed = set(re.findall(r"^    (\w+)=", SPEC.split("a = Analysis(")[1].split("\n)")[0], re.M))
    assert passed == {"pathex", "hiddenimports", "excludes", "datas", "noarchive", "optimize"}
    assert passed <= set(analysis.parameters), passed - set(analysis.parameters)


def test_the_spec_leaves_nothing_of_the_executable_compressed():
    """The spec's cdict names every typecode PKG compresses by default: a new one would be
    zlib'd, and staticx's zstd gains next to nothing on zlib'd bytes."""
    defaults = inspect.getsource(resolve("PyInstaller.building.api.PKG.__init__"))
    defaults = defaults.split("self.cdict = {")[1].split("}")[0]
    compressed = set(re.findall(r"'(\w+)': (?:UN)?COMPRESSED", defaults))
    uncompressed = re.search(r"for typecode in \(([^)]*)\)", SPEC)[1]
    assert compressed == set(re.findall(r"'(\w+)'", uncompressed))
    assert resolve("PyInstaller.building.api.UNCOMPRESSED") is False


def test_the_pyz_level_comes_from_the_environment():
    """recipe.freeze sets PYINSTALLER_ZLIB_COMPRESSION_LEVEL; PyInstaller reads it into the
    PYZ writer's (private) level when it is imported, in the process that runs the spec."""
    assert "._COMPRESSION_LEVEL" not in SPEC and "PYINSTALLER_ZLIB_COMPRESSION_LEVEL" in SPEC
    level = subprocess.run(
        [
            sys.executable,
            "-c",
            "from PyInstaller.archive.writers import ZlibArchiveWriter as w; "
            "print(w._COMPRESSION_LEVEL)",
        ],
        env={**os.environ, "PYINSTALLER_ZLIB_COMPRESSION_LEVEL": str(PYZ_ZLIB_LEVEL)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert level == f"{PYZ_ZLIB_LEVEL}\n"


# recipe/sbom/inside.py reads each table (.toc: the object's _GUTS, in order) by position.
TOC_CLASSES = {
    "Analysis-00.toc": "PyInstaller.building.build_main.Analysis",
    "COLLECT-00.toc": "PyInstaller.building.api.COLLECT",
    "PKG-00.toc": "PyInstaller.building.api.PKG",
    "PYZ-00.toc": "PyInstaller.building.api.PYZ",
}


@pytest.mark.parametrize("table", TOCS)
def test_toc_position(table):
    position, name = TOCS[table]
    guts = [entry[0] for entry in resolve(f"{TOC_CLASSES[table]}._GUTS")]
    assert guts[position] == name, f"{table}[{position}] is {guts[position]}, not {name}"


def test_carchive_typecodes_the_sbom_reads():
    """An entry of the executable's archive by its one-letter typecode: 'z' the PYZ; b, x, d, Z
    the files (binaries, data, dependencies, zips); m and s the bootstrap's modules."""
    xform = resolve("PyInstaller.building.api.PKG.xformdict")
    expected = {
        "PYZ": "z",
        "BINARY": "b",
        "EXTENSION": "b",
        "DATA": "x",
        "DEPENDENCY": "d",
        "ZIPFILE": "Z",
        "PYMODULE": "m",
        "PYSOURCE": "s",
    }
    assert {kind: xform.get(kind) for kind in expected} == expected
