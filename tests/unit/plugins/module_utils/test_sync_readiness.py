"""Whether an online run can be cut over (plugins/module_utils/sync_readiness.py), case by case."""

from __future__ import annotations

from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_readiness import cutover_problems

SLOT = "classifiedads_1b2c3d4e_a1b2c3_legacy_product"


def entry(database="Legacy_Product", slot_exists=True, **applier):
    return {"source_database": database, "slot_name": SLOT, "slot_exists": slot_exists,
            "applier": dict({"state": "streaming", "pid": 4242, "alive": True, "error": None, "restarts": 0},
                            **applier)}


def test_an_applier_stopped_for_good_refuses_the_cutover_with_its_error():
    failed = entry(state="failed", alive=False,
                   error='legacy table public."Products" no longer matches product."Products": column Note added')
    assert cutover_problems([failed, entry("Legacy_Identity")]) == [
        'the applier of Legacy_Product stopped for good: legacy table public."Products" no longer matches '
        'product."Products": column Note added']


def test_a_process_gone_without_saying_so_may_still_be_cut_over():
    # The cutover starts a dead applier again (it resumes from its slot) before it waits for it.
    assert cutover_problems([entry(alive=False), entry("Legacy_Identity", state=None, pid=None, alive=False)]) == []


def test_a_missing_slot_cannot_be_caught_up_and_names_the_way_out():
    [problem] = cutover_problems([entry(slot_exists=False, state=None, pid=None, alive=False)])
    assert problem.startswith("Legacy_Product has no replication slot " + SLOT)
    assert "rollback.yml" in problem and "sync.yml" in problem


def test_every_database_in_step_may_be_cut_over():
    assert cutover_problems([entry(), entry("Legacy_Identity", state="stopped", alive=False)]) == []
