"""The build section: clean and no-change `make binary` in a copy of the sources, the kit's
interpreter included."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

from bench.lib import BINARY, REPO, BenchError, interpreter_recipe, run, say, stats
from harness.digest import sha256
from harness.epoch import source_date_epoch

# What `make binary` reads besides the service's sources: the recipe's whole folder (build/:
# the interpreter's recipe, the binary's, the spec, the bootloader's pins and patches), the
# harness it imports, and the files make, pip (the project's metadata) and the up-to-date
# check read.
BUILD_INPUTS = ["Makefile", "pyproject.toml", "requirements.lock", "README.md"]
TREES = ["build", "harness"]


def bench_build(results: dict, runs: int, clean_runs: int) -> None:
    """`make binary` in a copy of the build's inputs (the sources, build/, harness/, Makefile,
    locks): clean (no dist: the interpreter is built again and its venv made, the bootloader's
    sources are downloaded and it is compiled again) and with nothing changed, interleaved. The
    copy gets the repository's SOURCE_DATE_EPOCH, so its binary must be byte-identical to
    dist/tinyapi. The interpreter's sources come from the repository's download cache."""
    say(f"build: clean `make binary` x{clean_runs}, no-change x{runs}, in a copy of the sources")
    env = dict(
        os.environ,
        SOURCE_DATE_EPOCH=source_date_epoch(),
        TINYAPI_INTERPRETER_DOWNLOADS=interpreter_recipe().DOWNLOADS,
    )
    with tempfile.TemporaryDirectory(prefix="tinyapi-bench-build-") as copy:
        files = BUILD_INPUTS + [
            os.path.join("tinyapi", f)
            for f in sorted(os.listdir(os.path.join(REPO, "tinyapi")))
            if f.endswith(".py")
        ]
        for rel in files:
            os.makedirs(os.path.dirname(os.path.join(copy, rel)) or copy, exist_ok=True)
            shutil.copy2(os.path.join(REPO, rel), os.path.join(copy, rel))
        for tree in TREES:
            shutil.copytree(
                os.path.join(REPO, tree),
                os.path.join(copy, tree),
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        make = ["make", "-C", copy, "--no-print-directory", "binary"]
        digests = []

        def clean():
            shutil.rmtree(os.path.join(copy, "dist"), ignore_errors=True)
            t = time.monotonic()
            run(make, env=env, timeout=1800)
            took = time.monotonic() - t
            digests.append(sha256(os.path.join(copy, "dist", "tinyapi")))
            return took

        def nochange():
            t = time.monotonic()
            out = run(make, env=env, timeout=1800).stdout
            took = time.monotonic() - t
            if "is up to date" not in out:
                raise BenchError(f"a second `make binary` rebuilt:\n{out[-1500:]}")
            return took

        cleans, nochanges = [], []
        for i in range(max(runs, clean_runs)):
            if i < clean_runs:
                cleans.append(clean())
            if i < runs:
                nochanges.append(nochange())
    dist = sha256(BINARY)
    results["build"] = {
        "clean_s": stats(cleans),
        "nochange_s": stats(nochanges),
        "sha256": sorted(set(digests)),
        "dist_sha256": dist,
        "reproducible": set(digests) == {dist},
    }
    say(
        f"  clean {statistics.median(cleans):.1f} s, no-change {statistics.median(nochanges):.2f} s, "
        f"reproducible: {results['build']['reproducible']}"
    )
