"""The reference tables of docs/ that come from code (and the tests' docstrings), generated:
`python -m harness.docs` (make docs) rewrites them in place, `python -m harness.docs --check`
names the stale ones and exits 1 (tests/test_docs.py runs it). A table sits between two comment
lines:

    <!-- generated: NAME (python -m harness.docs) -->
    ...
    <!-- end generated: NAME -->
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import tomllib

import yaml

from harness.image import FILES
from harness.paths import ROOT
from tinyapi import config


def _shipped() -> dict[tuple[str, str], object]:
    """The values the repo's config.yml (the image's) sets."""
    data = yaml.safe_load((ROOT / "config.yml").read_text()) or {}
    return {(s, k): v for s, keys in data.items() for k, v in (keys or {}).items()}


def _value(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "*(none)*"
    return f"`{value}`"


def config_keys() -> str:
    shipped = _shipped()
    rows = [
        "| key | environment variable | default | shipped `config.yml` | meaning |",
        "|---|---|---|---|---|",
    ]
    for section, key, default, doc in config.keys():
        ships = shipped.get((section, key))
        rows.append(
            f"| `{section}.{key}` | `{config.env_name(section, key)}` | {_value(default)} "
            f"| {_value(ships) if ships is not None else ''} | {doc} |"
        )
    return "\n".join(rows)


def image_files() -> str:
    rows = ["| path | mode (owner root) | what |", "|---|---|---|"]
    for f in FILES:
        if f.what:
            rows.append(
                f"| `/{f.path}` | {'dir ' if f.kind == 'dir' else ''}{f.mode:04o} | {f.what} |"
            )
    return "\n".join(rows)


def test_markers() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    rows = ["| marker | the test |", "|---|---|"]
    for line in pyproject["tool"]["pytest"]["ini_options"]["markers"]:
        name, _, doc = line.partition(":")
        rows.append(f"| `{name.strip()}` | {doc.strip()} |")
    return "\n".join(rows)


def test_files() -> str:
    """Each tests/test_*.py with the first paragraph of its module docstring."""
    rows = ["| file | what it tests |", "|---|---|"]
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        if not doc:
            raise LookupError(f"tests/{path.name} has no module docstring to say what it tests")
        first = " ".join(doc.split("\n\n")[0].split())
        rows.append(f"| `tests/{path.name}` | {first.replace('|', '/')} |")
    return "\n".join(rows)


def make_targets() -> str:
    """The Makefile's targets with their `## ` help, grouped as the Makefile groups them."""
    rows = ["| target | what it does |", "|---|---|"]
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([a-z-]+):.*## (.*)$", line)
        if m:
            rows.append(f"| `make {m.group(1)}` | {m.group(2).replace('|', '/')} |")
    return "\n".join(rows)


# Podman reads a Containerfile before a Dockerfile: the Dockerfile, but for the platform default
# of its FROM lines. The classic builder needs one ("linux", its own platform); Podman sets no
# BUILDPLATFORM or TARGETPLATFORM of its own and cannot parse "linux", and to it an empty
# platform is its build's platform.
CONTAINERFILE_HEADER = """\
# Generated from the Dockerfile by `make docs` (harness/docs.py): edit the Dockerfile. Podman
# reads this file before a Dockerfile; it differs only in the FROM lines' platform default,
# empty here ("linux" there: Podman cannot parse it, the classic builder needs a platform).
"""


def containerfile() -> str:
    dockerfile = (ROOT / "Dockerfile").read_text()
    return CONTAINERFILE_HEADER + dockerfile.replace(":-linux}", ":-}")


# Whole files made from another: path -> the function that makes its text.
MADE_FILES = {"Containerfile": containerfile}

# (file, name) -> the function that makes the table
TABLES = {
    ("docs/configuration.md", "config-keys"): config_keys,
    ("docs/image.md", "image-files"): image_files,
    ("docs/testing.md", "test-markers"): test_markers,
    ("docs/testing.md", "test-files"): test_files,
    ("docs/README.md", "make-targets"): make_targets,
}


def render(text: str, name: str, table: str) -> str:
    begin = f"<!-- generated: {name} (python -m harness.docs) -->"
    end = f"<!-- end generated: {name} -->"
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise LookupError(f"no {begin!r} ... {end!r} block")
    return pattern.sub(lambda _: f"{begin}\n{table}\n{end}", text, count=1)


def stale() -> list[str]:
    """The tables whose text differs from what the code gives, as `file: name`."""
    out = []
    for (path, name), make in TABLES.items():
        text = (ROOT / path).read_text()
        if render(text, name, make()) != text:
            out.append(f"{path}: {name}")
    for path, make in MADE_FILES.items():
        file = ROOT / path
        if not file.exists() or file.read_text() != make():
            out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.docs",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check", action="store_true", help="rewrite nothing; exit 1 if a table is stale"
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            found = stale()
            for entry in found:
                print(f"docs: stale: {entry} (run: make docs)", file=sys.stderr)
            return 1 if found else 0
        for (path, name), make in TABLES.items():
            file = ROOT / path
            text = file.read_text()
            new = render(text, name, make())
            if new != text:
                file.write_text(new)
                print(f"docs: wrote {path}: {name}")
        for path, make in MADE_FILES.items():
            file = ROOT / path
            if not file.exists() or file.read_text() != make():
                file.write_text(make())
                print(f"docs: wrote {path}")
    except (OSError, LookupError) as err:
        print(f"docs: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
