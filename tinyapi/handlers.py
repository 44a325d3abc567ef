"""The handlers: what each route answers, byte for byte as the original (handlers.go)."""

from __future__ import annotations

import json
import logging
import random

from flask import Response, current_app

from tinyapi import healthchecks, logger

log = logging.getLogger(logger.LOGGER_NAME)

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=UTF-8"  # the original's spelling, upper-case UTF-8

CHAOS_THRESHOLD = 90  # a roll above this ends the process

# The app.extensions key of the function that ends the whole server (panic.exit_process, or a
# test's stand-in): app.config holds configuration only.
EXIT = "tinyapi.exit"

# Not for secrets, just for chaos; a module attribute so tests can load the dice.
roll = random.SystemRandom().randrange


def index() -> Response:
    return Response(
        "Index of tinyapi. These aren't the droids you're looking for\n", content_type=TEXT
    )


def always_ok() -> Response:
    return Response('{ "status": "OK" }', content_type=JSON)


def health_check() -> Response:
    settings = current_app.config["TINYAPI"].healthcheck
    results = healthchecks.run_all(
        [("healthcheck1", settings.hc1_url), ("healthcheck2", settings.hc2_url)],
        timeout=settings.timeout,
        ca_file=settings.ca_file,
    )
    healthy = all(r.status == healthchecks.STATUS_OK for r in results)
    # json.NewEncoder in the original: compact, with a trailing newline.
    body = json.dumps([r.as_json() for r in results], separators=(",", ":")) + "\n"
    return Response(body, status=200 if healthy else 503, content_type=JSON)


def chaos_monkey() -> Response:
    n = roll(100)
    if n > CHAOS_THRESHOLD:
        current_app.extensions[EXIT](f"RouteChaosMonkey rolled {n}: enough chaos. Exiting")
    log.warning("RouteChaosMonkey not enough chaos: %d", n)
    return Response(f"Not Enough Chaos! {n} /100\n", content_type=TEXT)


def panic() -> Response:
    current_app.extensions[EXIT]("RoutePanic invoked. Exiting")
    # Only reached when the exit function is a test double.
    return Response("", status=500)
