"""ruff, as pyproject.toml configures it, finds nothing in the tree and the tree is formatted
(`make lint`)."""

import subprocess
import sys

from harness.paths import ROOT


def test_ruff_finds_nothing():
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"ruff check (make lint):\n{done.stdout}{done.stderr}"


def test_the_tree_is_formatted():
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"ruff format --check (make format):\n{done.stdout}{done.stderr}"
