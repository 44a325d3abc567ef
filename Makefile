# tinyapi — the front door. Every target creates the virtual environment it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: help venv run serve test binary sbom image lock verify-reproducible inspect

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## create .venv from the lock file

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $@

serve: venv ## run the service from source with ./config.yml
	$(PY) -m tinyapi

test: venv ## run the test suite
	$(PY) -m pytest

binary: venv ## build dist/tinyapi, the static executable (a no-op when nothing changed)
	$(PY) build/build.py

.PHONY: binary-in-docker
binary-in-docker: ## build dist/tinyapi (+ its SBOM) inside a container: only Docker needed (BUILDER_BASE=...)
	@$(MAKE) --no-print-directory venv || echo "binary-in-docker: no host venv: fine, but then make binary/image will not take the binary as up to date"
	PYTHON=$(PY) docker/build-in-docker

lock: ## re-pin requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --extra build --extra dev --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

# --- the image: Dockerfile + docker/ (stage-image, run); .ci/start-docker starts an engine
VERSION ?= $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' tinyapi/__init__.py)
# The image's name: tagged NAME:latest and NAME:<version>. Another name keeps two checkouts'
# images apart on one engine (the tests read TINYAPI_IMAGE_NAME too).
IMAGE_NAME ?= $(or $(TINYAPI_IMAGE_NAME),tinyapi)

sbom: binary ## write dist/tinyapi.cdx.json, the CycloneDX SBOM of what is inside the binary
	$(PY) build/sbom.py

verify-reproducible: ## build HEAD twice in new clones and venvs; the binary and image layers must match
	build/verify-reproducible

image: sbom ## build the FROM scratch image tinyapi:latest and tinyapi:<version>
	@docker info >/dev/null 2>&1 || .ci/start-docker
	PYTHON=$(PY) docker/stage-image dist/tinyapi
	docker build --build-arg VERSION=$(VERSION) \
	  --build-arg SBOM_SHA256=$$(sha256sum dist/tinyapi.cdx.json | cut -d' ' -f1) \
	  -t $(IMAGE_NAME):latest -t $(IMAGE_NAME):$(VERSION) .

inspect: image ## print every file of the image, its user, entrypoint, bundled libraries, size
	@$(PY) docker/inspect.py $(IMAGE_NAME):latest

.PHONY: bench bench-quick
bench: venv ## measure size, start-up, memory, throughput, build time (~6 min) -> bench/results/latest.md
	$(PY) bench/bench.py

bench-quick: venv ## the same with 3 s wrk runs and one clean build (~2 min): for trying a change
	$(PY) bench/bench.py --quick

soak: image ## 60 s of wrk at saturation on the container: no error, no non-2xx, no memory growth
	$(PY) bench/soak.py --seconds $${SOAK_SECONDS:-60}

run: ## serve on :8080 from the image, or dist/tinyapi directly when no Docker engine answers
	@MAKE="$(MAKE)" docker/run

.PHONY: demo-swarm
demo-swarm: image ## Swarm self-healing: deploy deploy/swarm/stack.yml, /panic, /chaosmonkey, cleanup (TINYAPI_PORT=8080)
	$(PY) deploy/swarm/demo
