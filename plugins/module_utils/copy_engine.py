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

This file is the orchestrator: connections, the order of the phases, the worker pool, and one
table's transaction. The survey of both catalogs lives in :mod:`copy_catalog`, the COPY statements
and the pump in :mod:`copy_stream`, the state tables in :mod:`copy_state`, the decisions in
:mod:`copy_plan`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan, null_policy
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    connect,
    psycopg2,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_catalog import (
    Survey,
    foreign_keys,
    table_indexes,
    table_triggers,
    target_database_exists,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import CopyFailed
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_state import CopyState
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_stream import (
    Aborted,
    copy_in_statement,
    copy_out_statement,
    pipe_pump,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.data_checks import summary_line
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import qualified, quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import postgres_problem
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    append_private,
    write_private_json,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sequences import forward_setval, next_value
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_copy import OnlineCopy
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import DEFAULT_PREFIX

DEADLOCK_RETRIES = 3


class CopyEngine(object):
    """Plans and runs one data copy. ``run()`` returns the module's result dictionary.

    ``journal`` keeps the statements that change something or move data (the module's
    ``queries``) and says whether this is check mode; without one the copy runs for real.
    """

    def __init__(self, source, target, modules, target_database, run_id, parallel=2, truncate=False,
                 defer_indexes=True, state_schema="_consolidation", progress_log=None,
                 maintenance_work_mem="256MB", journal=None, freeze=True, data_checks_report=None,
                 checkpoint=None, sync="offline", slot_prefix=DEFAULT_PREFIX):
        self.source = source
        self.target = target
        self.target_database = target_database
        self.parallel = max(1, int(parallel))
        self.defer_indexes = defer_indexes
        self.progress_log = progress_log
        self.maintenance_work_mem = maintenance_work_mem
        self.journal = journal or QueryJournal()
        self.check_mode = self.journal.check_mode
        self.freeze = freeze  # the module always freezes; bench/copy_benchmark.py measures without
        # Called at every table boundary; raises once the ansible-playbook that started the module is gone.
        self.checkpoint = checkpoint or (lambda: None)
        self._stopped = None
        self.data_checks_report = data_checks_report
        self.data_checks_written = None
        self.state = CopyState(state_schema, run_id, self.journal)
        # Online mode: each legacy database is read from its replication slot's snapshot (sync_copy says why).
        self.online = None
        if sync == "online":
            self.online = OnlineCopy(source, run_id, slot_prefix, self.state, self.journal, self._say)
        self.survey = Survey(modules, truncate, self._online_snapshot if self.online else None)
        if self.online:
            self.survey.refill = self.online.refill

        self.progress = []
        self.deferred = []
        self.sequences = []
        self.materialized_views = []
        self.warnings = []
        self.changed = False

        self._lock = threading.Lock()
        self._abort = threading.Event()
        self._local = threading.local()
        self._connections = []
        self._inflight = {}
        self._control = None
        self._recorded_proof = None  # snapshot and write counters of the tables an earlier invocation copied

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
            # row_security off: a policy that would hide rows raises an error instead (the survey names it first).
            cur.execute("SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
                        "SET row_security = off; SELECT pg_catalog.set_config('search_path', '', false)")
        return conn

    def open_target(self):
        conn = self._register(connect(self.target, self.target_database))
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
                        "SET row_security = off; SELECT pg_catalog.set_config('search_path', '', false)")
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
        keep = [self._control] + [source.conn for source in self.survey.sources]
        with self._lock:
            workers = [conn for conn in self._connections if all(conn is not kept for kept in keep)]
            self._connections = [conn for conn in self._connections if any(conn is kept for kept in keep)]
        for conn in workers:
            if not conn.closed:
                conn.close()

    def _close_snapshots(self):
        """The copy is done: release the source snapshots (they hold back VACUUM on the source)."""
        for source in self.survey.sources:
            if not source.conn.closed:
                source.conn.close()

    def close(self):
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            if not conn.closed:
                conn.close()

    # -- bookkeeping ------------------------------------------------------------------------------

    def _say(self, line):
        with self._lock:
            self.progress.append(line)
            if self.progress_log and not self.check_mode:
                append_private(self.progress_log, line + "\n")

    def _note_deferred(self, entry):
        public = ("kind", "target_schema", "target_table", "name", "definition", "action")
        with self._lock:
            self.deferred.append(dict((key, entry[key]) for key in public))

    # -- the run ----------------------------------------------------------------------------------

    def run(self):
        started = time.time()
        try:
            if self.check_mode and not target_database_exists(self.target, self.target_database):
                # A play in check mode has not created it yet: plan from the source side alone.
                self.warnings.append("target database %s does not exist yet: check mode planned the copy from the "
                                     "source alone (target tables, columns and contents were not checked)"
                                     % quote_ident(self.target_database))
            else:
                self._control = self.open_target()
            if self.online is not None:
                # The slots' records live in the state schema, written as each slot is created.
                if not self.check_mode and self.state.ensure_tables(self._control):
                    self.changed = True
                self.online.prepare(self._control)
            try:
                self.survey.run(self.open_source, self._control, self.state)
                if self.online is not None:
                    self.online.check_kept(self.survey.jobs)
            except copy_plan.CopyPlanError as exc:
                if self.online is not None:
                    self.online.abandon()
                raise self._with_data_checks(exc) from None
            self.warnings.extend(self.survey.data_checks.warnings)
            for job in self.survey.jobs:
                for note in job.null_notes:
                    self._say(note)
            if self._control is not None and any(job.status == "skipped_complete" for job in self.survey.jobs):
                with self._control.cursor() as cur:
                    self._recorded_proof = self.state.recorded_proof(cur)
                self._control.rollback()
            if self.check_mode:
                self._plan_check_mode()
            else:
                if self.progress_log:
                    append_private(self.progress_log, "")  # an unwritable log must fail before anything changes
                if self.state.ensure_tables(self._control):
                    self.changed = True
                self._ensure_quarantine()
                self._defer_foreign_keys()
                self._copy_tables()
                if self.online is not None:
                    self.online.mark_copied(self._control)
                self._close_snapshots()
                self._restore_foreign_keys()
                self._continue_standalone_sequences()
                self._refresh_materialized_views()
            jobs = self.survey.jobs
            summary = copy_plan.totals([job.result() for job in jobs], time.time() - started)
            summary["tables_skipped"] = len([job for job in jobs if job.status == "skipped_complete"])
            if summary["tables"]:
                self._say(copy_plan.format_totals(summary))
            return dict(self.partial_result(), totals=summary)
        except psycopg2.Error as exc:
            raise CopyFailed(postgres_problem(exc)) from exc
        finally:
            if self.online is not None:
                self.online.close()
            self.close()

    def _online_snapshot(self, module, conn, mapped_tables):
        return self.online.snapshot_for(module, conn, self._control, mapped_tables)

    def partial_result(self):
        """Everything known so far; after a failure, the module reports it with the error."""
        return {
            "changed": self.changed or bool(self.online and self.online.changed),
            "slots": self.online.results if self.online else [],
            "tables": [self._table_result(job) for job in self.survey.jobs],
            "excluded": self.survey.excluded,
            "sequences": self.sequences,
            "materialized_views": self.materialized_views,
            "deferred": self.deferred,
            "queries": self.journal.queries,
            "progress": self.progress,
            "warnings": self.warnings,
            "data_checks": self.data_checks_result(),
        }

    def data_checks_result(self):
        """What the plan-time data checks found: short lines, the full list in their report file."""
        checks = self.survey.data_checks
        return {"problems": checks.problems, "not_checked": checks.warnings, "scans": checks.scans,
                "report": self.data_checks_written}

    def _with_data_checks(self, exc):
        """The survey's error, its data problems recorded in the report file (never in check mode) and summed up."""
        checks = self.survey.data_checks
        if not checks.problems:
            return exc
        if self.data_checks_report and not self.check_mode:
            write_private_json(self.data_checks_report, {"problems": checks.problems, "warnings": checks.warnings,
                                                         "scans": checks.scans})
            self.data_checks_written = self.data_checks_report
        return copy_plan.CopyPlanError(exc.problems + [summary_line(checks.problems, self.data_checks_written)],
                                       **exc.details)

    def _table_result(self, job):
        """A table's result with what it was read from: the snapshot and the write counters read before it."""
        result = dict(job.result(), source_snapshot=None, write_counters=None)
        if job.status == "skipped_complete":
            recorded = (self._recorded_proof or {}).get((job.source_database, job.source_table)) or {}
            result.update(source_snapshot=recorded.get("snapshot"), write_counters=recorded.get("write_counters"))
        elif job.status in ("copied", "would_copy"):
            result.update(source_snapshot=job.source.snapshot,
                          write_counters=job.source.write_counters.get((job.source_schema, job.source_table)))
        return result

    # -- check mode -------------------------------------------------------------------------------

    def _plan_check_mode(self):
        loading = self._ordered([job for job in self.survey.jobs if job.loads])
        for job in loading:
            job.status = "would_copy"
            job.rows = job.source.count_rows(job)
            job.bytes = job.size
            self.changed = True
            self._say(copy_plan.format_plan_line(job.target_schema, job.target_table, job.rows, job.bytes))
        self._refresh_materialized_views()
        conn = self._control
        if conn is None:
            return
        self._continue_standalone_sequences()
        with conn.cursor() as cur:
            pending = self.state.recorded_foreign_keys(cur)
            for record in foreign_keys(cur, loading):
                self.state.drop_foreign_key(cur, record)
                self._note_deferred(dict(record, action="would_drop"))
            for job in loading:
                self._load_table(job, cur, source=None)
        conn.rollback()
        for record in pending:
            self._note_deferred(dict(record, kind="foreign_key", action="would_restore"))
            self.changed = True

    def _ensure_quarantine(self):
        if not any(job.loads and job.null_plan and job.null_plan.quarantine for job in self.survey.jobs):
            return
        with self._control.cursor() as cur:
            cur.execute("SELECT pg_catalog.to_regclass(%s) IS NULL",
                        (null_policy.quarantine_table(self.state.schema).as_string(cur),))
            if cur.fetchone()[0]:
                null_policy.ensure_quarantine_table(cur, self.journal, self.state.schema)
                self.changed = True
        self._control.commit()

    # -- foreign keys: recorded and dropped before the load, restored after it ----------------------

    def _defer_foreign_keys(self):
        conn = self._control
        with conn.cursor() as cur:
            records = foreign_keys(cur, [job for job in self.survey.jobs if job.loads])
            for record in records:
                self.state.defer_foreign_key(cur, record)
        conn.commit()
        for record in records:
            self._note_deferred(dict(record, action="dropped"))
        if records:
            self.changed = True

    def _restore_foreign_keys(self):
        with self._control.cursor() as cur:
            records = self.state.recorded_foreign_keys(cur)
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
        label = "foreign key %s on %s" % (quote_ident(record["name"]),
                                          qualified(record["target_schema"], record["target_table"]))
        try:
            self.state.restore_foreign_key(conn, record)
        except psycopg2.extensions.TransactionRollbackError:
            conn.rollback()
            raise
        except Exception as exc:
            conn.rollback()
            if self._abort.is_set() and isinstance(exc, psycopg2.extensions.QueryCanceledError):
                raise Aborted() from exc
            raise CopyFailed("restoring %s failed (it stays recorded in %s.deferred_ddl and the next run retries): %s"
                             % (label, quote_ident(self.state.schema), postgres_problem(exc))) from exc
        finally:
            self._track()
        self._note_deferred(dict(record, kind="foreign_key", action="restored"))
        self._say("restored %s in %.1f s" % (label, time.time() - started))

    # -- sequences no column uses: the application's own counters -----------------------------------

    def _continue_standalone_sequences(self):
        """Each sequence no column uses continues from its source state (never moved back).

        The application may call nextval() on it for values stored anywhere; only its source state
        tells where it must go on. One missing from the target is reported, not created.
        """
        conn = self._control
        with conn.cursor() as cur:
            for entry in self.survey.standalone_sequences:
                target = qualified(entry["target_schema"], entry["name"])
                name = sql.SQL("{}.{}").format(sql.Identifier(entry["target_schema"]),
                                               sql.Identifier(entry["name"])).as_string(cur)
                cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (name,))
                if not cur.fetchone()[0]:
                    self.warnings.append("sequence %s (from %s) does not exist in the target: not continued"
                                         % (target, entry["source_label"]))
                    continue
                cur.execute(sql.SQL("SELECT last_value, is_called FROM {}.{}").format(
                    sql.Identifier(entry["target_schema"]), sql.Identifier(entry["name"])))
                current = cur.fetchone()
                setval = forward_setval((entry["last_value"], entry["is_called"]), *current,
                                        increment=entry["increment"])
                if setval is not None and next_value(*current, increment=entry["increment"]) == next_value(
                        setval[0], setval[1], entry["increment"]):
                    setval = None  # where it must be already: a rerun changes nothing
                if setval is not None:
                    self.journal.change(cur, "SELECT pg_catalog.setval(%s, %s, %s)", (name, setval[0], setval[1]))
                    self.changed = True
                self.sequences.append({
                    "source_database": entry["source_database"], "source_table": None,
                    "target_schema": entry["target_schema"], "target_table": None, "column": None,
                    "source_sequence": qualified(entry["source_schema"], entry["name"]),
                    "source_last_value": entry["last_value"], "source_is_called": entry["is_called"],
                    "target_sequence": target, "target_column_extreme": None,
                    "setval": list(setval) if setval else None})
        if self.check_mode:
            conn.rollback()
        else:
            conn.commit()

    # -- materialized views: refreshed once their tables hold the copied rows ---------------------

    def _refresh_materialized_views(self):
        """REFRESH each materialized view populated in the source, those it reads first.

        A view the schema step created WITH NO DATA, or one computed before this copy's rows came, is
        stale; one already populated when nothing was copied now is left alone (an honest rerun).
        """
        copied = any(job.status in ("copied", "would_copy") for job in self.survey.jobs)
        for entry in self.survey.matviews:
            label = qualified(entry["target_schema"], entry["name"])
            result = dict((key, entry[key]) for key in ("target_schema", "name", "source_database"))
            if entry["populated"] and not copied:
                self.materialized_views.append(dict(result, action="unchanged", seconds=None))
                continue
            started = time.time()
            statement = sql.SQL("REFRESH MATERIALIZED VIEW {}.{}").format(sql.Identifier(entry["target_schema"]),
                                                                          sql.Identifier(entry["name"]))
            # Check mode may have no target connection: a source one renders the statement.
            conn = self._control if self._control is not None else self.survey.sources[0].conn
            with conn.cursor() as cur:
                self.journal.change(cur, statement)
            if self.check_mode:
                self._say("would refresh materialized view %s" % label)
            else:
                conn.commit()
                self._say("refreshed materialized view %s in %.1f s" % (label, time.time() - started))
            self.changed = True
            self.materialized_views.append(dict(result, action="would_refresh" if self.check_mode else "refreshed",
                                                seconds=None if self.check_mode else round(time.time() - started, 3)))

    # -- copy -------------------------------------------------------------------------------------

    def _ordered(self, jobs):
        # Total size (indexes included) is the better guess of the work: indexes are rebuilt too.
        return [item["job"] for item in copy_plan.order_work(
            [dict(job=job, size=job.total_size, source_database=job.source_database, source_table=job.source_table)
             for job in jobs])]

    def _copy_tables(self):
        self._run_pool(self._copy_table, self._ordered([job for job in self.survey.jobs if job.loads]))

    def _run_pool(self, work, items):
        """Run ``work(item)`` on ``parallel`` threads; on the first failure stop the others and raise it."""
        if not items:
            return
        errors = []

        def guarded(item):
            if self._abort.is_set():
                return
            try:
                self.checkpoint()
                work(item)
            except Aborted:
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
        if self._stopped:
            raise CopyFailed(self._stopped)
        if errors:
            first = errors[0]
            raise first if isinstance(first, CopyFailed) else CopyFailed(str(first).strip())

    def stop(self, problem):
        """Stop the run from another thread (ansible-playbook is gone): the tables in flight roll back."""
        with self._lock:
            self._stopped = self._stopped or problem
        self._say("stopped: %s" % problem)
        self._abort.set()
        self._cancel_inflight()

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
            cancelled = self._abort.is_set() and isinstance(exc, psycopg2.extensions.QueryCanceledError)
            if isinstance(exc, Aborted) or cancelled:
                raise Aborted() from exc
            if isinstance(exc, CopyFailed):
                raise
            raise CopyFailed("copying %s to %s failed: %s"
                             % (job.source_label, job.target_label, postgres_problem(exc))) from exc
        finally:
            self._track()
        job.rows, job.bytes, job.status = rows, nbytes, "copied"
        job.seconds = round(time.time() - started, 3)
        self.changed = True
        self._say(copy_plan.format_progress(job.target_schema, job.target_table, rows, nbytes, job.seconds))

    def _load_table(self, job, cur, source):
        """One table's transaction on the target; in check mode (``source`` None) only its statements."""
        started = time.time()
        table = job.target_own_rows_sql()
        self.journal.change(cur, sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
        if job.action == copy_plan.COPY and not self.check_mode:
            # Emptiness was checked before the run; now that the table is locked, check again.
            cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(table))
            if not cur.fetchone()[0]:
                raise CopyFailed(copy_plan.refusal_problem([job.target_label]))
        self.journal.change(cur, sql.SQL("TRUNCATE {}").format(table))
        indexes = table_indexes(cur, job) if self.defer_indexes else []
        triggers = table_triggers(cur, job)
        for index in indexes:
            self.journal.change(cur, index["drop"])
        for trigger in triggers:
            self.journal.change(cur, trigger["disable"])
        copy_in = copy_in_statement(job, self.freeze)
        if self.check_mode:
            self.journal.record(cur, copy_out_statement(job))
            self.journal.record(cur, copy_in)
            rows = nbytes = None
        else:
            rows, nbytes = pipe_pump(job, source, cur, copy_in, self._abort, self.journal)
        if job.null_plan and job.null_plan.quarantine:
            job.quarantined = null_policy.quarantine(job, source or self._control, cur, self.journal,
                                                     self.state.schema, self.state.run_id)
        for index in indexes:
            self.journal.change(cur, index["create"])
        for trigger in triggers:
            self.journal.change(cur, trigger["enable"])
        self._continue_sequences(job, cur)
        if not self.check_mode:
            self.state.record_copied(cur, job, rows, nbytes, round(time.time() - started, 3), job.source.snapshot,
                                     job.source.write_counters.get((job.source_schema, job.source_table)))
        for entry in indexes:
            self._note_deferred(dict(entry, action="would_rebuild" if self.check_mode else "rebuilt"))
        for entry in triggers:
            self._note_deferred(dict(entry, action="would_disable_during_copy" if self.check_mode
                                     else "disabled_during_copy"))
        return rows, nbytes

    # -- sequences --------------------------------------------------------------------------------

    def _continue_sequences(self, job, cur):
        """setval every sequence feeding a loaded target column, inside the table's transaction.

        A sequence may feed several tables (a default calling nextval() on a shared sequence): each
        table's transaction takes an advisory lock on it (in name order, so two tables never wait on
        each other) and never moves it back behind what another table set.
        """
        names = dict((column, sql.SQL("{}.{}").format(sql.Identifier(target_seq["schema"]),
                                                      sql.Identifier(target_seq["name"])).as_string(cur))
                     for column, target_seq in job.target_sequences.items())
        if not self.check_mode:
            for name in sorted(set(names.values())):
                cur.execute("SELECT pg_catalog.pg_advisory_xact_lock(%s::regclass::oid::bigint)", (name,))
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
                    cur.execute(sql.SQL("SELECT last_value, is_called FROM {}.{}").format(
                        sql.Identifier(target_seq["schema"]), sql.Identifier(target_seq["name"])))
                    setval = forward_setval(setval, *cur.fetchone(), increment=target_seq["increment"])
                if setval is not None:
                    self.journal.change(cur, "SELECT pg_catalog.setval(%s, %s, %s)",
                                        (names[column], setval[0], setval[1]))
            entry = {
                "source_database": job.source_database,
                "source_table": job.source_table,
                "target_schema": job.target_schema,
                "target_table": job.target_table,
                "column": column,
                "source_sequence": source_seq and qualified(source_seq["schema"], source_seq["name"]) or None,
                "source_last_value": source_seq.get("last_value"),
                "source_is_called": source_seq.get("is_called"),
                "target_sequence": qualified(target_seq["schema"], target_seq["name"]),
                "target_column_extreme": extreme,
                "setval": list(setval) if setval else None,
            }
            with self._lock:
                self.sequences.append(entry)
