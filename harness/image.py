"""What the FROM scratch image holds, file by file: the one list docker/stage-image.py stages,
the tests check the built image against, and docs/image.md shows. And its size limit."""

from __future__ import annotations

from dataclasses import dataclass

# The image's user and group, numeric since scratch has no /etc/passwd: distroless' "nonroot".
NONROOT = 65532

# The builder stage's base where no registry answers: build/make-builder-base's tag for this
# machine's architecture (docker/build-image makes and uses it; the tests and bench name it).
LOCAL_BUILDER_BASE = "tinyapi-builder-base:bookworm"

# The image's size limit, as `docker images` counts it (10^6 bytes): the benchmark's target
# and the tests' assertion.
MAX_IMAGE_BYTES = 8_000_000


@dataclass(frozen=True)
class ImageFile:
    path: str  # inside the image, without the leading slash
    kind: str  # "dir" or "file"
    mode: int
    source: str  # where docker/stage-image.py takes a file from ("" for a directory)
    what: str


# Every entry of the image, owned by root. Sources: "binary" and "sbom" are the files
# stage-image is given; anything else a path in the repo. No CA bundle of its own: the binary
# carries certifi's (TINYAPI_HEALTHCHECK_CA_FILE names another), and each file is there once.
FILES = (
    ImageFile("bin", "dir", 0o755, "", ""),
    ImageFile(
        "bin/tinyapi",
        "file",
        0o755,
        "binary",
        "the program: the kit's staticx bootloader + the frozen server (Python, Flask, gunicorn, "
        "glibc, OpenSSL and certifi's CA bundle inside); staticx writes it 0700",
    ),
    ImageFile("etc", "dir", 0o755, "", ""),
    ImageFile("etc/tinyapi", "dir", 0o755, "", ""),
    ImageFile(
        "etc/tinyapi/config.yml", "file", 0o644, "config.yml", "the config (binds 0.0.0.0:8080)"
    ),
    ImageFile("sbom.cdx.json", "file", 0o644, "sbom", "the SBOM of `/bin/tinyapi` (make sbom)"),
    ImageFile(
        "tmp",
        "dir",
        0o1777,
        "",
        "where the program unpacks itself once, into /tmp/staticx-<uid>-<digest>, then runs from there",
    ),
)

# The hardened run (docs/security.md): read-only root, a /tmp that allows exec (the program
# unpacks and runs there), no capabilities, no privilege gain. Docker's and Podman's flags alike.
HARDENED_RUN = (
    "--read-only",
    "--tmpfs",
    "/tmp:rw,exec,nosuid,mode=1777",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
)
