"""staticx's bootloader, patched, as a C build: the compile table (what the sdist's SCons
files do, tests/test_bootloader.py holds the two together), musl-gcc, and its own cache
(dist/bootloader/bootloader.inputs), so that a change to the service never recompiles it."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import subprocess
import tempfile

from harness.digest import sha256
from recipe.env import BuildError, run, stage
from recipe.paths import BOOTLOADER, BOOTLOADER_DIR, BOOTLOADER_SOURCES, PATCHES, shown
from recipe.sources import patch_series, patched_tree

# The compile, as the sdist's SConstruct and SConscripts (with the patches) do it for the
# release bootloader, without SCons: (flags, sources) per library, then the link.
WARNINGS = ["-std=gnu99", "-Wall", "-Werror", "-Wmissing-prototypes", "-Wstrict-prototypes"]
RELEASE = ["-DNDEBUG", "-Os"]
LIBRARIES = {
    "tar": (
        WARNINGS + RELEASE + ["-Ilibtar", "-Ilibtar/compat"],
        [
            "libtar/block.c",
            "libtar/decode.c",
            "libtar/extract.c",
            "libtar/handle.c",
            "libtar/output.c",
            "libtar/util.c",
            "libtar/compat/strlcpy.c",
            "libtar/compat/strmode.c",
        ],
    ),
    "xz": (
        WARNINGS + RELEASE + ["-DXZ_DEC_X86=1"],
        ["libxz/xz_crc32.c", "libxz/xz_dec_lzma2.c", "libxz/xz_dec_stream.c", "libxz/xz_dec_bcj.c"],
    ),
    # libzstd/SConscript: -O3, not -Os (it is there for its speed); the encoder goes at link time.
    "zstd": (
        [
            "-std=gnu99",
            "-DNDEBUG",
            "-O3",
            "-ffunction-sections",
            "-fdata-sections",
            "-DZSTD_LEGACY_SUPPORT=0",
        ],
        ["libzstd/zstd.c"],
    ),
    "bootloader": (
        WARNINGS
        + RELEASE
        + ["-static", "-Ilibtar", "-Ilibxz", "-Ilibzstd", '-DCOMPILER_PATH="musl-gcc"'],
        [
            "bootloader/error.c",
            "bootloader/elfutil.c",
            "bootloader/extract.c",
            "bootloader/main.c",
            "bootloader/mmap.c",
            "bootloader/util.c",
        ],
    ),
}
LINK = ["-static", "-Wl,--fatal-warnings", "-Wl,--gc-sections"]


def compiler_version() -> str:
    return subprocess.run(
        ["musl-gcc", "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]


def bootloader_inputs() -> str:
    h = hashlib.sha256()
    h.update(f"{compiler_version()}\n{LIBRARIES!r}\n{LINK!r}\n".encode())
    for path in [BOOTLOADER_SOURCES] + patch_series():
        h.update(f"{os.path.basename(path)}\n".encode())
        h.update(bytes.fromhex(sha256(path)))
    return h.hexdigest()


def compile_bootloader(tree: str, version: str, out: str, env: dict[str, str]) -> None:
    """musl-gcc, as the sdist builds it: one process per source file, two at a time."""
    objdir = os.path.join(tree, "obj")
    os.makedirs(objdir)
    # No build path in the objects: the same bytes from any directory.
    common = [f"-ffile-prefix-map={tree}=staticx-{version}", f'-DSTATICX_VERSION="{version}"']
    jobs = [
        [
            "musl-gcc",
            *flags,
            *common,
            "-c",
            src,
            "-o",
            os.path.join(objdir, f"{lib}-{src.replace('/', '_')}.o"),
        ]
        for lib, (flags, sources) in LIBRARIES.items()
        for src in sources
    ]
    jobs.sort(key=lambda cmd: "libzstd/zstd.c" not in cmd)  # the long one (~30 s) first

    def compile_one(cmd):
        return subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for proc in pool.map(compile_one, jobs):
            if proc.returncode != 0:
                raise BuildError(f"musl-gcc failed on the bootloader:\n{proc.stderr.strip()}")
    objects = sorted(os.path.join(objdir, f) for f in os.listdir(objdir))
    run(["musl-gcc", *LINK, "-o", out, *objects], env, name="linking the bootloader")
    run(["strip", out], env, name="strip of the bootloader")


def bootloader(env: dict[str, str]) -> None:
    """Stage bootloader: dist/bootloader/bootloader, built unless its stamp says it is up to date."""
    stamp = BOOTLOADER + ".inputs"
    inputs = bootloader_inputs()
    with contextlib.suppress(OSError), open(stamp) as f:
        if f.read().strip() == f"{inputs} {sha256(BOOTLOADER)}":
            stage("bootloader", f"{shown(BOOTLOADER)} is up to date")
            return
    stage(
        "bootloader",
        f"staticx sdist + {len(patch_series())} patches of {shown(PATCHES)}/, "
        f"musl-gcc -> {shown(BOOTLOADER)}",
    )
    os.makedirs(BOOTLOADER_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tinyapi-bootloader-") as scratch:
        tree, version = patched_tree(scratch, env)
        tmp = BOOTLOADER + ".tmp"
        compile_bootloader(tree, version, tmp, env)
    os.replace(tmp, BOOTLOADER)
    with open(stamp, "w") as f:
        f.write(f"{inputs} {sha256(BOOTLOADER)}\n")
    print(f"    {shown(BOOTLOADER)}: {os.path.getsize(BOOTLOADER):,} bytes", flush=True)


def check_patches(env: dict[str, str], patches: str | None = None) -> None:
    """Apply the series to a fresh copy of the pinned sdist (for tests and upgrades)."""
    if patches is not None and not os.path.isdir(patches):
        raise BuildError(f"{patches}: no such directory", code=2)
    with tempfile.TemporaryDirectory(prefix="tinyapi-patches-") as scratch:
        _, version = patched_tree(scratch, env, patches)
    shown_dir = shown(patches or PATCHES)
    print(
        f"==> {len(patch_series(patches))} patches of {shown_dir}/ apply to staticx {version}",
        flush=True,
    )
