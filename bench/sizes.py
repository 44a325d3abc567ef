"""The `sizes` section: the image, the binary, and what is inside the binary (staticx's xz
archive holding the C libraries and the PyInstaller program, whose archive holds the
interpreter, libraries, extension modules, data and the PYZ of modules)."""
from __future__ import annotations

import io
import lzma
import os
import re
import sys
import tarfile
import tempfile

from bench.lib import BINARY, LABEL, run, say
from harness.docker import export_image

XZ_FILTERS = [{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2, "preset": 6}]  # staticx's


def xz_size(data: bytes) -> int:
    """Size of data xz-compressed alone, as staticx compresses its archive."""
    return len(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                             filters=XZ_FILTERS))


STDLIB = set(sys.stdlib_module_names)
PYI_RUNTIME = ("pyimod", "pyiboot", "pyi_rth_", "struct", "__main__")


def classify_pkg_entry(name: str, typ: str) -> tuple[str, str]:
    """(category, item) of an entry of PyInstaller's archive."""
    base = os.path.basename(name)
    if base.startswith("libpython"):
        return "interpreter", base
    if name == "base_library.zip":
        return "stdlib", "base_library.zip (modules Python needs to start)"
    if typ in "ms" or name.startswith(PYI_RUNTIME):
        return "bootloaders", "PyInstaller bootstrap modules"
    if "lib-dynload/" in name:
        return "stdlib", "extension modules (lib-dynload/*.so)"
    if ".dist-info/" in name:
        return "Python packages", name.split("-")[0].lower() + " (dist-info)"
    if "/" in name:  # a package's own extension module or data
        return "Python packages", name.split("/")[0].lower() + " (" + base + ")"
    if re.search(r"\.so(\.\d+)*$", name):
        return "native libraries", base
    return "other", name


def classify_module(name: str) -> tuple[str, str]:
    top = name.split(".")[0]
    if top == "tinyapi":
        return "tinyapi", "tinyapi (its own modules)"
    if top in STDLIB or top.startswith("_"):
        return "stdlib", "modules in the PYZ"
    return "Python packages", top.lower()


def _outside(size: int, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The (start, end) spans of [0, size) that no range covers."""
    spans, at = [], 0
    for start, end in sorted(ranges):
        if start > at:
            spans.append((at, start))
        at = max(at, end)
    if at < size:
        spans.append((at, size))
    return spans


def inside_binary(binary: str) -> dict:
    """Where the bytes of the binary go: every part with its size as stored (what staticx
    unpacks at each start) and xz-compressed alone with staticx's filters (roughly what it
    costs in the binary: the archive is one xz stream, so its parts share a little). The
    staticx bootloader is not compressed: both columns give its size."""
    from elftools.elf.elffile import ELFFile
    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    total = os.path.getsize(binary)
    with open(binary, "rb") as f:
        archive_xz = ELFFile(f).get_section_by_name(".staticx.archive").data()
    raw_tar = lzma.decompress(archive_xz)
    parts: dict[tuple[str, str], list] = {}  # (category, item) -> [stored bytes, [data]]

    def add(category: str, item: str, data: bytes) -> None:
        entry = parts.setdefault((category, item), [0, []])
        entry[0] += len(data)
        entry[1].append(data)

    with tarfile.open(fileobj=io.BytesIO(raw_tar)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        program_name = members[".staticx.prog"].linkname
        for m in tar.getmembers():
            if m.isfile() and m.name != program_name:
                add("native libraries", f"{m.name} (staticx's)", tar.extractfile(m).read())
        program = tar.extractfile(members[program_name]).read()

    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-") as scratch:
        program_path = os.path.join(scratch, "program")
        with open(program_path, "wb") as out:
            out.write(program)
        pkg = CArchiveReader(program_path)
        base = pkg._start_offset
        used = []
        for name, (dpos, dlen, _, _, typ) in pkg.toc.items():
            used.append((base + dpos, base + dpos + dlen))
            data = program[base + dpos:base + dpos + dlen]
            if typ != "z":
                add(*classify_pkg_entry(name, typ), pkg.extract(name))
                continue
            pyz_path = os.path.join(scratch, "pyz")
            with open(pyz_path, "wb") as out:
                out.write(data)
            pyz_used = []
            for module, (_, offset, length) in ZlibArchiveReader(pyz_path).toc.items():
                pyz_used.append((offset, offset + length))
                add(*classify_module(module), data[offset:offset + length])
            for a, b in _outside(len(data), pyz_used):
                add("bootloaders", "PyInstaller's indexes (archive and PYZ tables)", data[a:b])
        for a, b in _outside(len(program), used):
            add("bootloaders", "PyInstaller bootloader (+ its archive's table)", program[a:b])

    rows = [{"category": "bootloaders", "item": "staticx bootloader (not compressed)",
             "raw": total - len(archive_xz), "xz": total - len(archive_xz)}]
    for (category, item), (raw, chunks) in parts.items():
        if raw:
            rows.append({"category": category, "item": item, "raw": raw,
                         "xz": xz_size(b"".join(chunks))})
    categories: dict[str, dict] = {}
    for row in rows:
        c = categories.setdefault(row["category"], {"raw": 0, "xz": 0})
        c["raw"] += row["raw"]
        c["xz"] += row["xz"]
    return {
        "binary_bytes": total,
        "staticx_bootloader_bytes": total - len(archive_xz),
        "staticx_archive_xz_bytes": len(archive_xz),
        "staticx_archive_raw_bytes": len(raw_tar),
        "pyinstaller_program_bytes": len(program),
        "parts": sorted(rows, key=lambda r: (r["category"], -r["xz"])),
        "categories": categories,
    }


def bench_sizes(results: dict, image: str) -> None:
    say("sizes: image, binary, and what is inside the binary")
    image_bytes = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", image]).stdout)
    entries, _ = export_image(image, label=LABEL, prefix="tinyapi-bench-export")
    files = [{"path": "/" + e.path, "bytes": e.size} for e in entries if e.kind == "file"]
    inside = inside_binary(BINARY)
    results["sizes"] = {
        "image": image,
        "image_bytes": image_bytes,
        "image_files": sorted(files, key=lambda f: -f["bytes"]),
        **inside,
    }
    say(f"  image {image_bytes:,} B, binary {inside['binary_bytes']:,} B")
