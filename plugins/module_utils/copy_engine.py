# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data copy: every table of each legacy database into its schema of the target database.

How it works (the module's documentation says the same for operators):

* **One snapshot per legacy database.** A coordinator connection opens a REPEATABLE READ READ ONLY
  transaction, exports its snapshot and stays open until every table is copied; each worker
  imports the snapshot (SET TRANSACTION SNAPSHOT), so all tables of a database are read as of one
  instant while they are copied in parallel.
* **One target transaction per table, all or nothing.** LOCK; TRUNCATE; drop the table's indexes
  (primary key and unique constraints included) and disable its user triggers; ``COPY ... FROM
  STDIN (FORMAT binary, FREEZE)``; rebuild the indexes with one sorted build each (a duplicate
  fails the transaction); re-enable the triggers; setval the column sequences; insert the row
  into ``<state_schema>.copied_tables``; COMMIT. No committed state ever lacks an index or a key,
  and nothing about indexes or triggers needs recording for crash recovery: a transaction cut
  off mid-copy rolls back to the table as it was. A rerun with the same run id skips recorded tables.
* **Streaming, no files.** ``COPY ... TO STDOUT`` on the source writes into an OS pipe from a
  helper thread while the worker feeds ``COPY ... FROM STDIN`` on the target from the other end.
  psycopg2 releases the GIL inside libpq calls, so the pumps of several tables run in parallel.
* **Foreign keys deferred, crash-safe.** They span tables, so they cannot come back inside one
  table's transaction. Every foreign key that touches a table about to be loaded is recorded in
  ``<state_schema>.deferred_ddl`` and dropped in the same transaction; after all tables are loaded
  each comes back (ADD ... NOT VALID, then VALIDATE) in transactions that advance and finally
  delete its record. A crash leaves the records behind and the next run restores them once its
  own tables are loaded.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    connect,
    psycopg2,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import find_collisions

PIPE_BUFFER = 1 << 20  # bytes a pump moves per read/write; also the pipe size asked of Linux
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, only named by Python >= 3.10
DEADLOCK_RETRIES = 3

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
)

# -- catalog queries (names are always bound parameters) ---------------------------------------------

SOURCE_TABLES = """
SELECT c.oid, c.relname, c.relkind, pg_catalog.pg_table_size(c.oid), pg_catalog.pg_total_relation_size(c.oid),
       pg_catalog.has_table_privilege(c.oid, 'SELECT')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

# Columns of the given tables. "portable": the type's binary COPY form carries no database-local
# OID (built-in types, enums, domains over built-ins). FirstNormalObjectId is 16384.
COLUMNS = """
SELECT a.attrelid, a.attname, t.typname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attgenerated <> '', (t.oid < 16384 OR t.typtype = 'e' OR (t.typtype = 'd' AND t.typbasetype < 16384))
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Sequences owned by columns of the given tables (serial: deptype 'a'; identity: 'i').
OWNED_SEQUENCES = """
SELECT d.refobjid, a.attname, sn.nspname, s.relname, q.seqincrement,
       pg_catalog.has_sequence_privilege(s.oid, 'SELECT')
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.deptype IN ('a', 'i') AND d.refobjid = ANY(%s)
ORDER BY d.refobjid, a.attnum
"""

TARGET_TABLES = """
SELECT n.nspname, c.relname, c.oid, c.relkind, pg_catalog.pg_has_role(c.relowner, 'USAGE')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')
"""

FOREIGN_KEYS = """
SELECT n.nspname, c.relname, con.conname, pg_catalog.pg_get_constraintdef(con.oid)
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0 AND (con.conrelid = ANY(%s) OR con.confrelid = ANY(%s))
ORDER BY n.nspname, c.relname, con.conname
"""

# The indexes of one plain table that are dropped for its COPY and rebuilt after it, inside the
# same transaction: all of them, primary key and unique constraints included, except those with
# a property the definitions below do not carry (a comment, CLUSTER ON, REPLICA IDENTITY, a
# tablespace of their own), invalid ones, and those something else depends on.
TABLE_INDEXES = """
SELECT ic.relname, con.conname, con.contype,
       CASE WHEN con.oid IS NULL THEN pg_catalog.pg_get_indexdef(i.indexrelid)
            ELSE pg_catalog.pg_get_constraintdef(con.oid) END
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE i.indrelid = %s AND c.relkind = 'r' AND ic.relkind = 'i' AND i.indisvalid
  AND NOT i.indisclustered AND NOT i.indisreplident AND ic.reltablespace = 0
  AND pg_catalog.obj_description(i.indexrelid, 'pg_class') IS NULL
  AND (con.oid IS NULL OR pg_catalog.obj_description(con.oid, 'pg_constraint') IS NULL)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = i.indexrelid
                    AND d.deptype = 'n')
  AND (con.oid IS NULL OR NOT EXISTS (
        SELECT FROM pg_catalog.pg_depend d
        WHERE d.refclassid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.refobjid = con.oid
          AND d.deptype = 'n'))
ORDER BY ic.relname
"""

TABLE_TRIGGERS = """
SELECT t.tgname, t.tgenabled
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = %s AND NOT t.tgisinternal AND t.tgparentid = 0 AND t.tgenabled <> 'D'
ORDER BY t.tgname
"""


class CopyFailed(Exception):
    """A table or a deferred foreign key could not be copied or restored; the message names it."""


class _Aborted(Exception):
    """Another worker failed: this one stops without reporting a second error."""


class TableJob(object):
    """One source table and everything known about its copy."""

    def __init__(self, module, mapping, source, source_row):
        oid, relkind, size, total_size, readable = source_row
        self.module = module["name"]
        self.source_database = module["source_database"]
        self.source_schema = module["source_schema"]
        self.source_table = mapping.source_table
        self.target_schema = mapping.target_schema
        self.target_table = mapping.target_table
        self.truncate_override = mapping.truncate
        self.source = source
        self.source_oid = oid
        self.source_relkind = relkind
        self.size = size
        self.total_size = total_size
        self.readable = readable
        self.source_columns = []
        self.target_oid = None
        self.target_relkind = None
        self.match = None
        self.action = None
        self.source_sequences = {}  # column -> dict(schema, name, increment, last_value, is_called)
        self.target_sequences = {}  # column -> dict(schema, name, increment)
        self.status = None
        self.rows = None
        self.bytes = None
        self.seconds = None

    @property
    def source_label(self):
        return copy_plan.source_label(self.source_database, self.source_schema, self.source_table)

    @property
    def target_label(self):
        return copy_plan.qualified(self.target_schema, self.target_table)

    @property
    def loads(self):
        return self.action in (copy_plan.COPY, copy_plan.TRUNCATE_AND_COPY)

    def target_table_sql(self):
        return sql.SQL("{}.{}").format(sql.Identifier(self.target_schema), sql.Identifier(self.target_table))

    def result(self):
        return {
            "module": self.module,
            "source_database": self.source_database,
            "source_table": self.source_table,
            "target_schema": self.target_schema,
            "target_table": self.target_table,
            "rows": self.rows,
            "bytes": self.bytes,
            "source_size": self.size,
            "seconds": self.seconds,
            "status": self.status,
            "format": self.match.copy_format if self.match else None,
        }


class SourceDatabase(object):
    """One legacy database, read through one exported snapshot held by a coordinator connection."""

    def __init__(self, engine, module):
        self.module = module
        self.conn = engine.open_source(module["source_database"])
        with self.conn.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cur.execute("SELECT pg_catalog.pg_export_snapshot()")
            self.snapshot = cur.fetchone()[0]

    def tables(self):
        """The tables of the source schema: {name: (oid, relkind, size, total size, readable)}."""
        with self.conn.cursor() as cur:
            cur.execute(SOURCE_TABLES, (self.module["source_schema"],))
            return dict((row[1], (row[0],) + tuple(row[2:])) for row in cur.fetchall())

    def columns(self, oids):
        return read_columns(self.conn, oids)

    def read_sequences(self, jobs):
        """Owned sequences of the jobs' tables and their state, read inside the snapshot's transaction.

        Sequences are not transactional, so the state read is the current one, never older than the
        snapshot: continuing from it cannot hand out a value that the copied rows hold.
        """
        by_oid = dict((job.source_oid, job) for job in jobs)
        problems = []
        if not by_oid:
            return problems
        with self.conn.cursor() as cur:
            cur.execute(OWNED_SEQUENCES, (list(by_oid),))
            for table_oid, column, schema, name, increment, readable in cur.fetchall():
                job = by_oid[table_oid]
                if not readable:
                    problems.append("%s: no SELECT privilege on its sequence %s"
                                    % (job.source_label, copy_plan.qualified(schema, name)))
                    continue
                cur.execute(sql.SQL("SELECT last_value, is_called FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(name)))
                last_value, is_called = cur.fetchone()
                job.source_sequences[column] = dict(schema=schema, name=name, increment=increment,
                                                    last_value=last_value, is_called=is_called)
        return problems

    def count_rows(self, job):
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(job.source_schema), sql.Identifier(job.source_table)))
            return cur.fetchone()[0]


def read_columns(conn, oids):
    """{table oid: [copy_plan.Column, ...]} in column order."""
    found = dict((oid, []) for oid in oids)
    if not found:
        return found
    with conn.cursor() as cur:
        cur.execute(COLUMNS, (list(oids),))
        for relid, name, type_name, type_display, generated, portable in cur.fetchall():
            found[relid].append(copy_plan.Column(name, type_name, type_display, generated, portable))
    return found


class CountingReader(object):
    """The read end of a pump's pipe, as copy_expert reads it: counts bytes, stops when the run aborts."""

    def __init__(self, handle, abort):
        self.handle = handle
        self.abort = abort
        self.bytes = 0

    def read(self, size=-1):
        if self.abort.is_set():
            raise _Aborted()
        data = self.handle.read(size)
        self.bytes += len(data)
        return data

    def close(self):
        self.handle.close()


class CopyEngine(object):
    """Plans and runs one data copy. ``run()`` returns the module's result dictionary."""

    def __init__(self, source, target, modules, target_database, run_id, parallel=2, truncate=False,
                 defer_indexes=True, state_schema="_consolidation", progress_log=None,
                 maintenance_work_mem="256MB", check_mode=False, freeze=True):
        self.source = source
        self.target = target
        self.modules = modules
        self.target_database = target_database
        self.run_id = run_id
        self.parallel = max(1, int(parallel))
        self.truncate = truncate
        self.defer_indexes = defer_indexes
        self.state_schema = state_schema
        self.progress_log = progress_log
        self.maintenance_work_mem = maintenance_work_mem
        self.check_mode = check_mode
        self.freeze = freeze  # the module always freezes; bench/copy_benchmark.py measures without

        self.queries = []
        self.progress = []
        self.deferred = []
        self.sequences = []
        self.jobs = []
        self.excluded = []
        self.warnings = []
        self.changed = False

        self._lock = threading.Lock()
        self._abort = threading.Event()
        self._local = threading.local()
        self._connections = []
        self._inflight = {}
        self._sources = []
        self._control = None

    # -- connections ------------------------------------------------------------------------------

    def _register(self, conn):
        with self._lock:
            self._connections.append(conn)
        return conn

    def open_source(self, dbname):
        conn = self._register(connect(self.source, dbname, autocommit=True))
        with conn.cursor() as cur:
            # A long COPY or a coordinator idle in its snapshot transaction must not be cut off by a
            # server-wide timeout; an empty search_path makes every name resolve exactly as written.
            cur.execute("SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
                        "SELECT pg_catalog.set_config('search_path', '', false)")
        return conn

    def open_target(self):
        conn = self._register(connect(self.target, self.target_database))
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
                        "SELECT pg_catalog.set_config('search_path', '', false)")
            cur.execute("SET maintenance_work_mem = %s", (self.maintenance_work_mem,))
        conn.commit()
        return conn

    def _worker_target(self):
        conn = getattr(self._local, "target", None)
        if conn is None or conn.closed:
            conn = self._local.target = self.open_target()
        return conn

    def _worker_source(self, dbname):
        sources = getattr(self._local, "sources", None)
        if sources is None:
            sources = self._local.sources = {}
        conn = sources.get(dbname)
        if conn is None or conn.closed:
            conn = sources[dbname] = self.open_source(dbname)
        return conn

    def _close_workers(self):
        """Close the connections of finished worker threads (a later pool starts new threads)."""
        keep = [self._control] + [source.conn for source in self._sources]
        with self._lock:
            workers = [conn for conn in self._connections if all(conn is not kept for kept in keep)]
            self._connections = [conn for conn in self._connections if any(conn is kept for kept in keep)]
        for conn in workers:
            if not conn.closed:
                conn.close()

    def _close_snapshots(self):
        """The copy is done: release the source snapshots (they hold back VACUUM on the source)."""
        for source in self._sources:
            if not source.conn.closed:
                source.conn.close()

    def close(self):
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            if not conn.closed:
                conn.close()

    # -- bookkeeping ------------------------------------------------------------------------------

    def _state(self, name):
        return sql.SQL("{}.{}").format(sql.Identifier(self.state_schema), sql.Identifier(name))

    def _log_statement(self, cur, statement, params=None):
        text = cur.mogrify(statement, params) if params is not None else statement.as_string(cur)
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        with self._lock:
            self.queries.append(text)

    def _execute(self, cur, statement, params=None):
        """Run a statement that changes something and keep it for the ``queries`` result.

        In check mode the statement is only kept: it is what a real run would issue.
        """
        self._log_statement(cur, statement, params)
        if not self.check_mode:
            cur.execute(statement, params)

    def _say(self, line):
        with self._lock:
            self.progress.append(line)
            if self.progress_log and not self.check_mode:
                with open(self.progress_log, "a") as handle:
                    handle.write(line + "\n")

    def _note_deferred(self, entry):
        public = ("kind", "target_schema", "target_table", "name", "definition", "action")
        with self._lock:
            self.deferred.append(dict((key, entry[key]) for key in public))

    # -- the run ----------------------------------------------------------------------------------

    def run(self):
        started = time.time()
        try:
            if self.check_mode and not self._target_database_exists():
                # A play in check mode has not created it yet: plan from the source side alone.
                self.warnings.append("target database %s does not exist yet: check mode planned the copy from the "
                                     "source alone (target tables, columns and contents were not checked)"
                                     % copy_plan.quote_ident(self.target_database))
            else:
                self._control = self.open_target()
            self._survey()
            if self.check_mode:
                self._plan_check_mode()
            else:
                if self.progress_log:
                    open(self.progress_log, "a").close()  # an unwritable log must fail before anything changes
                self._ensure_state_tables()
                self._defer_foreign_keys()
                self._copy_tables()
                self._close_snapshots()
                self._restore_foreign_keys()
            results = [job.result() for job in self.jobs]
            summary = copy_plan.totals(results, time.time() - started)
            summary["tables_skipped"] = len([job for job in self.jobs if job.status == "skipped_complete"])
            if summary["tables"]:
                self._say(copy_plan.format_totals(summary))
            return dict(self.partial_result(), totals=summary)
        except psycopg2.Error as exc:
            raise CopyFailed(str(exc).strip()) from exc
        finally:
            self.close()

    def partial_result(self):
        """Everything known so far; after a failure, the module reports it with the error."""
        return {
            "changed": self.changed,
            "tables": [job.result() for job in self.jobs],
            "excluded": self.excluded,
            "sequences": self.sequences,
            "deferred": self.deferred,
            "queries": self.queries,
            "progress": self.progress,
            "warnings": self.warnings,
        }

    # -- survey: everything the run needs to know, checked before anything changes -----------------

    def _survey(self):
        problems = []
        landing = []
        for module in self.modules:
            source = SourceDatabase(self, module)
            self._sources.append(source)
            tables = source.tables()
            try:
                mappings, excluded = copy_plan.map_tables(module, list(tables))
            except copy_plan.CopyPlanError as exc:
                problems.extend(exc.problems)
                continue
            self.excluded.extend({"source_database": module["source_database"], "source_table": name}
                                 for name in excluded)
            jobs = [TableJob(module, mapping, source, tables[mapping.source_table]) for mapping in mappings]
            columns = source.columns([job.source_oid for job in jobs])
            for job in jobs:
                job.source_columns = columns[job.source_oid]
                if not job.readable:
                    problems.append("%s: no SELECT privilege on the table" % job.source_label)
                landing.append((job.source_database, job.source_table, job.target_schema, job.target_table))
            self.jobs.extend(jobs)
        problems.extend(find_collisions(landing))
        if not problems and self._control is None:
            for job in self.jobs:
                job.action = copy_plan.COPY
        elif not problems:
            problems.extend(self._survey_target())
        if not problems:
            for source in self._sources:
                problems.extend(source.read_sequences([job for job in self.jobs
                                                       if job.source is source and job.loads]))
        if problems:
            raise copy_plan.CopyPlanError(problems)

    def _target_database_exists(self):
        conn = connect(self.target, self.target.get("maintenance_db") or "postgres", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = %s)",
                            (self.target_database,))
                return cur.fetchone()[0]
        finally:
            conn.close()

    def _survey_target(self):
        conn = self._control
        with conn.cursor() as cur:
            cur.execute(TARGET_TABLES, (sorted(set(job.target_schema for job in self.jobs)),))
            existing = dict(((row[0], row[1]), row[2:]) for row in cur.fetchall())
            complete = self._recorded_complete(cur)
        missing, not_owned = [], []
        for job in self.jobs:
            found = existing.get((job.target_schema, job.target_table))
            if found is None:
                missing.append("%s (for %s)" % (job.target_label, job.source_label))
                continue
            job.target_oid, job.target_relkind, owned = found
            recorded = complete.get((job.source_database, job.source_table))
            if recorded:
                job.action = copy_plan.SKIP_COMPLETE
                job.status = "skipped_complete"
                job.rows, job.bytes, job.seconds = recorded
            elif not owned:
                not_owned.append(job.target_label)
        problems = []
        if missing:
            problems.append("target tables missing (the application's migrator creates them): %s"
                            % ", ".join(missing))
        if not_owned:
            problems.append("the target role does not own these tables, which it must to drop and restore their "
                            "keys and indexes and to load them with TRUNCATE and COPY FREEZE: %s"
                            % ", ".join(not_owned))
        if problems:
            conn.rollback()
            return problems

        pending = [job for job in self.jobs if job.action != copy_plan.SKIP_COMPLETE]
        target_columns = read_columns(conn, [job.target_oid for job in pending])
        refused = []
        with conn.cursor() as cur:
            for job in pending:
                try:
                    job.match = copy_plan.match_columns("%s -> %s" % (job.source_label, job.target_label),
                                                        job.source_columns, target_columns[job.target_oid])
                except copy_plan.CopyPlanError as exc:
                    problems.extend(exc.problems)
                    continue
                cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(job.target_table_sql()))
                empty = cur.fetchone()[0]
                job.action = copy_plan.table_action(False, empty, self.truncate or job.truncate_override)
                if job.action is None:
                    refused.append(job.target_label)
            if pending:
                cur.execute(OWNED_SEQUENCES, ([job.target_oid for job in pending],))
                by_oid = dict((job.target_oid, job) for job in pending)
                for table_oid, column, schema, name, increment, _readable in cur.fetchall():
                    by_oid[table_oid].target_sequences[column] = dict(schema=schema, name=name, increment=increment)
        conn.rollback()
        if refused:
            problems.append(copy_plan.refusal_problem(refused))
        return problems

    def _state_tables_exist(self, cur):
        cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL, pg_catalog.to_regclass(%s) IS NOT NULL",
                    (self._state("copied_tables").as_string(cur), self._state("deferred_ddl").as_string(cur)))
        return cur.fetchone()

    def _recorded_complete(self, cur):
        if not self._state_tables_exist(cur)[0]:
            return {}
        cur.execute(sql.SQL("SELECT source_database, source_table, rows, bytes, seconds FROM {} WHERE run_id = %s")
                    .format(self._state("copied_tables")), (self.run_id,))
        return dict(((row[0], row[1]), (row[2], row[3], row[4])) for row in cur.fetchall())

    def _recorded_foreign_keys(self, cur):
        if not self._state_tables_exist(cur)[1]:
            return []
        cur.execute(sql.SQL(
            "SELECT target_schema, target_table, constraint_name, definition, phase, "
            "coalesce(pg_catalog.pg_table_size(pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', target_schema, "
            "target_table))), 0) FROM {} ORDER BY 6 DESC, 1, 2, 3").format(self._state("deferred_ddl")))
        return [dict(zip(("target_schema", "target_table", "name", "definition", "phase", "size"), row))
                for row in cur.fetchall()]

    # -- check mode -------------------------------------------------------------------------------

    def _plan_check_mode(self):
        loading = self._ordered([job for job in self.jobs if job.loads])
        for job in loading:
            job.status = "would_copy"
            job.rows = job.source.count_rows(job)
            job.bytes = job.size
            self.changed = True
            self._say(copy_plan.format_plan_line(job.target_schema, job.target_table, job.rows, job.bytes))
        conn = self._control
        if conn is None:
            return
        with conn.cursor() as cur:
            pending = self._recorded_foreign_keys(cur)
            for record in self._foreign_keys(cur, loading):
                self._execute(cur, self._drop_foreign_key_statement(record))
                self._note_deferred(dict(record, action="would_drop"))
            for job in loading:
                self._load_table(job, cur, source=None)
        conn.rollback()
        for record in pending:
            self._note_deferred(dict(record, kind="foreign_key", action="would_restore"))
            self.changed = True

    # -- state tables -----------------------------------------------------------------------------

    def _ensure_state_tables(self):
        conn = self._control
        with conn.cursor() as cur:
            if all(self._state_tables_exist(cur)):
                conn.rollback()
                return
            self._execute(cur, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.state_schema)))
            for ddl in STATE_TABLES_DDL:
                self._execute(cur, sql.SQL(ddl).format(schema=sql.Identifier(self.state_schema)))
        conn.commit()
        self.changed = True

    # -- foreign keys: recorded and dropped before the load, restored after it ----------------------

    def _foreign_keys(self, cur, jobs):
        """Foreign keys from or to a table of ``jobs``: they would check rows against tables still
        loading and keep TRUNCATE from running."""
        oids = [job.target_oid for job in jobs]
        if not oids:
            return []
        cur.execute(FOREIGN_KEYS, (oids, oids))
        return [dict(kind="foreign_key", target_schema=schema, target_table=table, name=name,
                     definition=definition, phase="dropped")
                for schema, table, name, definition in cur.fetchall()]

    def _drop_foreign_key_statement(self, record):
        return sql.SQL("ALTER TABLE {}.{} DROP CONSTRAINT {}").format(
            sql.Identifier(record["target_schema"]), sql.Identifier(record["target_table"]),
            sql.Identifier(record["name"]))

    def _defer_foreign_keys(self):
        conn = self._control
        with conn.cursor() as cur:
            records = self._foreign_keys(cur, [job for job in self.jobs if job.loads])
            for record in records:
                # A record left by an interrupted run keeps the definition it was first dropped with:
                # a key that run had re-added NOT VALID would otherwise come back never validated.
                self._execute(cur, sql.SQL(
                    "INSERT INTO {} (target_schema, target_table, constraint_name, definition, run_id) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (target_schema, target_table, constraint_name) "
                    "DO UPDATE SET phase = 'dropped'").format(self._state("deferred_ddl")),
                    (record["target_schema"], record["target_table"], record["name"], record["definition"],
                     self.run_id))
                self._execute(cur, self._drop_foreign_key_statement(record))
        conn.commit()
        for record in records:
            self._note_deferred(dict(record, action="dropped"))
        if records:
            self.changed = True

    def _restore_foreign_keys(self):
        with self._control.cursor() as cur:
            records = self._recorded_foreign_keys(cur)
        self._control.rollback()
        if not records:
            return
        started = time.time()
        self._run_pool(self._restore_foreign_key, records)
        self.changed = True
        self._say("restored %d foreign keys in %.1f s" % (len(records), time.time() - started))

    def _restore_foreign_key(self, record):
        for attempt in range(DEADLOCK_RETRIES):
            try:
                return self._restore_foreign_key_once(record)
            except psycopg2.extensions.TransactionRollbackError:
                # Two keys between the same pair of tables, taken in opposite order: try again.
                if attempt == DEADLOCK_RETRIES - 1:
                    raise

    def _restore_foreign_key_once(self, record):
        conn = self._worker_target()
        self._track(conn)
        started = time.time()
        table = sql.SQL("{}.{}").format(sql.Identifier(record["target_schema"]), sql.Identifier(record["target_table"]))
        name = sql.Identifier(record["name"])
        label = "foreign key %s on %s" % (copy_plan.quote_ident(record["name"]),
                                          copy_plan.qualified(record["target_schema"], record["target_table"]))
        key = (record["target_schema"], record["target_table"], record["name"])
        where = sql.SQL(" WHERE target_schema = %s AND target_table = %s AND constraint_name = %s")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = %s::regclass "
                            "AND conname = %s)", (table.as_string(cur), record["name"]))
                phase = "added" if cur.fetchone()[0] else "dropped"
                steps = copy_plan.foreign_key_steps(record["definition"], phase)
                for position, (step, definition) in enumerate(steps):
                    if step == copy_plan.FOREIGN_KEY_ADD:
                        # pg_get_constraintdef's own text, schema-qualified (its session's search_path was empty).
                        self._execute(cur, sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(table, name)
                                      + sql.SQL(definition))
                    else:
                        self._execute(cur, sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(table, name))
                    if position < len(steps) - 1:
                        self._execute(cur, sql.SQL("UPDATE {} SET phase = 'added'").format(
                            self._state("deferred_ddl")) + where, key)
                        conn.commit()
                self._execute(cur, sql.SQL("DELETE FROM {}").format(self._state("deferred_ddl")) + where, key)
            conn.commit()
        except psycopg2.extensions.TransactionRollbackError:
            conn.rollback()
            raise
        except Exception as exc:
            conn.rollback()
            if self._abort.is_set() and isinstance(exc, psycopg2.extensions.QueryCanceledError):
                raise _Aborted() from exc
            raise CopyFailed("restoring %s failed (it stays recorded in %s.deferred_ddl and the next run retries): %s"
                             % (label, copy_plan.quote_ident(self.state_schema), str(exc).strip())) from exc
        finally:
            self._track()
        self._note_deferred(dict(record, kind="foreign_key", action="restored"))
        self._say("restored %s in %.1f s" % (label, time.time() - started))

    # -- copy -------------------------------------------------------------------------------------

    def _ordered(self, jobs):
        # Total size (indexes included) is the better guess of the work: indexes are rebuilt too.
        return [item["job"] for item in copy_plan.order_work(
            [dict(job=job, size=job.total_size, source_database=job.source_database, source_table=job.source_table)
             for job in jobs])]

    def _copy_tables(self):
        self._run_pool(self._copy_table, self._ordered([job for job in self.jobs if job.loads]))

    def _run_pool(self, work, items):
        """Run ``work(item)`` on ``parallel`` threads; on the first failure stop the others and raise it."""
        if not items:
            return
        errors = []

        def guarded(item):
            if self._abort.is_set():
                return
            try:
                work(item)
            except _Aborted:
                pass
            except Exception as exc:  # every failure stops the run; the first is the one reported
                with self._lock:
                    errors.append(exc)
                if not self._abort.is_set():
                    self._abort.set()
                    self._cancel_inflight()

        try:
            with ThreadPoolExecutor(max_workers=min(self.parallel, len(items))) as pool:
                list(pool.map(guarded, items))
        finally:
            self._close_workers()
        if errors:
            first = errors[0]
            raise first if isinstance(first, CopyFailed) else CopyFailed(str(first).strip())

    def _cancel_inflight(self):
        with self._lock:
            inflight = [conn for conns in self._inflight.values() for conn in conns]
        for conn in inflight:
            try:
                conn.cancel()
            except psycopg2.Error:
                pass

    def _track(self, *conns):
        with self._lock:
            if conns:
                self._inflight[threading.current_thread().ident] = conns
            else:
                self._inflight.pop(threading.current_thread().ident, None)

    def _copy_table(self, job):
        target = self._worker_target()
        source = self._worker_source(job.source_database)
        self._track(source, target)
        started = time.time()
        try:
            with target.cursor() as cur:
                rows, nbytes = self._load_table(job, cur, source)
            target.commit()
        except Exception as exc:
            for conn in (target, source):
                conn.close()  # a connection cut off mid-COPY is of no further use
            if isinstance(exc, _Aborted) or (self._abort.is_set()
                                             and isinstance(exc, psycopg2.extensions.QueryCanceledError)):
                raise _Aborted() from exc
            if isinstance(exc, CopyFailed):
                raise
            raise CopyFailed("copying %s to %s failed: %s"
                             % (job.source_label, job.target_label, str(exc).strip())) from exc
        finally:
            self._track()
        job.rows, job.bytes, job.status = rows, nbytes, "copied"
        job.seconds = round(time.time() - started, 3)
        self.changed = True
        self._say(copy_plan.format_progress(job.target_schema, job.target_table, rows, nbytes, job.seconds))

    def _load_table(self, job, cur, source):
        """One table's transaction on the target; in check mode (``source`` None) only its statements."""
        started = time.time()
        table = job.target_table_sql()
        self._execute(cur, sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
        if job.action == copy_plan.COPY and not self.check_mode:
            # Emptiness was checked before the run; now that the table is locked, check again.
            cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(table))
            if not cur.fetchone()[0]:
                raise CopyFailed(copy_plan.refusal_problem([job.target_label]))
        self._execute(cur, sql.SQL("TRUNCATE {}").format(table))
        indexes = self._table_indexes(cur, job) if self.defer_indexes else []
        triggers = self._table_triggers(cur, job)
        for index in indexes:
            self._execute(cur, index["drop"])
        for trigger in triggers:
            self._execute(cur, trigger["disable"])
        copy_in = self._copy_in_statement(job)
        if self.check_mode:
            self._log_statement(cur, copy_in)
            rows = nbytes = None
        else:
            rows, nbytes = self._stream(job, source, cur, copy_in)
        for index in indexes:
            self._execute(cur, index["create"])
        for trigger in triggers:
            self._execute(cur, trigger["enable"])
        self._continue_sequences(job, cur)
        if not self.check_mode:
            self._execute(cur, sql.SQL(
                "INSERT INTO {} (run_id, source_database, source_table, target_schema, target_table, rows, bytes, "
                "seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)").format(self._state("copied_tables")),
                (self.run_id, job.source_database, job.source_table, job.target_schema, job.target_table,
                 rows, nbytes, round(time.time() - started, 3)))
        for entry in indexes:
            self._note_deferred(dict(entry, action="would_rebuild" if self.check_mode else "rebuilt"))
        for entry in triggers:
            self._note_deferred(dict(entry, action="would_disable_during_copy" if self.check_mode
                                     else "disabled_during_copy"))
        return rows, nbytes

    def _table_indexes(self, cur, job):
        """The indexes dropped for the COPY and rebuilt after it, in the table's transaction.

        One sorted build per index after the load costs a fraction of maintaining the index row by
        row (a third of the target's CPU on ClassifiedAds' random uuid keys); a duplicate makes the
        rebuild of the primary key or unique index fail, which rolls the whole table back.
        """
        if job.target_relkind != "r":
            return []
        cur.execute(TABLE_INDEXES, (job.target_oid,))
        indexes = []
        table = job.target_table_sql()
        for index_name, constraint_name, contype, definition in cur.fetchall():
            entry = dict(target_schema=job.target_schema, target_table=job.target_table, definition=definition)
            if constraint_name is None:
                entry.update(kind="index", name=index_name,
                             drop=sql.SQL("DROP INDEX {}.{}").format(sql.Identifier(job.target_schema),
                                                                     sql.Identifier(index_name)),
                             # pg_get_indexdef's own text, schema-qualified (the search_path is empty).
                             create=sql.SQL(definition))
            else:
                entry.update(kind=copy_plan.CONSTRAINT_KINDS[contype], name=constraint_name,
                             drop=sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                                 table, sql.Identifier(constraint_name)),
                             create=sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                                 table, sql.Identifier(constraint_name)) + sql.SQL(definition))
            indexes.append(entry)
        return copy_plan.order_index_rebuilds(indexes)

    def _table_triggers(self, cur, job):
        """Enabled user triggers, off while the copied rows go in: they are history, not new writes."""
        cur.execute(TABLE_TRIGGERS, (job.target_oid,))
        table = job.target_table_sql()
        triggers = []
        for name, enabled in cur.fetchall():
            clause = copy_plan.trigger_enable_clause(enabled)
            triggers.append(dict(
                kind="trigger", target_schema=job.target_schema, target_table=job.target_table, name=name,
                definition=clause,
                disable=sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(table, sql.Identifier(name)),
                enable=sql.SQL("ALTER TABLE {} {} {}").format(table, sql.SQL(clause), sql.Identifier(name))))
        return triggers

    def _copy_out_statement(self, job):
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in job.match.columns)
        table = sql.SQL("{}.{}").format(sql.Identifier(job.source_schema), sql.Identifier(job.source_table))
        fmt = sql.SQL(job.match.copy_format)
        if job.source_relkind == "r":
            # COPY reads a plain table itself, without the executor. Like ONLY: inheritance children
            # are tables of their own and copied as such.
            return sql.SQL("COPY {} ({}) TO STDOUT (FORMAT {})").format(table, columns, fmt)
        return sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT {})").format(columns, table, fmt)

    def _copy_in_statement(self, job):
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in job.match.columns)
        # FREEZE needs a plain table truncated in the same transaction, which it always is here.
        options = "FORMAT %s, FREEZE" if self.freeze and job.target_relkind == "r" else "FORMAT %s"
        return sql.SQL("COPY {} ({}) FROM STDIN ({})").format(job.target_table_sql(), columns,
                                                              sql.SQL(options % job.match.copy_format))

    def _stream(self, job, source, target_cur, copy_in):
        """Pump ``COPY ... TO STDOUT`` on the source into ``COPY ... FROM STDIN`` on the target.

        The source side runs on a helper thread and writes into an OS pipe; this thread feeds the
        target from the other end. Returns (rows, bytes). Binary and text COPY both accept a stream
        that simply ends, so a source failure must not reach COMMIT: it is re-raised here, and the
        two row counts must agree.
        """
        read_fd, write_fd = os.pipe()
        try:
            fcntl.fcntl(write_fd, F_SETPIPE_SZ, PIPE_BUFFER)
        except (OSError, IOError):
            pass  # a smaller pipe only means more wake-ups
        sink = os.fdopen(write_fd, "wb", PIPE_BUFFER)
        reader = CountingReader(os.fdopen(read_fd, "rb", PIPE_BUFFER), self._abort)
        copy_out = self._copy_out_statement(job)
        outcome = {}

        def produce():
            try:
                with source.cursor() as cur:
                    cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    cur.execute("SET TRANSACTION SNAPSHOT %s", (job.source.snapshot,))
                    try:
                        cur.copy_expert(copy_out, sink)
                    finally:
                        sink.close()
                    outcome["rows"] = cur.rowcount
                    cur.execute("COMMIT")
            except Exception as exc:  # handed to the consuming thread
                outcome["error"] = exc
                try:
                    sink.close()
                except (OSError, IOError):
                    pass

        with source.cursor() as cur:
            self._log_statement(cur, copy_out)
        self._log_statement(target_cur, copy_in)
        producer = threading.Thread(target=produce, name="copy-out %s" % job.source_table)
        producer.start()
        try:
            target_cur.copy_expert(copy_in, reader, PIPE_BUFFER)
            rows = target_cur.rowcount
        finally:
            # Closing the read end makes a producer still writing fail with EPIPE instead of blocking.
            reader.close()
            producer.join()
        if "error" in outcome:
            raise CopyFailed("reading %s failed: %s" % (job.source_label, str(outcome["error"]).strip()))
        if outcome.get("rows") != rows:
            raise CopyFailed("%s: the source sent %s rows but the target received %s"
                             % (job.source_label, outcome.get("rows"), rows))
        return rows, reader.bytes

    # -- sequences --------------------------------------------------------------------------------

    def _continue_sequences(self, job, cur):
        """setval every sequence owned by a loaded target column, inside the table's transaction."""
        for column, target_seq in sorted(job.target_sequences.items()):
            source_seq = job.source_sequences.get(column) or {}
            extreme = setval = None
            if not self.check_mode:
                aggregate = "max" if target_seq["increment"] > 0 else "min"
                cur.execute(sql.SQL("SELECT {}({}) FROM {}").format(
                    sql.SQL(aggregate), sql.Identifier(column), job.target_table_sql()))
                extreme = cur.fetchone()[0]
                setval = copy_plan.sequence_setval(source_seq.get("last_value"), source_seq.get("is_called"),
                                                   target_seq["increment"], extreme)
                if setval is not None:
                    name = sql.SQL("{}.{}").format(sql.Identifier(target_seq["schema"]),
                                                   sql.Identifier(target_seq["name"])).as_string(cur)
                    self._execute(cur, "SELECT pg_catalog.setval(%s, %s, %s)", (name, setval[0], setval[1]))
            entry = {
                "source_database": job.source_database,
                "source_table": job.source_table,
                "target_schema": job.target_schema,
                "target_table": job.target_table,
                "column": column,
                "source_sequence": source_seq and copy_plan.qualified(source_seq["schema"], source_seq["name"]) or None,
                "source_last_value": source_seq.get("last_value"),
                "source_is_called": source_seq.get("is_called"),
                "target_sequence": copy_plan.qualified(target_seq["schema"], target_seq["name"]),
                "target_column_extreme": extreme,
                "setval": list(setval) if setval else None,
            }
            with self._lock:
                self.sequences.append(entry)
