"""Where things are."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BINARY = DIST / "tinyapi"
SBOM = DIST / "tinyapi.cdx.json"
# The image `make image` builds, NAME:latest: `make image IMAGE_NAME=...` and the tests and
# benchmarks with TINYAPI_IMAGE_NAME=... keep two checkouts' images apart on one engine.
IMAGE_NAME = os.environ.get("TINYAPI_IMAGE_NAME", "tinyapi")
IMAGE = f"{IMAGE_NAME}:latest"
