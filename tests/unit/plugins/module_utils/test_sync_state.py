"""sync_state's pure parts: one database's status from slot, progress and applier files; liveness of a pid file."""

from __future__ import annotations

import datetime

from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_state import (
    applier_alive,
    database_status,
    status_warnings,
)

NOW = datetime.datetime(2026, 12, 5, 9, 0, 0, tzinfo=datetime.UTC)
SLOT = {"active": True, "retained_bytes": 2048, "retained": "2048 bytes", "confirmed_flush_lsn": "0/10",
        "current_lsn": "0/20", "lag_bytes": 16}


def test_lag_seconds_count_from_the_last_applied_commit():
    progress = {"applied_commit_time": NOW - datetime.timedelta(seconds=12.5), "applied_lsn": "0/10",
                "transactions": 3, "rows": 9}
    entry = database_status("Legacy", "slot", SLOT, progress, None, None, False, NOW)
    assert entry["lag_seconds"] == 12.5 and entry["lag_bytes"] == 16
    assert (entry["transactions"], entry["rows"], entry["applied_lsn"]) == (3, 9, "0/10")


def test_nothing_left_to_apply_is_no_lag_however_old_the_last_commit():
    progress = {"applied_commit_time": NOW - datetime.timedelta(hours=3)}
    entry = database_status("Legacy", "slot", dict(SLOT, lag_bytes=0), progress, None, None, True, NOW)
    assert entry["lag_seconds"] == 0


def test_without_slot_or_progress_the_numbers_are_unknown_not_zero():
    entry = database_status("Legacy", "slot", None, None, None, None, False, NOW)
    assert entry["slot_exists"] is False
    assert entry["lag_bytes"] is None and entry["lag_seconds"] is None and entry["wal_retained_bytes"] is None
    assert entry["applier"]["state"] is None


def test_a_pid_file_names_a_live_applier_only_with_its_start_time():
    started = {100: 5000}.get
    assert applier_alive({"pid": 100, "start_time": 5000}, started)
    assert not applier_alive({"pid": 100, "start_time": 4999}, started)  # the pid was reused
    assert not applier_alive({"pid": 101, "start_time": 5000}, started)  # no such process
    assert not applier_alive(None, started)


def test_a_slot_nobody_reads_is_warned_about_and_one_streamed_from_is_not():
    read = database_status("A", "slot_a", SLOT, None, None, None, True, NOW)
    idle = database_status("B", "slot_b", dict(SLOT, active=False), None, None, None, False, NOW)
    warnings = status_warnings([read, idle], [])
    assert len(warnings) == 1 and "slot_b" in warnings[0] and "2048 bytes" in warnings[0]
