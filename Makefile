# The README's two commands. Both install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test lock audit

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Exactly the versions in the lock files, each checked against its hash; then the project itself.
install: $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps -e .

run: install
	$(BIN)/python -m router.dev.run

test: install-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

# The lock files from pyproject.toml (after changing a dependency), and a check of them against the
# advisory databases (needs PyPI's JSON API and OSV; --strict fails if a package could not be checked).
TOOLS := .venv-tools
LOCK := $(TOOLS)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links

$(TOOLS)/bin/pip-compile:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet 'pip-tools>=7.4' 'pip-audit>=2.7'

lock: $(TOOLS)/bin/pip-compile
	$(LOCK) --upgrade -o requirements.lock pyproject.toml
	$(LOCK) --upgrade --extra test -o requirements-test.lock pyproject.toml

audit: $(TOOLS)/bin/pip-compile
	$(TOOLS)/bin/pip-audit --strict --disable-pip --require-hashes -r requirements-test.lock
