"""What a decommission reports, from plain data: the summary line, the table, the failure message."""

from __future__ import annotations

from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils.decommission import Decommission
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal
from ansible_collections.classifiedads.consolidation.plugins.module_utils.retire import guard

PARAMS = {"source": {"host": "db1", "port": 5432}, "databases": ["ClassifiedAds_Product", HOSTILE],
          "run_dir": "/runs/run-1"}


def item(database, action, **extra):
    base = dict(database=database, action=action, mode="rename", retired_name=database + "_retired_20261124",
                owner="app", sessions=[], terminated=[], note=None,
                final_backup={"state": "ok", "reason": "verified"}, properties=None)
    base.update(extra)
    return base


def decommission(check_mode=False, **state):
    subject = Decommission(PARAMS, QueryJournal(check_mode=check_mode))
    for key, value in state.items():
        setattr(subject, key, value)
    return subject


def test_the_summary_names_what_is_retired_already_retired_and_still_to_back_up():
    items = [item("ClassifiedAds_Product", "retire"), item(HOSTILE, "already_retired")]
    done = decommission(items=items, to_retire=["ClassifiedAds_Product"], pending=["ClassifiedAds_Product"])
    assert done.summary() == ("retired 1 database(s): ClassifiedAds_Product; already retired: " + HOSTILE
                              + "; final backup still to take: ClassifiedAds_Product")
    planned = decommission(check_mode=True, items=items, to_retire=["ClassifiedAds_Product"])
    assert planned.summary().startswith("would retire 1 database(s): ClassifiedAds_Product")
    assert decommission().summary() == "retired 0 database(s)"


def test_the_table_has_a_line_per_database_with_terminated_sessions_and_notes():
    items = [item("ClassifiedAds_Product", "retire", terminated=[{"pid": 4242}, {"pid": 4243}]),
             item(HOSTILE, "already_retired", mode="drop", retired_name=None, final_backup=None,
                  note="the retired database x no longer exists")]
    lines = decommission(items=items).table().split("\n")
    assert lines[0].split() == ["database", "action", "mode", "retired", "as", "final", "backup", "note"]
    assert lines[2].split() == ["ClassifiedAds_Product", "retire", "rename", "ClassifiedAds_Product_retired_20261124",
                                "ok", "terminated", "2", "session(s):", "4242,", "4243"]
    assert lines[3].startswith(HOSTILE + "  ")
    assert lines[3][len(HOSTILE):].split(None, 4) == ["already_retired", "drop", "-", "-",
                                                      "the retired database x no longer exists"]
    check_lines = decommission(check_mode=True, items=items[:1]).table().split("\n")
    assert "would terminate 2 session(s): 4242, 4243" in check_lines[2]


def test_a_refusal_names_the_guards_and_any_other_failure_says_failed():
    guards = [guard("mapping", []), guard("confirmation", ["not confirmed: " + HOSTILE])]
    assert decommission(guards=guards, refused=True).failure_message(["confirmation: x"]) == (
        "decommission refused by guard confirmation: confirmation: not confirmed: " + HOSTILE)
    assert decommission().failure_message(["connection refused", "again"]) == (
        "decommission failed: connection refused; again")


def test_nothing_is_changed_before_apply_starts():
    items = [item("ClassifiedAds_Product", "retire")]
    assert decommission(items=items).result()["changed"] is False
    assert decommission(items=items, started=True).result()["changed"] is True
    assert decommission(items=[item(HOSTILE, "already_retired")], started=True).result()["changed"] is False
