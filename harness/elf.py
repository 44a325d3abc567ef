"""What an ELF file is built for, read from its header: its machine, and whether it is static
(no program interpreter). ldd cannot say it for another architecture's file; this can."""

from __future__ import annotations

import struct

MACHINES = {62: "x86-64", 183: "AArch64"}  # e_machine: EM_X86_64, EM_AARCH64
PT_INTERP = 3


def header(data: bytes) -> tuple[str, bool]:
    """(machine, static) of a 64-bit little-endian ELF file's bytes; ValueError if it is not one."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (machine,) = struct.unpack_from("<H", data, 18)
    (phoff,) = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return MACHINES.get(machine, f"machine {machine}"), PT_INTERP not in types
