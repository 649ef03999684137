"""sync_status against real clusters: slot, retained WAL and lag as the source counts them, the applier's
progress as the target recorded it, its liveness from the run directory's files; warnings for slots
nobody reads and for other runs' slots. It changes nothing."""

from __future__ import annotations

import json
import os

import pytest
from conftest import endpoint, run_sql
from sync_db import SCHEMA, copy_args, drop_slots, flush_wal, legacy_pair, modules, warning_lines

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names
from ansible_collections.classifiedads.consolidation.plugins.module_utils.controller import started_of

pytestmark = pytest.mark.integration

RUN = "status-1"


@pytest.fixture
def synced(source_cluster, target_cluster, run_module):
    """A pair after an online copy: the run's slot exists, no applier has read it yet."""
    legacy, target = legacy_pair(source_cluster, target_cluster, "St")
    copied = run_module("data_copy", copy_args(source_cluster, target_cluster, legacy, target, RUN))
    assert not copied["failed"], copied.get("msg")
    yield legacy, target
    drop_slots(source_cluster, legacy)


def status_args(source_cluster, target_cluster, legacy, target, run_dir):
    return dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=target,
                run_id=RUN, run_dir=str(run_dir), modules=modules(legacy))


def write_private(path, document):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(document, handle)


def test_a_slot_nobody_reads_shows_its_retained_wal_and_lag(source_cluster, target_cluster, run_module, synced,
                                                            tmp_path):
    legacy, target = synced
    slot = sync_names.slot_name(RUN, legacy)
    other = sync_names.slot_name("older-run", legacy)
    run_sql(source_cluster, legacy, "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (other,))
    run_sql(source_cluster, legacy, "INSERT INTO public.items SELECT g, md5(g::text) FROM generate_series(10000, "
                                    "30000) g")
    flush_wal(source_cluster, legacy)
    result = run_module("sync_status", status_args(source_cluster, target_cluster, legacy, target, tmp_path),
                        check=False)
    assert not result["failed"], result.get("msg")
    assert result["changed"] is False
    [entry] = result["databases"]
    # What the source says, read after the module: the WAL only grows, the slot stays where it was.
    confirmed, restart, current, retained = run_sql(
        source_cluster, legacy, "SELECT confirmed_flush_lsn::text, restart_lsn::text, pg_current_wal_lsn()::text, "
                                "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM "
                                "pg_replication_slots WHERE slot_name = %s", (slot,))[0]
    assert entry["slot_exists"] and not entry["slot_active"]
    assert entry["confirmed_lsn"] == confirmed
    assert entry["lag_bytes"] == run_sql(source_cluster, legacy, "SELECT pg_wal_lsn_diff(%s, %s)::bigint",
                                         (entry["current_lsn"], confirmed))[0][0]
    assert entry["lag_bytes"] > 1_000_000  # the 20 000 rows written since the slot was made
    assert 0 < entry["wal_retained_bytes"] <= retained
    assert entry["lag_seconds"] is None and entry["transactions"] == 0 and entry["applied_lsn"] is None
    assert entry["applier"]["alive"] is False and entry["applier"]["state"] is None
    warnings = warning_lines(result)
    assert any(other in line and "retains" in line for line in warnings)
    assert any(f"no applier reads the slot {slot}" in line for line in warnings)
    assert current


def test_the_appliers_progress_and_liveness_are_read_from_target_and_run_directory(
        source_cluster, target_cluster, run_module, synced, tmp_path):
    legacy, target = synced
    slot = sync_names.slot_name(RUN, legacy)
    # What an applier leaves: its progress row (written in the transactions it applies) and its files.
    columns = ", ".join(f'"{name}" {kind}' for name, kind in sync_names.PROGRESS_COLUMNS)
    run_sql(target_cluster, target, f"CREATE TABLE _consolidation.{sync_names.PROGRESS_TABLE} ({columns})")
    run_sql(target_cluster, target, f"INSERT INTO _consolidation.{sync_names.PROGRESS_TABLE} VALUES (%s, %s, "
                                    "'0/1234', now() - interval '5 seconds', now(), 7, 42)", (legacy, slot))
    files = sync_names.applier_files(str(tmp_path), legacy)
    write_private(files["pid"], {"pid": os.getpid(), "start_time": started_of(os.getpid()), "slot_name": slot,
                                 "run_id": RUN})
    write_private(files["status"], {"source_database": legacy, "slot_name": slot, "pid": os.getpid(),
                                    "state": "streaming", "error": None, "restarts": 1,
                                    "updated_at": "2026-12-05T08:00:00Z"})
    run_sql(source_cluster, legacy, "INSERT INTO public.items VALUES (-5, 'not applied yet')")
    flush_wal(source_cluster, legacy)
    args = status_args(source_cluster, target_cluster, legacy, target, tmp_path)

    lagging = run_module("sync_status", args)["databases"][0]
    assert lagging["lag_bytes"] > 0
    assert 5 <= lagging["lag_seconds"] < 60
    assert (lagging["transactions"], lagging["rows"], lagging["applied_lsn"]) == (7, 42, "0/1234")
    assert lagging["applier"] == {"state": "streaming", "pid": os.getpid(), "alive": True, "error": None,
                                  "restarts": 1, "updated_at": "2026-12-05T08:00:00Z"}

    # Caught up: the slot's consumer has confirmed everything there is; a pid reused by another process is dead.
    write_private(files["pid"], {"pid": os.getpid(), "start_time": started_of(os.getpid()) - 1})
    for _attempt in range(3):  # the server may write WAL of its own (a running-xacts record) in between
        run_sql(source_cluster, legacy, "SELECT pg_replication_slot_advance(%s, pg_current_wal_lsn())", (slot,))
        result = run_module("sync_status", args)
        caught_up = result["databases"][0]
        if caught_up["lag_bytes"] == 0:
            break
    assert caught_up["lag_bytes"] == 0 and caught_up["lag_seconds"] == 0
    assert caught_up["applier"]["alive"] is False
    assert any(f"no applier reads the slot {slot}" in line for line in warning_lines(result))
    assert run_sql(target_cluster, target, f"SELECT count(*) FROM {SCHEMA}.items WHERE id = -5")[0][0] == 0
