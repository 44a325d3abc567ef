"""The command line: `tinyapi [--config FILE]`, `--version`, `--help`, and `tinyapi probe`."""

from __future__ import annotations

import argparse
import signal
import sys

from tinyapi import __version__, config, logger

EXIT_USAGE = 2  # bad config, port taken: the user's to fix, so not 1 (which means "panicked")


def _epilog() -> str:
    rows = [
        f"  {section}.{key:<18} {config.env_name(section, key):<36} {default!r:<26} {doc}"
        for section, key, default, doc in config.keys()
    ]
    return "\n".join(
        [
            "config file: ./config.yml, else $TINYAPI_CFG_PATH/config.yml, else --config FILE;",
            "every key can also be set from the environment, TINYAPI_<SECTION>_<KEY>:",
            "",
            f"  {'key':<25} {'environment variable':<36} {'default':<26} meaning",
            *rows,
            "",
            "exit status: 0 stopped by SIGTERM/SIGINT, 1 /panic or /chaosmonkey, 2 bad config or start-up",
            "",
            "tinyapi probe [URL] [--timeout S]: exit 0 if the running server answers 200, else 1",
            "  (the image's HEALTHCHECK; see tinyapi probe --help)",
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tinyapi",
        description="The tinyapi of 'Building Tiny Secure Docker Containers': a tiny HTTP API "
        "with /, /healthcheck, /alwaysok, /chaosmonkey and /panic.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="read this config file instead of searching for config.yml",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"tinyapi {__version__} (Python port of go-tinyapi v0.1)",
    )
    return parser.parse_args(argv)


def _stop_before_serving(_signum, _frame) -> None:
    raise SystemExit(0)  # stopped as asked, before serving: SIGTERM's status, 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["probe"]:
        # Before anything else, logging included: a probe imports the standard library and the
        # config only (never Flask or gunicorn), and prints nothing when all is well.
        from tinyapi import probe

        return probe.main(argv[1:])
    # A stop before gunicorn installs its own handlers (Python starting, the app being built):
    # as PID 1 without a handler, the kernel would drop it and the engine wait out its timeout.
    signal.signal(signal.SIGTERM, _stop_before_serving)
    args = parse_args(argv)
    log = logger.setup()
    log.info("[STARTUP] Initializing tinyapi v%s", __version__)
    # Imported here, not at the top: --help and --version need neither Flask nor gunicorn.
    from tinyapi import server

    try:
        settings = config.load(args.config)
        if settings.source:
            log.info("Loaded config file: %s", settings.source)
        else:
            log.warning("No config file loaded. Using defaults")
        server.serve(settings)
    except (config.ConfigError, server.StartupError) as err:
        print(f"tinyapi: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    return 0
