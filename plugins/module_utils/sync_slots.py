# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Online mode's publications and logical replication slots on the source: create, list, drop.

Each legacy database gets a publication of its mapped tables and a ``pgoutput`` slot created over a
replication connection with ``EXPORT_SNAPSHOT``: the copy imports that snapshot, so the copied tables
hold exactly the state at the slot's consistent point and the slot streams every later transaction.
The publication comes first, so that the slot decodes every change after its consistent point with
the publication in place. The exported snapshot lives only while the replication connection stays
idle, hence :class:`SlotCreation` keeps it open until the copy's coordinator has imported it.

A slot keeps WAL on the source until it is dropped: preflight and status report every slot of ours
(any run) with the WAL it retains, and :func:`drop` removes a run's slots and publications.
Names come from :mod:`sync_names`; identifiers only through ``sql.Identifier``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, psycopg2, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal

try:
    from psycopg2.extras import LogicalReplicationConnection
except ImportError:  # the module's psycopg2 check reports it
    LogicalReplicationConnection = None

# <state_schema>.sync_slots of the target database: the slot each legacy database's copy of a run read
# its snapshot from, and whether that copy completed (a rerun then leaves slot and tables alone).
SLOTS_TABLE = "sync_slots"
SLOTS_TABLE_DDL = """CREATE TABLE IF NOT EXISTS {table} (
    run_id text NOT NULL,
    source_database text NOT NULL,
    slot_name text NOT NULL,
    consistent_point pg_lsn NOT NULL,
    snapshot text NOT NULL,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    copied_at timestamp with time zone,
    PRIMARY KEY (run_id, source_database))"""

# Logical slots whose name starts with the prefix (sync_names.is_ours decides), with the WAL each keeps
# (PostgreSQL 10 and later: the functions' names before it, and pgoutput, differ):
# retained = what the server may not recycle (from restart_lsn), lag = what the consumer has not confirmed.
SLOTS = """
SELECT s.slot_name, s.database, s.active, s.active_pid, s.restart_lsn::text, s.confirmed_flush_lsn::text,
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::bigint,
       pg_catalog.pg_size_pretty(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)),
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,
       pg_catalog.pg_current_wal_lsn()::text
FROM pg_catalog.pg_replication_slots s
WHERE s.slot_type = 'logical' AND pg_catalog.left(s.slot_name::text, %s) = %s
ORDER BY s.slot_name
"""
SLOT_KEYS = ("slot_name", "database", "active", "active_pid", "restart_lsn", "confirmed_flush_lsn",
             "retained_bytes", "retained", "lag_bytes", "current_lsn")

PUBLICATION_TABLES = """
SELECT p.oid, n.nspname, c.relname
FROM pg_catalog.pg_publication p
LEFT JOIN pg_catalog.pg_publication_rel pr ON pr.prpubid = p.oid
LEFT JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE p.pubname = %s
"""

UNDEFINED_OBJECT = "42704"
# How long a terminated walsender may take to let its slot go before the drop gives up.
RELEASE_TIMEOUT = 10.0


class SlotCreation(object):
    """A slot just created, and the replication session whose exported snapshot the copy imports.

    The snapshot lives while that session stays open and idle: call :meth:`close` once the copy's
    coordinator has run ``SET TRANSACTION SNAPSHOT``.
    """

    def __init__(self, source_database, publication, slot_name, consistent_point, snapshot, conn):
        self.source_database = source_database
        self.publication = publication
        self.slot_name = slot_name
        self.consistent_point = consistent_point
        self.snapshot = snapshot
        self._conn = conn

    def close(self):
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None


def table_list(tables):
    """``schema.table, ...`` of (schema, table) pairs, as a publication's FOR TABLE wants them."""
    return sql.SQL(", ").join(sql.Identifier(schema, table) for schema, table in sorted(tables))


def publication_tables(cur, name):
    """The set of (schema, table) a publication holds, or None when it does not exist."""
    cur.execute(PUBLICATION_TABLES, (name,))
    rows = cur.fetchall()
    if not rows:
        return None
    return set((schema, table) for _oid, schema, table in rows if table is not None)


def ensure_publication(cur, journal, name, tables):
    """Create the publication of ``tables`` (or make an existing one of that name hold exactly them).

    Returns "created", "altered" or "unchanged". FOR TABLE, not FOR ALL TABLES, which needs a superuser.
    """
    tables = set(tables)
    if not tables:
        raise ConsolidationError("publication %s would hold no table: the mapping names none of this legacy "
                                 "database (fix: check the module's source_schema and tables)" % quote_ident(name))
    existing = publication_tables(cur, name)
    if existing == tables:
        return "unchanged"
    verb = "CREATE PUBLICATION {} FOR TABLE {}" if existing is None else "ALTER PUBLICATION {} SET TABLE {}"
    journal.change(cur, sql.SQL(verb).format(sql.Identifier(name), table_list(tables)))
    return "created" if existing is None else "altered"


def create(source, dbname, run_id, prefix, tables, journal=None):
    """Publication of ``tables`` ((schema, table) pairs) then the slot of ``dbname`` in run ``run_id``.

    Returns a :class:`SlotCreation` holding the replication session open (its snapshot is exported).
    Raises psycopg2 errors of either session to the caller; a slot of that name must not exist yet.
    """
    journal = journal or QueryJournal()
    name = sync_names.slot_name(run_id, dbname, prefix)
    publication = sync_names.publication_name(run_id, dbname, prefix)
    conn = connect(source, dbname, autocommit=True)
    try:
        with conn.cursor() as cur:
            ensure_publication(cur, journal, publication, tables)
    finally:
        conn.close()
    replication = connect(source, dbname, connection_factory=LogicalReplicationConnection)
    try:
        with replication.cursor() as cur:
            statement = sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT").format(
                sql.Identifier(name))
            journal.record(cur, statement)
            cur.execute(statement)
            slot, consistent_point, snapshot, _plugin = cur.fetchone()
    except Exception:
        replication.close()
        raise
    return SlotCreation(dbname, publication, slot, consistent_point, snapshot, replication)


def list_slots(conn, prefix, run_id=None):
    """The logical slots of ours on the server of ``conn`` (of ``run_id`` only, when given), as dicts."""
    with conn.cursor() as cur:
        start = sync_names.check_prefix(prefix) + "_"
        cur.execute(SLOTS, (len(start), start))
        slots = [dict(zip(SLOT_KEYS, row)) for row in cur.fetchall()]
    return [slot for slot in slots if sync_names.is_ours(slot["slot_name"], prefix)
            and (run_id is None or sync_names.of_run(slot["slot_name"], run_id, prefix))]


def slot_warning(slot):
    """The warning about one slot of ours: a forgotten slot keeps WAL on the source until its disk fills."""
    state = "active (pid %s)" % slot["active_pid"] if slot["active"] else "inactive"
    return ("replication slot %s of database %s is %s and retains %s of WAL on the source (restart_lsn %s): "
            "a slot no applier reads keeps WAL until the disk fills; if its run is finished or abandoned, drop it "
            "(sync_slots state=absent with that run_id, or all_runs=true)"
            % (quote_ident(slot["slot_name"]), quote_ident(slot["database"]), state, slot["retained"],
               slot["restart_lsn"]))


def _release(cur, journal, slot_name):
    """End the walsender streaming from the slot (an applier still running), wait until the slot is free."""
    journal.change(cur, "SELECT pg_catalog.pg_terminate_backend(active_pid) FROM pg_catalog.pg_replication_slots "
                        "WHERE slot_name = %s AND active_pid IS NOT NULL", (slot_name,))
    if journal.check_mode:
        return
    deadline = time.time() + RELEASE_TIMEOUT
    while True:
        cur.execute("SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = %s", (slot_name,))
        row = cur.fetchone()
        if row is None or not row[0]:
            return
        if time.time() > deadline:
            raise ConsolidationError("replication slot %s is still in use %d s after its walsender was terminated "
                                     "(fix: stop the applier of this run, then drop again)"
                                     % (quote_ident(slot_name), RELEASE_TIMEOUT))
        time.sleep(0.2)


def drop_slot(cur, journal, slot_name):
    """Drop one slot (ending its walsender first); False when it is gone already."""
    cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_replication_slots WHERE slot_name = %s)", (slot_name,))
    if not cur.fetchone()[0]:
        return False
    _release(cur, journal, slot_name)
    try:
        journal.change(cur, "SELECT pg_catalog.pg_drop_replication_slot(%s)", (slot_name,))
    except psycopg2.Error as exc:
        if exc.pgcode == UNDEFINED_OBJECT:
            return False  # dropped by someone else in between: gone is what was wanted
        raise
    return True


def drop_publication(cur, journal, name):
    """Drop one publication of the session's database; False when it does not exist."""
    cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = %s)", (name,))
    if not cur.fetchone()[0]:
        return False
    journal.change(cur, sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))
    return True


def _publications_of_ours(cur, prefix, run_id):
    cur.execute("SELECT pubname FROM pg_catalog.pg_publication WHERE pg_catalog.left(pubname::text, %s) = %s "
                "ORDER BY pubname", (len(prefix) + 1, prefix + "_"))
    return [name for (name,) in cur.fetchall() if sync_names.is_ours(name, prefix)
            and (run_id is None or sync_names.of_run(name, run_id, prefix))]


def drop(source, databases, run_id, prefix, all_runs=False, journal=None):
    """Drop the slots and publications of run ``run_id`` (of every run with ``all_runs``) on the source.

    ``databases`` are the legacy databases (their publications live there); a slot of ours in
    another database is dropped too and its database searched for publications. Returns the list of
    {kind, name, database} dropped (in check mode: that would be). Idempotent: nothing left, nothing done.
    """
    prefix = sync_names.check_prefix(prefix)
    journal = journal or QueryJournal()
    wanted_run = None if all_runs else run_id
    maintenance = source.get("maintenance_db") or "postgres"
    conn = connect(source, maintenance, autocommit=True)
    try:
        slots = list_slots(conn, prefix, wanted_run)
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_catalog.pg_database WHERE datname = ANY(%s) AND datallowconn",
                        (sorted(set(databases) | set(slot["database"] for slot in slots)),))
            existing = sorted(row[0] for row in cur.fetchall())
    finally:
        conn.close()
    dropped = []
    for database in existing:
        conn = connect(source, database, autocommit=True)
        try:
            with conn.cursor() as cur:
                # cutover.yml drops them behind the write fence (default_transaction_read_only on the database),
                # which is there to stop the application's writes, not the removal of our own publications.
                cur.execute("SET default_transaction_read_only = off")
                for slot in slots:
                    if slot["database"] == database and drop_slot(cur, journal, slot["slot_name"]):
                        dropped.append(dict(kind="slot", name=slot["slot_name"], database=database))
                for name in _publications_of_ours(cur, prefix, wanted_run):
                    if drop_publication(cur, journal, name):
                        dropped.append(dict(kind="publication", name=name, database=database))
        finally:
            conn.close()
    return dropped


def forget_records(target, target_database, state_schema, run_id, all_runs=False, journal=None):
    """Delete the run's rows (every run's with ``all_runs``) from ``<state_schema>.sync_slots`` of the target.

    Those rows say a run streams into the database: run_lease keeps every other run out while they exist, so they
    go with the slots. Returns how many were (in check mode: would be) deleted; 0 when there is no such database
    or table.
    """
    journal = journal or QueryJournal()
    maintenance = connect(target, target.get("maintenance_db") or "postgres", autocommit=True)
    try:
        with maintenance.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = %s)", (target_database,))
            if not cur.fetchone()[0]:
                return 0
    finally:
        maintenance.close()
    table = sql.Identifier(state_schema, SLOTS_TABLE)
    conn = connect(target, target_database, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (table.as_string(cur),))
            if not cur.fetchone()[0]:
                return 0
            which = sql.SQL("") if all_runs else sql.SQL(" WHERE run_id = %s")
            params = () if all_runs else (run_id,)
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table) + which, params)
            found = cur.fetchone()[0]
            if found:
                journal.change(cur, sql.SQL("DELETE FROM {}").format(table) + which, params)
            return found
    finally:
        conn.close()


def described(entries):
    """``slot x (database y), publication z (database y)``: for progress lines and messages."""
    return ", ".join("%s %s (database %s)" % (entry["kind"], quote_ident(entry["name"]), quote_ident(entry["database"]))
                     for entry in entries)
