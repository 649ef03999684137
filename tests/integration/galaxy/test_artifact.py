"""The collection as Galaxy users get it: the built tarball holds the runtime content and nothing dev-only,
installs offline beside community.postgresql as the README says, and its playbooks run from the install alone
(no checkout, no ansible.cfg, no dev harness on the collections path)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO, consolidation_vars, drop_database
from devkit import legacy

BIN = Path(sys.executable).parent
COMMUNITY_POSTGRESQL = Path(REPO) / ".ansible" / "collections" / "ansible_collections" / "community" / "postgresql"
PREFIX = "Installed"
TARGET_DB = "Installed_Consolidated"

# What only works in this checkout: the dev harness and its settings, Molecule, the local inventory (the embedded
# cluster of `make demo`), the tests (tests/conftest.py imports the harness), caches and build output.
DEV_ONLY = {".ansible", ".ansible-lint", ".cache", ".ci", ".config", ".embedded-pg", ".gitignore", ".pytest_cache",
            ".ruff_cache", ".venv", ".yamllint", "Makefile", "ansible.cfg", "bench", "build", "molecule",
            "pyproject.toml", "requirements.txt", "tools"}
DEV_ONLY_DIRS = ("inventories/local/", "tests/", "changelogs/fragments/")
# ansible-test reads it from an installed collection too.
SHIPPED_TEST_FILES = {"tests/config.yml"}


def dev_only(path: str) -> bool:
    parts = path.split("/")
    return (parts[0] in DEV_ONLY or "__pycache__" in parts or path.endswith(".pyc")
            or (path.startswith(DEV_ONLY_DIRS) and path not in SHIPPED_TEST_FILES))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("artifact")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), REPO],
                   check=True, capture_output=True, text=True)
    (built,) = out.glob("classifiedads-consolidation-*.tar.gz")
    return built


@pytest.fixture(scope="module")
def shipped(tarball):
    with tarfile.open(tarball) as archive:
        return {member.name for member in archive.getmembers() if member.isfile()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory, tarball):
    """The tarball installed as the README says, into a collections path of its own: (path, environment)."""
    home = tmp_path_factory.mktemp("installed")
    collections = home / "collections"
    shutil.copytree(COMMUNITY_POSTGRESQL, collections / "ansible_collections" / "community" / "postgresql")
    # No ansible.cfg of this checkout (nor any other) and nothing of the checkout on the path.
    (home / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(home / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(collections),
               ANSIBLE_NOCOLOR="1")
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "--offline",
                           "-p", str(collections)], env=env, cwd=home, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "community.postgresql:" in done.stdout and "already installed" in done.stdout, done.stdout
    path = collections / "ansible_collections" / "classifiedads" / "consolidation"
    return {"home": home, "path": path, "env": env}


def tracked_files() -> set[str]:
    listed = subprocess.run(["git", "-C", REPO, "ls-files", "-z"], check=True, capture_output=True, text=True)
    return {name for name in listed.stdout.split("\0") if name and os.path.isfile(os.path.join(REPO, name))}


def test_the_tarball_ships_nothing_dev_only(shipped):
    assert sorted(path for path in shipped if dev_only(path)) == []


def test_the_tarball_ships_every_runtime_file_the_repository_tracks(shipped):
    # galaxy.yml ships as MANIFEST.json.
    runtime = {path for path in tracked_files() if not dev_only(path)} - {"galaxy.yml"}
    assert sorted(runtime - shipped) == []
    assert {"LICENSE", "README.md", "meta/runtime.yml", "tests/config.yml"} <= shipped


def test_the_manifest_names_the_dependency_and_no_placeholder_url(tarball):
    with tarfile.open(tarball) as archive:
        info = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]
    assert info["dependencies"] == {"community.postgresql": ">=3.4.0"}
    assert info["license"] == ["GPL-3.0-or-later"]
    for key in ("repository", "documentation", "homepage", "issues"):
        assert not info[key] or ".invalid" not in info[key], (key, info[key])


def test_every_playbook_passes_the_syntax_check_from_the_install(installed):
    playbooks = sorted(path.stem for path in (installed["path"] / "playbooks").glob("*.yml"))
    assert playbooks == ["consolidate", "cutover", "rehearse", "rollback", "sync", "sync_status"]
    for playbook in playbooks:
        done = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i",
                               str(installed["path"] / "inventories" / "example"),
                               f"classifiedads.consolidation.{playbook}"],
                              env=installed["env"], cwd=installed["home"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        # The name resolves to the installed copy, not to this checkout.
        assert f"playbook: {installed['path'] / 'playbooks' / playbook}.yml" in done.stdout


def test_every_module_documents_itself_from_the_install(installed):
    modules = sorted(path.stem for path in (installed["path"] / "plugins" / "modules").glob("*.py"))
    names = [f"classifiedads.consolidation.{name}" for name in modules]
    done = subprocess.run([str(BIN / "ansible-doc"), "--json", *names],
                          env=installed["env"], cwd=installed["home"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    documented = json.loads(done.stdout)
    assert sorted(documented) == names
    # Doc fragments are resolved from the install: the shared connection options reach every module that uses them.
    connecting = [name for name in modules if "- classifiedads.consolidation.connection\n" in
                  (installed["path"] / "plugins" / "modules" / f"{name}.py").read_text()]
    assert len(connecting) > 10
    for name in connecting:
        assert {"source", "target"} <= set(documented[f"classifiedads.consolidation.{name}"]["doc"]["options"])


@pytest.fixture
def legacy_installed(source_cluster, target_cluster):
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)
    yield
    legacy.drop(source_cluster, prefix=PREFIX)
    drop_database(target_cluster, TARGET_DB)


def test_consolidate_runs_from_the_install(installed, legacy_installed, source_cluster, target_cluster,
                                           run_playbook, tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"consolidation_controller": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}}}))
    variables = consolidation_vars(source_cluster, target_cluster, tmp_path, TARGET_DB, PREFIX)
    done = run_playbook("classifiedads.consolidation.consolidate", variables=variables, inventory=inventory,
                        env=installed["env"], cwd=installed["home"])
    assert "PASSED" in done.output and done.changed > 0
