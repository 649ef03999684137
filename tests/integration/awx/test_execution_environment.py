"""The execution environment's definition, through ansible-builder itself (offline: no image is built)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO

BUILDER = str(Path(sys.executable).parent / "ansible-builder")


def builder(*args, cwd=REPO):
    completed = subprocess.run([BUILDER, *args], capture_output=True, text=True, cwd=cwd, check=False, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_create_writes_a_build_context_offline(tmp_path):
    builder("create", "--file", "execution-environment.yml", "--context", str(tmp_path / "ee"))
    containerfile = next(path for path in (tmp_path / "ee").iterdir() if path.name in ("Containerfile", "Dockerfile"))
    text = containerfile.read_text()
    assert "ansible-core==2.21.5" in text and "ansible-runner==2.4.3" in text
    assert "module enable postgresql:15" in text
    galaxy = yaml.safe_load((tmp_path / "ee" / "_build" / "requirements.yml").read_text())
    assert {entry["name"] for entry in galaxy["collections"]} == {"community.postgresql", "classifiedads.consolidation"}


def test_the_collection_asks_an_image_for_runtime_needs_only(tmp_path):
    """What ansible-builder finds in this collection alone: psycopg2 and the PostgreSQL client, no dev tool."""
    installed = tmp_path / "ansible_collections" / "classifiedads"
    installed.mkdir(parents=True)
    (installed / "consolidation").symlink_to(REPO)
    found = yaml.safe_load(builder("introspect", "--sanitize", str(tmp_path)).split("\n", 1)[1])
    python = [line.split("#")[0].strip() for line in found["python"]]
    assert python == ["psycopg2-binary>=2.9.9"]
    dev_tools = {line.split("==")[0] for line in (Path(REPO) / "requirements.txt").read_text().splitlines()
                 if line and not line.startswith("#")} - {"psycopg2-binary"}
    assert not dev_tools & {requirement.split(">=")[0] for requirement in python}
    system = [line.split("#")[0].strip() for line in found["system"]]
    assert system == ["postgresql [platform:rpm]", "postgresql-client-15 [platform:dpkg]"]
