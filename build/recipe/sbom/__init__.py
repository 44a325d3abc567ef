"""`python build sbom`: dist/tinyapi.cdx.json, a CycloneDX SBOM of what is inside dist/tinyapi.

Built from what actually went into the binary, read back out of dist/tinyapi, not from a list
kept by hand (inside: harness.staticx_archive reads it):
  - staticx's archive: the C libraries it bundled, and the PyInstaller one-dir program (the
    executable, whose own archive holds the PYZ, and its _internal/ directory);
  - the modules of that PYZ;
and the build's tables in dist/pyinstaller/work/tinyapi (Analysis-00.toc, COLLECT-00.toc,
PKG-00.toc, PYZ-00.toc) for where on this machine each of those files came from.
Each file is traced to what shipped it (owners): a Python distribution of the build venv
(name, version, license, PURL), a Debian package (dpkg's file lists, `dpkg-query`), or the
kit's interpreter (cpython, and openssl linked into its libpython, each with its pedigree).
Every shared library inside the binary lands in some component's `tinyapi:file` properties;
tests/test_supply_chain.py checks that.
The bootloader is staticx's, patched (build/patches/staticx/): the staticx component carries a
CycloneDX pedigree (the upstream sdist, each patch as a diff), and zstd, whose decoder the
patched bootloader links, is a component of its own (pedigree). The document (document) names
the platform it describes: the machine's, where the binary was built.
"""

from recipe.env import BuildError


class SbomError(BuildError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code=2)
