"""The text of docs/ and the README that comes from the code says what the code says: the
reference tables (the config keys, the image's files, the test markers, the make targets, the
test files) that `make docs` regenerates, and the README's walk-through, held against a run."""

import contextlib
import http.client
import re
import shutil

from harness import docs
from harness.http import free_port, request
from harness.serve import Process, server_env, source_command

README = docs.ROOT / "README.md"


def test_every_generated_table_matches_the_code():
    assert docs.stale() == [], "stale tables in docs/: run `make docs` and commit"


def test_a_stale_table_is_named(tmp_path, monkeypatch):
    # The check above can fail: a row gone from a generated table makes it stale, by name.
    for path, _ in docs.TABLES:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((docs.ROOT / path).read_text())
    # What the tables read, and the files made from another (with what they are made from).
    for name in ("config.yml", "pyproject.toml", "Makefile", "Dockerfile", *docs.MADE_FILES):
        (tmp_path / name).write_text((docs.ROOT / name).read_text())
    shutil.copytree(docs.ROOT / "tests", tmp_path / "tests", dirs_exist_ok=True)
    page = tmp_path / "docs" / "configuration.md"
    page.write_text(page.read_text().replace("| `server.bind_port` |", "| `server.bind_prot` |"))
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    assert docs.stale() == ["docs/configuration.md: config-keys"]


def test_a_containerfile_behind_the_dockerfile_is_named(tmp_path, monkeypatch):
    """Podman reads the Containerfile: an edit of the Dockerfile alone makes it stale."""
    for name in ("Dockerfile", *docs.MADE_FILES):
        (tmp_path / name).write_text((docs.ROOT / name).read_text())
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("EXPOSE 8080", "EXPOSE 8081"))
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    monkeypatch.setattr(docs, "TABLES", {})
    assert docs.stale() == ["Containerfile"]
    froms = [line for line in docs.containerfile().splitlines() if line.startswith("FROM ")]
    assert len(froms) == 4 and all(re.match(r"FROM --platform=\$\{\w+:-\} ", f) for f in froms)


# --- the README's walk-through ------------------------------------------------------------------


def test_the_readme_counts_the_bootloader_patches():
    patches = sorted((docs.ROOT / "build" / "patches" / "staticx").glob("*.patch"))
    said = re.search(
        r"staticx sdist \+ (\d+) patches of build/patches/staticx/", README.read_text()
    )
    assert said and int(said.group(1)) == len(patches), [p.name for p in patches]


# 2026/12/01 20:11:02 cli.py:74 [INFO](001) [STARTUP] Initializing tinyapi v0.1.0
LOG_LINE = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\w+\.py:\d+) \[(\w+)\]\(\w+\) (.*)$", re.M)
# Every page with a log transcript: the README's walk-through, the docs' runs of record.
PAGES = [README, *sorted((docs.ROOT / "docs").glob("*.md")), docs.ROOT / "bench" / "README.md"]


def shape(message: str) -> str:
    """A log message with what differs from one run to the next made alike: addresses, the
    config file's path, durations, numbers (pids, rolls, versions)."""
    message = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", "<address>", message)
    message = re.sub(r"/\S*config\.yml", "<config>", message)
    message = re.sub(r"\d+(\.\d+)?(µs|ms|s)\b", "<duration>", message)
    return re.sub(r"\d+", "<n>", message)


def logged(text: str) -> set[tuple[str, str, str]]:
    """(file.py:line, level, the message's shape) of each log line in text."""
    return {(where, level, shape(msg)) for where, level, msg in LOG_LINE.findall(text)}


def walk_through(tmp_path) -> str:
    """The README's walk-through, run from source: the log of the curls it shows, /panic last.
    A /chaosmonkey that rolls over 90 ends the server (9 %): then it is started again and asked
    again, until it rolls under (20 wins in a row: 1e-21)."""
    logs, run = [], 0

    def start() -> Process:
        nonlocal run
        port, run = free_port(), run + 1
        env = server_env(
            port,
            TINYAPI_CFG_PATH=str(docs.ROOT),  # the repo's config.yml, the image's
            TINYAPI_HEALTHCHECK_HC1_URL=f"http://127.0.0.1:{free_port()}/",
            TINYAPI_HEALTHCHECK_HC2_URL=f"http://127.0.0.1:{free_port()}/",
        )
        log = tmp_path / f"tinyapi-{run}.log"
        return Process(source_command(), env, port, log, cwd=tmp_path).wait_ready("/")

    server = start()
    try:
        for path in ("/", "/alwaysok", "/healthcheck", "/alwaysok/", "/nope"):
            request(server.port, path)
        for _ in range(20):
            try:
                request(server.port, "/chaosmonkey")
                break
            except (OSError, http.client.HTTPException):  # the monkey won: again
                server.wait_exit(30)
                logs.append(server.log)
                server = start()
        with contextlib.suppress(OSError, http.client.HTTPException):
            request(server.port, "/panic")
        assert server.wait_exit(30) == 1
    finally:
        server.stop()
    return "".join(logs) + server.log


def test_the_log_lines_shown_are_what_a_run_logs(tmp_path):
    """Each log line of the README's walk-through, from its file:line to its message (but for
    times, addresses, pids and durations), is one a run of the same requests logs; a line of
    another page that such a run logs too (an access line, /panic's) names the same file:line."""
    run = logged(walk_through(tmp_path))
    wrong = {}
    for page in PAGES:
        for where, level, message in logged(page.read_text()) - run:
            found = sorted(w for w, lv, m in run if (lv, m) == (level, message))
            if found or page == README:
                wrong[f"{page.relative_to(docs.ROOT)}: {where} {level} {message}"] = found
    assert len(logged(README.read_text())) >= 15, "the README's transcript is gone? see here"
    assert not wrong, f"log lines a run logs elsewhere (or, in the README, not at all): {wrong}"
