"""Configuration: config.yml in ./ then $TINYAPI_CFG_PATH (as the original), or --config FILE,
then TINYAPI_<SECTION>_<KEY> environment variables on top, then validation.

Every mistake a user can make here raises ConfigError with one line that names the file (or the
environment variable) and the key; the CLI prints it and exits 2.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

FILE_NAME = "config.yml"
SEARCH_PATH_ENV = "TINYAPI_CFG_PATH"
ENV_PREFIX = "TINYAPI_"


class ConfigError(Exception):
    """A user's mistake in the config file or environment: one line, no traceback."""


# --- validators: each returns the clean value or raises ValueError with what was expected ---


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        # bool is an int in Python; `port: yes` is a mistake, not port 1.
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be an integer from {low} to {high}")
        return value

    return check


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("must be a number of seconds above 0")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return value

    return check


def _key(default: Any, check: Callable[[Any], Any], doc: str) -> Any:
    return field(default=default, metadata={"check": check, "doc": doc})


# --- the keys: the original's four, plus what the embedded server and the checks need ---


@dataclass(frozen=True)
class ServerConfig:
    bind_address: str = _key("127.0.0.1", _text, "address to listen on")
    bind_port: int = _key(8080, _int_range(1, 65535), "TCP port to listen on")
    # Two cores in a small container: 2 processes x 4 threads keeps memory low and
    # still serves while a slow request holds a thread.
    workers: int = _key(2, _int_range(1, 64), "worker processes")
    threads: int = _key(4, _int_range(1, 256), "threads per worker (gthread)")
    worker_class: str = _key("gthread", _one_of("gthread", "sync"), "gunicorn worker class")
    timeout: int = _key(30, _int_range(1, 3600), "seconds before a silent worker is restarted")
    graceful_timeout: int = _key(
        5, _int_range(1, 3600), "seconds in-flight requests get on SIGTERM"
    )
    keepalive: int = _key(5, _int_range(0, 3600), "seconds an idle keep-alive connection is kept")
    # Go's ReadHeaderTimeout: a client trickling its request head is cut off (tinyapi.worker).
    header_timeout: int = _key(
        10, _int_range(1, 3600), "seconds a client has to send a request head"
    )


@dataclass(frozen=True)
class HealthcheckConfig:
    hc1_url: str = _key("https://linuxctl.com/ip", _url, "first outbound check")
    hc2_url: str = _key("https://google.com/some404", _url, "second outbound check")
    timeout: float = _key(5.0, _positive_number, "seconds each check may take")
    # Empty: the CA bundle frozen into the program (certifi), so HTTPS works with nothing on disk.
    ca_file: str = _key("", _text, "PEM CA bundle for HTTPS checks")


@dataclass(frozen=True)
class ChaosConfig:
    enabled: bool = _key(True, _flag, "serve /panic and /chaosmonkey (off: they answer 404)")


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    healthcheck: HealthcheckConfig = field(default_factory=HealthcheckConfig)
    chaos: ChaosConfig = field(default_factory=ChaosConfig)
    # Where the values came from: the file loaded, or None when the defaults were used.
    source: str | None = None


SECTIONS = {"server": ServerConfig, "healthcheck": HealthcheckConfig, "chaos": ChaosConfig}


def keys() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, doc) for every key, in declaration order: for --help and docs."""
    return [
        (section, f.name, f.default, f.metadata["doc"])
        for section, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    ]


def env_name(section: str, key: str) -> str:
    """The environment variable that sets section.key: TINYAPI_SERVER_BIND_PORT."""
    return f"{ENV_PREFIX}{section}_{key}".upper()


def find_file(cwd: str = ".", environ: os._Environ | dict = os.environ) -> str | None:
    """The original's search: ./config.yml, then $TINYAPI_CFG_PATH/config.yml."""
    candidates = [os.path.join(cwd, FILE_NAME)]
    if environ.get(SEARCH_PATH_ENV):
        candidates.append(os.path.join(environ[SEARCH_PATH_ENV], FILE_NAME))
    for path in candidates:
        if os.path.exists(path):
            return os.path.abspath(path)
    return None


def load(path: str | None = None, environ: os._Environ | dict = os.environ) -> Config:
    """Read the file (named, or found by the search), apply the environment, validate."""
    explicit = path is not None
    path = path if explicit else find_file(environ=environ)
    raw = _read_file(path) if path else {}
    values: dict[str, dict[str, tuple[Any, str]]] = {}
    for section, body in raw.items():
        for key, value in body.items():
            values.setdefault(section, {})[key] = (value, f"{path}: {section}.{key}")
    for (section, key), (value, origin) in _from_environ(environ).items():
        values.setdefault(section, {})[key] = (value, origin)
    return _build(values, source=path)


def _read_file(path: str) -> dict[str, dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is None:  # an empty file: all defaults
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected sections (server, healthcheck, chaos), got a {type(data).__name__}"
        )
    for section, body in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{path}: {section}: unknown section (known: {', '.join(SECTIONS)})")
        if body is None:
            data[section] = body = {}
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: {section}: must be a mapping of keys")
    return data


def _from_environ(environ) -> dict[tuple[str, str], tuple[Any, str]]:
    """TINYAPI_<SECTION>_<KEY>=value, the value read as a YAML scalar (8080, true, text)."""
    found = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name == SEARCH_PATH_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            continue  # not ours to judge: TINYAPI_ may prefix other tools' variables
        key = rest[len(section) + 1 :]
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        # A value that YAML reads as a date, list or such is meant as text (a URL, a path).
        if not isinstance(value, (str, int, float, bool)):
            value = text
        found[(section, key)] = (value, f"environment variable {name}")
    return found


def _build(values: dict[str, dict[str, tuple[Any, str]]], source: str | None) -> Config:
    sections = {}
    for section, cls in SECTIONS.items():
        given = values.get(section, {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        clean = {}
        for key, (value, origin) in given.items():
            if key not in known:
                raise ConfigError(f"{origin}: unknown key (known in {section}: {', '.join(known)})")
            try:
                clean[key] = known[key].metadata["check"](value)
            except ValueError as err:
                raise ConfigError(f"{origin}: {err}, got {value!r}") from None
        sections[section] = cls(**clean)
    config = Config(**sections, source=source)
    _check_files(config, values)
    return config


def _check_files(config: Config, values) -> None:
    ca_file = config.healthcheck.ca_file
    if ca_file and not os.path.isfile(ca_file):
        origin = values["healthcheck"]["ca_file"][1]
        raise ConfigError(f"{origin}: {ca_file}: no such file")
