"""Every endpoint through Flask's test client: statuses, content types and bodies byte for byte
as the original (../shared/reference/go-tinyapi.md), with its bugs fixed."""

import json
import logging

import pytest

from tinyapi import handlers
from tinyapi.app import clean_path, create_app
from tinyapi.config import ChaosConfig, Config, HealthcheckConfig


class Exited(Exception):
    """Stands in for the process exit, so the test process survives /panic."""


@pytest.fixture
def exits():
    calls = []

    def exit_process(message):
        calls.append(message)
        raise Exited(message)

    return calls, exit_process


def make_client(config, exit_process):
    app = create_app(config, exit_process=exit_process)
    app.testing = True  # let the stand-in exit's exception reach the test
    return app.test_client()


@pytest.fixture
def client(exits):
    return make_client(Config(), exits[1])


def test_index(client):
    r = client.get("/")
    assert r.status == "200 OK"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.data == b"Index of tinyapi. These aren't the droids you're looking for\n"


def test_alwaysok(client):
    r = client.get("/alwaysok")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.data == b'{ "status": "OK" }'


@pytest.mark.parametrize("path", ["/alwaysok", "/healthcheck", "/chaosmonkey", "/panic"])
def test_trailing_slash_redirects_to_the_route(client, path):
    r = client.get(path + "/")
    assert r.status == "301 Moved Permanently"
    assert r.headers["Location"] == path
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.data == f'<a href="{path}">Moved Permanently</a>.\n\n'.encode()


def test_redirect_keeps_the_query(client):
    r = client.get("/alwaysok/?a=1&b=%3Cx%3E")
    assert r.headers["Location"] == "/alwaysok?a=1&b=%3Cx%3E"
    assert b'href="/alwaysok?a=1&amp;b=%3Cx%3E"' in r.data


@pytest.mark.parametrize("path", ["/nope", "/alwaysok/extra", "/ALWAYSOK", "/index.html"])
def test_unknown_path_is_404(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["X-Content-Type-Options"] == "nosniff"  # http.NotFound's
    assert r.data == b"404 page not found\n"


@pytest.mark.parametrize(
    "path,clean",
    [
        ("/", "/"),
        ("/alwaysok", "/alwaysok"),
        ("/alwaysok/", "/alwaysok/"),
        ("//", "/"),
        ("//alwaysok", "/alwaysok"),
        ("/./alwaysok", "/alwaysok"),
        ("/x/../alwaysok", "/alwaysok"),
        ("/a//b/", "/a/b/"),
        ("/..", "/"),
        ("/../..//x/./", "/x/"),
        ("/alwaysok/.", "/alwaysok"),
        ("", "/"),
        ("*", "/*"),
        ("/a/b/..", "/a"),
        ("/.../x", "/.../x"),
    ],
)
def test_clean_path_is_gorilla_muxs(path, clean):
    assert clean_path(path) == clean


@pytest.mark.parametrize("method", ["GET", "POST", "get", "FOO"])
@pytest.mark.parametrize(
    "path,query,location",
    [
        ("//alwaysok", "", "/alwaysok"),
        ("/x/../alwaysok", "a=1&b=%3C", "/alwaysok?a=1&b=%3C"),
        ("/./panic", "", "/panic"),
        ("//a b/./c", "", "/a%20b/c"),
        ("/\xe9//", "", "/%E9/"),
    ],
)
def test_unclean_path_is_301_before_routing(client, exits, method, path, query, location):
    # environ_overrides: the test client would read "//alwaysok" as a host.
    r = client.open("/", method=method, query_string=query, environ_overrides={"PATH_INFO": path})
    assert (r.status, r.headers["Location"], r.data) == ("301 Moved Permanently", location, b"")
    assert "Content-Type" not in r.headers and r.headers["Content-Length"] == "0"
    assert exits[0] == []  # /./panic is not /panic


def test_options_asterisk_is_200_empty(client):
    r = client.open("/", method="OPTIONS", environ_overrides={"PATH_INFO": "*"})
    assert (r.status, r.data, r.headers["Content-Length"]) == ("200 OK", b"", "0")
    assert "Content-Type" not in r.headers


@pytest.mark.parametrize(
    "method", ["POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "Get", "G"]
)
@pytest.mark.parametrize("path", ["/", "/alwaysok", "/panic", "/alwaysok/"])
def test_wrong_method_is_405_with_empty_body(client, exits, method, path):
    r = client.open(path, method=method)
    assert r.status_code == 405
    assert r.data == b""
    assert "Content-Type" not in r.headers
    assert r.headers["Allow"] == "GET"
    assert exits[0] == []  # POST /panic must not end anything


def test_chaosmonkey_not_enough_chaos(client, monkeypatch, caplog):
    monkeypatch.setattr(handlers, "roll", lambda n: 67)
    with caplog.at_level(logging.WARNING, logger="tinyapi"):
        r = client.get("/chaosmonkey")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.data == b"Not Enough Chaos! 67 /100\n"
    assert "RouteChaosMonkey not enough chaos: 67" in caplog.text


@pytest.mark.parametrize("n,dies", [(0, False), (90, False), (91, True), (99, True)])
def test_chaosmonkey_threshold(client, exits, monkeypatch, n, dies):
    monkeypatch.setattr(handlers, "roll", lambda limit: n)
    if dies:
        with pytest.raises(Exited):
            client.get("/chaosmonkey")
        assert "RouteChaosMonkey" in exits[0][0] and "Exiting" in exits[0][0]
    else:
        assert client.get("/chaosmonkey").data == f"Not Enough Chaos! {n} /100\n".encode()
        assert exits[0] == []


def test_chaosmonkey_rolls_0_to_99():
    seen = {handlers.roll(100) for _ in range(5000)}
    assert min(seen) == 0 and max(seen) == 99


def test_panic_exits_with_the_original_message(client, exits):
    with pytest.raises(Exited):
        client.get("/panic")
    assert exits[0] == ["RoutePanic invoked. Exiting"]


@pytest.mark.parametrize("path", ["/panic", "/chaosmonkey"])
def test_kill_switch_off_hides_the_chaos_routes(exits, path):
    client = make_client(Config(chaos=ChaosConfig(enabled=False)), exits[1])
    r = client.get(path)
    assert r.status_code == 404 and r.data == b"404 page not found\n"
    assert client.get("/alwaysok").status_code == 200
    assert exits[0] == []


def test_healthcheck_both_pass(exits, https_target, ca_file):
    config = Config(
        healthcheck=HealthcheckConfig(
            hc1_url=https_target.url("/ok"), hc2_url=https_target.url("/ok"), ca_file=ca_file
        )
    )
    r = make_client(config, exits[1]).get("/healthcheck")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.data.endswith(b"}]\n")
    body = json.loads(r.data)
    assert [list(item) for item in body] == [["name", "status", "completed", "date", "verbose"]] * 2
    assert [(c["name"], c["status"], c["completed"], c["verbose"]) for c in body] == [
        ("healthcheck1", 1, True, "200 OK"),
        ("healthcheck2", 1, True, "200 OK"),
    ]


def test_healthcheck_one_404_is_503(exits, http_target):
    config = Config(
        healthcheck=HealthcheckConfig(
            hc1_url=http_target.url("/ok"), hc2_url=http_target.url("/some404")
        )
    )
    r = make_client(config, exits[1]).get("/healthcheck")
    assert r.status_code == 503
    body = json.loads(r.data)
    assert (body[1]["status"], body[1]["completed"], body[1]["verbose"]) == (
        2,
        True,
        "404 Not Found",
    )


def test_access_line_for_every_answer(client, caplog, monkeypatch):
    monkeypatch.setattr(handlers, "roll", lambda n: 5)
    with caplog.at_level(logging.INFO, logger="tinyapi"):
        client.get("/", environ_base={"REMOTE_ADDR": "10.1.2.3", "REMOTE_PORT": "5555"})
        client.get("/nope")
        client.post("/alwaysok")
        client.get("/alwaysok/")
    lines = [r.getMessage() for r in caplog.records if r.filename == "logger.py"]
    assert len(lines) == 4
    assert lines[0].startswith("10.1.2.3:5555 GET / Index 200 ")
    assert " GET /nope - 404 " in lines[1]
    assert " POST /alwaysok - 405 " in lines[2]
    assert " GET /alwaysok/ - 301 " in lines[3]
    with caplog.at_level(logging.INFO, logger="tinyapi"):
        client.open("/alwaysok", method="get")
        client.get("/chaosmonkey")
    lines = [r.getMessage() for r in caplog.records if r.filename == "logger.py"]
    assert " get /alwaysok - 405 " in lines[4]  # a 405 is not the route's
    assert " GET /chaosmonkey RouteChaosMonkey 200 " in lines[5]  # the original's route names
    assert all(line.endswith(("ns", "µs", "ms", "s")) for line in lines)
