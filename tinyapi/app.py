"""The app factory: create_app(config) builds the Flask app from the routes table, with the
original's answers for everything the table does not route (301, 404, 405)."""
from __future__ import annotations

import html
import time
from http import HTTPStatus
from typing import Callable

from flask import Flask, Response, g, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tinyapi import handlers, logger, panic, routes
from tinyapi.config import Config

NOT_FOUND_BODY = "404 page not found\n"


def create_app(config: Config, exit_process: Callable[[str], None] = panic.exit_process) -> Flask:
    """The WSGI app. `exit_process` ends the whole server (/panic, /chaosmonkey); tests pass a
    stand-in so that the Flask test client can call those routes without dying."""
    app = Flask("tinyapi")
    app.config["TINYAPI"] = config
    app.extensions[handlers.EXIT] = exit_process

    served = routes.enabled(config.chaos.enabled)
    paths = {route.path for route in served}
    for route in served:
        app.add_url_rule(route.path, endpoint=route.name, view_func=route.handler,
                         methods=[route.method], provide_automatic_options=False)
    # Werkzeug answers HEAD on every GET route; the original's router answers 405.
    for rule in app.url_map.iter_rules():
        rule.methods.discard("HEAD")

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def log_access(response: Response) -> Response:
        # Every answer gets a line, the 301/404/405 ones too (the original logged only routed ones).
        rule = request.url_rule
        logger.access(request.environ, rule.endpoint if rule else "-", response.status_code,
                      time.perf_counter() - g.started)
        # Go's status line ("301 Moved Permanently"), not Werkzeug's upper case.
        response.status = f"{response.status_code} {HTTPStatus(response.status_code).phrase}"
        return response

    @app.errorhandler(NotFound)
    def not_found(_error: NotFound) -> Response:
        # gorilla/mux's StrictSlash: /alwaysok/ is redirected to /alwaysok.
        path = request.path
        if request.method == "GET" and path.endswith("/") and path[:-1] in paths:
            return _redirect(path[:-1], request.query_string.decode("latin-1"))
        if path.endswith("/") and path[:-1] in paths:
            return _method_not_allowed()
        return Response(NOT_FOUND_BODY, status=404, content_type="text/plain; charset=utf-8")

    @app.errorhandler(MethodNotAllowed)
    def method_not_allowed(_error: MethodNotAllowed) -> Response:
        return _method_not_allowed()

    return app


def _redirect(path: str, query: str) -> Response:
    """301 with the body Go's http.Redirect writes."""
    target = f"{path}?{query}" if query else path
    body = f'<a href="{html.escape(target)}">Moved Permanently</a>.\n\n'
    response = Response(body, status=301, content_type="text/html; charset=utf-8")
    response.headers["Location"] = target
    return response


def _method_not_allowed() -> Response:
    """405 with an empty body, like the original, plus the Allow header HTTP asks for."""
    response = Response(b"", status=405)
    del response.headers["Content-Type"]
    response.headers["Allow"] = "GET"
    return response
