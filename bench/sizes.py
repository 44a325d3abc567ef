"""The `sizes` section: the image (unpacked and compressed), the binary, and what is inside the
binary (staticx's zstd archive holding the C libraries and PyInstaller's one-dir program: its
executable, whose archive holds the PYZ of modules, and _internal/ with the interpreter,
libraries, extension modules and data)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile

from bench.lib import LABEL, run, say
from harness import staticx_archive
from harness.docker import export_image


def zstd_size(data: bytes) -> int:
    """Size of data zstd-compressed alone, as the recipe compresses staticx's archive."""
    return len(
        subprocess.run(
            ["zstd", "-q", "-c", "--single-thread", "-19", "--long=24"],
            input=data,
            capture_output=True,
            check=True,
        ).stdout
    )


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
    unpacks at the first start) and zstd-compressed alone as the recipe compresses the
    archive (roughly what it costs in the binary: the archive is one zstd frame, so its parts
    share a little). The staticx bootloader is not compressed: both columns give its size."""
    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    total = os.path.getsize(binary)
    archive = staticx_archive.section(binary)
    raw_tar = staticx_archive.decompress(archive)
    parts: dict[tuple[str, str], list] = {}  # (category, item) -> [stored bytes, [data]]
    internal = staticx_archive.INTERNAL + "/"

    def add(category: str, item: str, data: bytes) -> None:
        entry = parts.setdefault((category, item), [0, []])
        entry[0] += len(data)
        entry[1].append(data)

    with tarfile.open(fileobj=io.BytesIO(raw_tar)) as tar:
        for m in tar.getmembers():
            if not m.isfile() or m.name == staticx_archive.PROGRAM:
                continue
            if m.name.startswith(internal):  # the one-dir program's files
                add(*classify_pkg_entry(m.name[len(internal) :], "x"), tar.extractfile(m).read())
            else:
                add("native libraries", f"{m.name} (staticx's)", tar.extractfile(m).read())
        program = tar.extractfile(staticx_archive.PROGRAM).read()

    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-") as scratch:
        program_path = os.path.join(scratch, "program")
        with open(program_path, "wb") as out:
            out.write(program)
        pkg = CArchiveReader(program_path)
        base = pkg._start_offset
        used = []
        for name, (dpos, dlen, _, _, typ) in pkg.toc.items():
            used.append((base + dpos, base + dpos + dlen))
            data = program[base + dpos : base + dpos + dlen]
            if typ != "z":
                add(*classify_pkg_entry(name, typ), pkg.extract(name))
                continue
            pyz_path = os.path.join(scratch, "pyz")
            with open(pyz_path, "wb") as out:
                out.write(data)
            pyz_used = []
            for module, (_, offset, length) in ZlibArchiveReader(pyz_path).toc.items():
                pyz_used.append((offset, offset + length))
                add(*classify_module(module), data[offset : offset + length])
            for a, b in _outside(len(data), pyz_used):
                add("bootloaders", "PyInstaller's indexes (archive and PYZ tables)", data[a:b])
        for a, b in _outside(len(program), used):
            add("bootloaders", "PyInstaller bootloader (+ its archive's table)", program[a:b])

    bootloader = total - len(archive)
    rows = [
        {
            "category": "bootloaders",
            "item": "staticx bootloader, patched (not compressed)",
            "raw": bootloader,
            "zstd": bootloader,
        }
    ]
    for (category, item), (raw, chunks) in parts.items():
        if raw:
            rows.append(
                {
                    "category": category,
                    "item": item,
                    "raw": raw,
                    "zstd": zstd_size(b"".join(chunks)),
                }
            )
    categories: dict[str, dict] = {}
    for row in rows:
        c = categories.setdefault(row["category"], {"raw": 0, "zstd": 0})
        c["raw"] += row["raw"]
        c["zstd"] += row["zstd"]
    return {
        "binary_bytes": total,
        "staticx_bootloader_bytes": bootloader,
        "staticx_archive_bytes": len(archive),
        "staticx_archive_compression": staticx_archive.compression(archive),
        "staticx_archive_raw_bytes": len(raw_tar),
        "pyinstaller_program_bytes": len(program),
        "parts": sorted(rows, key=lambda r: (r["category"], -r["zstd"])),
        "categories": categories,
    }


def compressed_image_bytes(image: str) -> int:
    """`docker save IMAGE | gzip -6 | wc -c`: about what a registry stores and a user pulls
    (Docker Hub's sizes, the article's table, are these)."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    gzip = subprocess.run(["gzip", "-6", "-c"], stdin=save.stdout, capture_output=True, check=True)
    save.stdout.close()
    if save.wait() != 0:
        raise RuntimeError(f"docker save {image} failed")
    return len(gzip.stdout)


PLATFORMS = ("amd64", "arm64")


def platform_image(image: str, arch: str) -> str | None:
    """The image of another architecture (make image PLATFORM=linux/ARCH tags NAME:latest-ARCH),
    built when missing and this machine can (emulation); None when it cannot."""
    native = run(["docker", "info", "-f", "{{.Architecture}}"]).stdout.strip()
    if {"x86_64": "amd64", "aarch64": "arm64"}.get(native, native) == arch:
        return image
    other = image.replace(":latest", f":latest-{arch}")
    if subprocess.run(["docker", "image", "inspect", other], capture_output=True).returncode == 0:
        return other
    say(f"  building {other} (make image PLATFORM=linux/{arch}; minutes under emulation)")
    name = image.split(":")[0]
    built = subprocess.run(
        ["make", "--no-print-directory", "image", f"PLATFORM=linux/{arch}", f"IMAGE_NAME={name}"],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        say(f"  no {other}: {built.stderr.strip().splitlines()[-1:] or ['make image failed']}")
        return None
    return other


def image_bytes(image: str) -> tuple[int, int]:
    """(unpacked as `docker images` counts, compressed as pulled)."""
    unpacked = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", image]).stdout)
    return unpacked, compressed_image_bytes(image)


def bench_sizes(results: dict, image: str) -> None:
    say("sizes: image (every platform), its binary, and what is inside the binary")
    entries, files = export_image(
        image, read=("bin/tinyapi",), label=LABEL, prefix="tinyapi-bench-export"
    )
    image_files = [{"path": "/" + e.path, "bytes": e.size} for e in entries if e.kind == "file"]
    # The binary the image ships (built in its builder stage), not a host build's dist/tinyapi.
    with tempfile.NamedTemporaryFile(prefix="tinyapi-bench-binary-") as binary:
        binary.write(files["bin/tinyapi"])
        binary.flush()
        inside = inside_binary(binary.name)
    platforms = {}
    for arch in PLATFORMS:
        ref = platform_image(image, arch)
        if ref:
            unpacked, compressed = image_bytes(ref)
            platforms[arch] = {
                "image": ref,
                "image_bytes": unpacked,
                "image_compressed_bytes": compressed,
            }
    native = next(p for p in platforms.values() if p["image"] == image)
    results["sizes"] = {
        **native,
        "platforms": platforms,
        "image_files": sorted(image_files, key=lambda f: -f["bytes"]),
        **inside,
    }
    for arch, p in platforms.items():
        say(
            f"  linux/{arch} image {p['image_bytes']:,} B (compressed "
            f"{p['image_compressed_bytes']:,} B)"
        )
    say(f"  binary {inside['binary_bytes']:,} B")
