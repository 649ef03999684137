# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The change applier of online mode: one legacy database's slot streamed into its module schema.

PostgreSQL's own logical replication matches tables by schema-qualified name, and the legacy
databases all keep their tables in ``public``; this applier reads the slot's ``pgoutput`` stream
(:mod:`pgoutput`) and writes each change into the renamed table the module mapping names.

* **Exactly once.** Each source transaction becomes one target transaction, which also updates
  this database's row of ``<state_schema>.sync_progress`` to the transaction's end LSN. The slot is
  told (``send_feedback``) only after that COMMIT, so a crash at any point either loses the whole
  target transaction (the slot sends it again) or keeps it together with its LSN (the transaction
  is skipped when it comes again).
* **Never a silent divergence.** An UPDATE or DELETE that does not touch exactly one row, an
  INSERT that conflicts, a change of a table the mapping does not place, or a table whose columns
  changed on the source (DDL: pgoutput sends a new Relation message) stops the applier with
  :class:`ApplyStopped`, which the supervisor does not restart. Errors name tables and columns,
  never row contents.
* Values arrive as text and are bound as parameters: PostgreSQL casts each literal to its column's
  type. A TOASTed value the source did not change is not in the stream and is left out of the SET list.

The pure pieces (statement builders, the column comparison, the skip rule) are unit-tested; the
:class:`Applier` is the loop around them and is tested against real clusters.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import os
import select
import time

from ansible_collections.classifiedads.consolidation.plugins.module_utils import pgoutput
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    ConnectionFailure,
    connect,
    connect_params,
    psycopg2,
    secrets_of,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import (
    Column,
    CopyPlanError,
    match_columns,
    partition_destination,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import (
    describe,
    qualified,
    quote_ident,
    utc_timestamp,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import (
    ConsolidationError,
    postgres_problem,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import (
    PROGRESS_COLUMNS,
    PROGRESS_TABLE,
)

try:
    import psycopg2.errors
    import psycopg2.extras
except ImportError:  # connection.py reports the missing library
    pass

# Type oids below this are fixed by initdb on every server (FirstGenbkiObjectId); pgoutput sends a
# Type message for every other type, so those names come from the stream.
FIXED_TYPE_OIDS = 10000

# The replication session prints values in forms every PostgreSQL reads back the same way.
STREAM_SETTINGS = "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3"

IDLE_WAIT = 1.0  # seconds the loop waits for the next message (and how late it notices a stop)
STATUS_INTERVAL = 1.0  # at most one status file write per second

STARTING, STREAMING, STOPPING, STOPPED, FAILED = "starting", "streaming", "stopping", "stopped", "failed"

# Undoing the DDL on the legacy database does not help: the stream still carries every change made in between, in
# the table's shape of that moment.
DDL_FIX = ("apply the same change to the consolidated table, then start the applier again (rerun sync.yml); or roll "
           "back (rollback.yml) and run sync.yml again")

TARGET_COLUMNS = """
SELECT a.attname, t.typname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attgenerated <> ''
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

TARGET_TABLE = """
SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
"""

PARTITION_ROOTS = """
SELECT c.relname, r.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_class r ON r.oid = pg_catalog.pg_partition_root(c.oid)
WHERE n.nspname = %s AND c.relispartition
"""

ENABLED_USER_TRIGGERS = """
SELECT t.tgname FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = %s AND NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')
ORDER BY t.tgname
"""


class ApplyStopped(ConsolidationError):
    """A change cannot be applied faithfully: the applier stops for good (no restart) with this error."""


# Where one published source relation lands, and how to compare its rows there.
Target = collections.namedtuple("Target", "label schema table key_columns full_identity")


# -- pure decisions ---------------------------------------------------------------------------------------

def skip_transaction(final_lsn, applied_lsn):
    """Whether a source transaction is already in the target.

    ``final_lsn`` (Begin) is where its commit record starts; ``applied_lsn`` the end of the last one
    applied. Commit records never overlap, so a commit starting before that end is that transaction
    or an earlier one, and one starting at or after it is new.
    """
    return final_lsn < applied_lsn


def relation_label(database, relation):
    return "%s:%s" % (database, qualified(relation.namespace, relation.name))


def map_relation(database, module, relation, roots):
    """(schema, table) of the target table a published relation lands in; ApplyStopped when none.

    ``roots`` maps each partition of the source schema to the top of its hierarchy: a partition goes
    where the copy put it, beside its root (copy_plan.partition_destination).
    """
    destination = None
    if relation.namespace == module["source_schema"]:
        destination = partition_destination(module, relation.name, roots.get(relation.name))
    if destination is None:
        raise ApplyStopped(
            "%s is published by the slot's publication but the module mapping places it nowhere (another schema "
            "or an excluded table): its changes cannot be applied; fix the mapping or the publication, then roll "
            "back and rerun sync.yml" % relation_label(database, relation))
    return destination[0], destination[1]


def relation_columns(relation, type_names):
    """The relation's columns as copy_plan Columns; ``type_names`` maps each type oid to pg_type.typname."""
    return [Column(column.name, type_names[column.type_oid], type_names[column.type_oid], False, True)
            for column in relation.columns]


def compare_relation(label, relation, type_names, target_columns):
    """ApplyStopped naming the differing columns when the source relation no longer matches its target table.

    The copy refused tables that did not match, so a difference seen here was made on the source
    since (DDL during sync): applying on would drop or misplace values.
    """
    try:
        match_columns(label, relation_columns(relation, type_names), target_columns)
    except CopyPlanError as exc:
        raise ApplyStopped(["DDL on the legacy database during sync: %s. The applier stopped before applying a "
                            "change of this table; fix: %s" % (problem, DDL_FIX) for problem in exc.problems]) from None


def target_for(label, relation, schema, table):
    keys = tuple(index for index, column in enumerate(relation.columns) if column.is_key)
    return Target(label, schema, table, keys, relation.replica_identity == pgoutput.IDENTITY_FULL)


def _assignments(names, values):
    return [(name, value) for name, value in zip(names, values) if value is not pgoutput.UNCHANGED]


def insert_statement(target, names, values):
    pairs = _assignments(names, values)
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(target.schema, target.table), sql.SQL(", ").join(sql.Identifier(pair[0]) for pair in pairs),
        sql.SQL(", ").join(sql.Placeholder() for pair in pairs))
    return statement, [pair[1] for pair in pairs]


def _match(target, names, values, full):
    """The WHERE clause that finds the old row: its key columns, or all old columns (REPLICA IDENTITY FULL).

    A full match compares with IS NOT DISTINCT FROM (NULLs are values there) and picks one row by
    ctid, since a table without a key may hold the same row twice and the source changed only one.
    """
    if full:
        pairs = _assignments(names, values)
        null_safe = sql.SQL("{} IS NOT DISTINCT FROM {}")
        same = sql.SQL(" AND ").join(null_safe.format(sql.Identifier(pair[0]), sql.Placeholder()) for pair in pairs)
        inner = sql.SQL("SELECT ctid FROM {} WHERE {} LIMIT 1").format(
            sql.Identifier(target.schema, target.table), same if pairs else sql.SQL("true"))
        return sql.SQL("ctid = ({})").format(inner), [pair[1] for pair in pairs]
    if not target.key_columns:
        raise ApplyStopped("%s has neither a replica identity key nor REPLICA IDENTITY FULL: its updates and deletes "
                           "cannot be matched; fix: ALTER TABLE ... REPLICA IDENTITY FULL on the legacy table, or add "
                           "a primary key" % target.label)
    keys = [(names[index], values[index]) for index in target.key_columns]
    if any(pair[1] is pgoutput.UNCHANGED for pair in keys):
        raise ApplyStopped("%s: the stream did not carry a key value (an unchanged TOASTed key column), so the row "
                           "cannot be found; fix: ALTER TABLE ... REPLICA IDENTITY FULL on the legacy table, then roll "
                           "back and rerun sync.yml" % target.label)
    return (sql.SQL(" AND ").join(sql.SQL("{} = {}").format(sql.Identifier(pair[0]), sql.Placeholder())
                                  for pair in keys), [pair[1] for pair in keys])


def update_statement(target, names, update):
    """UPDATE of one row: the SET list leaves unchanged TOASTed values out; the row is found by its old key
    ('K', the key changed), its old row ('O', REPLICA IDENTITY FULL) or the new tuple's key."""
    pairs = _assignments(names, update.new)
    if update.old_kind is None:
        where, where_params = _match(target, names, update.new, False)
    else:
        where, where_params = _match(target, names, update.old, update.old_kind == pgoutput.OLD_FULL)
    statement = sql.SQL("UPDATE {} SET {} WHERE {}").format(
        sql.Identifier(target.schema, target.table),
        sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(pair[0]), sql.Placeholder()) for pair in pairs),
        where)
    return statement, [pair[1] for pair in pairs] + where_params


def delete_statement(target, names, delete):
    where, params = _match(target, names, delete.old, delete.old_kind == pgoutput.OLD_FULL)
    return sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(target.schema, target.table), where), params


def truncate_statement(targets, cascade, restart_identity):
    return sql.SQL("TRUNCATE {}{}{}").format(
        sql.SQL(", ").join(sql.Identifier(target.schema, target.table) for target in targets),
        sql.SQL(" RESTART IDENTITY" if restart_identity else ""), sql.SQL(" CASCADE" if cascade else ""))


def progress_table_statement(state_schema):
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        sql.Identifier(state_schema, PROGRESS_TABLE),
        sql.SQL(", ").join(sql.SQL("{} %s" % kind).format(sql.Identifier(name)) for name, kind in PROGRESS_COLUMNS))


def ensure_progress(cur, state_schema, source_database, slot):
    """Create the progress table and this database's row; a row of another slot (an earlier run) starts over.

    Returns (applied_lsn, transactions, rows) as recorded.
    """
    # The appliers of all legacy databases start at once: IF NOT EXISTS alone lets two of them create the same
    # table concurrently (a unique violation in pg_type); this transaction-scoped lock lines them up.
    cur.execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(%s))",
                ("classifiedads sync_progress " + state_schema,))
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(state_schema)))
    cur.execute(progress_table_statement(state_schema))
    table = sql.Identifier(state_schema, PROGRESS_TABLE)
    cur.execute(sql.SQL("INSERT INTO {} (source_database, slot_name, applied_lsn, applied_at) "
                        "VALUES (%s, %s, '0/0', pg_catalog.now()) ON CONFLICT (source_database) DO UPDATE "
                        "SET slot_name = EXCLUDED.slot_name, applied_lsn = '0/0', applied_commit_time = NULL, "
                        "applied_at = EXCLUDED.applied_at, transactions = 0, rows = 0 "
                        "WHERE {}.slot_name <> EXCLUDED.slot_name").format(table, table),
                (source_database, slot))
    cur.execute(sql.SQL("SELECT applied_lsn::text, transactions, rows FROM {} WHERE source_database = %s")
                .format(table), (source_database,))
    lsn, transactions, rows = cur.fetchone()
    return pgoutput.to_lsn(lsn), transactions, rows


def partition_roots(endpoint, module):
    """{partition: root} of the module's source schema, read on a plain connection to its legacy database."""
    conn = connect(endpoint, module["source_database"], autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(PARTITION_ROOTS, (module["source_schema"],))
            return dict(cur.fetchall())
    finally:
        conn.close()


def replication_connection(endpoint, dbname):
    """A LogicalReplicationConnection to ``dbname``; a refusal names the side like connection.connect does."""
    params = connect_params(endpoint, dbname)
    params["options"] = " ".join(part for part in (params.get("options"), STREAM_SETTINGS) if part)
    try:
        return psycopg2.connect(connection_factory=psycopg2.extras.LogicalReplicationConnection, **params)
    except psycopg2.Error as exc:
        reason = str(exc).strip()
        for secret in secrets_of(endpoint):
            reason = reason.replace(secret, "********")
        raise ConnectionFailure("cannot open a replication connection to the %s server %s: %s"
                                % (getattr(endpoint, "side", "source"), describe(endpoint, dbname), reason)) from None


# -- the loop -----------------------------------------------------------------------------------------------

class _Transaction(object):
    def __init__(self, skip):
        self.skip = skip
        self.rows = 0


class Applier(object):
    """Streams one legacy database's slot into the target until ``stop()`` (SIGTERM) or a fatal error.

    ``report(status)`` receives the status dictionary (sync_names' status file keys but pid and
    restarts) at most every STATUS_INTERVAL and on every change of state; ``log(line)`` gets lines
    without row contents.
    """

    def __init__(self, source, target, target_database, module, slot, publication, state_schema, report, log):
        self.source = source
        self.target = target
        self.target_database = target_database
        self.module = module
        self.database = module["source_database"]
        self.slot = slot
        self.publication = publication
        self.state_schema = state_schema
        self.report = report
        self.log = log
        self.stopping = False
        self.roots = {}
        self.relations = {}
        self.targets = {}
        self.type_names = {}
        self.transaction = None
        self.replica_role = False
        self.status = {"source_database": self.database, "slot_name": slot, "state": STARTING, "error": None,
                       "received_lsn": None, "applied_lsn": None, "confirmed_lsn": None,
                       "applied_commit_time": None, "transactions": 0, "rows": 0}
        self._reported = 0.0
        self._confirmed = 0
        self.wake_fd = None  # sync_process.wake_on_signal(): a stop ends the wait for the stream at once

    def stop(self, *_args):
        """Ask the loop to end at the next message boundary (a signal handler): the open transaction is abandoned."""
        self.stopping = True

    def _publish(self, force=False, **changes):
        self.status.update(changes)
        now = time.time()
        if force or now - self._reported >= STATUS_INTERVAL:
            self._reported = now
            self.report(dict(self.status, updated_at=utc_timestamp()))

    # -- sessions -----------------------------------------------------------------------------------------

    def _open_target(self):
        conn = connect(self.target, self.target_database)
        cur = conn.cursor()
        try:
            # Rows arrive as the source wrote them: user triggers and foreign-key checks fired there already.
            cur.execute("SET session_replication_role = replica")
            self.replica_role = True
        except psycopg2.errors.InsufficientPrivilege:
            conn.rollback()
            self.log("the target role may not set session_replication_role: tables with enabled user triggers "
                     "will be refused")
        cur.execute("SET datestyle = ISO; SET intervalstyle = postgres")
        # The slot hears of a transaction once COMMIT has returned and never sends it again: an asynchronous
        # commit lost in a crash of the target would be lost for good.
        cur.execute("SELECT pg_catalog.current_setting('synchronous_commit')")
        if cur.fetchone()[0] == "off":
            cur.execute("SET synchronous_commit = local")
        applied, transactions, rows = ensure_progress(cur, self.state_schema, self.database, self.slot)
        conn.commit()
        return conn, cur, applied, transactions, rows

    def run(self):
        """Stream until stopped; raises ApplyStopped (fatal) or a connection/server error (the supervisor retries)."""
        self.roots = partition_roots(self.source, self.module)
        self.conn, self.cur, self.applied, transactions, rows = self._open_target()
        self._confirmed = self.applied
        self._publish(force=True, applied_lsn=pgoutput.format_lsn(self.applied), transactions=transactions,
                      rows=rows)
        stream_conn = replication_connection(self.source, self.database)
        try:
            self.stream = stream_conn.cursor()
            try:
                self.stream.start_replication(slot_name=self.slot, decode=False, options={
                    "proto_version": "1", "publication_names": self.publication})
                self.log("streaming %s from slot %s, resuming after %s"
                         % (self.database, self.slot, pgoutput.format_lsn(self.applied)))
                self._publish(force=True, state=STREAMING)
                self._loop()
                self._publish(force=True, state=STOPPING)
            except psycopg2.errors.UndefinedObject as exc:
                # The walsender reports a missing publication only once it decodes a change: either way, no retry helps.
                raise ApplyStopped("the source has no replication slot or publication %s for %s (%s): create them "
                                   "with data_copy sync=online (sync.yml), or roll back" % (
                                       quote_ident(self.slot), self.database, postgres_problem(exc))) from None
        finally:
            if self.transaction is not None:
                self.conn.rollback()  # never half a source transaction
                self.transaction = None
            stream_conn.close()
            self.conn.close()
        self._publish(force=True, state=STOPPED)
        self.log("stopped at %s" % pgoutput.format_lsn(self.applied))

    def _loop(self):
        while not self.stopping:
            message = self.stream.read_message()
            if message is None:
                self._idle()
                continue
            self._publish(received_lsn=pgoutput.format_lsn(self.stream.wal_end))
            try:
                decoded = pgoutput.decode(message.payload)
            except pgoutput.DecodeError as exc:
                raise ApplyStopped("the stream of %s at %s cannot be read (%s): the source speaks a protocol this "
                                   "applier does not know; report it with the applier's log"
                                   % (self.database, pgoutput.format_lsn(message.data_start), exc)) from None
            self.handle(decoded)

    def _idle(self):
        """No message waiting: with no transaction open, everything up to the server's WAL end is applied."""
        if self.transaction is None and self.stream.wal_end > self._confirmed:
            self._confirm(self.stream.wal_end)
        self._publish()
        waiting = [self.stream] if self.wake_fd is None else [self.stream, self.wake_fd]
        try:
            ready = select.select(waiting, [], [], IDLE_WAIT)[0]
        except InterruptedError:
            ready = []
        if self.wake_fd is not None and self.wake_fd in ready:
            try:
                os.read(self.wake_fd, 512)
            except OSError:
                pass

    def _confirm(self, lsn):
        self.stream.send_feedback(write_lsn=lsn, flush_lsn=lsn, reply=False, force=True)
        self._confirmed = lsn
        self._publish(confirmed_lsn=pgoutput.format_lsn(lsn))

    # -- messages -------------------------------------------------------------------------------------

    def handle(self, message):
        handler = getattr(self, "_on_" + type(message).__name__.lower())
        handler(message)

    def _on_begin(self, begin):
        self.transaction = _Transaction(skip_transaction(begin.final_lsn, self.applied))

    def _on_commit(self, commit):
        transaction, self.transaction = self.transaction, None
        if transaction is None or transaction.skip:
            if transaction is not None:
                self.conn.rollback()
            self._confirm(max(self._confirmed, self.applied))
            return
        table = sql.Identifier(self.state_schema, PROGRESS_TABLE)
        self.cur.execute(sql.SQL("UPDATE {} SET applied_lsn = %s::pg_lsn, applied_commit_time = %s, "
                                 "applied_at = pg_catalog.now(), transactions = transactions + 1, "
                                 "rows = rows + %s WHERE source_database = %s RETURNING transactions, rows")
                         .format(table), (pgoutput.format_lsn(commit.end_lsn), commit.commit_time, transaction.rows,
                                          self.database))
        transactions, rows = self.cur.fetchone()
        self.conn.commit()
        self.applied = commit.end_lsn
        self._confirm(commit.end_lsn)
        self._publish(applied_lsn=pgoutput.format_lsn(commit.end_lsn), transactions=transactions, rows=rows,
                      applied_commit_time=commit.commit_time.isoformat())

    def _on_origin(self, _origin):
        pass  # a change replayed from another node is still a change of this database

    def _on_message(self, _message):
        pass  # logical decoding messages carry no table change

    def _on_type(self, type_message):
        self.type_names[type_message.oid] = type_message.name

    def _on_relation(self, relation):
        label = relation_label(self.database, relation)
        schema, table = map_relation(self.database, self.module, relation, self.roots)
        self.cur.execute(TARGET_TABLE, (schema, table))
        row = self.cur.fetchone()
        if row is None:
            raise ApplyStopped("%s maps to %s, which the target database %s does not have; fix: run the migrator "
                               "and the copy again (roll back and rerun sync.yml)"
                               % (label, qualified(schema, table), self.target_database))
        self.cur.execute(TARGET_COLUMNS, (row[0],))
        target_columns = [Column(name, type_name, display, generated, True)
                          for name, type_name, display, generated in self.cur.fetchall()]
        missing = sorted(set(column.type_oid for column in relation.columns
                             if column.type_oid < FIXED_TYPE_OIDS) - set(self.type_names))
        if missing:
            self.cur.execute("SELECT oid, typname FROM pg_catalog.pg_type WHERE oid = ANY(%s)", (missing,))
            self.type_names.update(self.cur.fetchall())
        compare_relation(label, relation, self.type_names, target_columns)
        if not self.replica_role:
            self.cur.execute(ENABLED_USER_TRIGGERS, (row[0],))
            triggers = [name for (name,) in self.cur.fetchall()]
            if triggers:
                raise ApplyStopped("%s has enabled user triggers (%s) that would fire a second time for changes the "
                                   "source has made already, and the target role may not set "
                                   "session_replication_role; fix: run the applier as a role that may (superuser, "
                                   "or GRANT SET ON PARAMETER session_replication_role), or disable the triggers "
                                   "during sync" % (qualified(schema, table),
                                                    ", ".join(quote_ident(name) for name in triggers)))
        self.relations[relation.relid] = relation
        self.targets[relation.relid] = target_for(label, relation, schema, table)

    def _target(self, relid):
        if relid not in self.targets:
            raise ApplyStopped("the stream of %s changed a relation (oid %d) it never described: a protocol error; "
                               "restart the applier" % (self.database, relid))
        return self.targets[relid], [column.name for column in self.relations[relid].columns]

    def _apply(self, target, statement, params, expect_one=True):
        try:
            self.cur.execute(statement, params)
        except psycopg2.IntegrityError as exc:
            raise ApplyStopped("the change of %s conflicts with the target table %s (%s): the target has diverged "
                               "from the source; roll back and rerun sync.yml"
                               % (target.label, qualified(target.schema, target.table), postgres_problem(exc))) \
                from None
        except psycopg2.DataError as exc:
            # Its message quotes the value that did not fit: the error names the kind of problem only.
            raise ApplyStopped("the change of %s cannot be applied to %s: a value does not fit its target column "
                               "(%s, SQLSTATE %s)" % (target.label, qualified(target.schema, target.table),
                                                      type(exc).__name__, exc.pgcode)) from None
        except psycopg2.ProgrammingError as exc:
            raise ApplyStopped("the change of %s cannot be applied to %s: %s"
                               % (target.label, qualified(target.schema, target.table), postgres_problem(exc))) \
                from None
        if expect_one and self.cur.rowcount != 1:
            raise ApplyStopped("the change of %s touched %d rows of %s instead of exactly one: the target has "
                               "diverged from the source (a row written or removed there by someone else); roll "
                               "back and rerun sync.yml" % (target.label, self.cur.rowcount,
                                                            qualified(target.schema, target.table)))
        self.transaction.rows += 1

    def _changing(self):
        if self.transaction is None:
            raise ApplyStopped("the stream of %s sent a change outside a transaction: a protocol error" % self.database)
        return not self.transaction.skip

    def _on_insert(self, insert):
        if self._changing():
            target, names = self._target(insert.relid)
            self._apply(target, *insert_statement(target, names, insert.new))

    def _on_update(self, update):
        if self._changing():
            target, names = self._target(update.relid)
            self._apply(target, *update_statement(target, names, update))

    def _on_delete(self, delete):
        if self._changing():
            target, names = self._target(delete.relid)
            self._apply(target, *delete_statement(target, names, delete))

    def _on_truncate(self, truncate):
        if self._changing():
            targets = [self._target(relid)[0] for relid in truncate.relids]
            self._apply(targets[0], truncate_statement(targets, truncate.cascade, truncate.restart_identity), None,
                        expect_one=False)
