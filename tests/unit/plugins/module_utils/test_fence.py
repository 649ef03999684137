"""The write fence's decisions, from plain data: which databases are fenced, which sessions may still write,
where a database is to lift it, and the contract rule that ``none`` needs a reason."""

from __future__ import annotations

import datetime

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import fence as f
from ansible_collections.classifiedads.consolidation.plugins.module_utils import rowdiff, verify_report
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import PlanError, fence_plan, run_plan

FENCED_AT = datetime.datetime(2026, 11, 24, 4, 0, 0, 500000, tzinfo=datetime.UTC)


def at(seconds):
    return FENCED_AT + datetime.timedelta(seconds=seconds)


# -- reading the catalog ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["on", "ON", "true", "t", "yes", "y", "1", " on "])
def test_every_spelling_postgresql_reads_as_true_is_a_fence(value):
    assert f.is_fenced(["search_path=public", f"default_transaction_read_only={value}"])


@pytest.mark.parametrize("value", ["off", "false", "f", "no", "n", "0", "o", ""])
def test_off_and_ambiguous_values_are_no_fence(value):
    assert not f.is_fenced([f"default_transaction_read_only={value}"])


def test_a_database_without_the_setting_is_not_fenced():
    assert not f.is_fenced(None)
    assert not f.is_fenced(["search_path=public", "default_transaction_isolation=serializable"])


def test_fence_actions_fence_what_is_open_and_keep_the_recorded_time_of_what_is_fenced():
    catalog = {"A": {"settings": []}, HOSTILE: {"settings": ["default_transaction_read_only=on"]},
               "C": {"settings": ["default_transaction_read_only=on"]}, "D": {"settings": ["x.y=1"]}}
    record = {"databases": [{"database": HOSTILE, "state": "fenced", "fenced_at": "2026-11-24T04:00:00.500000Z"},
                            {"database": "D", "state": "fenced", "fenced_at": "2026-11-24T04:00:00.500000Z"}]}
    actions = f.fence_actions(["A", HOSTILE, "C", "D", "E"], catalog, record)
    assert actions == {"A": ("fence", None), HOSTILE: ("already_fenced", FENCED_AT),
                       # fenced without a record of this run: the time is unknown, every session counts as older
                       "C": ("already_fenced", None),
                       # recorded, but someone reset it since: fenced again
                       "D": ("fence", None), "E": ("missing", None)}


def test_a_lifted_entry_gives_no_fence_time():
    catalog = {"A": {"settings": ["default_transaction_read_only=on"]}}
    record = {"databases": [{"database": "A", "state": "lifted", "fenced_at": "2026-11-24T04:00:00.500000Z"}]}
    assert f.fence_actions(["A"], catalog, record) == {"A": ("already_fenced", None)}


# -- which sessions may still write -------------------------------------------------------------


def test_only_sessions_older_than_the_fence_are_ended():
    sessions = [{"pid": 1, "backend_start": at(-3600)}, {"pid": 2, "backend_start": at(-0.000001)},
                {"pid": 3, "backend_start": FENCED_AT}, {"pid": 4, "backend_start": at(5)}]
    assert [s["pid"] for s in f.sessions_to_end(sessions, FENCED_AT)] == [1, 2]


def test_a_session_whose_start_this_login_cannot_see_counts_as_older():
    sessions = [{"pid": 7, "backend_start": None}, {"pid": 8, "backend_start": at(1)}]
    assert [s["pid"] for s in f.sessions_to_end(sessions, FENCED_AT)] == [7]


def test_no_session_no_end():
    assert f.sessions_to_end([], FENCED_AT) == []


def test_a_reported_session_carries_no_query_and_a_utc_start():
    session = {"pid": 5, "database": "A", "user": "app", "application": "worker", "client_addr": "10.0.0.5",
               "state": "idle", "backend_type": "client backend", "backend_start": FENCED_AT, "query": "UPDATE ..."}
    public = f.public_session(session)
    assert public == {"pid": 5, "database": "A", "user": "app", "application": "worker", "client_addr": "10.0.0.5",
                      "state": "idle", "backend_start": "2026-11-24T04:00:00.500000Z"}


# -- where to lift ------------------------------------------------------------------------------


def test_lift_finds_a_database_by_its_name_or_its_retired_name():
    catalog = {"A": {}, "B_retired_20261124": {}}
    renamed = {"database": "B", "mode": "rename", "retired_name": "B_retired_20261124"}
    assert f.lift_name("A", catalog, None) == "A"
    assert f.lift_name("B", catalog, renamed) == "B_retired_20261124"
    # dropped, or its retired copy is gone too: nothing to lift
    assert f.lift_name("C", catalog, {"database": "C", "mode": "drop", "retired_name": None}) is None
    assert f.lift_name("D", catalog, {"database": "D", "mode": "rename", "retired_name": "D_retired_1"}) is None


def test_a_database_back_under_its_own_name_is_lifted_there():
    catalog = {"B": {}, "B_retired_20261124": {}}
    assert f.lift_name("B", catalog, {"mode": "rename", "retired_name": "B_retired_20261124"}) == "B"


# -- the record ---------------------------------------------------------------------------------


def test_the_record_must_be_this_runs_fence_record():
    assert f.record_problems(f.new_record("run-1"), "run-1") == []
    assert f.record_problems(f.new_record("run-0"), "run-1") == [
        "fence.json belongs to run 'run-0', not to run 'run-1'"]
    assert f.record_problems({"kind": "something else"}, "run-1") == ["fence.json is not a fence record"]
    assert f.record_problems(dict(f.new_record("run-1"), format=9), "run-1") == [
        "fence.json has format 9; this collection reads 1"]


# -- the contract -------------------------------------------------------------------------------


def test_read_only_is_the_fence_and_needs_no_reason():
    assert fence_plan("read_only", None) == {"mode": "read_only", "reason": None}


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_none_without_a_reason_is_refused_naming_the_variable(reason):
    with pytest.raises(PlanError) as raised:
        fence_plan("none", reason)
    assert "give consolidation_fence_reason" in raised.value.problems[0]
    assert "consolidation_fence none leaves the legacy databases writable" in raised.value.problems[0]


def test_none_with_a_reason_keeps_it():
    assert fence_plan("none", "  replica promoted for the window ") == {
        "mode": "none", "reason": "replica promoted for the window"}


def test_an_unknown_fence_is_refused():
    with pytest.raises(PlanError, match="consolidation_fence must be one of read_only, none, got 'readonly'"):
        fence_plan("readonly", None)


def test_the_published_plan_carries_the_fence():
    facts = {"databases": {}}
    plan = run_plan("r1", False, "/runs", "/backups", "existing", "T", [], [], {"host": "a", "port": 1},
                    {"host": "b", "port": 1}, facts, {}, fence=fence_plan("none", "why"))
    assert plan["fence"] == {"mode": "none", "reason": "why"}
    assert plan["files"]["fence_record"] == "/runs/r1/fence.json"
    assert run_plan("r1", False, "/runs", "/backups", "existing", "T", [], [], {"host": "a", "port": 1},
                    {"host": "b", "port": 1}, facts, {})["fence"] == {"mode": "read_only", "reason": None}


# -- the verification report --------------------------------------------------------------------


def report(fence):
    return verify_report.build_report(dict(run_id="r1", backup_set="r1", generated_at="2026-11-24T04:00:00Z",
                                           target_database="T", checksum=True, check_sequences=True,
                                           servers={}, fence=fence), [], [], rowdiff.summarize([], []))


def test_the_report_names_a_waived_fence_and_its_reason_literally():
    waived = report({"mode": "none", "reason": "replica | promoted *now*"})
    assert waived["fence"] == {"mode": "none", "reason": "replica | promoted *now*"}
    assert ("- write fence: **none**, the legacy databases stayed writable; reason given: "
            "`replica | promoted *now*`") in verify_report.render_markdown(waived)


def test_the_report_says_the_legacy_databases_refused_writes():
    markdown = verify_report.render_markdown(report({"mode": "read_only", "reason": None}))
    assert "- write fence: `read_only` (the legacy databases refused writes during the window)" in markdown


def test_a_report_without_a_fence_says_nothing_about_it():
    assert "write fence" not in verify_report.render_markdown(report(None))


def test_the_lift_undoes_only_a_fence_this_run_set():
    ours = {"database": "A", "state": "fenced", "preexisting": False}
    assert f.lift_action(True, "A", ours) == "lift"
    assert f.lift_action(True, "A", dict(ours, preexisting=True)) == "not_ours"
    assert f.lift_action(True, "A", None) == "not_ours"  # no record of ours: never made writable blindly
    assert f.lift_action(False, "A", ours) == "not_fenced"
    assert f.lift_action(False, None, ours) == "absent"
