# Build and test entry points for the classifiedads.consolidation collection.
# Everything runs offline except PyPI: no Ansible Galaxy, no Docker.
# `make` alone lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# Python 3.12 (ansible-core 2.21 needs >= 3.12). A pyenv shim named python3.12
# exists but fails unless that version is selected, so probe it before use and
# fall back to the newest pyenv-installed 3.12 interpreter.
PYTHON ?= $(shell \
	if python3.12 -c 'import sys' >/dev/null 2>&1; then command -v python3.12; \
	else ls -d "$$(pyenv root 2>/dev/null || echo "$$HOME/.pyenv")"/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -n 1; fi)

VENV ?= .venv
COLL_ROOT ?= .ansible/collections
WHEEL_CACHE ?= .cache/wheels
# community.postgresql comes out of this `ansible` release's wheel (4.2.0 in 14.5.0).
ANSIBLE_WHEEL_VERSION ?= 14.5.0
BUILD_DIR ?= build
PYTEST_ARGS ?=
RELIABILITY_ARGS ?=
SANITY_ARGS ?=
MOLECULE_ARGS ?= list
DEMO_ARGS ?=

VENV_STAMP := $(VENV)/.requirements.stamp
COLLECTIONS_STAMP := $(COLL_ROOT)/.ansible-$(ANSIBLE_WHEEL_VERSION).stamp

# Every tool finds both collections, whatever ansible.cfg a user has elsewhere.
export ANSIBLE_COLLECTIONS_PATH := $(abspath $(COLL_ROOT))
# The venv's tools first: ansible-lint runs ansible-playbook, ansible-test looks up python3.12.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Scenarios live in molecule/, not Molecule 26's extensions/molecule/: this is
# the switch that makes Molecule read them without a migration warning.
export MOLECULE_GLOB := molecule/*/molecule.yml
# The dev harness (tools/devkit) is imported as `devkit`, not installed.
WITH_DEVKIT := PYTHONPATH=$(CURDIR)/tools$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: help venv collections demo test lint pytest reliability sanity build molecule clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(VENV_STAMP) ## Create .venv with the pinned tools from requirements.txt

$(VENV_STAMP): requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found: pass PYTHON=/path/to/python3.12" >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	touch $@

collections: $(COLLECTIONS_STAMP) ## Put community.postgresql and this checkout on the collections path (no Galaxy)

$(COLLECTIONS_STAMP): $(VENV_STAMP) .ci/collections.sh
	VENV=$(VENV) COLL_ROOT=$(COLL_ROOT) WHEEL_CACHE=$(WHEEL_CACHE) \
		ANSIBLE_WHEEL_VERSION=$(ANSIBLE_WHEEL_VERSION) .ci/collections.sh
	touch $@

demo: venv collections ## Run the demo on an embedded PostgreSQL (DEMO_ARGS=...)
	$(WITH_DEVKIT) $(VENV)/bin/python -m devkit.demo $(DEMO_ARGS)

test: venv collections ## lint, pytest, reliability, molecule, sanity, build: stops at the first failure
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory pytest
	$(MAKE) --no-print-directory reliability
	$(MAKE) --no-print-directory molecule MOLECULE_ARGS='test --all'
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory build

lint: venv collections ## yamllint, ruff, ansible-lint (production profile, offline)
	$(VENV)/bin/yamllint --strict .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ansible-lint

pytest: venv collections ## Unit and integration tests (PYTEST_ARGS=...)
	$(WITH_DEVKIT) $(VENV)/bin/python -m pytest tests/unit tests/integration tests/tools $(PYTEST_ARGS)

# Not in `pytest`'s paths (nor in pyproject's testpaths): each scenario runs once, here.
reliability: venv collections ## Failure scenarios on real PostgreSQL; ends with "N passed, N failed" (RELIABILITY_ARGS=...)
	$(WITH_DEVKIT) $(VENV)/bin/python -m pytest tests/reliability $(RELIABILITY_ARGS)

sanity: venv collections ## ansible-test sanity on a copy of the tree (SANITY_ARGS='--test pylint')
	VENV=$(VENV) COLL_ROOT=$(COLL_ROOT) BUILD_DIR=$(BUILD_DIR) .ci/sanity.sh $(SANITY_ARGS)

build: venv ## Collection artifact into build/
	$(VENV)/bin/ansible-galaxy collection build --force --output-path $(BUILD_DIR)/

# One engine for the whole run: docker_engine starts dockerd (and builds the base
# image) unless one already answers, and stops only what it started.
molecule: venv collections ## Molecule scenarios in containers (MOLECULE_ARGS='test --all' or 'test -s rollback', default: list)
	$(WITH_DEVKIT) $(VENV)/bin/python -m devkit.docker_engine exec -- $(VENV)/bin/molecule $(MOLECULE_ARGS)

clean: ## Remove venv, collections, build output, caches; destroy embedded clusters
	-test ! -x $(VENV)/bin/python || $(WITH_DEVKIT) $(VENV)/bin/python -m devkit.pgembed destroy --all
	-test ! -x $(VENV)/bin/python || $(WITH_DEVKIT) $(VENV)/bin/python -m devkit.pgembed destroy --all \
		--root /var/tmp/classifiedads-molecule
	rm -rf $(VENV) .ansible $(BUILD_DIR) .cache .embedded-pg .pytest_cache .ruff_cache tests/output
	rm -rf /var/tmp/classifiedads-demo /var/tmp/classifiedads-molecule
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
