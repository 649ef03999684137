"""Which Compose services run (plugins/filter/compose.py), from both shapes of ``ps --format json``."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.classifiedads.consolidation.plugins.filter import compose

SERVICES = ["webapi", "background"]


def container(service, state):
    return {"Name": f"classifiedads-{service}-1", "Service": service, "State": state, "Status": state}


def per_line(*rows):
    """Compose 2.21 and later: one object per line."""
    return "\n".join(json.dumps(row) for row in rows) + "\n"


def one_array(*rows):
    """Compose before 2.21: one array."""
    return json.dumps(list(rows)) + "\n"


@pytest.mark.parametrize("shape", [per_line, one_array], ids=["one object per line", "one array"])
def test_running_and_restarting_containers_run_the_others_do_not(shape):
    output = shape(container("webapi", "running"), container("background", "exited"))
    assert compose.compose_state(output, SERVICES) == {"running": ["webapi"], "stopped": ["background"]}
    output = shape(container("webapi", "restarting"), container("background", "running"))
    assert compose.compose_state(output, SERVICES) == {"running": SERVICES, "stopped": []}


@pytest.mark.parametrize("output", ["", "\n", "[]", "  [ ]\n"], ids=["nothing", "a blank line", "[]", "padded []"])
def test_no_containers_means_nothing_runs(output):
    assert compose.compose_state(output, SERVICES) == {"running": [], "stopped": SERVICES}


def test_a_service_without_a_container_is_stopped_and_unasked_services_are_ignored():
    output = per_line(container("migrator", "running"), container("background", "created"))
    assert compose.compose_state(output, SERVICES) == {"running": [], "stopped": SERVICES}


def test_the_result_keeps_the_order_of_the_services():
    output = per_line(container("webapi", "running"), container("background", "running"))
    assert compose.compose_state(output, ["background", "webapi"])["running"] == ["background", "webapi"]


def test_one_running_container_of_a_scaled_service_is_enough():
    output = per_line(container("webapi", "exited"), container("webapi", "running"))
    assert compose.compose_state(output, ["webapi"]) == {"running": ["webapi"], "stopped": []}


def test_lines_are_read_with_surrounding_blanks_and_empty_lines():
    output = "\n  " + json.dumps(container("webapi", "running")) + "  \n\n"
    assert compose.compose_state(output, SERVICES)["running"] == ["webapi"]


def test_output_that_is_not_json_is_an_error_that_says_so():
    with pytest.raises(AnsibleFilterError, match="docker compose ps --format json printed something that is not JSON"):
        compose.compose_state("NAME  SERVICE  STATUS\n", SERVICES)


def test_the_filter_is_published_as_compose_state():
    assert compose.FilterModule().filters() == {"compose_state": compose.compose_state}
