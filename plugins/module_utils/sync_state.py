# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where online synchronisation stands, per legacy database: read-only, from three places.

* the source: the run's slot (exists, active, WAL retained, what its consumer has confirmed);
* the target: ``<state_schema>.sync_progress`` (what the applier committed, in the transactions
  that applied the changes);
* the run directory: the applier's status and pid files (:func:`sync_names.applier_files`).

``database_status`` is the pure combination (unit-tested); ``collect`` gathers and combines.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names, sync_slots
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.controller import started_of
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import read_json

PROGRESS_KEYS = ("source_database", "slot_name", "applied_lsn", "applied_commit_time", "applied_at",
                 "transactions", "rows")


def _iso(moment):
    return moment.isoformat() if moment is not None else None


def applier_alive(pid_record, started=started_of):
    """Whether the pid file names a live process: its pid runs AND started when the file says (no reused pid).

    The one liveness check of an applier's supervisor: the status reads it, and sync_process starts and stops by it.
    """
    if not pid_record or not pid_record.get("pid"):
        return False
    start = started(int(pid_record["pid"]))
    return start is not None and start == pid_record.get("start_time")


def database_status(database, slot_name, slot, progress, status, pid_record, alive, now):
    """Pure: one legacy database's synchronisation as the module returns it.

    ``slot`` is a :func:`sync_slots.list_slots` entry or None, ``progress`` its ``sync_progress`` row as a dict
    (``applied_commit_time`` a datetime) or None, ``status``/``pid_record`` the applier's files or None.
    Lag in seconds is how long ago the last applied source transaction committed, 0 once nothing is left.
    """
    progress = progress or {}
    lag_bytes = slot["lag_bytes"] if slot else None
    lag_seconds = None
    if lag_bytes is not None and lag_bytes <= 0:
        lag_seconds = 0.0
    elif progress.get("applied_commit_time") is not None:
        lag_seconds = round(max(0.0, (now - progress["applied_commit_time"]).total_seconds()), 3)
    applier = {"state": (status or {}).get("state"), "pid": (pid_record or status or {}).get("pid"), "alive": alive,
               "error": (status or {}).get("error"), "restarts": (status or {}).get("restarts"),
               "updated_at": (status or {}).get("updated_at")}
    return {
        "source_database": database,
        "slot_name": slot_name,
        "slot_exists": slot is not None,
        "slot_active": bool(slot and slot["active"]),
        "wal_retained_bytes": slot["retained_bytes"] if slot else None,
        "wal_retained": slot["retained"] if slot else None,
        "confirmed_lsn": slot["confirmed_flush_lsn"] if slot else None,
        "current_lsn": slot["current_lsn"] if slot else None,
        "lag_bytes": lag_bytes,
        "lag_seconds": lag_seconds,
        "applied_lsn": progress.get("applied_lsn"),
        "applied_commit_time": _iso(progress.get("applied_commit_time")),
        "transactions": progress.get("transactions", 0),
        "rows": progress.get("rows", 0),
        "applier": applier,
    }


def status_line(entry):
    """One line per legacy database for the operator: where its sync stands."""
    if not entry["slot_exists"]:
        return "%s: no slot %s (not synchronised, or already dropped)" % (entry["source_database"],
                                                                          entry["slot_name"])
    applier = entry["applier"]
    lag_seconds = "?" if entry["lag_seconds"] is None else "%.1f s" % entry["lag_seconds"]
    return ("%s: lag %.1f MB / %s, %s transactions and %s rows applied, %.1f MB of WAL retained, applier %s%s"
            % (entry["source_database"], entry["lag_bytes"] / 1048576.0, lag_seconds,
               "{:,}".format(entry["transactions"] or 0), "{:,}".format(entry["rows"] or 0),
               (entry["wal_retained_bytes"] or 0) / 1048576.0,
               "%s (pid %s)" % (applier["state"] or "unknown", applier["pid"]) if applier["alive"] else "not running",
               ": " + applier["error"] if applier.get("error") else ""))


def status_warnings(entries, other_slots):
    """A slot of another run keeps WAL too; a slot of this run that nobody reads keeps it growing."""
    warnings = [sync_slots.slot_warning(slot) for slot in other_slots]
    for entry in entries:
        if entry["slot_exists"] and not entry["applier"]["alive"] and not entry["slot_active"]:
            warnings.append("no applier reads the slot %s of %s, which retains %s of WAL on the source (fix: start "
                            "the appliers again, sync_applier state=started, or roll the run back)"
                            % (entry["slot_name"], entry["source_database"], entry["wal_retained"]))
    return warnings


def read_progress(target, target_database, state_schema):
    """{source database: sync_progress row} (empty while the table does not exist)."""
    conn = connect(target, target_database)
    try:
        with conn.cursor() as cur:
            table = sql.SQL("{}.{}").format(sql.Identifier(state_schema), sql.Identifier(sync_names.PROGRESS_TABLE))
            cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (table.as_string(cur),))
            if not cur.fetchone()[0]:
                return {}
            cur.execute(sql.SQL("SELECT source_database, slot_name, applied_lsn::text, applied_commit_time, "
                                "applied_at, transactions, rows FROM {}").format(table))
            return dict((row[0], dict(zip(PROGRESS_KEYS, row))) for row in cur.fetchall())
    finally:
        conn.rollback()
        conn.close()


def collect(source, target, target_database, state_schema, run_id, run_dir, prefix, databases, now=None):
    """(entries, warnings): every legacy database's status, and the warnings about slots."""
    conn = connect(source, source.get("maintenance_db") or "postgres", autocommit=True)
    try:
        slots = sync_slots.list_slots(conn, prefix)
    finally:
        conn.close()
    progress = read_progress(target, target_database, state_schema)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    by_name = dict((slot["slot_name"], slot) for slot in slots)
    entries = []
    for database in databases:
        name = sync_names.slot_name(run_id, database, prefix)
        files = sync_names.applier_files(run_dir, database)
        status, pid_record = read_json(files["status"]), read_json(files["pid"])
        entries.append(database_status(database, name, by_name.get(name), progress.get(database), status,
                                       pid_record, applier_alive(pid_record), now))
    other = [slot for slot in slots if not sync_names.of_run(slot["slot_name"], run_id, prefix)]
    return entries, status_warnings(entries, other)
