# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification of a consolidation: the database side (catalogs, counts, checksums, sequences).

Every session is read-only and starts with the same settings on both servers
(:data:`SESSION_SETTINGS`), so that any value compared through its text form
renders the same whatever the login role's or the server's defaults are.

Counts are exact ``count(*)``. A content checksum is one scan per table::

    SELECT count(*), sum(h) FROM (
        SELECT hash_record_extended(ROW(<columns sorted by name>), 0) AS h FROM ONLY <table>) AS t

``sum()`` of a bigint accumulates in 128 bits and returns numeric: it cannot
overflow and does not depend on row order. A column goes into the ROW as it is
when rowdiff.column_plan says both sides hash it exactly in binary form, else
as ``(column)::text COLLATE "C"``. Hashing the binary values is what makes the
checksum fast: hashing each row's text form (``ROW(...)::text``) was five to six
times slower on the ClassifiedAds data, far below 250 MB/s per side on two cores
(bench/verify_benchmark.py). Both servers must therefore have the same byte
order (the hashes of some types depend on it): a difference shows as a
mismatch, never as a false match.

Tables are measured on both servers at once, ``workers`` tables at a time on
each, largest first; each worker thread holds its own sessions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    ConnectionFailure,
    connect,
    psycopg2,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import describe
from ansible_collections.classifiedads.consolidation.plugins.module_utils.null_policy import column_item, kept_condition
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sequences import (
    COLUMN_SEQUENCES,
    FEEDS_NO_COLUMN,
)

# Every text rendering that depends on a setting, pinned; every session read-only.
# jit is off: the expressions are trivial, and compiling them only added time (measured).
SESSION_SETTINGS = (
    ("default_transaction_read_only", "on"),
    ("DateStyle", "ISO, YMD"),
    ("TimeZone", "UTC"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("search_path", ""),
    ("jit", "off"),
    # A row-level security policy must never filter what is counted: with it off, a role the policies
    # apply to gets an error instead of a smaller count.
    ("row_security", "off"),
)

# Built-in types (by fixed OID) whose hash function tells every two distinct values
# apart, so hashing them in binary form loses nothing: bool, bytea, "char", name,
# int8, int2, int4, text, oid, varchar, date, time, timestamp, timestamptz, uuid.
# Left out on purpose: numeric (1.0 and 1.00 hash alike), float (-0 and 0),
# interval ('1 day' and '24 hours'), jsonb (its numbers), arrays (lower bounds),
# citext and domains; they are compared by their text form.
EXACT_HASH_TYPE_OIDS = (16, 17, 18, 19, 20, 21, 23, 25, 26, 1043, 1082, 1083, 1114, 1184, 2950)

MIN_SERVER_VERSION = 120000  # pg_partition_tree
MIN_CHECKSUM_SERVER_VERSION = 140000  # hash_record_extended


class SessionPool(object):
    """Sessions to the databases of one server, set up by :func:`open_session`, reused across tasks.

    A session serves one thread at a time; ``close()`` ends them all.
    """

    def __init__(self, endpoint, journal):
        self.endpoint = endpoint
        self.journal = journal
        self._idle = {}
        self._all = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def session(self, dbname):
        with self._lock:
            idle = self._idle.get(dbname) or []
            conn = idle.pop() if idle else None
        if conn is None:
            conn = open_session(self.endpoint, dbname, self.journal)
            with self._lock:
                self._all.append(conn)
        try:
            yield conn
        finally:
            # A failed statement leaves an autocommit session usable; a broken one is dropped.
            if not conn.closed:
                with self._lock:
                    self._idle.setdefault(dbname, []).append(conn)

    def close(self):
        with self._lock:
            for conn in self._all:
                if not conn.closed:
                    conn.close()
            self._all, self._idle = [], {}


def open_session(endpoint, dbname, journal):
    """A read-only autocommit session with :data:`SESSION_SETTINGS` applied."""
    conn = connect(endpoint, dbname, autocommit=True)
    with conn.cursor() as cur:
        journal.execute(cur, session_setup_query(), [value for _name, value in SESSION_SETTINGS])
    return conn


def session_setup_query():
    return sql.SQL("SELECT {}").format(sql.SQL(", ").join(
        sql.SQL("set_config({}, %s, false)").format(sql.Literal(name)) for name, _value in SESSION_SETTINGS))


# -- catalog ------------------------------------------------------------------------------------

def server_facts(conn, journal):
    with conn.cursor() as cur:
        journal.execute(cur, "SELECT current_setting('server_version'), current_setting('server_version_num')::int")
        version, number = cur.fetchone()
    return {"version": version, "version_num": number}


def existing_schemas(conn, journal, schemas):
    with conn.cursor() as cur:
        journal.execute(cur, "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY(%s)", (list(schemas),))
        return set(name for (name,) in cur.fetchall())


def list_tables(conn, journal, schemas):
    """{(schema, table): size in bytes} of the ordinary and partitioned tables of ``schemas``, partitions included.

    Every table is counted on its own (:func:`count_query` reads ``ONLY`` it): a partition holds its
    rows, a partitioned table none (size 0), an inheritance parent its own rows and not its children's.
    """
    with conn.cursor() as cur:
        journal.execute(
            cur, "SELECT n.nspname::text, c.relname::text, pg_table_size(c.oid)::bigint"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')"
            " AND c.relpersistence <> 't'", (list(schemas),))
        return dict(((schema, table), size) for schema, table, size in cur.fetchall())


def list_partitions(conn, journal, schemas):
    """{(schema, table): {root, parent, partitioned}} of the tables of ``schemas`` in a partition hierarchy.

    ``root`` is the top of the hierarchy (None for the top itself), ``parent`` the table it is a partition
    of, ``partitioned`` whether it holds no rows of its own (its partitions do).
    """
    with conn.cursor() as cur:
        journal.execute(
            cur, "SELECT n.nspname::text, c.relname::text,"
            " CASE WHEN c.relispartition THEN (SELECT r.relname::text FROM pg_class r"
            " WHERE r.oid = pg_partition_root(c.oid)) END,"
            " (SELECT p.relname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE i.inhrelid = c.oid AND c.relispartition), c.relkind = 'p'"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY(%s) AND (c.relkind = 'p' OR (c.relkind = 'r' AND c.relispartition))",
            (list(schemas),))
        return dict(((schema, table), {"root": root, "parent": parent, "partitioned": partitioned})
                    for schema, table, root, parent, partitioned in cur.fetchall())


def list_standalone_sequences(conn, journal, schemas):
    """{schema: [{sequence, increment}]} of the sequences of ``schemas`` that feed no column."""
    with conn.cursor() as cur:
        journal.execute(
            cur, "SELECT n.nspname::text, s.relname::text, ps.seqincrement FROM pg_class s"
            " JOIN pg_namespace n ON n.oid = s.relnamespace JOIN pg_sequence ps ON ps.seqrelid = s.oid"
            " WHERE n.nspname = ANY(%s) AND s.relkind = 'S' AND " + FEEDS_NO_COLUMN +
            " ORDER BY 1, 2", (list(schemas),))
        found = {}
        for schema, sequence, increment in cur.fetchall():
            found.setdefault(schema, []).append({"sequence": sequence, "increment": increment})
        return found


def list_columns(conn, journal, schemas):
    """{(schema, table): [{name, type, exact_hash}]} in column order."""
    with conn.cursor() as cur:
        journal.execute(
            cur, "SELECT n.nspname::text, c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),"
            " a.atttypid = ANY(%s::oid[]) AND coalesce(co.collisdeterministic, true)"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_collation co ON co.oid = a.attcollation"
            " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY 1, 2, a.attnum", (list(EXACT_HASH_TYPE_OIDS), list(schemas)))
        columns = {}
        for schema, table, name, type_name, exact in cur.fetchall():
            columns.setdefault((schema, table), []).append({"name": name, "type": type_name, "exact_hash": exact})
        return columns


def list_sequences(conn, journal, schemas):
    """{(schema, table): [{column, sequence_schema, sequence, increment}]} for every column fed by a sequence:
    serial and identity columns, and defaults calling nextval() on any sequence (shared ones included)."""
    with conn.cursor() as cur:
        journal.execute(
            cur, "SELECT tn.nspname::text, t.relname::text, a.attname::text, sn.nspname::text, s.relname::text,"
            " ps.seqincrement"
            " FROM (" + COLUMN_SEQUENCES + ") u"
            " JOIN pg_class s ON s.oid = u.sequence_oid AND s.relkind = 'S'"
            " JOIN pg_sequence ps ON ps.seqrelid = s.oid"
            " JOIN pg_namespace sn ON sn.oid = s.relnamespace"
            " JOIN pg_class t ON t.oid = u.table_oid"
            " JOIN pg_namespace tn ON tn.oid = t.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = u.attnum"
            " WHERE tn.nspname = ANY(%s)"
            " ORDER BY 1, 2, 3, 4, 5", (list(schemas),))
        found = {}
        for schema, table, column, sequence_schema, sequence, increment in cur.fetchall():
            found.setdefault((schema, table), []).append(
                {"column": column, "sequence_schema": sequence_schema, "sequence": sequence, "increment": increment})
        return found


def sequence_state(conn, journal, sequence_schema, sequence):
    """(last_value, is_called) of a sequence."""
    with conn.cursor() as cur:
        journal.execute(cur, sql.SQL("SELECT last_value, is_called FROM {}.{}").format(
            sql.Identifier(sequence_schema), sql.Identifier(sequence)))
        return cur.fetchone()


def column_max(conn, journal, schema, table, column):
    with conn.cursor() as cur:
        journal.execute(cur, sql.SQL("SELECT max({}) FROM {}.{}").format(
            sql.Identifier(column), sql.Identifier(schema), sql.Identifier(table)))
        return cur.fetchone()[0]


# -- counts and checksums -----------------------------------------------------------------------

def rows_containing(text):
    """Only the rows whose text form contains ``text`` (a marker a play wrote into its own rows).

    A literal, not a bound parameter: a table name may hold "%", which a parameterised
    execute would take for a placeholder.
    """
    return sql.SQL(" AS r WHERE strpos(ROW(r.*)::text, {}) > 0").format(sql.Literal(text))


def _kept(null_plan, containing=None):
    """The WHERE clause of a source read through a NULL policy's plan (null_policy), of the rows holding a
    marker (``containing``, a target read, :func:`rows_containing`), or nothing."""
    if containing:
        return rows_containing(containing)
    condition = kept_condition(null_plan)
    return sql.SQL("") if condition is None else sql.SQL(" WHERE ") + condition


def _relation(schema, table, whole):
    """``ONLY schema.table``: a table's own rows (see list_tables), never its inheritance children's or
    partitions'. ``whole``: the table with its partitions, for a partitioned target whose legacy table
    was a plain one (its partitions are compared through it)."""
    return sql.SQL("{}{}.{}").format(sql.SQL("") if whole else sql.SQL("ONLY "), sql.Identifier(schema),
                                     sql.Identifier(table))


def count_query(schema, table, null_plan=None, containing=None, whole=False):
    return sql.SQL("SELECT count(*) FROM {}{}").format(_relation(schema, table, whole), _kept(null_plan, containing))


def checksum_query(schema, table, columns, null_plan=None, containing=None, whole=False):
    """One scan: row count and the order-independent content checksum (see the module docstring).

    ``null_plan`` reads a source table as the copy did under its NULL policy. With ``containing``,
    of the rows :func:`rows_containing` selects only: a sum, so the checksum of the other rows is
    the whole table's minus theirs.
    """
    items = [column_item(null_plan, column["name"]) if column["binary"]
             else sql.SQL('({})::text COLLATE "C"').format(column_item(null_plan, column["name"]))
             for column in columns]
    return sql.SQL("SELECT count(*), sum(h) FROM (SELECT hash_record_extended(ROW({}), 0) AS h FROM {}{}) AS t"
                   ).format(sql.SQL(", ").join(items), _relation(schema, table, whole), _kept(null_plan, containing))


def count_and_checksum(cur, schema, table, columns, execute=None, null_plan=None, containing=None, whole=False):
    """(rows, checksum) of a table in ``cur``'s transaction; checksum None when ``columns`` is None.

    The one place a checksum is computed: verification, the final backup (inside its dump's snapshot) and the
    decommission compare the same numbers. ``execute(cur, statement)`` runs it (a journal's), else ``cur.execute``.
    ``null_plan``, ``containing`` and ``whole`` as for :func:`checksum_query` and :func:`_relation`.
    """
    statement = (count_query(schema, table, null_plan, containing, whole) if columns is None
                 else checksum_query(schema, table, columns, null_plan, containing, whole))
    (execute or (lambda cursor, query: cursor.execute(query)))(cur, statement)
    if columns is None:
        return cur.fetchone()[0], None
    rows, total = cur.fetchone()
    return rows, str(int(total or 0))


def measure(pool, job):
    """Count (and checksum) one table; ``{"rows", "checksum", "query"}`` or ``{"error"}``.

    ``job``: dbname, schema, table, and ``columns`` (the column plan's list) for
    a checksum or None for a count; optionally ``containing`` (see :func:`rows_containing`) and ``whole``
    (see :func:`_relation`).
    """
    containing = job.get("containing")
    try:
        with pool.session(job["dbname"]) as conn, conn.cursor() as cur:
            rows, checksum = count_and_checksum(cur, job["schema"], job["table"], job["columns"],
                                                null_plan=job.get("null_plan"), containing=containing,
                                                whole=job.get("whole", False))
            return {"rows": rows, "checksum": checksum, "query": cur.query.decode("utf-8", "replace")}
    except (psycopg2.Error, ConnectionFailure) as exc:
        reason = (getattr(exc, "pgerror", None) or str(exc)).strip().splitlines()[0]
        return {"error": "%s: %s" % (describe(pool.endpoint, job["dbname"]), reason)}


def measuring_order(jobs):
    """The indexes of ``jobs`` in the order :func:`measure_all` starts them (each side's workers take them in it).

    The progress lines of a verification (plugin_utils/progress_probes.py) rely on this order too.
    """
    return sorted(range(len(jobs)), key=lambda index: -jobs[index]["bytes"])


def measure_all(pools, jobs, workers):
    """Measure every job; both servers at once, ``workers`` tables at a time on each, largest first.

    ``pools`` maps a side ("source", "target") to its SessionPool; each job
    names its ``side`` and carries ``bytes`` (its size, for the order).
    Returns the results in the order of ``jobs``.
    """
    executors = dict((side, ThreadPoolExecutor(max_workers=workers)) for side in pools)
    try:
        order = measuring_order(jobs)
        futures = dict((index, executors[jobs[index]["side"]].submit(measure, pools[jobs[index]["side"]], jobs[index]))
                       for index in order)
        return [futures[index].result() for index in range(len(jobs))]
    finally:
        for executor in executors.values():
            executor.shutdown(wait=True)
