"""`python build binary`: the stages in order, each printing its "==> stage" line, skipped
whole when dist/tinyapi.inputs says the binary there was built from these inputs."""

from __future__ import annotations

import os

from recipe.bootloader import bootloader
from recipe.env import collect
from recipe.freeze import freeze
from recipe.inputs import forget_stamp, inputs_hash, read_stamp, up_to_date, write_stamp
from recipe.pack import pack
from recipe.paths import BINARY, shown
from recipe.verify import verify

# collect: the tools are here; bootloader: staticx's, patched, built with musl-gcc (cached);
# freeze: PyInstaller; staticx: the one-dir program behind the bootloader; verify.
STAGES = ("collect", "bootloader", "freeze", "staticx", "verify")


def build_binary(env: dict[str, str], stages=None, skip_verify=False, force=False) -> None:
    """The stages named (all by default, verify unless skip_verify); only a run of them all
    may find the binary up to date."""
    wanted = stages or [s for s in STAGES if not (s == "verify" and skip_verify)]
    collect(env, verify="verify" in wanted)
    inputs = inputs_hash()
    if stages is None and not force and up_to_date(inputs):
        if "verify" in wanted and not read_stamp().get("verified"):
            verify(env)
            write_stamp(inputs, verified=True)
        size = os.path.getsize(BINARY)
        print(f"==> {shown(BINARY)} is up to date ({size:,} bytes; inputs unchanged)", flush=True)
        return
    if "bootloader" in wanted:
        bootloader(env)
    if "freeze" in wanted:
        freeze(env)
    if "staticx" in wanted:
        pack(env)
        if "freeze" in wanted:
            write_stamp(inputs, verified=False)
        else:  # the frozen input may predate the current sources
            forget_stamp()
    if "verify" in wanted:
        verify(env)
        if up_to_date(inputs):  # only a stamp for this very binary gains the mark
            write_stamp(inputs, verified=True)
