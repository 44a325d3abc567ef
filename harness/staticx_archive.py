"""The one reader of dist/tinyapi's insides: staticx's archive, the ELF section
`.staticx.archive` behind its bootloader, a GNU tar compressed with zstd (the kit's
bootloader, build/patches/staticx/), xz (upstream staticx's) or nothing.

What the tar holds (the recipe's staticx stage packs it): the C libraries staticx bundles (libc, ld.so,
...), the program `tinyapi` (PyInstaller's one-dir executable, whose own archive holds the
PYZ) with its `_internal/` directory, and the symlinks `.staticx.prog` and `.staticx.interp`.
Used by the recipe's SBOM, the tests and the bench: one place that knows the layout.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import subprocess
import tarfile
from collections.abc import Iterator

SECTION = ".staticx.archive"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
PROGRAM = "tinyapi"
INTERNAL = "_internal"


class ArchiveError(Exception):
    pass


def section(binary: str) -> bytes:
    """The archive as stored in the binary (compressed)."""
    from elftools.elf.elffile import ELFFile

    try:
        with open(binary, "rb") as handle:
            found = ELFFile(handle).get_section_by_name(SECTION)
            data = found.data() if found is not None else b""
    except OSError as err:
        raise ArchiveError(f"{binary}: {err.strerror}") from None
    except Exception as err:  # pyelftools' errors for a file that is no ELF
        raise ArchiveError(f"{binary} is not an ELF file ({err})") from None
    if not data:
        raise ArchiveError(f"{binary} has no {SECTION} section: not a staticx binary")
    return data


def compression(data: bytes) -> str:
    """'zstd', 'xz' or 'none': what the bootloader will decode, told by the magic number."""
    if data.startswith(ZSTD_MAGIC):
        return "zstd"
    if data.startswith(XZ_MAGIC):
        return "xz"
    return "none"


def decompress(data: bytes) -> bytes:
    kind = compression(data)
    if kind == "xz":
        return lzma.decompress(data)
    if kind == "zstd":
        # Python 3.11 has no zstd module; Debian's zstd (a build tool of the kit) decodes it.
        proc = subprocess.run(["zstd", "-dc", "--long=31"], input=data, capture_output=True)
        if proc.returncode != 0:
            raise ArchiveError(f"zstd -d failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout
    return data


def tar_bytes(binary: str) -> bytes:
    """The archive's tar, decompressed: what the bootloader unpacks at the first start."""
    return decompress(section(binary))


@contextlib.contextmanager
def open_archive(binary: str) -> Iterator[tarfile.TarFile]:
    """staticx's archive of binary as a tarfile (read-only, in memory)."""
    with tarfile.open(
        fileobj=io.BytesIO(tar_bytes(binary)), mode="r:", format=tarfile.GNU_FORMAT
    ) as tar:
        yield tar
