# The two commands of the README:
#   make serve   set up (once) and run the local stack: tiny model, real tritonserver, real redis-server, gateway
#   make test    set up (once) and run every test: lint, type check, unit, integration (real Triton and Redis)
# And for deployment (needs a Docker daemon; mmdebstrap for the Debian base image):
#   make images      build the images (scripts/build_images.sh: Debian base, gateway, trainer, CPU Triton, Redis,
#                    Prometheus), no registry needed
#   make stack-test  build them, then run docker-compose.yml's stack in containers and check it (tests/stack)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck pytest setup clean images stack-test

setup: $(STAMP)

# torch first and pinned: that exact release is a CPU wheel on the local disk; anything else would pull CUDA.
$(STAMP): pyproject.toml scripts/install_tools.sh tests/deploy/grafana/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	bash scripts/install_tools.sh $(VENV)
	touch $(STAMP)

# Ports and the build directory of `make serve`, e.g. `make serve PORT=9080 TRITON_PORTS="9000 9001 9002"`.
PORT ?= 8080
TRITON_PORTS ?= 8000 8001 8002
REDIS_PORT ?= 6379
LOCAL_DIR ?= build/local

serve: $(STAMP)
	$(BIN)/tipsv2 local up --dir $(LOCAL_DIR) --port $(PORT) --triton-ports $(TRITON_PORTS) --redis-port $(REDIS_PORT)

lint: $(STAMP)
	$(BIN)/ruff check service training tests bench
	$(BIN)/ruff format --check service training tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

test: lint typecheck pytest

images: $(STAMP)
	PYTHON=$(BIN)/python bash scripts/build_images.sh

stack-test: images
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest tests/stack -m stack -s

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
