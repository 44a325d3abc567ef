"""The build's time: one rule for every step that stamps one, kept in build/source-date-epoch
($SOURCE_DATE_EPOCH when set, else the last commit's time, else 0). Python callers ask here."""

from __future__ import annotations

import subprocess

from harness.paths import ROOT

SCRIPT = ROOT / "build" / "source-date-epoch"


def source_date_epoch() -> str:
    """SOURCE_DATE_EPOCH as build/source-date-epoch gives it, seconds as text."""
    return subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=True).stdout.strip()
