#!/usr/bin/env python3
"""Stage the Docker build context's payload in dist/image/: the exact tree the FROM scratch
image gets (harness/image.py lists it, file by file), with the file modes it needs already set.

A scratch image has no shell, so nothing can RUN chmod, and the classic builder has no
COPY --chmod: the modes must already be right in the context. Every mtime is the build's time
(build/source-date-epoch): Docker's layer tar keeps them, and the same inputs must give the
same layer digest.

The Dockerfile's builder stage runs it, into /image, which the last stage copies whole.

Usage: docker/stage-image.py [BINARY]   (default dist/tinyapi; its SBOM is BINARY.cdx.json)
  env IMAGE_DIR: where to stage (default dist/image)
"""

from __future__ import annotations

import os
import shutil
import stat
import sys

try:
    from harness.epoch import source_date_epoch
    from harness.image import FILES
    from harness.paths import ROOT
except ModuleNotFoundError as err:  # a python3 without the project's venv
    sys.exit(
        f"docker/stage-image.py: no module {err.name}: run it with the venv's python "
        "(make venv, then .venv/bin/python docker/stage-image.py)"
    )


def fail(message: str) -> int:
    print(f"stage-image: {message}", file=sys.stderr)
    return 1


def sources(binary: str) -> dict[str, str] | str:
    """Where each kind of source is, or what is missing."""
    sbom = binary + ".cdx.json"
    if not os.path.isfile(binary):
        return f"no {binary} (run: make binary)"
    if not os.path.isfile(sbom):
        return f"no {sbom} (run: make sbom)"
    return {"binary": binary, "sbom": sbom}


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) > 1:
        return fail("usage: docker/stage-image.py [BINARY]")
    os.chdir(ROOT)
    found = sources(argv[0] if argv else "dist/tinyapi")
    if isinstance(found, str):
        return fail(found)
    out = os.environ.get("IMAGE_DIR", "dist/image")
    shutil.rmtree(out, ignore_errors=True)  # start from nothing: no stale file slips in
    os.makedirs(out)
    for entry in FILES:
        dest = os.path.join(out, entry.path)
        if entry.kind == "dir":
            os.makedirs(dest, exist_ok=True)
        else:
            source = found.get(entry.source, entry.source)
            if not os.path.isfile(source):
                return fail(f"no {source}, which the image's /{entry.path} is")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(source, dest)
    # Explicit modes, whatever umask or source modes were: Docker copies them as they are.
    # Then the build's time on every entry, the directory itself included.
    epoch = int(source_date_epoch())
    for entry in FILES:
        os.chmod(os.path.join(out, entry.path), entry.mode)
    os.chmod(out, 0o755)
    for entry in [*FILES, None]:
        path = os.path.join(out, entry.path) if entry else out
        os.utime(path, (epoch, epoch))
    print(f"stage-image: staged {out}:")
    for entry in sorted(FILES, key=lambda e: e.path):
        print(f"  {stat.filemode(os.lstat(os.path.join(out, entry.path)).st_mode)} {entry.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
