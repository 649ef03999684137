"""Online mode's status lines and the cutover's readiness (plugins/module_utils/sync_report.py), case by case."""

from __future__ import annotations

from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_report import (
    cutover_problems,
    status_lines,
)

SLOT = "classifiedads_1b2c3d4e_a1b2c3_legacy_product"


def entry(database="Legacy_Product", slot_exists=True, **applier):
    return {"source_database": database, "slot_name": SLOT, "slot_exists": slot_exists, "slot_active": slot_exists,
            "wal_retained": "1024 kB", "lag_bytes": 4096 if slot_exists else None,
            "lag_seconds": 1.25 if slot_exists else None, "transactions": 12, "rows": 40,
            "applier": dict({"state": "streaming", "pid": 4242, "alive": True, "error": None, "restarts": 0},
                            **applier)}


def test_a_streaming_database_reads_as_one_line_with_its_lag_progress_and_retained_wal():
    assert status_lines([entry()]) == [
        f"Legacy_Product: applier streaming (pid 4242); lag 4096 byte(s), 1.2 s; 12 transaction(s), 40 row(s) "
        f"applied; slot {SLOT} retains 1024 kB of WAL on the source"]


def test_a_failed_applier_adds_its_error_and_refuses_the_cutover():
    failed = entry(state="failed", alive=False, restarts=2,
                   error='legacy table public."Products" no longer matches product."Products": column Note added')
    lines = status_lines([failed])
    assert "applier failed (pid 4242, 2 restart(s))" in lines[0]
    assert lines[1] == '  Legacy_Product stopped: legacy table public."Products" no longer matches ' \
                       'product."Products": column Note added'
    [problem] = cutover_problems([failed, entry("Legacy_Identity")])
    assert problem.startswith("the applier of Legacy_Product stopped for good: legacy table")


def test_a_process_gone_without_saying_so_is_named_but_may_still_be_cut_over():
    # The cutover starts a dead applier again (it resumes from its slot) before it waits for it.
    gone = entry(alive=False)
    assert "applier streaming, its process is gone (pid 4242)" in status_lines([gone])[0]
    assert cutover_problems([gone]) == []


def test_a_missing_slot_cannot_be_caught_up_and_names_the_way_out():
    missing = entry(slot_exists=False, state=None, pid=None, alive=False)
    assert status_lines([missing]) == [
        "Legacy_Product: applier not started; no slot; 12 transaction(s), 40 row(s) applied"]
    [problem] = cutover_problems([missing])
    assert SLOT in problem and "rollback.yml" in problem and "sync.yml" in problem


def test_every_database_in_step_may_be_cut_over():
    assert cutover_problems([entry(), entry("Legacy_Identity", state="stopped", alive=False)]) == []
