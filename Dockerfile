# tinyapi in a FROM scratch image: one static binary and its config. No shell, no libraries,
# nothing else. The whole recipe, from the sources:
#
#   docker build -t tinyapi .
#   docker run --rm -p 8080:8080 tinyapi
#
# Three stages. The interpreter stage builds the kit's interpreter (CPython and OpenSSL from
# Debian's pinned sources, build/recipe/interpreter.py) on the build machine, cross-compiled for
# another platform. The builder checks it, makes its venv of build/requirements.lock, builds
# dist/tinyapi (the binary's recipe, build/) and its SBOM, and stages the image's tree with its
# final modes in /image; the last stage is scratch plus that tree. `make image` runs this same
# build (for another architecture: make image PLATFORM=linux/arm64). It works with the classic
# builder, BuildKit and `podman build`: no RUN in scratch (no shell there), no COPY --chmod.
# Another platform than the machine's needs BuildKit or Podman (the classic builder refuses to
# copy between stages of two platforms; make image picks Podman then).
#
# Build arguments:
#   BUILDER_BASE       Debian bookworm with Python 3.11, for the target platform (it runs the
#                      interpreter's recipe; the binary gets the kit's own interpreter).
#                      Offline: build/make-builder-base, then
#                      --build-arg BUILDER_BASE=tinyapi-builder-base:bookworm
#   INTERPRETER_BASE   the same for the build machine's platform (default BUILDER_BASE, which
#                      is multi-platform when it is the official image)
#   SOURCE_DATE_EPOCH  the build's time, stamped into the binary, the SBOM and the image's
#                      files (make image passes the last commit's; default 0)
#   VERSION, SOURCE    the image's labels
# Behind a proxy that inspects TLS, the builder's pip trusts docker/pip-ca/ca.pem (make image
# puts the machine's CA bundle there).
ARG BUILDER_BASE=python:3.11-slim-bookworm
ARG INTERPRETER_BASE=${BUILDER_BASE}

# BuildKit sets BUILDPLATFORM, TARGETPLATFORM and TARGETARCH; the classic builder sets none,
# and builds for its own platform, which "linux" names. Every later stage names its platform
# too: Podman 4 would look their bases up for the platform of this one. Podman reads the
# Containerfile, this file with an empty default (it cannot parse "linux"): `make docs`.
FROM --platform=${BUILDPLATFORM:-linux} ${INTERPRETER_BASE} AS interpreter
ARG TARGETARCH
ENV LANG=C.UTF-8
WORKDIR /src
COPY build/recipe/interpreter.py build/recipe/
COPY build/interpreter/ build/interpreter/
# Its tools from apt only when the base lacks them (the recipe names them: a C toolchain, perl
# and three -dev packages; for another platform its cross gcc and those -dev packages of it),
# then the build (~4 min on 2 cores), rebuilt only when the recipe changes.
RUN set -eu; \
    python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
        echo "interpreter: INTERPRETER_BASE (default BUILDER_BASE) needs Python 3.11 as python3, and has $(python3 --version 2>/dev/null || echo none): use a Debian bookworm with it (python:3.11-slim-bookworm, build/make-builder-base)" >&2; \
        exit 1; }; \
    need=$(python3 build/recipe/interpreter.py --missing --arch "${TARGETARCH:-}"); \
    if [ -n "$need" ]; then \
        for arch in $(printf '%s\n' $need | sed -n 's/.*:\(.*\)/\1/p' | sort -u); do \
            dpkg --add-architecture "$arch"; \
        done; \
        apt-get update -q; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    TINYAPI_INTERPRETER_DOWNLOADS=/tmp/interpreter-sources \
        python3 build/recipe/interpreter.py --prefix /opt/tinyapi-python --arch "${TARGETARCH:-}"; \
    rm -rf /tmp/interpreter-sources

FROM --platform=${TARGETPLATFORM:-linux} ${BUILDER_BASE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8
# The build's tools, from apt only when the base lacks them (the official python image lacks
# them all; build/make-builder-base's base has them all): binutils for the spec and staticx,
# musl-gcc, gcc and libc6-dev for staticx's bootloader (and its sdist, where it has no wheel).
RUN set -eu; \
    need=""; \
    for tool in strip:binutils objdump:binutils make:make musl-gcc:musl-tools patch:patch \
                zstd:zstd gcc:gcc /usr/include/stdio.h:libc6-dev; do \
        command -v "${tool%%:*}" >/dev/null 2>&1 || [ -e "${tool%%:*}" ] || need="$need ${tool#*:}"; \
    done; \
    if [ -n "$need" ]; then \
        apt-get update -q; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need; \
        rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
COPY docker/pip-ca/ /etc/tinyapi-builder/pip-ca/
RUN if [ -s /etc/tinyapi-builder/pip-ca/ca.pem ]; then \
        printf '[global]\ncert = /etc/tinyapi-builder/pip-ca/ca.pem\n' >/etc/pip.conf; \
    fi
# The interpreter, checked on this platform (a cross-compiled one could not be, where built).
COPY --from=interpreter /opt/tinyapi-python/ /opt/tinyapi-python/
COPY build/recipe/interpreter.py build/recipe/
RUN /opt/tinyapi-python/bin/python3 build/recipe/interpreter.py --check --prefix /opt/tinyapi-python
# The venv from the lock alone: this layer is rebuilt when the lock changes, not at every edit.
COPY build/install-lock build/requirements.lock build/
RUN build/install-lock build/requirements.lock /venv /opt/tinyapi-python/bin/python3

# After the venv, so that a new commit's time does not rebuild it.
ARG SOURCE_DATE_EPOCH=0
ENV SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}
# The sources (.dockerignore lets in only what the build reads), then the build: the binary,
# a check that it is static and starts, its SBOM, and the image's tree.
COPY . .
RUN set -eu; \
    /venv/bin/python -m pip install --quiet --no-deps --no-build-isolation \
        --config-settings editable_mode=compat -e .; \
    /venv/bin/python build --skip-verify; \
    ldd dist/tinyapi 2>&1 | grep -q 'not a dynamic executable'; \
    dist/tinyapi --version; \
    /venv/bin/python build sbom; \
    IMAGE_DIR=/image /venv/bin/python docker/stage-image.py dist/tinyapi

# The binary and its SBOM alone, to copy out (make binary-in-docker).
FROM --platform=${TARGETPLATFORM:-linux} scratch AS binary
COPY --from=builder /src/dist/tinyapi /src/dist/tinyapi.cdx.json /

FROM --platform=${TARGETPLATFORM:-linux} scratch
# One COPY of the staged tree onto /: copying a directory to its own destination (/tmp) makes
# the classic builder create it 0755 and lose the sticky 1777; as children of the copied tree
# the directories keep their modes. What the tree holds, file by file: harness/image.py.
# First, before any ARG or LABEL: the classic builder's cache ignores the platform, and a LABEL
# step straight after FROM scratch would be taken from another platform's build (its COPY then
# fails: "does not match the specified platform"); after this COPY every step has a parent of
# this platform's own.
COPY --from=builder /image/ /
ARG VERSION=0.0.0-dev
ARG SOURCE=""
LABEL org.opencontainers.image.title="tinyapi" \
      org.opencontainers.image.description="The tinyapi of 'Building Tiny Secure Docker Containers', in Python: Flask + gunicorn frozen into one static binary" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      tinyapi.sbom.path="/sbom.cdx.json"
ENV TINYAPI_CFG_PATH=/etc/tinyapi
# Numeric, since scratch has no /etc/passwd: distroless' "nonroot" (harness.image.NONROOT).
USER 65532:65532
EXPOSE 8080
# No shell: the binary probes itself (GET 127.0.0.1:<port>/alwaysok, exit 0 on a 200), reusing
# the server's unpacked copy. Its cost and the choice of interval: docs/health.md. The first
# probe runs one interval after the start, hence a start period past interval + timeout.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/bin/tinyapi", "probe"]
ENTRYPOINT ["/bin/tinyapi"]
