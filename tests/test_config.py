"""Config: the original's search order and defaults, the environment on top, and one clear
line for every mistake."""

from pathlib import Path

import pytest

from tinyapi import config
from tinyapi.config import ConfigError


def write(path, text):
    path.write_text(text)
    return str(path)


def test_defaults_are_the_originals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = config.load(environ={})
    assert (c.server.bind_address, c.server.bind_port) == ("127.0.0.1", 8080)
    assert c.healthcheck.hc1_url == "https://linuxctl.com/ip"
    assert c.healthcheck.hc2_url == "https://google.com/some404"
    assert c.healthcheck.timeout == 5.0
    assert c.chaos.enabled is True
    assert c.source is None


def test_shipped_config_file():
    c = config.load(str(config_path()), environ={})
    assert (c.server.bind_address, c.server.bind_port) == ("0.0.0.0", 8080)
    assert c.healthcheck.hc2_url == "https://linuxctl.com/some404"


def config_path():
    return Path(__file__).resolve().parent.parent / "config.yml"


def test_search_order_cwd_then_cfg_path(tmp_path, monkeypatch):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir(), there.mkdir()
    write(there / "config.yml", "server: {bind_port: 9002}\n")
    monkeypatch.chdir(here)
    env = {"TINYAPI_CFG_PATH": str(there)}
    assert config.load(environ=env).server.bind_port == 9002
    assert config.load(environ=env).source == str(there / "config.yml")
    write(here / "config.yml", "server: {bind_port: 9001}\n")
    assert config.load(environ=env).server.bind_port == 9001


def test_no_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = config.load(environ={"TINYAPI_CFG_PATH": str(tmp_path / "none")})
    assert c.source is None and c.server.bind_port == 8080


def test_environment_overrides_file(tmp_path):
    path = write(tmp_path / "c.yml", "server: {bind_port: 9001}\nchaos: {enabled: true}\n")
    env = {
        "TINYAPI_SERVER_BIND_PORT": "9100",
        "TINYAPI_CHAOS_ENABLED": "false",
        "TINYAPI_HEALTHCHECK_TIMEOUT": "1.5",
        "TINYAPI_HEALTHCHECK_HC1_URL": "http://127.0.0.1:1/x",
        "TINYAPI_SERVER_WORKER_CLASS": "sync",
        "TINYAPI_CFG_PATH": "/elsewhere",
        "TINYAPI_UNRELATED": "ignored",
    }
    c = config.load(path, environ=env)
    assert c.server.bind_port == 9100 and c.chaos.enabled is False
    assert c.healthcheck.timeout == 1.5 and c.server.worker_class == "sync"
    assert c.healthcheck.hc1_url == "http://127.0.0.1:1/x"


def test_env_name_rule():
    assert config.env_name("server", "bind_port") == "TINYAPI_SERVER_BIND_PORT"
    assert {config.env_name(s, k) for s, k, _, _ in config.keys()} >= {
        "TINYAPI_SERVER_BIND_ADDRESS",
        "TINYAPI_HEALTHCHECK_HC2_URL",
        "TINYAPI_CHAOS_ENABLED",
    }


@pytest.mark.parametrize(
    "text,expected",
    [
        ("server: [unclosed\n", "malformed YAML (line 2, column 1)"),
        ("server:\n  bind_port: 8080\n bad_indent: 1\n", "malformed YAML"),
        (
            "server: {bind_port: abc}\n",
            "server.bind_port: must be an integer from 1 to 65535, got 'abc'",
        ),
        ("server: {bind_port: 0}\n", "server.bind_port: must be an integer from 1 to 65535, got 0"),
        (
            "server: {bind_port: 70000}\n",
            "server.bind_port: must be an integer from 1 to 65535, got 70000",
        ),
        ("server: {bind_port: true}\n", "server.bind_port: must be an integer"),
        ('server: {bind_port: "8080"}\n', "server.bind_port: must be an integer"),
        (
            "server: {bind_adress: 0.0.0.0}\n",
            "server.bind_adress: unknown key (known in server: bind_address",
        ),
        ("sever: {bind_port: 1}\n", "sever: unknown section (known: server, healthcheck, chaos)"),
        ("server: 8080\n", "server: must be a mapping of keys"),
        ("- a\n- b\n", "expected sections (server, healthcheck, chaos), got a list"),
        (
            "healthcheck: {hc1_url: ftp://x}\n",
            "healthcheck.hc1_url: must be an http:// or https:// URL",
        ),
        ("healthcheck: {timeout: 0}\n", "healthcheck.timeout: must be a number of seconds above 0"),
        (
            "healthcheck: {ca_file: /no/such.pem}\n",
            "healthcheck.ca_file: /no/such.pem: no such file",
        ),
        ("chaos: {enabled: maybe}\n", "chaos.enabled: must be true or false, got 'maybe'"),
        ("server: {worker_class: eventlet}\n", "server.worker_class: must be one of gthread, sync"),
    ],
)
def test_file_mistakes_name_the_file_and_key(tmp_path, text, expected):
    path = write(tmp_path / "config.yml", text)
    with pytest.raises(ConfigError) as err:
        config.load(path, environ={})
    message = str(err.value)
    assert message.startswith(path + ": ")
    assert expected in message
    assert "\n" not in message


def test_empty_file_is_all_defaults(tmp_path):
    assert config.load(write(tmp_path / "c.yml", ""), environ={}).server.bind_port == 8080


@pytest.mark.parametrize(
    "name,value,expected",
    [
        (
            "TINYAPI_SERVER_BIND_PORT",
            "http",
            "environment variable TINYAPI_SERVER_BIND_PORT: must be an integer",
        ),
        (
            "TINYAPI_SERVER_BIND_PORTS",
            "1",
            "environment variable TINYAPI_SERVER_BIND_PORTS: unknown key",
        ),
        (
            "TINYAPI_CHAOS_ENABLED",
            "2",
            "environment variable TINYAPI_CHAOS_ENABLED: must be true or false",
        ),
    ],
)
def test_environment_mistakes_name_the_variable(name, value, expected):
    with pytest.raises(ConfigError, match=expected):
        config.load(None, environ={name: value, "TINYAPI_CFG_PATH": "/nonexistent"})


def test_named_file_missing(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        config.load(str(tmp_path / "absent.yml"), environ={})


def test_config_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        config.load(str(tmp_path), environ={})
