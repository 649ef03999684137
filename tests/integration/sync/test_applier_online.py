"""The applier after the online copy (data_copy sync=online): the copy and the applied stream together hold
every write of a writer that ran through the copy and the sync exactly once, and the drain ends the stream."""

from __future__ import annotations

import os

import pytest
from conftest import endpoint, run_sql
from sync_db import SCHEMA, SEEDED, Writer, copy_args, drop_slots, ids, legacy_pair, modules

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names

pytestmark = pytest.mark.integration


def test_writes_through_copy_and_sync_all_arrive_once_and_drain_stops_the_applier(
        source_cluster, target_cluster, run_module, tmp_path):
    legacy, target = legacy_pair(source_cluster, target_cluster, f"Ap{os.getpid()}")
    run_id = "applier-online"
    applier = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=target,
                   run_id=run_id, run_dir=str(tmp_path), modules=modules(legacy))
    writer = Writer(source_cluster, legacy)
    writer.start()
    try:
        writer.wait_for(50)
        copy = run_module("data_copy", copy_args(source_cluster, target_cluster, legacy, target, run_id))
        assert not copy["failed"], copy.get("msg")
        writer.wait_for(50)
        started = run_module("sync_applier", dict(applier, state="started"))
        assert not started["failed"], started.get("msg")
        writer.wait_for(100)
        run_sql(source_cluster, legacy, "UPDATE public.notes SET body = NULL WHERE id <= 5")
        run_sql(source_cluster, legacy, "DELETE FROM public.items WHERE id <= 10")
    finally:
        committed = writer.stop()
    try:
        drained = run_module("sync_applier", dict(applier, state="drained", catch_up_timeout=60))
        assert not drained["failed"], drained.get("msg")
        assert ids(target_cluster, target, f"{SCHEMA}.items") == (set(range(11, SEEDED + 1)) | committed)
        assert run_sql(target_cluster, target, f"SELECT count(*) FROM {SCHEMA}.notes WHERE body IS NULL") == [(5,)]
        [entry] = drained["appliers"]
        assert entry["action"] == "drained" and entry["pid"] is None and entry["state"] == "stopped"
        # Only what came after the copy's snapshot went through the stream: the copied rows were not applied again.
        transactions, = run_sql(target_cluster, target, "SELECT transactions FROM _consolidation.sync_progress")[0]
        assert 0 < transactions <= len(committed) + 2
        assert entry["slot_name"] == sync_names.slot_name(run_id, legacy)
    finally:
        run_module("sync_applier", dict(applier, state="stopped"))
        drop_slots(source_cluster, legacy)
