"""What is inside the binary: the files of the one-dir program and the modules of its PYZ,
read out of dist/tinyapi, each with where it came from on this machine (PyInstaller's tables
of the build), and the libraries staticx bundled."""

from __future__ import annotations

import ast
import os
import platform
import sysconfig
import tempfile

from harness import staticx_archive
from recipe.paths import WORK
from recipe.sbom import SbomError

TABLES = os.path.join(WORK, "tinyapi")
# PyInstaller's tables (.toc files) are its objects' _GUTS, in order: each table, the position
# of the list read, and that entry's name in _GUTS (tests/test_build_contract.py holds them).
TOCS = {
    "Analysis-00.toc": (15, "binaries"),
    "COLLECT-00.toc": (0, "toc"),
    "PKG-00.toc": (2, "toc"),
    "PYZ-00.toc": (1, "toc"),
}
# Where staticx finds the libraries it bundles (it asks ldd; these are ldd's answers here).
MULTIARCH = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
LIBRARY_DIRS = (
    f"/lib/{MULTIARCH}",
    f"/usr/lib/{MULTIARCH}",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


def read_toc(name: str) -> list[tuple[str, str, str]]:
    """The list of TOCS[name]: (name in the program, source on this machine, typecode)."""
    path = os.path.join(TABLES, name)
    if not os.path.exists(path):
        raise SbomError(f"{path} is missing: build the binary first (make binary)")
    with open(path, encoding="utf-8") as handle:
        return ast.literal_eval(handle.read())[TOCS[name][0]]


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

    sources = {name: src for name, src, _ in read_toc("COLLECT-00.toc")}
    sources.update({name: src for name, src, _ in read_toc("PKG-00.toc")})
    # The spec collects patched copies (dist/pyinstaller/work/.../elf-stage); the analysis
    # remembers the originals, which is what a package database knows.
    sources.update({name: src for name, src, _ in read_toc("Analysis-00.toc")})
    module_sources = {name: src for name, src, _ in read_toc("PYZ-00.toc")}
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
