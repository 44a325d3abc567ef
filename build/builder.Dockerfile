# The build of dist/tinyapi inside a container: the same build/build.py that
# `make binary` runs, with the same venv from requirements.lock, on a Debian
# bookworm with Python 3.11. For machines that are not Linux/x86_64 with the
# build tools (macOS, Windows), or just to build without installing anything.
#
# Run it through build/build-in-docker (`make binary-in-docker`): that script
# stages the context (the sources only), builds this image, and copies
# /src/dist/tinyapi out with `docker create` + `docker cp`, which the classic
# builder and BuildKit both support.
#
# Build arguments:
#   BUILDER_BASE      Debian bookworm with python3.11 + venv + libpython3.11.so
#                     (default: the official python image; the tests import
#                     their own with build/make-builder-base, no pulling)
#   PYTHON            the interpreter that makes the venv (python3 from PATH:
#                     /usr/local/bin/python3 in the official image,
#                     /usr/bin/python3 in Debian's)
#   SOURCE_DATE_EPOCH the timestamp build.py stamps into the binary (there is no
#                     git here to read it from: build/build-in-docker passes the
#                     last commit's time); unset, build/source-date-epoch gives 0:
#                     the times in staticx's archive are clamped to 0 and the
#                     SBOM's timestamp is 1970
#
# Not run here: build.py's verify stage (ldd, then the binary in an empty root
# via unshare + chroot + a fresh /proc), which needs privileges a `docker build`
# step does not have. build/build-in-docker verifies the copied-out binary on
# the host instead (as root on Linux); this file checks what it can: ldd, and
# that the binary starts (`tinyapi --version`).
#
# Out of it: /src/dist/tinyapi and its SBOM /src/dist/tinyapi.cdx.json.
ARG BUILDER_BASE=python:3.11-slim-bookworm
FROM ${BUILDER_BASE}

ARG PYTHON=python3
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    LANG=C.UTF-8

# binutils (strip, objcopy, objdump: the spec and staticx), make, and what the
# bootloader stage needs (musl-gcc, patch, zstd): installed only when the base
# lacks them (the Debian root that build/make-builder-base imports has binutils
# and make, not the rest).
RUN set -eu; \
    need=""; \
    for tool in strip:binutils objcopy:binutils objdump:binutils make:make ldd:libc-bin \
                musl-gcc:musl-tools patch:patch zstd:zstd; do \
        command -v "${tool%%:*}" >/dev/null 2>&1 || need="$need ${tool#*:}"; \
    done; \
    if [ -n "$need" ]; then \
        apt-get update -q; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    "$PYTHON" -c 'import sys, sysconfig, venv; print("builder:", sys.executable, sys.version.split()[0], "libpython:", sysconfig.get_config_var("INSTSONAME"))'

WORKDIR /src

# Only pip's CA bundle, when the machine needs one to reach PyPI (a proxy that
# inspects TLS): build/build-in-docker stages the host's $PIP_CERT here, else
# the directory is empty.
COPY pip-ca/ /etc/tinyapi-builder/pip-ca/
RUN if [ -s /etc/tinyapi-builder/pip-ca/ca.pem ]; then \
        printf '[global]\ncert = /etc/tinyapi-builder/pip-ca/ca.pem\n' >/etc/pip.conf; \
    fi

# The venv first, from the lock file alone: this layer is rebuilt only when
# requirements.lock changes, not at every source edit. The pip command is the
# Makefile's; `make venv` below then adds the project itself (editable).
COPY requirements.lock pyproject.toml ./
RUN "$PYTHON" -m venv .venv \
    && .venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock

# After the venv, so a new commit time does not rebuild it.
ARG SOURCE_DATE_EPOCH

# The sources, then the build: `make venv` (a no-op install from the lock, plus
# the project) and build/build.py with that venv's interpreter, as `make binary`;
# then build/sbom.py as `make sbom`, here, where build/work/ and the package
# database are those of this build (on the host they would describe another).
COPY . .
RUN set -eu; \
    make --no-print-directory venv PYTHON="$PYTHON"; \
    .venv/bin/python build --skip-verify; \
    ldd dist/tinyapi 2>&1 | grep -q 'not a dynamic executable'; \
    echo "builder: ldd dist/tinyapi: not a dynamic executable"; \
    dist/tinyapi --version; \
    .venv/bin/python build sbom; \
    sha256sum dist/tinyapi dist/tinyapi.cdx.json
