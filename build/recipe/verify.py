"""Stage verify: ldd must call dist/tinyapi "not a dynamic executable", and it must answer
GET /alwaysok in an empty root (a chroot holding only the binary, /tmp and /proc), run as an
unprivileged user: harness.emptyroot, the tests' own."""

from __future__ import annotations

import os
import subprocess

from harness.emptyroot import empty_root_server
from harness.serve import NotServing
from recipe.env import BuildError, stage
from recipe.paths import BINARY, shown


def verify(env: dict[str, str]) -> None:
    stage("verify", f"{shown(BINARY)} is static and serves /alwaysok in an empty root")
    if not os.path.exists(BINARY):
        raise BuildError(f"{BINARY} is missing: nothing to verify")
    if os.geteuid() != 0:
        raise BuildError(
            "verify needs root (unshare/chroot): run as root or pass --skip-verify", code=2
        )
    ldd = subprocess.run(["ldd", BINARY], capture_output=True, text=True, env=env)
    if "not a dynamic executable" not in ldd.stdout + ldd.stderr:
        raise BuildError(f"ldd {BINARY} says it is dynamic:\n{ldd.stdout}{ldd.stderr}")
    try:
        with empty_root_server(BINARY) as server:
            answer = server.get("/alwaysok")
    except NotServing as err:
        raise BuildError(f"{shown(BINARY)} does not serve in an empty root: {err}") from None
    print(f"    GET /alwaysok -> {answer.status} {answer.text.strip()}", flush=True)
