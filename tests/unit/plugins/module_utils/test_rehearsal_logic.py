"""The rehearsal's pure decisions: the scratch database's name, what to do with one found, the phase times."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils.preflight import (
    rehearsal_facts,
    rehearsal_run_id,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.rehearsal import (
    RehearsalError,
    is_ours,
    mark,
    phase_report,
    scratch_action,
    scratch_database,
)


def test_the_scratch_database_sits_beside_the_target_unless_named():
    assert scratch_database("ClassifiedAds") == "ClassifiedAds_rehearsal"
    assert scratch_database("ClassifiedAds", "Dress") == "Dress"


def test_the_scratch_database_is_never_the_target_itself():
    with pytest.raises(RehearsalError, match="is the target database itself"):
        scratch_database("ClassifiedAds", "ClassifiedAds")


def test_a_scratch_name_past_63_bytes_names_the_variable_to_set():
    with pytest.raises(RehearsalError, match="consolidation_rehearsal_database"):
        scratch_database("x" * 60)


@pytest.mark.parametrize(("exists", "comment", "state", "action"), [
    (False, None, "present", "create"),
    (True, mark("r1"), "present", "replace"),
    (True, mark("r1"), "absent", "drop"),
    (False, None, "absent", "none"),
    (True, None, "present", "refuse"),
    (True, "the accounting copy", "absent", "refuse"),
])
def test_only_a_database_carrying_the_rehearsal_mark_is_ever_dropped(exists, comment, state, action):
    assert scratch_action(exists, comment, state) == action


def test_the_mark_names_the_run_and_is_recognised():
    assert "run 20261204T230000Z-rehearsal" in mark("20261204T230000Z-rehearsal")
    assert is_ours(mark("x")) and not is_ours("") and not is_ours(None)


def test_phase_times_come_from_consecutive_clock_readings():
    report = phase_report([["schemas", 100.0], ["migrator", 100.4], ["copy", 103.0], ["verify", 110.25],
                           ["end", 111.0]])
    assert report["phases"] == [{"phase": "schemas", "seconds": 0.4}, {"phase": "migrator", "seconds": 2.6},
                                {"phase": "copy", "seconds": 7.2}, {"phase": "verify", "seconds": 0.8}]
    assert report["total_seconds"] == 11.0
    assert report["lines"][-1].startswith("total") and "backup" in report["lines"][-1]


def test_the_window_estimate_says_whether_it_holds_the_backup():
    marks = [["copy", 1.0], ["end", 3.0]]
    assert "plus the backup of the fenced databases" in phase_report(marks, "before_copy")["lines"][-1]
    after = phase_report(marks, "after_start")["lines"][-1]
    assert "plus the cutover and the application's restart; the backup of the fenced databases follows" in after


def test_an_unfinished_rehearsal_reports_the_phases_it_finished():
    assert phase_report([["schemas", 1.0], ["migrator", 2.0]])["phases"] == [{"phase": "schemas", "seconds": 1.0}]
    assert phase_report([])["total_seconds"] == 0


def test_a_rehearsal_plans_a_new_scratch_database_whatever_an_earlier_one_holds():
    facts = {"database_exists": True, "schemas": {"identity": {"owned_by_login": False}}, "createdb": True}
    assert rehearsal_facts(facts) == {"database_exists": False, "schemas": {}, "createdb": True}


def test_a_rehearsal_run_id_is_new_and_says_so():
    moment = datetime.datetime(2026, 12, 4, 23, 0, 0, tzinfo=datetime.UTC)
    assert rehearsal_run_id("", moment) == "20261204T230000Z-rehearsal"
    assert rehearsal_run_id("dress-1") == "dress-1"
