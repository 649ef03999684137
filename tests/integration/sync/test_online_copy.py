"""data_copy with sync=online against real clusters (wal_level=logical): the copy reads the snapshot its
legacy database's new slot exported, so the copied rows and the slot's stream together hold every write
exactly once; reruns keep a complete copy's slot and replace an incomplete one's."""

from __future__ import annotations

import json

import pytest
from conftest import consolidation_vars, drop_database, endpoint, run_sql
from devkit import legacy as legacy_fixtures
from devkit import migrator
from sync_db import (
    SCHEMA,
    SEEDED,
    Writer,
    copy_args,
    create_database,
    drop_slots,
    ids,
    legacy_pair,
    publications,
    slot_row,
    stream_inserts,
)

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names

pytestmark = pytest.mark.integration


@pytest.fixture
def pair(source_cluster, target_cluster, request):
    prefix = "Oc" + str(abs(hash(request.node.name)) % 10**6)
    legacy, target = legacy_pair(source_cluster, target_cluster, prefix)
    yield legacy, target
    drop_slots(source_cluster, legacy)


def recorded(target_cluster, target, run_id):
    return run_sql(target_cluster, target, "SELECT source_database, slot_name, consistent_point::text, "
                                           "copied_at IS NOT NULL FROM _consolidation.sync_slots WHERE run_id = %s",
                   (run_id,))


def test_the_copy_and_the_stream_hold_every_write_exactly_once(source_cluster, target_cluster, run_module, pair):
    legacy, target = pair
    run_id = "online-1"
    slot = sync_names.slot_name(run_id, legacy)
    writer = Writer(source_cluster, legacy)
    writer.start()
    try:
        writer.wait_for(50)
        result = run_module("data_copy", copy_args(source_cluster, target_cluster, legacy, target, run_id))
        writer.wait_for(50)
    finally:
        committed = writer.stop()
    assert not result["failed"], result.get("msg")
    assert result["changed"]
    [entry] = result["slots"]
    assert entry["action"] == "created" and entry["slot_name"] == slot and entry["publication_name"] == slot
    assert publications(source_cluster, legacy) == [slot]

    copied = ids(target_cluster, target, f"{SCHEMA}.items")
    streamed = [key for table, key in stream_inserts(source_cluster, legacy, slot, slot) if table == "items"]
    assert len(streamed) == len(set(streamed))
    # Rows committed before the slot's consistent point are copied, every later one is in its stream, none in both.
    assert not copied & set(streamed)
    assert copied | set(streamed) == set(range(1, SEEDED + 1)) | committed
    assert set(range(1, SEEDED + 1)) <= copied
    assert streamed and copied & committed, "the writer must have committed on both sides of the consistent point"

    # Nothing has consumed the slot: it still stands at the consistent point the run recorded.
    assert recorded(target_cluster, target, run_id) == [(legacy, slot, entry["consistent_point"], True)]
    assert slot_row(source_cluster, slot)[0] == entry["consistent_point"]


def test_check_mode_creates_no_slot_and_says_which_it_would(source_cluster, target_cluster, run_module, pair):
    legacy, target = pair
    run_id = "online-check"
    slot = sync_names.slot_name(run_id, legacy)
    result = run_module("data_copy", copy_args(source_cluster, target_cluster, legacy, target, run_id), check=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"]
    assert [(entry["slot_name"], entry["action"]) for entry in result["slots"]] == [(slot, "would_create")]
    assert any(f"would create publication and replication slot {slot}" in line for line in result["progress"])
    assert slot_row(source_cluster, slot) is None
    assert publications(source_cluster, legacy) == []
    assert ids(target_cluster, target, f"{SCHEMA}.items") == set()
    # A play in check mode has not created the consolidated database yet: planned from the source alone.
    unborn = run_module("data_copy", copy_args(source_cluster, target_cluster, legacy, f"{target}_Unborn", run_id),
                        check=True)
    assert not unborn["failed"], unborn.get("msg")
    assert [entry["action"] for entry in unborn["slots"]] == ["would_create"]
    assert slot_row(source_cluster, slot) is None and publications(source_cluster, legacy) == []


def test_a_rerun_after_a_complete_online_copy_changes_nothing(source_cluster, target_cluster, run_module, pair):
    legacy, target = pair
    run_id = "online-rerun"
    args = copy_args(source_cluster, target_cluster, legacy, target, run_id)
    first = run_module("data_copy", args)
    assert not first["failed"], first.get("msg")
    second = run_module("data_copy", args)
    assert not second["failed"], second.get("msg")
    assert not second["changed"]
    [entry] = second["slots"]
    assert entry["action"] == "kept" and entry["consistent_point"] == first["slots"][0]["consistent_point"]
    assert all(table["status"] == "skipped_complete" for table in second["tables"])


def test_a_copy_refused_before_any_row_moves_leaves_no_slot(source_cluster, target_cluster, run_module, pair):
    legacy, target = pair
    run_sql(target_cluster, target, f"DROP TABLE {SCHEMA}.notes")
    result = run_module("data_copy", copy_args(source_cluster, target_cluster, legacy, target, "online-refused"))
    assert result["failed"] and "target tables missing" in result["msg"]
    assert slot_row(source_cluster, sync_names.slot_name("online-refused", legacy)) is None
    assert publications(source_cluster, legacy) == []


def test_a_slot_made_before_a_later_database_fails_is_dropped_again(
        source_cluster, target_cluster, run_module, pair):
    legacy, target = pair
    second = legacy.replace("_Items", "_Scratch")
    create_database(source_cluster, second, ["CREATE UNLOGGED TABLE public.scratch (id bigint PRIMARY KEY)"])
    run_sql(target_cluster, target, "CREATE SCHEMA scratch")
    run_sql(target_cluster, target, "CREATE TABLE scratch.scratch (id bigint PRIMARY KEY)")
    args = copy_args(source_cluster, target_cluster, legacy, target, "online-unlogged")
    args["modules"].append({"name": "Scratch", "source_database": second, "schema": "scratch"})
    try:
        result = run_module("data_copy", args)
    finally:
        drop_slots(source_cluster, second)
    # PostgreSQL refuses the second publication: the first database's slot, made already, goes again.
    assert result["failed"] and "unlogged" in result["msg"]
    assert slot_row(source_cluster, sync_names.slot_name("online-unlogged", legacy)) is None
    assert publications(source_cluster, legacy) == [] and publications(source_cluster, second) == []


@pytest.mark.parametrize("interruption", ["copy_incomplete", "slot_gone"])
def test_a_rerun_that_cannot_continue_its_slot_copies_again_under_a_new_one(
        source_cluster, target_cluster, run_module, pair, interruption):
    legacy, target = pair
    run_id = "online-again"
    slot = sync_names.slot_name(run_id, legacy)
    args = copy_args(source_cluster, target_cluster, legacy, target, run_id)
    first = run_module("data_copy", args)
    assert not first["failed"], first.get("msg")
    if interruption == "copy_incomplete":
        # What a copy cut off after its first table leaves: the slot, one table recorded, no completion mark.
        run_sql(target_cluster, target, "UPDATE _consolidation.sync_slots SET copied_at = NULL")
        run_sql(target_cluster, target, "DELETE FROM _consolidation.copied_tables WHERE source_table = 'notes'")
        run_sql(target_cluster, target, "DELETE FROM items.notes")
    else:
        run_sql(source_cluster, "postgres", "SELECT pg_drop_replication_slot(%s)", (slot,))
    run_sql(source_cluster, legacy, "INSERT INTO public.items VALUES (-1, 'after the first attempt')")

    before = slot_row(source_cluster, slot)
    planned = run_module("data_copy", args, check=True)
    assert not planned["failed"], planned.get("msg")
    assert [entry["action"] for entry in planned["slots"]] == ["would_recreate"]
    planned_statuses = {table["source_table"]: table["status"] for table in planned["tables"]}
    assert planned_statuses == {"items": "would_copy", "notes": "would_copy"}
    assert slot_row(source_cluster, slot) == before  # check mode: the old slot neither dropped nor replaced

    second = run_module("data_copy", args)
    assert not second["failed"], second.get("msg")
    assert second["changed"]
    [entry] = second["slots"]
    assert entry["action"] == "recreated"
    assert any("emptied and copied again" in line for line in second["progress"]), second["progress"]
    assert entry["consistent_point"] != first["slots"][0]["consistent_point"]
    assert slot_row(source_cluster, slot)[0] == entry["consistent_point"]
    # Copied again from the new snapshot, which holds the later insert; the new slot starts after it.
    assert ids(target_cluster, target, f"{SCHEMA}.items") == ids(source_cluster, legacy, "public.items")
    assert ids(target_cluster, target, f"{SCHEMA}.notes") == ids(source_cluster, legacy, "public.notes")
    assert stream_inserts(source_cluster, legacy, slot, slot) == []
    assert [row[3] for row in recorded(target_cluster, target, run_id)] == [True]


def test_the_classifiedads_databases_copy_online_each_from_its_slot(source_cluster, target_cluster, run_module,
                                                                    tmp_path):
    """The shipped mapping (tables moved to public, excluded tables, NULL policies) on the six legacy databases."""
    prefix, target, run_id = "OnlineCA", "OnlineCA_Consolidated", "online-ca"
    legacy_fixtures.create(source_cluster, 0.05, prefix=prefix, drop_existing=True, out=lambda line: None)
    drop_database(target_cluster, target)
    migrator.migrate(target_cluster.connect_kwargs(target), log=lambda line: None)
    mapping = consolidation_vars(source_cluster, target_cluster, tmp_path, target, prefix)["consolidation_modules"]
    args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=target,
                run_id=run_id, modules=mapping, sync="online", truncate=True)
    try:
        result = run_module("data_copy", args)
        assert not result["failed"], result.get("msg")
        assert sorted(entry["source_database"] for entry in result["slots"] if entry["action"] == "created") == \
            sorted(module["source_database"] for module in mapping)
        for entry in result["slots"]:
            # The publication holds exactly the tables the copy read from the slot's snapshot.
            copied = sorted(table["source_table"] for table in result["tables"]
                            if table["source_database"] == entry["source_database"] and table["status"] == "copied")
            published = sorted(row[0] for row in run_sql(
                source_cluster, entry["source_database"], "SELECT tablename FROM pg_publication_tables "
                                                          "WHERE pubname = %s", (entry["publication_name"],)))
            assert published == copied and copied
            assert slot_row(source_cluster, entry["slot_name"])[0] == entry["consistent_point"]
        again = run_module("data_copy", args)
        assert not again["failed"] and not again["changed"]
        assert {entry["action"] for entry in again["slots"]} == {"kept"}
    finally:
        for module in mapping:
            drop_slots(source_cluster, module["source_database"])
        legacy_fixtures.drop(source_cluster, prefix=prefix)
        drop_database(target_cluster, target)


def test_a_table_mapped_after_a_complete_online_copy_is_refused(source_cluster, target_cluster, run_module, pair):
    legacy, target = pair
    run_id = "online-remapped"
    args = copy_args(source_cluster, target_cluster, legacy, target, run_id)
    first = run_module("data_copy", dict(args, modules=[dict(args["modules"][0], exclude_tables=["notes"])]))
    assert not first["failed"], first.get("msg")
    second = run_module("data_copy", args)
    assert second["failed"]
    assert "not copied from their slots' snapshots" in second["msg"] and "notes" in second["msg"]
    # The complete copy's slot stays: its stream still continues the tables it copied.
    assert slot_row(source_cluster, sync_names.slot_name(run_id, legacy))[0] == first["slots"][0]["consistent_point"]
    assert ids(target_cluster, target, f"{SCHEMA}.notes") == set()


def test_a_rerun_refused_after_its_slot_was_replaced_still_refills_the_tables_later(
        source_cluster, target_cluster, run_module, pair):
    legacy, target = pair
    run_id = "online-refill"
    slot = sync_names.slot_name(run_id, legacy)
    args = copy_args(source_cluster, target_cluster, legacy, target, run_id)
    assert not run_module("data_copy", args)["failed"]
    run_sql(source_cluster, "postgres", "SELECT pg_drop_replication_slot(%s)", (slot,))
    run_sql(source_cluster, legacy, "INSERT INTO public.notes VALUES (-1, 'after the first copy')")
    run_sql(target_cluster, target, f"ALTER TABLE {SCHEMA}.notes ADD COLUMN extra int")
    refused = run_module("data_copy", args)
    assert refused["failed"] and "extra" in refused["msg"]
    assert slot_row(source_cluster, slot) is None

    run_sql(target_cluster, target, f"ALTER TABLE {SCHEMA}.notes DROP COLUMN extra")
    again = run_module("data_copy", args)
    assert not again["failed"], again.get("msg")
    assert again["slots"][0]["action"] == "recreated"
    statuses = {table["source_table"]: table["status"] for table in again["tables"]}
    assert statuses == {"items": "copied", "notes": "copied"}
    assert ids(target_cluster, target, f"{SCHEMA}.notes") == ids(source_cluster, legacy, "public.notes")
    assert run_sql(target_cluster, target, "SELECT count(*) FROM _consolidation.copied_tables WHERE run_id = %s",
                   (run_id,))[0][0] == 2


def test_a_completed_online_run_keeps_its_slot_records_in_the_run_directory_not_the_target(
        source_cluster, target_cluster, run_module, pair, tmp_path):
    legacy, target = pair
    run_id = "online-complete"
    lease = dict(target=endpoint(target_cluster), target_database=target, run_id=run_id)
    assert not run_module("run_lease", lease)["failed"]
    copied = run_module("data_copy", copy_args(source_cluster, target_cluster, legacy, target, run_id))
    assert not copied["failed"], copied.get("msg")
    released = run_module("run_lease", dict(lease, run_dir=str(tmp_path), state="absent", complete=True))
    assert not released["failed"], released.get("msg")
    assert released["state"]["dropped"] == ["_consolidation"]
    assert run_sql(target_cluster, target, "SELECT count(*) FROM pg_namespace WHERE nspname = '_consolidation'") == \
        [(0,)]
    record = json.loads((tmp_path / "state.json").read_text())
    assert [(row["source_database"], row["slot_name"], row["consistent_point"]) for row in
            record["sync"]["sync_slots"]] == [(legacy, copied["slots"][0]["slot_name"],
                                               copied["slots"][0]["consistent_point"])]
