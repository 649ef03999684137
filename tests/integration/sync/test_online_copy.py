"""data_copy with sync=online against real clusters (wal_level=logical): the copy reads the snapshot its
legacy database's new slot exported, so the copied rows and the slot's stream together hold every write
exactly once; reruns keep a complete copy's slot and replace an incomplete one's."""

from __future__ import annotations

import pytest
from conftest import consolidation_vars, drop_database, endpoint, run_sql
from devkit import legacy as legacy_fixtures
from devkit import migrator
from sync_db import (
    SCHEMA,
    SEEDED,
    Writer,
    copy_args,
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
