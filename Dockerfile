# tinyapi in a FROM scratch image: one static binary, its config, a CA bundle
# and a /tmp. No shell, no libraries, nothing else.
#
# Build it with `make image`: the context's payload must be staged first
# (docker/stage-image writes dist/image/), because nothing can be fixed up here:
#  - scratch has no shell, so no RUN chmod/mkdir;
#  - COPY --chmod needs BuildKit, and the classic builder must work too.
# So dist/image/ already carries the final modes (bin/tinyapi 0755, tmp/ 1777).
FROM scratch

ARG VERSION=0.0.0-dev
ARG SOURCE=""
# sha256 of /sbom.cdx.json, so a scanner can check the SBOM it reads is the one built with it.
ARG SBOM_SHA256=""

LABEL org.opencontainers.image.title="tinyapi" \
      org.opencontainers.image.description="The tinyapi of 'Building Tiny Secure Docker Containers', in Python: Flask + gunicorn frozen into one static binary" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      tinyapi.sbom.path="/sbom.cdx.json" \
      tinyapi.sbom.sha256="${SBOM_SHA256}"

# One COPY of the staged tree onto /, on purpose: copying a directory *to its
# own destination* (COPY dist/image/tmp /tmp) makes the classic builder create
# /tmp 0755 and lose the sticky 1777; as children of the copied tree the
# directories keep their modes (checked with `docker export | tar -tv`).
# What the tree holds, file by file: harness/image.py (docs/image.md shows it).
COPY dist/image/ /

ENV TINYAPI_CFG_PATH=/etc/tinyapi \
    TINYAPI_HEALTHCHECK_CA_FILE=/etc/ssl/certs/ca-certificates.crt

# Numeric, since scratch has no /etc/passwd: 65532 is distroless' "nonroot".
USER 65532:65532
EXPOSE 8080
# The health check needs no shell: the binary probes itself (GET 127.0.0.1:<port>/alwaysok,
# the port from the same config and environment the server reads; exit 0 on a 200). A probe is
# a new start of the binary, which reuses the server's unpacked copy; the interval keeps the
# probes under 2 % of one core (their cost: bench/results/latest.md, "Health check"; the choice:
# docs/health.md). Docker runs the first probe one interval after the start, hence a start
# period past interval + timeout. The timeout covers the probe's own start as well as its 2 s HTTP limit. Kubernetes
# ignores HEALTHCHECK (its probes are HTTP, deploy/kubernetes/); the Swarm stack has the same.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/bin/tinyapi", "probe"]
ENTRYPOINT ["/bin/tinyapi"]
