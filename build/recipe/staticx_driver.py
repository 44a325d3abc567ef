"""staticx, run through its API with four changes, each by wrapping one of its functions
(staticx 0.14.2's names: pyproject.toml pins it, tests/test_build_contract.py names each one,
tests/test_bootloader.py builds with every compression):
 - the members of its tar archive stamped SOURCE_DATE_EPOCH, owned by 0:0, with modes that do
   not depend on the umask: it stores the mtime of the temporary copies it makes, which
   otherwise makes every build differ;
 - our bootloader (dist/bootloader/bootloader) instead of the one in its wheel;
 - a one-dir program's _internal/ directory added whole, and the libraries its ELF files need
   (what staticx's PyInstaller hook does for a one-file program's archive);
 - the archive zstd'd (staticx itself writes xz or nothing).

A program of its own, run by recipe.pack in a process of its own (python -P, this file's path):
the wrappers replace functions of tarfile and staticx for the whole interpreter.
Usage: staticx_driver.py PROGRAM OUTPUT BOOTLOADER zstd|xz|none ZSTD_LEVEL ZSTD_WINDOW_LOG
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

from staticx import api
from staticx.elf import get_shobj_deps, is_dynamic_elf
from staticx.utils import copy_fileobj_to_tempfile


def clamp_tar_members(epoch: int) -> None:
    addfile = tarfile.TarFile.addfile

    def clamped(self, tarinfo, fileobj=None):
        tarinfo.mtime = min(tarinfo.mtime, epoch)
        tarinfo.uid = tarinfo.gid = 0
        tarinfo.uname = tarinfo.gname = ""
        if tarinfo.isdir() or tarinfo.mode & 0o100:
            tarinfo.mode = 0o755
        elif tarinfo.isfile():
            tarinfo.mode = 0o644
        return addfile(self, tarinfo, fileobj)

    tarfile.TarFile.addfile = clamped


def use_bootloader(bootloader: str) -> None:
    asset = api.copy_asset_to_tempfile

    def our_bootloader(assetname, debug, **kwargs):
        if assetname != "bootloader":
            return asset(assetname, debug, **kwargs)
        with open(bootloader, "rb") as f:
            return copy_fileobj_to_tempfile(f, **kwargs)

    api.copy_asset_to_tempfile = our_bootloader


def add_one_dir(program: str) -> None:
    internal = os.path.join(os.path.dirname(os.path.abspath(program)), "_internal")
    run_hooks = api.run_hooks

    def with_one_dir(sx):
        run_hooks(sx)
        if not os.path.isdir(internal):
            return
        sx.sxar.add_file(internal, arcname="_internal")
        walk = sorted(os.walk(internal))
        inside = {name for _, _, files in walk for name in files}
        libdirs = [directory for directory, _, _ in walk]
        for directory, _, files in walk:
            for name in sorted(files):
                path = os.path.join(directory, name)
                if os.path.islink(path) or not is_dynamic_elf(path):
                    continue
                for dep in get_shobj_deps(path, libpath=libdirs):
                    if os.path.basename(dep) not in inside:
                        sx.add_library(dep, exist_ok=True)

    api.run_hooks = with_one_dir


def zstd_archive(level: str, window: str) -> None:
    add_section = api.elf_add_section

    def zstd_section(elfpath, secname, secfilename):
        packed = secfilename + ".zst"
        # fmt: off
        cmd = [
            "zstd", "-q", "-f", "--single-thread", f"-{level}", f"--long={window}",
            secfilename, "-o", packed,
        ]
        # fmt: on
        subprocess.run(cmd, check=True)
        try:
            add_section(elfpath, secname, packed)
        finally:
            os.remove(packed)

    api.elf_add_section = zstd_section


def main(argv: list[str]) -> None:
    program, output, bootloader, compression, level, window = argv
    clamp_tar_members(int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    use_bootloader(bootloader)
    add_one_dir(program)
    if compression == "zstd":
        zstd_archive(level, window)
    api.generate(program, output, compress=compression == "xz")


if __name__ == "__main__":
    main(sys.argv[1:])
