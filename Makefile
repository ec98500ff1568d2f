# Every target installs what it needs: a fresh machine with python3, make and git is enough.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MS_VENV := .venv-ministack
# taskiq-aio-sqs (the library we replace) lives in its own venv: its aiobotocore pins a botocore of its own.
AIOSQS_VENV := .venv-aiosqs
# The oldest declared release of every runtime dependency (requirements-min.txt), for `make test-min`.
MIN_VENV := .venv-min
MINISTACK_VERSION := 1.5.33
PIP_FLAGS := --quiet --disable-pip-version-check
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install ministack aiosqs check lint format typecheck test test-unit test-min docs docs-serve demo bench bench-client clean chaos lambda-zip demo-lambda bench-lambda

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -e . --group dev
	touch $@

# pip >= 25.1 reads dependency groups; requirements-min.txt pins the runtime dependencies to their floors.
$(MIN_VENV)/.installed: pyproject.toml requirements-min.txt
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(MIN_VENV)/bin/python -m pip install $(PIP_FLAGS) -e . --group test -r requirements-min.txt
	touch $@

$(MS_VENV)/.installed:
	$(PYTHON) -m venv $(MS_VENV)
	$(MS_VENV)/bin/python -m pip install $(PIP_FLAGS) 'ministack==$(MINISTACK_VERSION)'
	touch $@

$(AIOSQS_VENV)/.installed:
	$(PYTHON) -m venv $(AIOSQS_VENV)
	$(AIOSQS_VENV)/bin/python -m pip install $(PIP_FLAGS) 'taskiq-aio-sqs==2.1.1'
	touch $@

aiosqs: $(AIOSQS_VENV)/.installed ## Install taskiq-aio-sqs 2.1.1 in its own venv (interop tests, benchmarks)

install: $(VENV)/.installed ## Create .venv with the package and its dev dependencies

ministack: $(MS_VENV)/.installed ## Install MiniStack in its own virtualenv (it pins its own botocore)

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check taskiq_sqs_http tests scripts
	$(VENV)/bin/ruff format --check taskiq_sqs_http tests scripts

format: install ## Apply ruff formatting and safe fixes
	$(VENV)/bin/ruff check --fix taskiq_sqs_http tests scripts
	$(VENV)/bin/ruff format taskiq_sqs_http tests scripts

typecheck: install ## pyright: strict on the package, basic on tests/ and scripts/ (tests/pyrightconfig.json)
	$(VENV)/bin/pyright taskiq_sqs_http
	$(VENV)/bin/pyright -p tests/pyrightconfig.json

check: lint typecheck ## Lint, format check and type checks (strict on the package, basic on tests and scripts)

test: install ministack aiosqs ## Run every test (unit + integration on a private MiniStack) with coverage
	TEST_AIOSQS_PYTHON=$(CURDIR)/$(AIOSQS_VENV)/bin/python \
		$(PY) scripts/with_ministack.py --ministack $(MS_VENV)/bin/ministack -- \
		$(PY) -m pytest --cov=taskiq_sqs_http --cov-report=term-missing:skip-covered \
		--cov-report=xml:coverage.xml $(PYTEST_ARGS)
	@# Floor for the whole package: 91.2 % measured on 2026-11-30 (unit + integration), minus 2 points.
	$(VENV)/bin/coverage report --format=total --fail-under=89
	$(PY) scripts/coverage_badge.py coverage.xml docs/coverage.svg

test-unit: install ## Unit tests only (no emulator)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-min: ministack aiosqs $(MIN_VENV)/.installed ## Unit + integration tests on the oldest declared dependencies
	$(MIN_VENV)/bin/python scripts/check_min_versions.py requirements-min.txt
	TEST_AIOSQS_PYTHON=$(CURDIR)/$(AIOSQS_VENV)/bin/python \
		$(MIN_VENV)/bin/python scripts/with_ministack.py --ministack $(MS_VENV)/bin/ministack -- \
		$(MIN_VENV)/bin/python -m pytest -p no:cacheprovider tests/unit tests/integration $(PYTEST_ARGS)

docs: install ## Build the documentation site into site/ (mkdocs --strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

docs-serve: install ## Serve the documentation site on http://127.0.0.1:8000 while editing
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict

demo: install ministack ## Run the main job end to end on a local MiniStack (worker, mixed tasks, summary)
	$(PY) scripts/demo.py --ministack $(MS_VENV)/bin/ministack

bench: install ministack aiosqs ## Broker benchmarks vs taskiq-aio-sqs 2.1.1, side by side (bench/results.md; BENCH_QUICK=1: smoke size)
	$(PY) scripts/with_ministack.py --ministack $(MS_VENV)/bin/ministack -- $(PY) scripts/bench.py
	$(MAKE) --no-print-directory bench-lambda

bench-client: install ministack ## Client CPU per request, ours vs aiobotocore (side by side)
	$(PY) scripts/with_ministack.py --ministack $(MS_VENV)/bin/ministack -- \
		$(PY) scripts/bench_client.py

lambda-zip: install ## AWS Lambda zip of APP (module in APP_DIR, default .) with this package, ARCH=x86_64|arm64|all
	@test -n "$(APP)" || (echo "usage: make lambda-zip APP=module [APP_DIR=dir] [ARCH=x86_64|arm64|all]"; exit 2)
	$(PY) scripts/lambda_zip.py $(APP) --app-dir $(or $(APP_DIR),.) --arch $(or $(ARCH),x86_64)

demo-lambda: install ministack ## Serverless demo: tasks run by a Lambda function on a local MiniStack (SQS trigger)
	$(PY) scripts/demo_lambda.py --ministack $(MS_VENV)/bin/ministack

bench-lambda: install ministack ## Lambda zip size, cold start and warm CPU, ours vs taskiq-aio-sqs 2.1.1 (bench/lambda.md)
	MINISTACK_SERVICES=sqs,s3 $(PY) scripts/with_ministack.py --ministack $(MS_VENV)/bin/ministack -- \
		$(PY) scripts/bench_lambda.py

chaos: install ministack ## Fault-injection and soak suite (several minutes); table in bench/reliability.md
	$(PY) scripts/chaos.py

clean: ## Remove virtualenvs and caches
	rm -rf $(VENV) $(MS_VENV) $(MIN_VENV) site .pytest_cache .ruff_cache coverage.xml .coverage
