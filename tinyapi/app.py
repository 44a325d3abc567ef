"""The app factory: create_app(config) builds the Flask app from the routes table, and answers
what the table does not serve as the original's router (gorilla/mux on net/http) does: the
path is cleaned first (301), then routed (the trailing-slash 301, 404, 405)."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import quote

from flask import Flask, Response, g, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tinyapi import handlers, logger, panic, routes
from tinyapi.config import Config

NOT_FOUND_BODY = "404 page not found\n"
# What Go's url.URL.EscapedPath leaves as it is in a path, beyond letters, digits and "-._~".
PATH_SAFE = "/$&+,:;=@"


def create_app(config: Config, exit_process: Callable[[str], None] = panic.exit_process) -> Flask:
    """The WSGI app. `exit_process` ends the whole server (/panic, /chaosmonkey); tests pass a
    stand-in so that the Flask test client can call those routes without dying."""
    app = Flask("tinyapi")
    app.config["TINYAPI"] = config
    app.extensions[handlers.EXIT] = exit_process

    served = routes.enabled(config.chaos.enabled)
    paths = {route.path for route in served}
    for route in served:
        app.add_url_rule(
            route.path,
            endpoint=route.name,
            view_func=route.handler,
            methods=[route.method],
            provide_automatic_options=False,
        )
    # Werkzeug answers HEAD on every GET route; the original's router answers 405.
    for rule in app.url_map.iter_rules():
        rule.methods.discard("HEAD")
    # Doubled slashes are clean_then_route's to answer (301), not Werkzeug's to merge.
    app.url_map.merge_slashes = False

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    @app.before_request
    def clean_then_route() -> Response | None:
        # The method and path as they came: Werkzeug upper-cases the one and strips the
        # leading slashes of the other.
        method = request.environ["REQUEST_METHOD"]
        path = request.environ.get("PATH_INFO", "")
        if method == "OPTIONS" and path == "*":
            return _empty(200)  # net/http answers it itself, before any handler
        cleaned = clean_path(path)
        if cleaned != path:
            return _moved(cleaned, request.query_string.decode("latin-1"))
        rule = request.url_rule
        if rule is not None and method not in rule.methods:
            return _method_not_allowed()  # `get` is a method of its own, as for Go
        if rule is not None:
            g.route = rule.endpoint
        return None  # routed: the view, or the NotFound/MethodNotAllowed handlers below

    @app.after_request
    def log_access(response: Response) -> Response:
        # Every answer gets a line, the 301/404/405 ones too (the original logged only routed ones).
        logger.access(
            request.environ,
            g.get("route", "-"),
            response.status_code,
            time.perf_counter() - g.started,
        )
        # Go's status line ("301 Moved Permanently"), not Werkzeug's upper case.
        response.status = f"{response.status_code} {HTTPStatus(response.status_code).phrase}"
        return response

    @app.errorhandler(NotFound)
    def not_found(_error: NotFound) -> Response:
        # gorilla/mux's StrictSlash: /alwaysok/ is redirected to /alwaysok.
        path = request.path
        if path.endswith("/") and path[:-1] in paths:
            if request.environ["REQUEST_METHOD"] == "GET":
                return _redirect(path[:-1], request.query_string.decode("latin-1"))
            return _method_not_allowed()
        # http.NotFound.
        response = Response(NOT_FOUND_BODY, status=404, content_type="text/plain; charset=utf-8")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.errorhandler(MethodNotAllowed)
    def method_not_allowed(_error: MethodNotAllowed) -> Response:
        return _method_not_allowed()

    return app


def clean_path(path: str) -> str:
    """gorilla/mux's cleanPath: Go's path.Clean of the path made absolute (no `.` or `..`
    segment, no doubled slash), its trailing slash kept."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    cleaned = "/" + "/".join(segments)
    return cleaned + "/" if path.endswith("/") and cleaned != "/" else cleaned


def _with_query(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def _empty(status: int) -> Response:
    """An answer with no body and no Content-Type (Content-Length: 0)."""
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    return response


def _moved(path: str, query: str) -> Response:
    """gorilla/mux's answer to a path that is not clean: 301 to the clean one, the path
    escaped as Go's URL.String does, the query as it came; no body."""
    response = _empty(301)
    response.headers["Location"] = _with_query(quote(path.encode("latin-1"), safe=PATH_SAFE), query)
    return response


def _redirect(path: str, query: str) -> Response:
    """301 with the body Go's http.Redirect writes."""
    target = _with_query(path, query)
    body = f'<a href="{html.escape(target)}">Moved Permanently</a>.\n\n'
    response = Response(body, status=301, content_type="text/html; charset=utf-8")
    response.headers["Location"] = target
    return response


def _method_not_allowed() -> Response:
    """405 with an empty body, like the original, plus the Allow header HTTP asks for."""
    response = _empty(405)
    response.headers["Allow"] = "GET"
    return response
