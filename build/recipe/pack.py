"""Stage staticx: the one-dir program, whole, + its libc & co, zstd'd, behind the patched
bootloader -> dist/tinyapi. recipe.staticx_driver does the packing, in a process of its own."""

from __future__ import annotations

import os
import sys

from recipe import staticx_driver
from recipe.env import BuildError, run, stage
from recipe.paths import BINARY, BOOTLOADER, DIST, FROZEN, shown

# staticx's archive: zstd at this level and window (bench/README.md has the measurements).
ZSTD_LEVEL = 19
ZSTD_WINDOW_LOG = 24
COMPRESSIONS = ("zstd", "xz", "none")


def pack(env: dict[str, str]) -> None:
    stage(
        "staticx",
        f"{shown(FROZEN)}/ + its libraries, zstd -{ZSTD_LEVEL} --long={ZSTD_WINDOW_LOG} "
        f"-> {shown(BINARY)}",
    )
    program = os.path.join(FROZEN, "tinyapi")
    if not os.path.exists(program):
        raise BuildError(f"{program} is missing: run the freeze stage first")
    os.makedirs(DIST, exist_ok=True)
    tmp = BINARY + ".tmp"
    bundle(program, tmp, env)
    os.replace(tmp, BINARY)  # never leave a half-written dist/tinyapi
    print(f"    {shown(BINARY)}: {os.path.getsize(BINARY):,} bytes", flush=True)


def bundle(program: str, output: str, env: dict[str, str], compression: str = "zstd") -> None:
    """staticx program -> output with our bootloader; compression zstd, xz (staticx's own) or
    none. A one-dir program (its _internal/ beside it) goes in whole."""
    if not os.path.exists(BOOTLOADER):
        raise BuildError(f"{BOOTLOADER} is missing: run the bootloader stage first")
    # -P: the driver's directory (build/recipe/) stays off sys.path. No --strip: the spec
    # strips the libraries already.
    # fmt: off
    cmd = [
        sys.executable, "-P", staticx_driver.__file__,
        program, output, BOOTLOADER, compression, str(ZSTD_LEVEL), str(ZSTD_WINDOW_LOG),
    ]
    # fmt: on
    run(cmd, env, name="staticx")
    # staticx writes 0700; the image runs the binary as a non-root user.
    os.chmod(output, 0o755)
