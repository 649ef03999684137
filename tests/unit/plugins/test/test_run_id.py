"""The run-id Jinja test (plugins/test/run_id.py): the roles' check is the modules' rule."""

from __future__ import annotations

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import runfiles
from ansible_collections.classifiedads.consolidation.plugins.test import run_id


@pytest.mark.parametrize("value", ["20261124T040000Z", "a", "run-1.retry_2", "9" * 64])
def test_letters_digits_dots_underscores_and_dashes_are_a_run_id(value):
    assert run_id.run_id(value) is True


@pytest.mark.parametrize("value", ["", ".hidden", "-x", "_x", "run/1", "../x", "run 1", "9" * 65, HOSTILE,
                                   None, 20261124, ["run1"]])
def test_anything_else_is_not(value):
    assert run_id.run_id(value) is False


@pytest.mark.parametrize("value", ["ok-1", "not/ok", "x" * 65])
def test_the_test_agrees_with_the_modules_check(value):
    assert run_id.run_id(value) is (runfiles.run_id_problem(value) is None)


def test_the_test_is_published_as_run_id():
    assert run_id.TestModule().tests() == {"run_id": run_id.run_id}
