# Every target uses the virtual environment .venv at the repository root (`make install`).
PY      := .venv/bin/python
PIP     := .venv/bin/pip
PROFILE ?= tiny
export HF_HUB_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install up test test-fast lint format typecheck bench clean smoke-docker deploy-check

install: .venv/.installed

.venv/.installed: pyproject.toml requirements/constraints.txt
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c requirements/constraints.txt -e ".[all,dev]"
	touch $@

up: install  ## run the whole stack locally (tiny random-weight models unless PROFILE=cpu|gpu)
	.venv/bin/lvi up --profile $(PROFILE)

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

typecheck: install
	.venv/bin/mypy lvi

test: install lint typecheck  ## lint, type-check and the whole test suite
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

smoke-docker: install  ## build every image and start the stack with a Docker engine (skips without one)
	$(PY) -m pytest tests/deploy/test_docker_smoke.py -m docker -v -rs -p no:cacheprovider

deploy-check: install  ## offline checks of Dockerfiles, compose files and k8s manifests
	$(PY) -m pytest tests/deploy -q -m "not docker"

bench: install
	$(PY) bench/inpaint_overhead.py

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis
