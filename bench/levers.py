"""`make bench-levers`: what each of the interpreter's levers gives, measured alone.

Every lever of build/recipe/interpreter.py (LEVERS) is toggled on its own: the build without
one it takes (`--without`), or with one it does not (`--with`), each into its own prefix under
dist/bench/levers/ (cached by the recipe's key: a second run builds nothing). Each is measured
against the interpreter the kit builds:

  size        what the binary would carry of it: libpython (and, with the modules not built
              in, their shared objects; glibc's libm.so.6 where libpython needs it), stripped as
              the freeze strips them; stored, and zstd -19 --long=24 as staticx's archive is
              compressed
  start       process start to the first 200 on /alwaysok of the service from source, run by
              that interpreter (the build venv's packages), polled every 5 ms
  throughput  wrk on /alwaysok of that server right after

The servers run interleaved (A B C ... A B C ...), medians of --runs. Writes
bench/results/levers.md and levers.json. About 4 minutes per lever to build on 2 cores, once.

Usage: python -m bench.levers [--only LEVER ...] [--runs N] [--seconds S]
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile

from bench.lib import (
    INTERPRETER_RECIPE,
    REPO,
    RESULTS,
    BenchError,
    host_server,
    interleaved,
    interpreter_recipe,
    run,
    say,
    wait_200,
)
from bench.sizes import zstd_size
from bench.wrk import wrk

VARIANTS = os.path.join(REPO, "dist", "bench", "levers")
SITE_PACKAGES = os.path.join(
    REPO, "dist", "interpreter", "venv", "lib", "python3.11", "site-packages"
)
BASE = "the kit's build"


def variants(interpreter, only: list[str]) -> dict[str, tuple[str, list[str]]]:
    """name -> (prefix, the recipe's options): the kit's build first, then one per lever."""
    out = {BASE: (interpreter.DEFAULT_PREFIX, [])}
    for lever in interpreter.LEVERS:
        if only and lever.name not in only:
            continue
        flag = "--without" if lever.taken else "--with"
        out[lever.name] = (os.path.join(VARIANTS, lever.name, "python"), [flag, lever.name])
    return out


def build(prefix: str, options: list[str]) -> None:
    run(
        [sys.executable, INTERPRETER_RECIPE, "--prefix", prefix, *options],
        capture_output=False,
        timeout=3600,
    )


def needed(path: str) -> list[str]:
    """path's DT_NEEDED libraries."""
    return re.findall(r"\(NEEDED\).*\[(.+)\]", run(["readelf", "-d", path]).stdout)


def payload(interpreter, prefix: str) -> list[str]:
    """The files of prefix the binary would carry: libpython, and the service's modules where
    they are not built in; and glibc's libm where libpython needs it (staticx packs it)."""
    lib = os.path.join(prefix, "lib")
    libpython = os.path.join(lib, "libpython3.11.so.1.0")
    files = [libpython]
    for name in interpreter.BUILTIN:
        files += glob.glob(os.path.join(lib, "python3.11", "lib-dynload", f"{name}.cpython-*.so"))
    if "libm.so.6" in needed(libpython):
        files.append(os.path.realpath(f"/lib/{platform.machine()}-linux-gnu/libm.so.6"))
    return files


def sizes(files: list[str]) -> dict:
    """Stored and zstd bytes of files stripped (--strip-unneeded, as the freeze does)."""
    stripped = b""
    with tempfile.TemporaryDirectory(prefix="tinyapi-levers-") as tmp:
        for path in files:
            copy = os.path.join(tmp, os.path.basename(path))
            shutil.copyfile(path, copy)
            run(["strip", "--strip-unneeded", copy])
            with open(copy, "rb") as f:
                stripped += f.read()
    return {"files": len(files), "stored": len(stripped), "zstd": zstd_size(stripped)}


def serve(prefix: str, cwd: str, seconds: float):
    """A callable for interleaved(): (seconds to the first 200, req/s) of the service from
    source run by prefix's python."""
    python = os.path.join(prefix, "bin", "python3")
    env = {"PYTHONPATH": f"{REPO}:{SITE_PACKAGES}", "PYTHONNOUSERSITE": "1"}

    def measure() -> tuple[float, float]:
        with host_server([python, "-m", "tinyapi"], cwd, env=env) as (proc, port, started):
            took = wait_200(port, "/alwaysok", started, alive=lambda: proc.poll() is None)
            return took, wrk(f"http://127.0.0.1:{port}/alwaysok", seconds)["rps"]

    return measure


def row(name: str, got: dict, base: dict) -> str:
    def delta(value, of, fmt):
        d = value - of
        return (
            f"{fmt(value)} ({'+' if d >= 0 else '-'}{fmt(abs(d))})" if name != BASE else fmt(value)
        )

    size = lambda v: f"{v:,} B"  # noqa: E731
    ms = lambda v: f"{v * 1000:.0f} ms"  # noqa: E731
    rps = lambda v: f"{v:,.0f}"  # noqa: E731
    # The spread beside each median: a noisy run shows.
    starts, rates = zip(*got["runs"], strict=True)
    return (
        f"| {name} | {got['taken']} | {delta(got['stored'], base['stored'], size)} "
        f"| {delta(got['zstd'], base['zstd'], size)} "
        f"| {delta(got['start_s'], base['start_s'], ms)} [{ms(min(starts))}-{ms(max(starts))}] "
        f"| {delta(got['rps'], base['rps'], rps)} [{rps(min(rates))}-{rps(max(rates))}] |"
    )


def report(results: dict) -> str:
    levers = results["levers"]
    base = levers[BASE]
    lines = [
        "# The interpreter's levers, each measured alone",
        "",
        f"{results['when']}, commit {results['commit']}, {results['cpus']} CPUs, load "
        f"{results['load']:.1f} at the start; `python -m bench.levers` "
        f"(bench/levers.py says how). {results['runs']} interleaved runs, medians [min-max].",
        "",
        "Each row is the kit's build with one lever switched: *taken* levers are left out, the "
        "others added. Sizes: libpython (plus the modules' shared objects where they are not "
        "built in, and glibc's libm.so.6 where libpython needs it), stripped; start: to the "
        "first 200 of the service from source; throughput: "
        f"wrk {results['seconds']:g} s on /alwaysok right after.",
        "",
        "| build | the lever taken by the kit | stored | zstd | start | req/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [row(name, got, base) for name, got in levers.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    interpreter = interpreter_recipe()
    p = argparse.ArgumentParser(
        prog="python -m bench.levers",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--only", action="append", default=[], choices=interpreter.LEVER_NAMES)
    p.add_argument("--runs", type=int, default=5, help="interleaved runs (default 5)")
    p.add_argument("--seconds", type=float, default=5, help="wrk's run (default 5 s)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.seconds < 1:
        p.error("--runs and --seconds take 1 or more")
    try:
        builds = variants(interpreter, args.only)
        for i, (name, (prefix, options)) in enumerate(builds.items(), 1):
            say(f"levers: build {i}/{len(builds)}, {name} ({' '.join(options) or 'as it is'})")
            build(prefix, options)
        say(f"levers: start and throughput, {args.runs} interleaved runs")
        with tempfile.TemporaryDirectory(prefix="tinyapi-bench-cwd-") as cwd:
            timed = interleaved(
                args.runs,
                {name: serve(prefix, cwd, args.seconds) for name, (prefix, _) in builds.items()},
            )
        levers = {}
        taken = {lever.name: lever.taken for lever in interpreter.LEVERS}
        for name, (prefix, _) in builds.items():
            got = sizes(payload(interpreter, prefix))
            got["start_s"] = statistics.median(s for s, _ in timed[name])
            got["rps"] = statistics.median(r for _, r in timed[name])
            got["runs"] = timed[name]
            got["taken"] = "" if name == BASE else ("yes" if taken[name] else "no")
            levers[name] = got
            say(f"levers: {name}: {got['stored']:,} B, zstd {got['zstd']:,} B")
    except BenchError as err:
        print(f"bench.levers: {err}", file=sys.stderr)
        return 1
    results = {
        "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]).stdout.strip(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
        "runs": args.runs,
        "seconds": args.seconds,
        "levers": levers,
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "levers.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(RESULTS, "levers.md"), "w") as f:
        f.write(report(results))
    say(f"levers: {os.path.join(RESULTS, 'levers.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
