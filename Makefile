# tinyapi — the front door. Every target creates the virtual environment it needs.
# Targets are grouped by what they make: the service, the tests, the binary (build/), the
# image (Dockerfile + docker/), the benchmarks (bench/), the deployments (deploy/).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: help venv build-venv lock lint format docs setup serve run test test-quick binary binary-in-docker sbom image image-multiarch inspect verify-reproducible tour bench bench-quick bench-levers soak demo-swarm

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

# --- the development environment --------------------------------------------------------------
venv: $(VENV)/.installed ## create .venv from the lock file

$(VENV)/.installed: requirements.lock pyproject.toml build/install-lock
	build/install-lock requirements.lock $(abspath $(VENV)) $(PYTHON)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $@

# Both for every platform (--universal): the venv's (everything) and the builder stage's
# (the service and its build only; the same versions).
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock" -q
lock: ## re-pin requirements.lock and build/requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --extra build --extra dev $(LOCK_FLAGS) -o requirements.lock
	uv pip compile pyproject.toml --extra build -c requirements.lock $(LOCK_FLAGS) -o build/requirements.lock

lint: venv ## ruff over the tree, as configured in pyproject.toml: its checks, and the format
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv ## format the tree with ruff (what make lint checks)
	$(PY) -m ruff format .

# --- the docs: docs/ ------------------------------------------------------------------------------
docs: venv ## regenerate the reference tables of docs/ that come from code (config keys, image files ...)
	$(PY) -m harness.docs

# --- the service: tinyapi/ ------------------------------------------------------------------------
serve: venv ## run the service from source with ./config.yml
	$(PY) -m tinyapi

run: ## make setup, then build the image and serve it on :8080 (PORT=, ENGINE=podman); dist/tinyapi where setup can't
	@MAKE="$(MAKE)" ENGINE=$(ENGINE) IMAGE_NAME=$(IMAGE_NAME) docker/run

setup: ## install the Debian packages and start the engine make run/test need (root + apt)
	@docker/setup-machine $(ENGINE)

# --- the tests: tests/ ----------------------------------------------------------------------------
test: ## make setup, then run the test suite
	@docker/setup-machine docker  # the tests need the Docker engine, whatever ENGINE says
	@$(MAKE) --no-print-directory venv
	$(PY) -m pytest

test-quick: venv ## the tests that need no Docker, no root and no long run (under a minute)
	$(PY) -m pytest -m "not docker and not root and not slow"

# --- the binary: build/ ---------------------------------------------------------------------------
# The binary is frozen with the kit's own interpreter (build/recipe/interpreter.py: CPython and
# OpenSSL from Debian's pinned sources, built for the service), in a venv of the builder's lock.
INTERPRETER := dist/interpreter/python
BUILD_VENV  := dist/interpreter/venv
BUILD_PY    := $(BUILD_VENV)/bin/python

build-venv: ## the kit's interpreter (~4 min once, then cached by its inputs) and its venv of build/requirements.lock
	$(PYTHON) build/recipe/interpreter.py --prefix $(INTERPRETER)
	@$(MAKE) --no-print-directory $(BUILD_VENV)/.installed

$(BUILD_VENV)/.installed: $(INTERPRETER)/tinyapi-interpreter.json build/requirements.lock pyproject.toml build/install-lock
	build/install-lock build/requirements.lock $(abspath $(BUILD_VENV)) $(abspath $(INTERPRETER))/bin/python3
	$(BUILD_PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $@

binary: build-venv ## build dist/tinyapi, the static executable (a no-op when nothing changed)
	$(BUILD_PY) build $(BUILD_FLAGS)

binary-in-docker: ## the Dockerfile's build, binary only: dist/tinyapi-ARCH (+ .cdx.json); only Docker needed (PLATFORM=)
	@ENGINE=$(ENGINE) IMAGE_NAME=$(IMAGE_NAME) docker/build-image $(if $(PLATFORM),--platform $(PLATFORM)) --binary-to dist

sbom: binary ## write dist/tinyapi.cdx.json, the CycloneDX SBOM of what is inside the binary
	$(BUILD_PY) build sbom

# --- the image: Dockerfile + docker/ --------------------------------------------------------------
# The engine that builds and runs the image: docker or podman (make image ENGINE=podman).
ENGINE ?= docker
VERSION ?= $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' tinyapi/__init__.py)
# The image's name: tagged NAME:latest and NAME:<version>. Another name keeps two checkouts'
# images apart on one engine (the tests read TINYAPI_IMAGE_NAME too).
IMAGE_NAME ?= $(or $(TINYAPI_IMAGE_NAME),tinyapi)
# Another platform than the machine's: linux/amd64 or linux/arm64 (tags NAME:latest-ARCH).
PLATFORM ?=

image: ## build the FROM scratch image from the sources (the Dockerfile's two stages): NAME:latest (PLATFORM=linux/arm64: NAME:latest-arm64)
	@ENGINE=$(ENGINE) IMAGE_NAME=$(IMAGE_NAME) VERSION=$(VERSION) docker/build-image $(if $(PLATFORM),--platform $(PLATFORM))

image-multiarch: ## both platforms' images in one OCI archive, dist/tinyapi.oci.tar (needs podman)
	@IMAGE_NAME=$(IMAGE_NAME) VERSION=$(VERSION) docker/multiarch dist/tinyapi.oci.tar

inspect: image venv ## print every file of the image, its user, entrypoint, bundled libraries, size
	@$(PY) docker/inspect-image.py $(IMAGE_NAME):latest

verify-reproducible: ## build HEAD twice in new clones and venvs; the binary and image layers must match
	docker/verify-reproducible

tour: venv ## "a container is just a process", live and checked, on IMAGE_NAME (PORT=8080, TOUR_ARGS=--no-pause)
	$(PY) -P docker/tour.py --image $(IMAGE_NAME) --port $(or $(PORT),8080) $(TOUR_ARGS)

# --- the benchmarks: bench/ -----------------------------------------------------------------------
bench: venv ## measure size, start-up, memory, throughput, build time (~13 min) -> bench/results/latest.md
	$(PY) -m bench

bench-quick: venv ## the same with 3 s wrk runs and one clean build (~8 min): for trying a change
	$(PY) -m bench --quick

bench-levers: venv build-venv ## each of the interpreter's levers measured alone (~4 min a lever to build, once) -> bench/results/levers.md
	$(PY) -m bench.levers

soak: image venv ## 60 s of wrk at saturation on the container: no error, no non-2xx, no memory growth
	$(PY) -m bench.soak --seconds $${SOAK_SECONDS:-60}

# --- the deployments: deploy/ ---------------------------------------------------------------------
demo-swarm: image venv ## Swarm self-healing: deploy deploy/swarm/stack.yml, /panic, /chaosmonkey, a SIGSTOPped server (as root), cleanup (TINYAPI_PORT=8080)
	$(PY) deploy/swarm/demo.py
