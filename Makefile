# saferelease.core — `make demo` and `make test` do all set-up on a fresh Debian machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        := .venv
BIN         := $(CURDIR)/$(VENV)/bin
COLLECTIONS := $(CURDIR)/.build/collections
PYTEST      := $(BIN)/pytest -p no:cacheprovider
SCENARIOS   := $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_NOCOLOR := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help demo demo-stop test deps system-deps python-deps collection-link prisma-cli node-tools \
        lint sanity unit integration compat fleet molecule build leak-check bench clean

help:
	@echo "make demo   build the embedded demo (SQLite + demo app) and run the safe sync on it"
	@echo "make test   everything: lint, sanity, unit, integration, compat, fleet, molecule"
	@echo "parts:      deps lint sanity unit integration compat fleet molecule build bench clean"

## Set-up ---------------------------------------------------------------------------------------

deps: system-deps python-deps collection-link

system-deps:
	@bash scripts/system-deps.sh

$(VENV)/.installed: requirements.txt requirements-test.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

python-deps: $(VENV)/.installed

collection-link: python-deps
	@$(BIN)/python -c 'from tests.harness.collection import ensure_collection_link; ensure_collection_link()'

prisma-cli: deps
	@bash scripts/prisma-cli-setup.sh

# pm2 from the npm registry, for the process checks and the pm2 service manager.
node-tools: tests/tools/node_modules/.installed

tests/tools/node_modules/.installed: tests/tools/package.json tests/tools/package-lock.json
	npm ci --prefix tests/tools --no-audit --no-fund --loglevel=error
	touch $@

## The two commands -----------------------------------------------------------------------------

demo: deps
	$(BIN)/ansible-playbook -i inventories/local examples/demo-build.yml
	@echo "== before: the runbook-000 conflict"
	$(BIN)/ansible-playbook -i inventories/local examples/demo-report.yml
	$(BIN)/ansible-playbook -i inventories/local playbooks/safe-sync.yml
	@echo "== after"
	$(BIN)/ansible-playbook -i inventories/local examples/demo-report.yml
	@echo "The demo app keeps running at http://127.0.0.1:39300/ ; stop it with: make demo-stop"

demo-stop: deps
	$(BIN)/ansible-playbook -i inventories/local examples/demo-stop.yml

# Set-up, then two lanes side by side (scripts/test-all.sh says which stage runs where); every stage
# runs even when one fails, and the run ends with a table of each stage's time and result.
test:
	@bash scripts/test-all.sh

## Parts of `make test` -------------------------------------------------------------------------

lint: deps
	$(BIN)/ansible-lint --offline -q

sanity: deps
	bash scripts/sanity.sh

unit: deps
	$(PYTEST) tests/unit

integration: deps node-tools
	$(PYTEST) -n 2 tests/integration

# The corpus sweep (one history per engine) dominates: two workers run the engines side by side.
compat: prisma-cli
	$(PYTEST) -n 2 tests/compat

# Separate Debian hosts over SSH (tests/harness/fleet.py): needs root; the first run builds the
# cached root file system under /var/cache/saferelease-fleet (about a minute).
fleet: deps
	$(PYTEST) tests/fleet

# Every scenario runs, also after one failed; the failed ones are named at the end.
molecule: deps
	@failed=""; for scenario in $(SCENARIOS); do \
		echo "== molecule test -s $$scenario"; \
		$(BIN)/molecule test -s $$scenario || failed="$$failed $$scenario"; \
	done; \
	if [ -n "$$failed" ]; then echo "molecule: failed scenarios:$$failed"; exit 1; fi

build: deps
	$(PYTEST) tests/build

leak-check: python-deps
	$(BIN)/python -m tests.harness leaks

bench: deps prisma-cli
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	@set -e; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	-test ! -d .demo || $(BIN)/ansible-playbook -i inventories/local examples/demo-stop.yml
	rm -rf .build .demo tests/output bench/results saferelease-core-*.tar.gz
