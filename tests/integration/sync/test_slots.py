"""sync_slots state=absent against a real cluster: a run's slots and publications go (an applier streaming
from one is ended first), other runs' and other software's stay unless all_runs says ours of every run;
check mode drops nothing; a rerun changes nothing."""

from __future__ import annotations

import threading

import psycopg2
import psycopg2.extras
import psycopg2.sql
import pytest
from conftest import endpoint, run_sql
from constants import HOSTILE
from sync_db import create_database, drop_slots, ours, publications, slot_row

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names, sync_slots

pytestmark = pytest.mark.integration

LEGACY = "Sl_" + HOSTILE  # a database and a table whose names break SQL pasted between quotes
RUN = "slots-1"


@pytest.fixture
def legacy(source_cluster):
    create_database(source_cluster, LEGACY, [
        psycopg2.sql.SQL("CREATE TABLE public.{} (id bigint PRIMARY KEY)").format(psycopg2.sql.Identifier(HOSTILE)),
        "CREATE TABLE public.plain (id bigint PRIMARY KEY)"])
    yield LEGACY
    drop_slots(source_cluster, LEGACY)


def create(source_cluster, run_id, tables=(("public", HOSTILE), ("public", "plain"))):
    creation = sync_slots.create(endpoint(source_cluster), LEGACY, run_id, sync_names.DEFAULT_PREFIX, list(tables))
    creation.close()
    return creation.slot_name


def args(source_cluster, **extra):
    return dict(dict(source=endpoint(source_cluster), run_id=RUN,
                     modules=[{"name": "Sl", "source_database": LEGACY, "schema": "sl"}]), **extra)


def test_create_makes_the_publication_of_exactly_the_mapped_tables_then_the_slot(source_cluster, legacy):
    slot = create(source_cluster, RUN)
    assert publications(source_cluster, legacy) == [slot]
    assert sorted(row[0] for row in run_sql(source_cluster, legacy, "SELECT tablename FROM pg_publication_tables "
                                                                    "WHERE pubname = %s", (slot,))) == \
        sorted([HOSTILE, "plain"])
    assert slot_row(source_cluster, slot)[2] == legacy


def test_a_runs_slots_and_publications_are_dropped_and_nothing_else(source_cluster, run_module, legacy):
    slot = create(source_cluster, RUN)
    other = create(source_cluster, "another-run", [("public", "plain")])
    run_sql(source_cluster, legacy, "SELECT pg_create_logical_replication_slot('someone_elses', 'pgoutput')")

    planned = run_module("sync_slots", args(source_cluster), check=True)
    assert not planned["failed"], planned.get("msg")
    assert planned["changed"]
    assert sorted((entry["kind"], entry["name"]) for entry in planned["dropped"]) == [("publication", slot),
                                                                                      ("slot", slot)]
    assert slot in ours(source_cluster) and slot in publications(source_cluster, legacy)

    result = run_module("sync_slots", args(source_cluster))
    assert not result["failed"], result.get("msg")
    assert result["changed"] and result["dropped"] == planned["dropped"]
    assert ours(source_cluster) == [other]
    assert publications(source_cluster, legacy) == [other]
    assert slot_row(source_cluster, "someone_elses") is not None

    again = run_module("sync_slots", args(source_cluster))
    assert not again["failed"] and not again["changed"] and again["dropped"] == []

    everything = run_module("sync_slots", args(source_cluster, run_id=None, all_runs=True))
    assert sorted((entry["kind"], entry["name"]) for entry in everything["dropped"]) == [("publication", other),
                                                                                         ("slot", other)]
    assert ours(source_cluster) == [] and publications(source_cluster, legacy) == []
    assert slot_row(source_cluster, "someone_elses") is not None


def test_a_slot_an_applier_streams_from_is_released_then_dropped(source_cluster, run_module, legacy):
    slot = create(source_cluster, RUN)
    conn = psycopg2.connect(connection_factory=psycopg2.extras.LogicalReplicationConnection,
                            **source_cluster.connect_kwargs(legacy))
    cur = conn.cursor()
    cur.start_replication(slot, decode=False, options={"proto_version": "1", "publication_names": slot})
    ended = threading.Event()

    def consume():
        try:
            cur.consume_stream(lambda message: None)
        except psycopg2.Error:
            ended.set()

    threading.Thread(target=consume, daemon=True).start()
    try:
        assert slot_row(source_cluster, slot)[3] is True
        result = run_module("sync_slots", args(source_cluster))
        assert not result["failed"], result.get("msg")
        assert ("slot", slot) in [(entry["kind"], entry["name"]) for entry in result["dropped"]]
        assert slot_row(source_cluster, slot) is None
        assert ended.wait(10), "the stream must have been ended"
    finally:
        conn.close()


def test_run_id_is_required_unless_all_runs(source_cluster, run_module, legacy):
    result = run_module("sync_slots", args(source_cluster, run_id=None))
    assert result["failed"] and "run_id is required unless all_runs" in result["msg"]
