"""The binary run the way a FROM scratch image runs it: in a root holding only it, /tmp and
/proc, in new mount and pid namespaces, as an unprivileged user (needs root to set up).
build's verify stage and the tests of the binary share it."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from harness.http import free_port
from harness.serve import served

# The image runs the binary as a non-root user: so does the empty root.
NOBODY = "65534:65534"


@contextlib.contextmanager
def empty_root_server(
    binary: str | Path,
    args=(),
    env: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
    ready_path: str | None = "/alwaysok",
):
    """Run binary as /tinyapi in an empty root; yield a harness.serve.Process (ready when
    ready_path is not None). files maps extra absolute paths inside the root to their text.
    Listens on a free loopback port unless env names one."""
    with tempfile.TemporaryDirectory(prefix="tinyapi-root-") as root:
        os.chmod(root, 0o755)  # the unprivileged user must reach /tinyapi
        shutil.copy(binary, os.path.join(root, "tinyapi"))
        os.chmod(os.path.join(root, "tinyapi"), 0o755)
        # PyInstaller and staticx both unpack to /tmp, which scratch lacks.
        os.mkdir(os.path.join(root, "tmp"))
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        os.mkdir(os.path.join(root, "proc"))  # staticx reads /proc/self/exe
        for path, text in (files or {}).items():
            dest = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w") as f:
                f.write(text)
            os.chmod(dest, 0o644)
        child_env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",  # finds unshare/chroot
            "TINYAPI_SERVER_BIND_ADDRESS": "127.0.0.1",
            "TINYAPI_SERVER_BIND_PORT": str(free_port()),
        }
        child_env.update(env or {})
        proc_dir = os.path.join(root, "proc")
        cmd = [
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            f"--mount-proc={proc_dir}",
            "chroot",
            f"--userspec={NOBODY}",
            root,
            "/tinyapi",
            *args,
        ]
        # The log lives outside the root: the service must not see it.
        with (
            tempfile.TemporaryDirectory(prefix="tinyapi-log-") as log_dir,
            served(
                cmd,
                child_env,
                int(child_env["TINYAPI_SERVER_BIND_PORT"]),
                os.path.join(log_dir, "tinyapi.log"),
                ready_path=ready_path,
                term_group=True,
            ) as server,
        ):  # unshare passes no signal on
            yield server
