"""python build [SUBCOMMAND]: the recipe's commands. With no subcommand (or only binary's
options) it builds dist/tinyapi, as `make binary` does."""

from __future__ import annotations

import argparse
import os
import sys
import time

from recipe.env import BuildError, build_env

DESCRIPTION = """\
The recipe of dist/tinyapi, one static executable for a FROM scratch image. Run it from the
repository's root with the interpreter whose packages go into the binary (`make binary` runs
`.venv/bin/python build`). docs/binary.md explains the binary and the patches."""


class Parser(argparse.ArgumentParser):
    """A user's mistake is one line on stderr and exit status 2, not the usage."""

    def error(self, message):
        self.exit(2, f"build: {message} (see {self.prog} --help)\n")


def binary(opts) -> None:
    """Build dist/tinyapi: the stages collect, bootloader, freeze, staticx, verify, each with
    its ==> line. Skipped when dist/tinyapi.inputs says the binary there was built from these
    inputs."""
    from recipe.binary import build_binary
    from recipe.inputs import exclusive

    with exclusive():
        build_binary(build_env(), opts.stage, opts.skip_verify, opts.force)


def sbom(opts) -> None:
    """Write a CycloneDX SBOM of what is inside the binary, read back out of it (after a build,
    with the build's interpreter: `make sbom`)."""
    from recipe.sbom.document import write_sbom

    write_sbom(opts.binary, opts.output, opts.force)


def check_patches(opts) -> None:
    """Apply the patch series to a fresh copy of the pinned staticx sdist, and nothing else
    (for tests and upgrades)."""
    from recipe.bootloader import check_patches

    check_patches(build_env(), opts.patches and os.path.abspath(opts.patches))


def bundle(opts) -> None:
    """Bundle PROGRAM into OUTPUT with the patched bootloader, as the staticx stage does."""
    from recipe.bootloader import bootloader
    from recipe.inputs import exclusive
    from recipe.pack import bundle

    if not os.path.isfile(opts.program):
        raise BuildError(f"{opts.program}: no such file", code=2)
    env = build_env()
    with exclusive():
        bootloader(env)
    bundle(opts.program, opts.output, env, compression=opts.compression)


# Each subcommand: the function that runs it (its docstring is its --help), its line in the list.
SUBCOMMANDS = {
    binary: "build dist/tinyapi (the default; a no-op when its inputs are unchanged)",
    sbom: "write dist/tinyapi.cdx.json, the CycloneDX SBOM of what is inside dist/tinyapi",
    check_patches: "check that build/patches/staticx/ applies to the pinned staticx sdist",
    bundle: "bundle another dynamic program with the patched bootloader (the tests use it)",
}


def parser() -> Parser:
    from recipe.binary import STAGES
    from recipe.pack import COMPRESSIONS
    from recipe.paths import BINARY, SBOM

    top = Parser(
        prog="python build",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(title="subcommands", dest="command", metavar="SUBCOMMAND")
    sub = {}
    for run, summary in SUBCOMMANDS.items():
        name = run.__name__.replace("_", "-")
        sub[name] = commands.add_parser(name, help=summary, description=run.__doc__)
        sub[name].set_defaults(run=run)

    sub["binary"].add_argument(
        "--stage",
        choices=STAGES,
        action="append",
        help="run only this stage (repeatable); implies --force for freeze/staticx",
    )
    sub["binary"].add_argument(
        "--skip-verify", action="store_true", help="do not run the verify stage"
    )
    sub["binary"].add_argument(
        "--force", action="store_true", help="rebuild even if the inputs are unchanged"
    )
    sub["sbom"].add_argument(
        "--binary", default=BINARY, help="the static binary (default: dist/tinyapi)"
    )
    sub["sbom"].add_argument(
        "--output", default=SBOM, help="where to write (default: dist/tinyapi.cdx.json)"
    )
    sub["sbom"].add_argument(
        "--force", action="store_true", help="write it even if it is up to date"
    )
    sub["check-patches"].add_argument("--patches", metavar="DIR", help="check this series instead")
    sub["bundle"].add_argument("program", metavar="PROGRAM")
    sub["bundle"].add_argument("output", metavar="OUTPUT")
    sub["bundle"].add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default="zstd",
        help="the archive's compression (default zstd)",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # No subcommand, or only binary's options: binary, the sane default.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "binary")
    opts = parser().parse_args(argv)
    started_at = time.monotonic()
    try:
        opts.run(opts)
    except BuildError as e:
        print(f"build: {e}", file=sys.stderr)
        return e.code
    except OSError as e:  # a tool that cannot run, a directory that cannot be written
        print(f"build: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if opts.command != "sbom":
        print(f"==> done in {time.monotonic() - started_at:.1f} s", flush=True)
    return 0
