"""dist/tinyapi, the static executable that `python build` makes: the service, frozen.
(Its bootloader, staticx's patched, is tests/test_bootloader.py's.)

The session fixture runs `python build`, which is a no-op when dist/tinyapi is up
to date with the sources (and rebuilds it otherwise: ~20 s). The empty-root tests
run the binary the way a FROM scratch image does: chrooted into a directory that
holds only it, /tmp and /proc, as uid 65534, in new mount and pid namespaces.
That needs root: without it they skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import tinyapi
from harness.emptyroot import empty_root_server
from harness.paths import ROOT
from harness.testing import needs_root, unavailable


@pytest.fixture
def empty_root(binary):
    """empty_root(args=(), env=None, files=None, ready_path='/alwaysok') -> context manager
    yielding a harness.serve.Process: the binary run in an empty root."""
    needs_root()

    def start(**kwargs):
        return empty_root_server(binary, **kwargs)

    return start


def binary_command(binary: Path):
    return lambda *args: [str(binary), *args]


def no_chaos_config(path: Path) -> Path:
    """A config file whose effect shows: with chaos off, /panic answers 404 instead of exiting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("chaos:\n  enabled: false\n")
    return path


# --- the file itself ---------------------------------------------------------------------------


@pytest.mark.slow
def test_is_static(binary):
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr


@pytest.mark.slow
def test_others_may_execute_it(binary):
    # staticx writes 0700; the image runs it as a non-root user.
    assert binary.stat().st_mode & 0o777 == 0o755


@pytest.mark.slow
def test_version(binary):
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert tinyapi.__version__ in proc.stdout


# --- in an empty root, as in a FROM scratch image ----------------------------------------------


@pytest.mark.root
@pytest.mark.slow
def test_serves_alwaysok_in_empty_root(empty_root):
    with empty_root() as server:
        answer = server.get("/alwaysok")
        assert (answer.status, answer.text) == (200, '{ "status": "OK" }')
        assert "No config file loaded" in server.log


@pytest.mark.root
@pytest.mark.slow
def test_sync_worker_in_empty_root(empty_root):
    # gunicorn imports "sync" by name: only the spec's hidden import puts it in the binary.
    # (With threads > 1 gunicorn quietly runs gthread instead.)
    env = {"TINYAPI_SERVER_WORKER_CLASS": "sync", "TINYAPI_SERVER_THREADS": "1"}
    with empty_root(env=env) as server:
        assert server.get("/alwaysok").status == 200
        assert "Using worker: sync" in server.log


@pytest.mark.root
@pytest.mark.slow
def test_version_in_empty_root(empty_root):
    with empty_root(args=["--version"], ready_path=None) as server:
        assert server.proc.wait(timeout=30) == 0, server.log
        assert tinyapi.__version__ in server.log


@pytest.mark.root
@pytest.mark.slow
def test_config_from_cfg_path_in_empty_root(empty_root):
    # The image's way: TINYAPI_CFG_PATH names a directory holding config.yml.
    files = {"/etc/tinyapi/config.yml": "chaos:\n  enabled: false\n"}
    with empty_root(env={"TINYAPI_CFG_PATH": "/etc/tinyapi"}, files=files) as server:
        assert server.get("/panic").status == 404
        assert server.get("/alwaysok").status == 200  # still alive
        assert "Loaded config file: /etc/tinyapi/config.yml" in server.log


@pytest.mark.root
@pytest.mark.slow
def test_frozen_ca_bundle_is_used_in_empty_root(empty_root, untrusted_https_target):
    # certifi.where() must name a file inside the binary: an untrusted certificate is
    # then refused by verification, not by a missing CA file.
    env = {
        "TINYAPI_HEALTHCHECK_HC1_URL": untrusted_https_target.url("/ok"),
        "TINYAPI_HEALTHCHECK_HC2_URL": untrusted_https_target.url("/ok"),
    }
    with empty_root(env=env) as server:
        answer = server.get("/healthcheck")
    assert answer.status == 503
    for result in json.loads(answer.body):
        assert result["status"] == 3
        assert "CERTIFICATE_VERIFY_FAILED" in result["verbose"], result


@pytest.mark.root
@pytest.mark.slow
def test_https_with_configured_ca_in_empty_root(empty_root, test_ca, https_target):
    files = {"/etc/test-ca.pem": test_ca.cert_pem.bytes().decode()}
    env = {
        "TINYAPI_HEALTHCHECK_CA_FILE": "/etc/test-ca.pem",
        "TINYAPI_HEALTHCHECK_HC1_URL": https_target.url("/ok"),
        "TINYAPI_HEALTHCHECK_HC2_URL": https_target.url("/missing"),
    }
    with empty_root(env=env, files=files) as server:
        answer = server.get("/healthcheck")
    results = json.loads(answer.body)
    assert [r["status"] for r in results] == [1, 2], results
    assert answer.status == 503  # one check is not 200


# --- on the host, with a config file -----------------------------------------------------------


@pytest.mark.slow
def test_config_flag(binary, start_server, tmp_path):
    config = no_chaos_config(tmp_path / "conf" / "tinyapi.yml")
    server = start_server("--config", str(config), command=binary_command(binary))
    assert server.get("/panic").status == 404
    assert server.get("/alwaysok").text == '{ "status": "OK" }'
    assert f"Loaded config file: {config}" in server.log


@pytest.mark.slow
def test_config_from_cfg_path(binary, start_server, tmp_path):
    config = no_chaos_config(tmp_path / "cfg" / "config.yml")
    server = start_server(command=binary_command(binary), TINYAPI_CFG_PATH=str(config.parent))
    assert server.get("/panic").status == 404
    assert f"Loaded config file: {config}" in server.log


DEBIAN_PYTHON = "/usr/bin/python3"


@pytest.mark.root
@pytest.mark.slow
def test_builds_from_debians_python_too(binary, tmp_path):
    """The kit works from Debian's /usr/bin/python3 as well as from the default python3
    (pyenv): either runs the interpreter's recipe, and both get the same interpreter (the
    same inputs' key, so the copy made with pyenv's is found up to date, wherever it lies).
    A clone of HEAD with that copy, the rest of the build with its verify stage (an empty
    root), in a directory of its own so dist/ here is left alone."""
    needs_root()
    if not Path(DEBIAN_PYTHON).exists():
        unavailable(f"no {DEBIAN_PYTHON} (Debian's python3)")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-local", str(ROOT), str(clone)], check=True)
    (clone / "dist" / "interpreter").mkdir(parents=True)
    interpreter = ROOT / "dist" / "interpreter" / "python"
    subprocess.run(["cp", "-a", str(interpreter), str(clone / "dist" / "interpreter")], check=True)
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(clone), "binary", f"PYTHON={DEBIAN_PYTHON}"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert f"{clone}/dist/interpreter/python is up to date" in done.stdout
    assert f"checking prerequisites for {clone}/dist/interpreter/venv/bin/python" in done.stdout
    assert "==> verify" in done.stdout
    ldd = subprocess.run(["ldd", str(clone / "dist" / "tinyapi")], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr
