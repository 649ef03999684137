"""Decommission guards and decisions, from plain data: each guard passes, and each refusal says why."""

from __future__ import annotations

import datetime

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import display, verify_report
from ansible_collections.classifiedads.consolidation.plugins.module_utils import retire as r

DATABASES = ["ClassifiedAds_Product", "ClassifiedAds_Identity", HOSTILE]
PLAN = {"run_id": "run-1", "mode": "existing", "target_database": "ClassifiedAds",
        "modules": [{"source_database": name} for name in DATABASES]}
REPORT_PATH = "/runs/run-1/verification.json"
REPORT_TIME = datetime.datetime(2026, 11, 24, 4, 0, 0, tzinfo=datetime.UTC)


def report(**overrides):
    base = {"kind": verify_report.REPORT_KIND, "run_id": "run-1", "backup_set": "run-1", "passed": True,
            "generated_at": "2026-11-24T04:00:00Z", "summary": {"failed": 0, "sequences_failed": 0},
            "tables": [{"source_database": name, "state": "match"} for name in DATABASES]}
    base.update(overrides)
    return base


def final(**overrides):
    entry = {"database": "ClassifiedAds_Product", "label": "final", "file": "ClassifiedAds_Product.final.dump",
             "verified": True, "sha256": "ab" * 32, "started_at": "2026-11-24T04:00:03.250000Z"}
    entry.update(overrides)
    return entry


# -- names --------------------------------------------------------------------------------------


def test_retired_name_keeps_the_database_name_and_the_day():
    assert r.retired_name("ClassifiedAds_Product", "20261124") == "ClassifiedAds_Product_retired_20261124"


def test_retired_name_of_a_long_name_fits_63_bytes():
    name = r.retired_name("x" * 63, "20261124")
    assert len(name.encode()) == 63 and name.endswith("_retired_20261124")


def test_retired_name_never_cuts_a_multibyte_character():
    name = r.retired_name("é" * 40, "20261124")
    assert len(name.encode()) <= 63
    assert name.encode().decode() == name and name.startswith("é" * 23)


def test_hostile_names_are_kept_verbatim():
    assert r.retired_name(HOSTILE, "20261124") == HOSTILE + "_retired_20261124"


def test_report_and_manifest_times_both_parse():
    assert display.parse_utc("2026-11-24T04:00:00Z") == REPORT_TIME
    assert display.parse_utc("2026-11-24T04:00:00.000001Z") > REPORT_TIME
    assert display.parse_utc("yesterday") is None and display.parse_utc(None) is None


# -- guard: mapping -----------------------------------------------------------------------------


def test_the_runs_own_databases_pass_the_mapping_guard():
    assert r.check_mapping(DATABASES, PLAN) == []


def test_a_database_outside_the_mapping_is_refused():
    problems = r.check_mapping(DATABASES + ["Payroll"], PLAN)
    assert problems == ["not a legacy database of run run-1 (its mapping has ClassifiedAds_Product, "
                        f"ClassifiedAds_Identity, {HOSTILE}): Payroll"]


@pytest.mark.parametrize("name", ["postgres", "template1", "ClassifiedAds", "maint"])
def test_system_target_and_maintenance_databases_are_never_retired(name):
    plan = dict(PLAN, modules=PLAN["modules"] + [{"source_database": name}])
    problems = r.check_mapping([name], plan, protected=["maint"])
    assert problems == [f"never touched (the consolidated, a maintenance or a template database): {name}"]


def test_without_plan_or_with_a_fresh_run_nothing_is_retired():
    assert r.check_mapping(DATABASES, None) == ["the run directory has no plan.json: it is not a consolidation run"]
    assert "fresh deployment" in r.check_mapping(DATABASES, dict(PLAN, mode="fresh"))[0]
    assert r.check_mapping([], PLAN) == ["no database was given"]
    assert r.check_mapping(DATABASES[:1] * 2, PLAN) == ["listed more than once: ClassifiedAds_Product"]


# -- guard: verification ------------------------------------------------------------------------


def test_a_passing_report_of_this_run_and_set_passes():
    assert r.check_verification(report(), REPORT_PATH, "run-1", "run-1", DATABASES) == []


def test_a_missing_report_is_refused():
    assert r.check_verification(None, REPORT_PATH, "run-1", "run-1", DATABASES) == [
        f"no verification report at {REPORT_PATH}: run the verification (plan step 5) of run run-1 first"]


def test_something_else_is_not_a_report():
    assert r.check_verification({"passed": True}, REPORT_PATH, "run-1", "run-1", DATABASES) == [
        f"{REPORT_PATH} is not a verification report"]


def test_a_failing_report_is_refused():
    problems = r.check_verification(report(passed=False, summary={"failed": 2, "sequences_failed": 0}),
                                    REPORT_PATH, "run-1", "run-1", DATABASES)
    assert problems == [f"the verification report {REPORT_PATH} did not pass (2 table(s) failed, 0 sequence(s) failed)"]


def test_a_truthy_but_not_true_verdict_is_refused():
    assert r.check_verification(report(passed="yes"), REPORT_PATH, "run-1", "run-1", DATABASES)


def test_a_report_of_another_backup_set_or_run_is_refused():
    problems = r.check_verification(report(backup_set="run-0", run_id="run-0"), REPORT_PATH, "run-1", "run-1",
                                    DATABASES)
    assert problems == [f"the verification report {REPORT_PATH} belongs to run 'run-0', not 'run-1'",
                        f"the verification report {REPORT_PATH} was made for backup set 'run-0', not 'run-1'"]


def test_a_report_that_does_not_cover_a_database_is_refused():
    partial = report(tables=[{"source_database": "ClassifiedAds_Product"}])
    problems = r.check_verification(partial, REPORT_PATH, "run-1", "run-1", DATABASES)
    assert problems == [f"the verification report {REPORT_PATH} does not cover ClassifiedAds_Identity, {HOSTILE}"]


# -- guard: confirmation ------------------------------------------------------------------------


def test_naming_exactly_the_databases_confirms_in_any_order():
    assert r.check_confirmation(list(reversed(DATABASES)), DATABASES) == []


def test_a_missing_database_refuses():
    problems = r.check_confirmation(DATABASES[:2], DATABASES)
    assert problems[0] == f"not confirmed: {HOSTILE}"
    assert problems[-1].startswith("the confirmation must name exactly the databases to retire: ")


def test_a_typo_refuses():
    problems = r.check_confirmation(["ClassifiedAds_Prodcut", "ClassifiedAds_Identity", HOSTILE], DATABASES)
    assert problems[:2] == ["not confirmed: ClassifiedAds_Product",
                            "confirmed but not a database of this decommission (a typo?): ClassifiedAds_Prodcut"]


def test_no_confirmation_refuses():
    assert r.check_confirmation([], DATABASES)[0] == "not confirmed: " + ", ".join(DATABASES)
    assert r.check_confirmation(None, DATABASES)


# -- guard: final backup ------------------------------------------------------------------------


def test_a_verified_matching_final_archive_after_the_report_is_ok():
    assert r.final_archive_state(final(), None, REPORT_TIME)[0] == "ok"


def test_final_archive_states_say_what_is_wrong():
    assert r.final_archive_state(None, None, REPORT_TIME) == ("missing", "no final archive in the backup set")
    assert r.final_archive_state(final(verified=False), None, REPORT_TIME)[0] == "unverified"
    damaged = r.final_archive_state(final(), "archive /b/x.final.dump does not match the manifest", REPORT_TIME)
    assert damaged == ("damaged", "archive /b/x.final.dump does not match the manifest")


def test_a_final_archive_taken_before_the_report_is_stale():
    state, reason = r.final_archive_state(final(started_at="2026-11-24T03:59:59.999999Z"), None, REPORT_TIME)
    assert state == "stale"
    assert "ClassifiedAds_Product.final.dump was taken at 2026-11-24T03:59:59.999999Z, before the verification" \
           " report" in reason


def test_final_backup_guard_lists_each_database():
    states = {"ClassifiedAds_Product": ("ok", "fine"), "ClassifiedAds_Identity": ("missing", "no final archive")}
    assert r.check_final_backup(states) == (["ClassifiedAds_Identity: no final archive"], [])


def test_a_final_backup_about_to_be_taken_is_pending_but_a_stale_one_is_not():
    states = {"A": ("missing", "m"), "B": ("damaged", "d"), "C": ("stale", "s"), "D": ("unverified", "u")}
    problems, pending = r.check_final_backup(states, backup_pending=True)
    assert problems == ["C: s"] and pending == ["A", "B", "D"]


# -- guard: sessions ----------------------------------------------------------------------------


SESSION = {"pid": 4242, "user": "webapi", "application": "ClassifiedAds.WebAPI", "client_addr": "10.0.0.7",
           "state": "idle"}


def test_connected_sessions_refuse_and_are_listed():
    problems = r.check_sessions({"ClassifiedAds_Product": [SESSION], "ClassifiedAds_Identity": []}, False)
    assert problems == ["1 other session(s) connected to ClassifiedAds_Product: pid 4242, user webapi, application "
                        "'ClassifiedAds.WebAPI', client 10.0.0.7, idle",
                        "stop the application (or set terminate_sessions) and run again"]


def test_sessions_are_no_obstacle_when_they_may_be_terminated_or_there_are_none():
    assert r.check_sessions({"ClassifiedAds_Product": [SESSION]}, True) == []
    assert r.check_sessions({"ClassifiedAds_Product": []}, False) == []


# -- decisions ----------------------------------------------------------------------------------


CATALOG = {"ClassifiedAds_Product": {"allow_connections": True}}


def test_an_existing_database_is_renamed_by_default():
    assert r.decide("ClassifiedAds_Product", None, CATALOG, "rename", "20261124") == dict(
        action="retire", mode="rename", retired_name="ClassifiedAds_Product_retired_20261124")


def test_drop_mode_drops():
    assert r.decide("ClassifiedAds_Product", None, CATALOG, "drop", "20261124")["mode"] == "drop"


def test_a_taken_retired_name_refuses_clearly():
    catalog = dict(CATALOG, ClassifiedAds_Product_retired_20261124={"allow_connections": False})
    decision = r.decide("ClassifiedAds_Product", None, catalog, "rename", "20261124")
    assert decision["action"] is None
    assert "a database named ClassifiedAds_Product_retired_20261124 already exists" in decision["problem"]


def test_a_database_retired_per_the_record_is_left_alone():
    entry = {"database": "ClassifiedAds_Product", "state": "retired", "mode": "rename",
             "retired_name": "ClassifiedAds_Product_retired_20261123"}
    catalog = {"ClassifiedAds_Product_retired_20261123": {"allow_connections": False}}
    decision = r.decide("ClassifiedAds_Product", entry, catalog, "rename", "20261124")
    assert decision["action"] == "already_retired" and decision["note"] is None
    dropped = dict(entry, mode="drop", retired_name=None)
    assert r.decide("ClassifiedAds_Product", dropped, {}, "rename", "20261124")["action"] == "already_retired"


def test_a_retired_database_that_is_back_refuses():
    entry = {"database": "ClassifiedAds_Product", "state": "retired", "mode": "drop", "retired_at": "T"}
    assert "exists although decommission.json records it as retired" in r.decide(
        "ClassifiedAds_Product", entry, CATALOG, "rename", "20261124")["problem"]


def test_an_interrupted_run_is_resumed_from_the_record():
    pending = {"database": "ClassifiedAds_Product", "state": "pending", "mode": "rename",
               "retired_name": "ClassifiedAds_Product_retired_20261123"}
    renamed = {"ClassifiedAds_Product_retired_20261123": {"allow_connections": False}}
    assert r.decide("ClassifiedAds_Product", pending, renamed, "rename", "20261124")["action"] == "record"
    assert r.decide("ClassifiedAds_Product", pending, CATALOG, "rename", "20261124")["action"] == "retire"
    dropped = dict(pending, mode="drop")
    assert r.decide("ClassifiedAds_Product", dropped, {}, "drop", "20261124")["action"] == "record"


def test_a_missing_database_the_record_does_not_know_refuses():
    decision = r.decide("ClassifiedAds_Product", None, {}, "rename", "20261124")
    assert decision["problem"] == ("ClassifiedAds_Product does not exist on the source server and decommission.json "
                                   "does not record it as retired")


def test_the_databases_guard_refuses_a_rolled_back_run_and_colliding_names():
    record = {"databases": [{"database": "A", "state": "rolled_back", "rolled_back_at": "2026-11-24T05:00:00Z"}]}
    decisions = {"A" * 60 + "1": {"action": "retire", "retired_name": "same"},
                 "A" * 60 + "2": {"action": "retire", "retired_name": "same"}}
    problems = r.check_databases(decisions, record, "run-1")
    assert problems[0].startswith("run run-1 was rolled back (A at 2026-11-24T05:00:00Z)")
    assert problems[1].endswith("would both be renamed to same")


# -- the record ---------------------------------------------------------------------------------


def test_the_record_belongs_to_one_run_and_set():
    record = r.new_record("run-1", "run-1")
    assert r.record_problems(record, "run-1", "run-1") == []
    assert "belongs to run 'run-1'" in r.record_problems(record, "run-2", "run-2")[0]
    assert r.record_problems({"databases": []}, "run-1", "run-1") == ["decommission.json is not a decommission record"]


def test_entries_are_replaced_not_duplicated():
    record = r.with_entry(r.new_record("run-1", "run-1"), {"database": "B", "state": "pending"})
    record = r.with_entry(record, {"database": "A", "state": "retired"})
    record = r.with_entry(record, {"database": "B", "state": "retired"})
    states = [(entry["database"], entry["state"]) for entry in record["databases"]]
    assert states == [("A", "retired"), ("B", "retired")]
    assert r.record_entry(record, "B")["state"] == "retired" and r.record_entry(record, "C") is None


def test_the_refusal_names_every_failed_guard():
    guards = [r.guard("mapping", []), r.guard("verification", ["no report"]), r.guard("confirmation", ["typo"])]
    assert r.refusal_message(guards) == ("decommission refused by guards verification, confirmation: "
                                         "verification: no report | confirmation: typo")
    assert r.refusal_message(guards[:2]).startswith("decommission refused by guard verification: ")


def test_a_report_without_a_time_is_refused_and_the_final_backup_is_not_judged_against_it():
    problems = r.check_verification(report(generated_at=None), REPORT_PATH, "run-1", "run-1", DATABASES)
    assert problems == [f"the verification report {REPORT_PATH} has no valid generated_at time"]
    assert r.final_archive_state(final(), None, None)[0] == "ok"
