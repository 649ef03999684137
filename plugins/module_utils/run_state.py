# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run's state in the target database, kept in the run directory and dropped when the run completes.

While a run works, the target database holds its state: the lease (:mod:`lease`), the tables the copy
has loaded and the foreign keys it has deferred (:mod:`copy_state`), the rows a NULL policy kept out
(:mod:`null_policy`). None of it belongs in the consolidated database once the run is complete, and
nothing after completion reads it from there:

* rollback compares the database with the verification report (:mod:`target_writes`) and restores the
  backup set; decommission judges the verification report and the final backup (:mod:`decommission`);
* a rerun of a completed run skips the copy (the plan's ``completed``); its verification, run again,
  reads the copy's records and the quarantine from the run directory (:func:`recorded_proof`,
  :func:`recorded_quarantine`);
* the quarantined rows are data an operator must still review: they go to ``quarantined_rows.json``
  (0600) before the table is dropped; the copy's records go to ``state.json`` (0600).

The drop happens when the lease is released at the end of ``consolidate.yml``, in the same transaction
that deletes the lease row and under the target's advisory lock: no other run can start in between. A
state schema that holds anything else (a ``data_copy_state_schema`` pointing at a schema of the
application, say) keeps it; only the tables of this collection are dropped from it. Foreign keys still
deferred mean the copy did not finish: then nothing is dropped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident, utc_timestamp
from ansible_collections.classifiedads.consolidation.plugins.module_utils.lease import LEASE_SCHEMA, LEASE_TABLE
from ansible_collections.classifiedads.consolidation.plugins.module_utils.null_policy import QUARANTINE_TABLE
from ansible_collections.classifiedads.consolidation.plugins.module_utils.proof import COUNTER_KEYS
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    read_json,
    run_files,
    write_private_json,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import PROGRESS_TABLE
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_slots import SLOTS_TABLE

RECORD_KIND = "classifiedads.consolidation.state_record"
QUARANTINE_KIND = "classifiedads.consolidation.quarantined_rows"
# Online mode's (sync_slots: the slot each database was copied from; sync_progress: what the applier applied).
SYNC_TABLES = (SLOTS_TABLE, PROGRESS_TABLE)
COPY_TABLES = ("copied_tables", "deferred_ddl") + SYNC_TABLES
# Oldest first, so that a row reads in the order it was written.
ORDER = {"copied_tables": "completed_at", "deferred_ddl": "recorded_at", QUARANTINE_TABLE: "quarantined_at",
         LEASE_TABLE: "acquired_at", SLOTS_TABLE: "created_at", PROGRESS_TABLE: "applied_at"}


# -- pure -------------------------------------------------------------------------------------------


def state_schemas(state_schema):
    """The schemas that may hold a run's state: the copy's, and the lease's (the same by default)."""
    return [state_schema] if state_schema == LEASE_SCHEMA else [state_schema, LEASE_SCHEMA]


def keep_reason(found):
    """Why the state must stay in the target, or None: foreign keys the copy has yet to put back."""
    deferred = [row for rows in found.values() for row in rows.get("deferred_ddl") or []]
    if deferred:
        return ("%d foreign key(s) the copy dropped for the load are not back yet (%s): the copy did not finish; "
                "its rerun restores them" % (len(deferred), ", ".join(
                    "%s.%s.%s" % (quote_ident(row["target_schema"]), quote_ident(row["target_table"]),
                                  quote_ident(row["constraint_name"])) for row in deferred)))
    return None


def state_record(run_id, target_database, found, quarantine_file, now):
    """The record of the dropped state (``state.json``): the copy's rows, where the quarantined rows went."""
    quarantined = sum(len(rows.get(QUARANTINE_TABLE) or []) for rows in found.values())
    return {
        "format": 1, "kind": RECORD_KIND, "run_id": run_id, "target_database": target_database,
        "completed_at": now,
        "schemas": sorted(found),
        "copied_tables": [row for schema in sorted(found) for row in found[schema].get("copied_tables") or []],
        "sync": dict((table, [row for schema in sorted(found) for row in found[schema].get(table) or []])
                     for table in SYNC_TABLES),
        "quarantined_rows": {"count": quarantined, "file": quarantine_file if quarantined else None},
    }


def quarantine_record(run_id, target_database, found, now):
    rows = [row for schema in sorted(found) for row in found[schema].get(QUARANTINE_TABLE) or []]
    return {"format": 1, "kind": QUARANTINE_KIND, "run_id": run_id, "target_database": target_database,
            "exported_at": now, "rows": rows}


def recorded_proof(record, run_id):
    """Pure: what CopyState.recorded_proof read from the live table, from a completed run's ``state.json``.

    ``{(source database, source table): {snapshot, write_counters}}``, None when the record holds nothing of
    ``run_id``.
    """
    found = {}
    for row in (record or {}).get("copied_tables") or []:
        if row.get("run_id") != run_id:
            continue
        counters = [row.get("source_" + key) for key in COUNTER_KEYS]
        found[(row["source_database"], row["source_table"])] = {
            "snapshot": row.get("source_snapshot"),
            "write_counters": None if None in counters else dict(zip(COUNTER_KEYS, counters))}
    return found or None


def recorded_quarantine(rows, source_database, source_schema, source_table):
    """Pure: ``[(key text, digest)]`` of one legacy table's quarantined rows, from ``quarantined_rows.json``'s rows."""
    return [(row["key_text"], row["row_digest"]) for row in rows
            if (row["source_database"], row["source_schema"], row["source_table"])
            == (source_database, source_schema, source_table)]


def completed_records(run_dir):
    """(state.json, quarantined rows) of a completed run in ``run_dir``; (None, None) while it is not complete."""
    files = run_files(run_dir)
    record = read_json(files["state_record"])
    if record is None:
        return None, None
    quarantine = read_json(files["quarantined_rows"]) or {}
    return record, quarantine.get("rows") or []


# -- on the target ----------------------------------------------------------------------------------


def schema_exists(cur, schema):
    cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = %s)", (schema,))
    return cur.fetchone()[0]


def read_tables(cur, schema, tables):
    """{table: [row as a dict]} of those of ``tables`` that exist in ``schema``, every column as JSON has it.

    A quarantined row also keeps its key and digest as the verification takes them from the live table
    (``key_text``, ``row_digest``: null_verification.QUARANTINED_TARGET), so that a verification after
    the drop compares the same values (:func:`recorded_quarantine`).
    """
    found = {}
    for table in tables:
        name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (name.as_string(cur),))
        if cur.fetchone()[0]:
            extra = sql.SQL(', key::text AS key_text, pg_catalog.hashtextextended("row"::text, 0) AS row_digest'
                            if table == QUARANTINE_TABLE else "")
            cur.execute(sql.SQL("SELECT pg_catalog.row_to_json(t)::text FROM (SELECT *{} FROM {}) t ORDER BY t.{}")
                        .format(extra, name, sql.Identifier(ORDER[table])))
            found[table] = [json.loads(row[0]) for row in cur.fetchall()]
    return found


def drop_tables_and_schema(cur, schema, tables):
    """Drop ``tables`` (ours), then ``schema`` unless something else lives there; whether the schema went."""
    for table in tables:
        cur.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
    # Whatever else lives in the schema depends on it (what DROP SCHEMA without CASCADE would refuse for).
    cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_depend "
                "WHERE refclassid = 'pg_catalog.pg_namespace'::regclass AND deptype = 'n' "
                "AND refobjid = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s))",
                (schema,))
    if cur.fetchone()[0]:
        return False
    cur.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(schema)))
    return True


class RunState(object):
    """What the release of a run's lease does with the state: ``finish(cur)`` runs in the release's transaction.

    ``complete``: the run has completed, so its state is recorded in ``files`` (the plan's run files)
    and dropped. Otherwise only a lease schema left empty is dropped (rollback.yml takes the lease of a
    completed run, whose state is gone, and must not leave the schema behind).
    ``outcome`` says what happened; ``check_mode`` reads and changes nothing.
    """

    def __init__(self, run_id, target_database, state_schema, files=None, complete=False, check_mode=False):
        self.run_id = run_id
        self.target_database = target_database
        self.state_schema = state_schema
        self.files = files or {}
        self.complete = complete
        self.check_mode = check_mode
        self.outcome = {"dropped": [], "kept": None, "record": None, "quarantined_rows": 0, "quarantine_file": None}

    def finish(self, cur):
        schemas = [schema for schema in state_schemas(self.state_schema) if schema_exists(cur, schema)]
        # The lease table is looked for in the lease's schema only: a state schema the operator pointed at an
        # application schema may hold a table of that name that is not ours.
        found = dict((schema, read_tables(cur, schema, COPY_TABLES + (QUARANTINE_TABLE,)
                                          + ((LEASE_TABLE,) if schema == LEASE_SCHEMA else ())))
                     for schema in schemas)
        # A completed run's rerun (its record exists, the copy skipped) has nothing left to record; a record
        # whose schema is still there (the drop did not commit) is written again from what the schema holds.
        held = any(table != LEASE_TABLE for tables in found.values() for table in tables)
        if self.complete and (held or read_json(self.files["state_record"]) is None):
            return self._record_and_drop(cur, found)
        lease_only = [schema for schema in schemas if set(found[schema]) == {LEASE_TABLE}
                      and not found[schema][LEASE_TABLE]]
        if lease_only and not self.check_mode:
            self.outcome["dropped"] = [schema for schema in lease_only
                                       if drop_tables_and_schema(cur, schema, [LEASE_TABLE])]
        return self.outcome

    def _record_and_drop(self, cur, found):
        self.outcome["kept"] = keep_reason(found)
        if self.outcome["kept"]:
            return self.outcome
        now = utc_timestamp()
        record = state_record(self.run_id, self.target_database, found, self.files["quarantined_rows"], now)
        quarantined = record["quarantined_rows"]["count"]
        self.outcome.update(record=self.files["state_record"], quarantined_rows=quarantined,
                            quarantine_file=record["quarantined_rows"]["file"])
        if self.check_mode:
            self.outcome["dropped"] = sorted(found)
            return self.outcome
        # The row data first, then the record that marks the run complete: a crash in between leaves the
        # schema in place and the run not complete, and the next release writes both again.
        if quarantined:
            write_private_json(self.files["quarantined_rows"],
                               quarantine_record(self.run_id, self.target_database, found, now))
        write_private_json(self.files["state_record"], record)
        for schema in sorted(found):
            if drop_tables_and_schema(cur, schema, sorted(found[schema])):
                self.outcome["dropped"].append(schema)
        return self.outcome
