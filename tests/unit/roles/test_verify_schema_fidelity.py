"""The verify role enforces schema fidelity where the schema was made from the legacy one, and only reports it where
an application's migrator made it."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "verify"


def default_for(**variables):
    template = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["verify_schema_fidelity"]
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(**variables)


@pytest.mark.parametrize("variables, expected", [
    ({"migrator_mode": "source_ddl"}, "enforce"),
    ({"migrator_mode": "command"}, "report"),
    ({"migrator_mode": "none"}, "report"),
    ({}, "report"),
])
def test_the_default_follows_the_migrator_mode(variables, expected):
    assert default_for(**variables) == expected


def test_the_module_gets_it_and_the_choices_are_the_modules():
    [task] = [task for task in yaml.safe_load((ROLE / "tasks" / "verify.yml").read_text())
              if "classifiedads.consolidation.row_count_diff" in task]
    assert task["classifiedads.consolidation.row_count_diff"]["schema_fidelity"] == "{{ verify_schema_fidelity }}"
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    assert specs["argument_specs"]["main"]["options"]["verify_schema_fidelity"]["choices"] == [
        "enforce", "report", "off"]
