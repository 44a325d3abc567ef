"""The recipe of dist/tinyapi: one static executable for a FROM scratch image.

Run it from the repository's root with the interpreter whose packages go into the binary:
`python build` (`make binary`), `python build --help` for the subcommands. One module a
concern: paths (where things are), env (the tools' environment, the prerequisites),
inputs (the up-to-date check), sources and bootloader (staticx's bootloader, patched, built
with musl-gcc), freeze (PyInstaller), pack and staticx_driver (staticx), verify, binary (the
stages in order), cli; the SBOM in sbom/ (inside, owners, pedigree, document).
docs/binary.md explains the binary and the patches.
"""
