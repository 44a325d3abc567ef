"""The routes table, in one place, like the original's routes.go: name, method, path, handler.

The name is what the access log prints for a request that matched the route: the original's
names, `Route` prefix and all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tinyapi import handlers


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    handler: Callable
    chaos: bool = False  # can end the process; served only while chaos.enabled is true


ROUTES = (
    Route("Index", "GET", "/", handlers.index),
    Route("AlwaysOK", "GET", "/alwaysok", handlers.always_ok),
    Route("RouteHealthCheck", "GET", "/healthcheck", handlers.health_check),
    Route("RouteChaosMonkey", "GET", "/chaosmonkey", handlers.chaos_monkey, chaos=True),
    Route("RoutePanic", "GET", "/panic", handlers.panic, chaos=True),
)


def enabled(chaos_enabled: bool) -> tuple[Route, ...]:
    """The routes to serve: all of them, or all but the kill switches."""
    return tuple(r for r in ROUTES if chaos_enabled or not r.chaos)
