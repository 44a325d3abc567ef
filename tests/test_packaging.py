"""The project as a Python package: a wheel of it carries the service alone (tinyapi), and the
venv `make venv` makes imports harness and bench from the checkout all the same (the editable
install's compat .pth puts the repo's root on sys.path)."""

import os
import subprocess
import sys
import zipfile

import pytest

from harness.paths import ROOT


@pytest.mark.slow  # a build of the wheel: several seconds on a loaded machine
def test_the_wheel_holds_only_tinyapi(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"]
        + ["--disable-pip-version-check", "--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = tmp_path.glob("tinyapi-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tinyapi/__init__.py" in names
    assert [n for n in names if not n.startswith(("tinyapi/", "tinyapi-"))] == []
    assert {n.split("/")[0] for n in names if n.startswith("tinyapi-")} == {
        wheel.name.split("-py")[0] + ".dist-info"
    }


def test_the_venv_imports_harness_and_bench_from_the_checkout(tmp_path):
    # From elsewhere, with nothing on PYTHONPATH: only the venv's .pth can find them.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        "import bench, harness, tinyapi; print(bench.__file__, harness.__file__, tinyapi.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for path in done.stdout.split():
        assert path.startswith(str(ROOT) + os.sep), path
