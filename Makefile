# Every target uses the virtual environment .venv at the repository root (`make install`).
PY      := .venv/bin/python
PIP     := .venv/bin/pip
PROFILE ?= auto
export HF_HUB_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install up test test-fast lint format typecheck bench bench-gpu clean smoke-docker deploy-check \
	fault load fuzz screenshots

install: .venv/.installed

# The SDK (clients/python, distribution lvi-client) first: the root project depends on it and
# no index has it.
.venv/.installed: pyproject.toml clients/python/pyproject.toml requirements/constraints.txt
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c requirements/constraints.txt -e ./clients/python
	$(PIP) install -q -c requirements/constraints.txt -e ".[all,dev]"
	touch $@

up: install  ## run the whole stack locally (PROFILE=auto: gpu if CUDA and its weights are cached, else local)
	.venv/bin/lvi up --profile $(PROFILE)

lint: install  ## ruff, and the import contracts of pyproject.toml (layers only point down)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

format: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

# mypy --strict (pyproject.toml) over every package; the SDK too once clients/python exists.
TYPED := lvi launcher gateway services frontend $(wildcard clients/python)

typecheck: install
	.venv/bin/mypy $(TYPED)

test: install lint typecheck  ## lint, type-check and the whole test suite
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

screenshots: install  ## refresh docs/screenshots/ui.png from the browser test (tests never write it)
	LVI_UPDATE_SCREENSHOTS=1 $(PY) -m pytest tests/frontend/test_browser.py -x -q -p no:cacheprovider

smoke-docker: install  ## build every image and start the stack with a Docker engine (skips without one)
	$(PY) -m pytest tests/deploy/test_docker_smoke.py -m docker -v -rs -p no:cacheprovider

deploy-check: install  ## offline checks of Dockerfiles, compose files and k8s manifests
	$(PY) -m pytest tests/deploy -q -m "not docker"

bench: install  ## every CPU benchmark, with the commands recorded in docs/BENCHMARKS.md
	$(PY) bench/inpaint_overhead.py --runs 15 --method telea
	$(PY) bench/inpaint_floor.py --runs 31 --label after --out bench/results/inpaint_floor.json
	$(PY) bench/llava_latency.py --runs 7 --tokens 32 128
	$(PY) bench/seem_latency.py --runs 20 --gc-runs 5 --out bench/results/seem_cpu.json
	$(PY) bench/gligen_steps.py --runs 7 --lo 2 --hi 12 --out bench/results/gligen_steps_cpu.json
	$(PY) bench/gateway_overhead.py --runs 15 --json bench/results/gateway_overhead.json
	$(PY) bench/gateway_capacity.py --json bench/results/gateway_capacity.json
	$(PY) bench/planner_speed.py --rounds 200 --json bench/results/planner_speed.json
	$(PY) bench/encode_choice.py --runs 3 --out bench/results/encode_choice.json
	$(PY) bench/fullsize_edit.py --runs 3 --out bench/results/fullsize_edit.json
	$(PY) bench/gligen_native.py --size 512 --lo 2 --hi 25 --threads 1 --label after_1_thread --out bench/results/gligen_native_cpu.json

bench-gpu: install  ## the full-size GPU benchmark (needs a CUDA torch; see docs/BENCHMARKS.md)
	$(PY) bench/gpu_bench.py --out bench/results/gpu.json

# Reliability suites, long versions (their short versions run in `make test`). Each is
# bounded: a pytest timeout per test and a wall-clock limit; each writes its report to
# bench/results/reliability_<suite>.{json,md}. Sizes: FAULT_SESSIONS, FAULT_ROUNDS,
# LOAD_SESSIONS, LOAD_SECONDS, FUZZ_EXAMPLES (see tests/reliability/ and docs/RELIABILITY.md).
RELIABILITY := LVI_LONG=1 timeout 3600 $(PY) -m pytest -v -rs -p no:cacheprovider --timeout 1800

fault: install  ## kill workers, Redis and the gateway under traffic; survived or not, per fault
	LVI_RELIABILITY_REPORT=bench/results/reliability_fault $(RELIABILITY) tests/reliability/test_fault_suite.py tests/reliability/test_fault_store.py tests/reliability/test_fault_up.py

load: install  ## 200 concurrent sessions for 60 s, one and two gateways: 5xx, lost updates, p50/p99
	LVI_RELIABILITY_REPORT=bench/results/reliability_load $(RELIABILITY) tests/reliability/test_load_suite.py

fuzz: install  ## schemathesis on the gateway and every worker, plus hostile inputs
	LVI_RELIABILITY_REPORT=bench/results/reliability_fuzz $(RELIABILITY) tests/reliability/test_fuzz_suite.py

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis
