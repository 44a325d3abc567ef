"""The real server (gunicorn master + workers) started from source on a loopback port."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.http import poll
from harness.serve import children, clean_env, server_env, source_command
from harness.testing import PRIVATE_MOUNTS


def test_every_endpoint_over_http(start_server):
    server = start_server()
    r = server.get("/")
    assert (r.status, r.headers["Content-Type"], r.body) == (
        200,
        "text/plain; charset=utf-8",
        b"Index of tinyapi. These aren't the droids you're looking for\n",
    )
    r = server.get("/alwaysok")
    assert (r.status, r.headers["Content-Type"], r.body) == (
        200,
        "application/json; charset=UTF-8",
        b'{ "status": "OK" }',
    )
    r = server.get("/alwaysok/")
    assert (r.status, r.reason, r.headers["Location"]) == (301, "Moved Permanently", "/alwaysok")
    assert r.body == b'<a href="/alwaysok">Moved Permanently</a>.\n\n'
    r = server.get("/nope")
    assert (r.status, r.body) == (404, b"404 page not found\n")
    for method in ("POST", "HEAD"):
        r = server.get("/alwaysok", method)
        assert (r.status, r.body) == (405, b"")
    # Server header: no version for a scanner to match.
    assert r.headers.get("Server", "") in ("", "gunicorn")


def test_logs_in_the_original_format_with_an_access_line_each(start_server):
    server = start_server()
    for path in ("/", "/nope", "/alwaysok/"):
        server.get(path)
    server.get("/alwaysok", "POST")
    poll(lambda: server.log.count(" logger.py:") >= 5, 5, what="access lines")
    log = server.log
    assert "cli.py" in log and "[INFO](001) [STARTUP] Initializing tinyapi v0.1.0" in log
    assert "[WARN]" in log and "No config file loaded. Using defaults" in log
    assert f"Starting server on: 127.0.0.1:{server.port}" in log
    line = re.compile(
        r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \w+\.py:\d+ \[(INFO|WARN|ERRO|CRIT|DEBU)\]\([0-9a-f]{3,}\) "
    )
    assert all(line.match(each) for each in log.splitlines()), log
    assert "Starting gunicorn" in log  # gunicorn's own lines, same format
    for expected in (
        " GET / Index 200 ",
        " GET /nope - 404 ",
        " GET /alwaysok/ - 301 ",
        " POST /alwaysok - 405 ",
    ):
        assert expected in log


def test_chaosmonkey_answers_or_exits_1(start_server):
    server = start_server()
    answered = []
    for _ in range(300):  # a roll above 90 is 9 in 100: 300 calls all surviving is ~1e-12
        try:
            r = server.get("/chaosmonkey")
        except (ConnectionError, OSError):
            break
        assert (
            r.status == 200
            and r.text.startswith("Not Enough Chaos! ")
            and r.text.endswith(" /100\n")
        )
        answered.append(int(r.text.split()[3]))
    assert server.wait_exit(5) == 1
    assert all(0 <= n <= 90 for n in answered)
    assert "[CRIT]" in server.log and "RouteChaosMonkey rolled" in server.log
    for n in answered:  # each survived roll logged its WARNING line
        assert "[WARN]" in server.log and f"RouteChaosMonkey not enough chaos: {n}" in server.log
    poll(lambda: not server.group_alive(), 2, what="no process left")


def test_panic_ends_the_whole_server_with_status_1(start_server):
    server = start_server()
    with pytest.raises((ConnectionError, OSError)):
        server.get("/panic")  # no reply, like the original ("Empty reply from server")
    started = time.monotonic()
    assert server.wait_exit(5) == 1
    assert time.monotonic() - started < 1.0
    log = server.log
    assert "handlers.py" in log and "[CRIT]" in log and "RoutePanic invoked. Exiting" in log
    # Every worker is gone too, not only the master.
    poll(lambda: not server.group_alive(), 1, what="no process left")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_with_status_0(start_server, sig):
    server = start_server()
    server.proc.send_signal(sig)
    started = time.monotonic()
    assert server.wait_exit(5) == 0
    assert time.monotonic() - started < 2.0
    poll(lambda: not server.group_alive(), 1, what="no process left")


# The server with no writable temporary directory: /tmp and /var/tmp read-only (a private mount
# namespace), the working directory /proc: every place tempfile would try.
NO_TEMP_DIR = "mount -t tmpfs -o ro none /tmp && mount -t tmpfs -o ro none /var/tmp && cd /proc"


def test_workers_start_with_no_writable_temporary_directory(start_server):
    """gunicorn made each worker's heartbeat file in the temporary directory: a read-only
    container died with "No usable temporary directory found". It is a memfd now."""

    def no_temp_dir(*args: str) -> list[str]:
        return [
            *PRIVATE_MOUNTS,
            "sh",
            "-c",
            f'{NO_TEMP_DIR} && exec "$@"',
            "sh",
            *source_command(*args),
        ]

    server = start_server(command=no_temp_dir)
    assert server.get("/alwaysok").status == 200
    workers = poll(
        lambda: len(pids := children(server.proc.pid)) == 2 and pids, 10, what="2 workers"
    )
    for pid in workers:
        fds = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        assert "/memfd:gunicorn-heartbeat (deleted)" in fds
        assert not [fd for fd in fds if "wgunicorn-" in fd]


def test_kill_switch_off_by_environment(start_server):
    server = start_server(TINYAPI_CHAOS_ENABLED="false")
    assert server.get("/panic").status == 404
    assert server.get("/chaosmonkey").status == 404
    assert server.proc.poll() is None


def test_healthcheck_through_the_server(start_server, https_target, ca_file, http_target):
    server = start_server(
        TINYAPI_HEALTHCHECK_HC1_URL=https_target.url("/ok"),
        TINYAPI_HEALTHCHECK_HC2_URL=http_target.url("/some404"),
        TINYAPI_HEALTHCHECK_CA_FILE=ca_file,
    )
    r = server.get("/healthcheck")
    assert r.status == 503
    body = json.loads(r.body)
    assert [(c["status"], c["verbose"]) for c in body] == [(1, "200 OK"), (2, "404 Not Found")]


def run_and_fail(args, command=()):
    """Run tinyapi expecting it to refuse to start; the config file alone decides."""
    return subprocess.run(
        [*command, *source_command(*args)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    "text,expected",
    [
        ("server: [unclosed\n", "malformed YAML"),
        ("server: {bind_port: 99999}\n", "server.bind_port: must be an integer from 1 to 65535"),
        ("server: {colour: blue}\n", "server.colour: unknown key"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path, text, expected):
    path = tmp_path / "config.yml"
    path.write_text(text)
    result = run_and_fail(["--config", str(path)])
    assert result.returncode == 2
    assert result.stderr.startswith(f"tinyapi: error: {path}: ")
    assert expected in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_config_found_through_tinyapi_cfg_path(start_server, tmp_path):
    cfg_dir = tmp_path / "etc"
    cfg_dir.mkdir()
    (cfg_dir / "config.yml").write_text("chaos: {enabled: false}\n")
    server = start_server(TINYAPI_CFG_PATH=str(cfg_dir))
    assert server.get("/panic").status == 404
    assert f"Loaded config file: {cfg_dir / 'config.yml'}" in server.log


def test_config_that_is_a_directory_exits_2(tmp_path):
    result = run_and_fail(["--config", str(tmp_path)])
    assert result.returncode == 2 and "is a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_config_exits_2(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("server: {}\n")
    path.chmod(0)
    command = ()
    if os.geteuid() == 0:
        # root reads any file: drop the capabilities that let it, as a container's user lacks them.
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to test as root"
        command = (setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all")
    result = run_and_fail(["--config", str(path)], command)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"tinyapi: error: {path}: permission denied"


def test_port_already_taken_exits_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            source_command(), env=server_env(port), capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"tinyapi: error: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert time.monotonic() - started < 5  # no retry loop


def test_help_and_version():
    result = subprocess.run(source_command("--help"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "--config FILE" in result.stdout and "TINYAPI_SERVER_BIND_PORT" in result.stdout
    result = subprocess.run(source_command("--version"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("tinyapi 0.1.0")
    result = subprocess.run(source_command("--bogus"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "unrecognized arguments: --bogus" in result.stderr


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "tinyapi"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "0.1.0" in result.stdout
