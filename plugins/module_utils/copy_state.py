# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a data copy records in the target database, so that a rerun resumes and a crash loses nothing.

``<state_schema>.copied_tables`` holds one row per table a run has loaded,
inserted in the table's own transaction: a rerun with the same run id skips
it. The row also keeps the snapshot the table was read from and the source's
write counters read just before it (:mod:`proof`), which verification and
decommission compare with the counters they read later.
``<state_schema>.deferred_ddl`` holds one row per foreign key dropped for
the load and not yet back, inserted in the transaction that drops it: the
key comes back (ADD ... NOT VALID, then VALIDATE) in transactions that advance
and finally delete its record, so a run cut off anywhere leaves a record that
the next run restores.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.proof import COUNTER_KEYS

STATE_TABLES_DDL = (
    """CREATE TABLE IF NOT EXISTS {schema}.copied_tables (
    run_id text NOT NULL,
    source_database text NOT NULL,
    source_table text NOT NULL,
    target_schema text NOT NULL,
    target_table text NOT NULL,
    rows bigint NOT NULL,
    bytes bigint NOT NULL,
    seconds double precision NOT NULL,
    completed_at timestamp with time zone NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, source_database, source_table))""",
    """CREATE TABLE IF NOT EXISTS {schema}.deferred_ddl (
    target_schema text NOT NULL,
    target_table text NOT NULL,
    constraint_name text NOT NULL,
    definition text NOT NULL,
    phase text NOT NULL DEFAULT 'dropped' CHECK (phase IN ('dropped', 'added')),
    run_id text NOT NULL,
    recorded_at timestamp with time zone NOT NULL DEFAULT now(),
    PRIMARY KEY (target_schema, target_table, constraint_name))""",
    # Added after the first release: a state schema made by an older run gains them.
    """ALTER TABLE {schema}.copied_tables ADD COLUMN IF NOT EXISTS source_snapshot text,
    ADD COLUMN IF NOT EXISTS source_inserted bigint, ADD COLUMN IF NOT EXISTS source_updated bigint,
    ADD COLUMN IF NOT EXISTS source_deleted bigint""",
)
PROOF_COLUMNS = ("source_snapshot", "source_inserted", "source_updated", "source_deleted")


class CopyState(object):
    """The run's records in ``schema`` of the target database; changes go through ``journal``."""

    def __init__(self, schema, run_id, journal):
        self.schema = schema
        self.run_id = run_id
        self.journal = journal

    def table(self, name):
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    def tables_exist(self, cur):
        """(copied_tables exists, deferred_ddl exists)."""
        cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL, pg_catalog.to_regclass(%s) IS NOT NULL",
                    (self.table("copied_tables").as_string(cur), self.table("deferred_ddl").as_string(cur)))
        return cur.fetchone()

    def has_proof_columns(self, cur):
        cur.execute("SELECT count(*) = %s FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass(%s) "
                    "AND attname = ANY(%s) AND NOT attisdropped",
                    (len(PROOF_COLUMNS), self.table("copied_tables").as_string(cur), list(PROOF_COLUMNS)))
        return cur.fetchone()[0]

    def ensure_tables(self, conn):
        """Create the schema and the state tables (and columns) that are missing; whether anything was created."""
        with conn.cursor() as cur:
            if all(self.tables_exist(cur)) and self.has_proof_columns(cur):
                conn.rollback()
                return False
            self.journal.change(cur, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            for ddl in STATE_TABLES_DDL:
                self.journal.change(cur, sql.SQL(ddl).format(schema=sql.Identifier(self.schema)))
        conn.commit()
        return True

    # -- copied tables ----------------------------------------------------------------------------

    def recorded_complete(self, cur):
        """{(source database, source table): (rows, bytes, seconds)} of the tables this run has copied."""
        if not self.tables_exist(cur)[0]:
            return {}
        cur.execute(sql.SQL("SELECT source_database, source_table, rows, bytes, seconds FROM {} WHERE run_id = %s")
                    .format(self.table("copied_tables")), (self.run_id,))
        return dict(((row[0], row[1]), (row[2], row[3], row[4])) for row in cur.fetchall())

    def record_copied(self, cur, job, rows, nbytes, seconds, snapshot, counters):
        """The completion record of one table, inside the table's own transaction.

        ``snapshot`` is the source snapshot it was read from, ``counters`` its write counters read before
        that snapshot was taken (None when the source does not count).
        """
        counters = counters or {}
        self.journal.change(cur, sql.SQL(
            "INSERT INTO {} (run_id, source_database, source_table, target_schema, target_table, rows, bytes, "
            "seconds, source_snapshot, source_inserted, source_updated, source_deleted) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            # An online rerun reloads a table this run copied from an older snapshot: its record is replaced.
            "ON CONFLICT (run_id, source_database, source_table) DO UPDATE SET target_schema = EXCLUDED.target_schema, "
            "target_table = EXCLUDED.target_table, rows = EXCLUDED.rows, bytes = EXCLUDED.bytes, "
            "seconds = EXCLUDED.seconds, completed_at = now(), source_snapshot = EXCLUDED.source_snapshot, "
            "source_inserted = EXCLUDED.source_inserted, source_updated = EXCLUDED.source_updated, "
            "source_deleted = EXCLUDED.source_deleted").format(self.table("copied_tables")),
            (self.run_id, job.source_database, job.source_table, job.target_schema, job.target_table,
             rows, nbytes, seconds, snapshot) + tuple(counters.get(key) for key in COUNTER_KEYS))

    def recorded_proof(self, cur):
        """{(source database, source table): {snapshot, write_counters}} of this run's copied tables.

        None when this run recorded nothing (no state, or no table copied); a table copied by a release
        that did not record counters has ``write_counters`` None, as has one whose source does not count.
        """
        if not self.tables_exist(cur)[0]:
            return None
        proof_columns = self.has_proof_columns(cur)
        columns = sql.SQL(", ").join(sql.Identifier(name) if proof_columns else sql.SQL("NULL")
                                     for name in PROOF_COLUMNS)
        cur.execute(sql.SQL("SELECT source_database, source_table, {} FROM {} WHERE run_id = %s")
                    .format(columns, self.table("copied_tables")), (self.run_id,))
        found = {}
        for database, table, snapshot, inserted, updated, deleted in cur.fetchall():
            counters = None
            if None not in (inserted, updated, deleted):
                counters = dict(zip(COUNTER_KEYS, (inserted, updated, deleted)))
            found[(database, table)] = {"snapshot": snapshot, "write_counters": counters}
        return found or None

    # -- deferred foreign keys --------------------------------------------------------------------

    def recorded_foreign_keys(self, cur):
        """Foreign keys waiting to be restored, biggest table first."""
        if not self.tables_exist(cur)[1]:
            return []
        cur.execute(sql.SQL(
            "SELECT target_schema, target_table, constraint_name, definition, phase, "
            "coalesce(pg_catalog.pg_table_size(pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', target_schema, "
            "target_table))), 0) FROM {} ORDER BY 6 DESC, 1, 2, 3").format(self.table("deferred_ddl")))
        return [dict(zip(("target_schema", "target_table", "name", "definition", "phase", "size"), row))
                for row in cur.fetchall()]

    def drop_foreign_key(self, cur, record):
        self.journal.change(cur, sql.SQL("ALTER TABLE {}.{} DROP CONSTRAINT {}").format(
            sql.Identifier(record["target_schema"]), sql.Identifier(record["target_table"]),
            sql.Identifier(record["name"])))

    def defer_foreign_key(self, cur, record):
        """Record a foreign key, then drop it, in the caller's transaction."""
        # A record left by an interrupted run keeps the definition it was first dropped with:
        # a key that run had re-added NOT VALID would otherwise come back never validated.
        self.journal.change(cur, sql.SQL(
            "INSERT INTO {} (target_schema, target_table, constraint_name, definition, run_id) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (target_schema, target_table, constraint_name) "
            "DO UPDATE SET phase = 'dropped'").format(self.table("deferred_ddl")),
            (record["target_schema"], record["target_table"], record["name"], record["definition"],
             self.run_id))
        self.drop_foreign_key(cur, record)

    def restore_foreign_key(self, conn, record):
        """Bring one recorded foreign key back, from where its restoring stopped, and delete its record.

        Each step commits with the record advanced to it, so that a run cut off between the steps
        resumes with the next one. Errors reach the caller, which rolls back.
        """
        table = sql.SQL("{}.{}").format(sql.Identifier(record["target_schema"]), sql.Identifier(record["target_table"]))
        name = sql.Identifier(record["name"])
        key = (record["target_schema"], record["target_table"], record["name"])
        where = sql.SQL(" WHERE target_schema = %s AND target_table = %s AND constraint_name = %s")
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = %s::regclass "
                        "AND conname = %s)", (table.as_string(cur), record["name"]))
            phase = "added" if cur.fetchone()[0] else "dropped"
            cur.execute("SELECT relkind = 'p' FROM pg_catalog.pg_class WHERE oid = %s::regclass",
                        (table.as_string(cur),))
            steps = copy_plan.foreign_key_steps(record["definition"], phase, partitioned=cur.fetchone()[0])
            for position, (step, definition) in enumerate(steps):
                if step == copy_plan.FOREIGN_KEY_ADD:
                    # pg_get_constraintdef's own text, schema-qualified (its session's search_path was empty).
                    self.journal.change(cur, sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(table, name)
                                        + sql.SQL(definition))
                else:
                    self.journal.change(cur, sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(table, name))
                if position < len(steps) - 1:
                    self.journal.change(cur, sql.SQL("UPDATE {} SET phase = 'added'").format(
                        self.table("deferred_ddl")) + where, key)
                    conn.commit()
            self.journal.change(cur, sql.SQL("DELETE FROM {}").format(self.table("deferred_ddl")) + where, key)
        conn.commit()
