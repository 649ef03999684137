"""Every role documents and declares the same variables (defaults/main.yml vs meta/argument_specs.yml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(path for path in (Path(__file__).resolve().parents[3] / "roles").iterdir() if path.is_dir())


def declared(role: Path) -> set[str]:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return {name for entry in specs.values() for name in (entry.get("options") or {})}


@pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])
def test_defaults_are_declared_and_prefixed(role):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    assert set(defaults) <= declared(role), f"undeclared in meta/argument_specs.yml: {set(defaults) - declared(role)}"
    assert all(name.startswith(role.name + "_") for name in defaults), sorted(defaults)


@pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])
def test_declared_variables_are_prefixed(role):
    assert all(name.startswith(role.name + "_") for name in declared(role)), sorted(declared(role))
