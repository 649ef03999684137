# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the progress thread (progress.py) looks at: one probe per module, over the task's connections.

Imported by the thread only once the first interval has passed, so that a short task never pays for
psycopg2 and the collection's catalog code on the controller.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan, rowdiff, table_stats
from ansible_collections.classifiedads.consolidation.plugins.module_utils.backup import TABLES_QUERY
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    APPLICATION_NAME,
    Endpoint,
    connect,
    psycopg2,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_catalog import SOURCE_TABLES
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import argument_spec
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan
from ansible_collections.classifiedads.consolidation.plugins.module_utils.progress import (
    DumpSample,
    Sample,
    VerifySample,
    backup_line,
    measured_jobs,
    progress_line,
    verify_line,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.verification import Verification

PROBE_TIMEOUT = 5  # seconds a look may take (connect and statements): the lines must not lag behind
# pg_dump reads one table at a time, with COPY ... TO stdout.
DUMPING = """
SELECT p.datname, p.relid, p.bytes_processed
FROM pg_catalog.pg_stat_progress_copy p
JOIN pg_catalog.pg_stat_activity a ON a.pid = p.pid
WHERE p.command = 'COPY TO' AND a.application_name = %s AND p.datname = ANY(%s)
"""

IN_FLIGHT = """
SELECT p.relid, p.bytes_processed
FROM pg_catalog.pg_stat_progress_copy p
JOIN pg_catalog.pg_stat_activity a ON a.pid = p.pid
WHERE p.datname = pg_catalog.current_database() AND p.command = 'COPY FROM' AND a.application_name = %s
"""

# A count or checksum holds its table's lock until its statement ends (the sessions are autocommit); catalog
# reads lock only catalogs, which are no job's table.
MEASURING = """
SELECT l.database, l.relation
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND a.state = 'active' AND a.application_name = %s
AND a.pid <> pg_catalog.pg_backend_pid()
"""


def _maintenance_db(endpoint):
    return endpoint.get("maintenance_db") or "postgres"


def _quick(endpoint, side):
    """``endpoint`` for a look from the controller: a short connect timeout, named as its side."""
    options = dict(endpoint)
    options["connect_timeout"] = min(int(options.get("connect_timeout") or PROBE_TIMEOUT), PROBE_TIMEOUT)
    return Endpoint(side, options)


class CopyProbe(object):
    """Looks at a running ``data_copy``: the plan from the source catalogs, the rest from the target.

    The tables planned are found the way the module finds them (the same catalog query and
    :func:`copy_plan.map_tables`); done ones are the run's rows of ``<state_schema>.copied_tables``;
    loads in progress are the target's ``COPY FROM`` sessions of the collection.
    """

    task = "data_copy"
    sides = ("source", "target")

    @staticmethod
    def spec():
        return argument_spec(mapping=True, target_database=dict(type="str", required=True),
                             run_id=dict(type="str", required=True),
                             state_schema=dict(type="str", default="_consolidation"))

    def __init__(self, params, started):
        self.params = params
        self.started = started
        self.sizes = {}
        self.target = None
        # {target table oid: bytes its COPY streamed}: kept after the COPY ends, while the table's transaction
        # rebuilds its indexes, until the table is recorded as copied (else the figures would drop meanwhile).
        self.loading = {}

    def open(self):
        params = self.params
        modules = build_plan(params["modules"], params["target_database"], params["source"], params["target"],
                             params["exclude_tables"])
        for module in modules:
            conn = connect(_quick(params["source"], "source"), module["source_database"], autocommit=True)
            try:
                with conn.cursor() as cur:
                    cur.execute(SOURCE_TABLES, (module["source_schema"],))
                    tables = dict((row[1], row) for row in cur.fetchall())
            finally:
                conn.close()
            mappings, _excluded = copy_plan.map_tables(module, list(tables), dict(
                (name, row[6]) for name, row in tables.items() if row[6]))
            for mapping in mappings:
                row = tables[mapping.source_table]
                if row[2] != "p":  # a partitioned table holds no rows: its partitions are loaded
                    self.sizes[(module["source_database"], mapping.source_table)] = row[3]
        self.target = connect(_quick(params["target"], "target"), params["target_database"], autocommit=True)
        with self.target.cursor() as cur:
            cur.execute("SET statement_timeout = %s", ("%ds" % PROBE_TIMEOUT,))

    def describe(self, elapsed):
        return progress_line(self.task, self.sample(), elapsed)

    def sample(self):
        done = []
        with self.target.cursor() as cur:
            state = sql.Identifier(self.params["state_schema"], "copied_tables")
            cur.execute("SELECT pg_catalog.to_regclass(%s)", (state.as_string(cur),))
            if cur.fetchone()[0] is not None:
                cur.execute(sql.SQL(
                    "SELECT source_database, source_table, bytes, completed_at >= %s, "
                    "pg_catalog.to_regclass(pg_catalog.quote_ident(target_schema) || '.' || "
                    "pg_catalog.quote_ident(target_table))::oid FROM {} WHERE run_id = %s").format(state),
                    (self.started, self.params["run_id"]))
                done = cur.fetchall()
            cur.execute(IN_FLIGHT, (APPLICATION_NAME,))
            for relid, nbytes in cur.fetchall():
                self.loading[relid] = max(nbytes, self.loading.get(relid, 0))
        for row in done:
            self.loading.pop(row[4], None)
        done = [row for row in done if (row[0], row[1]) in self.sizes]
        return Sample(
            tables_done=len(done), tables_total=len(self.sizes),
            bytes_done=sum(row[2] for row in done if row[3]), bytes_in_flight=sum(self.loading.values()),
            size_done=sum(self.sizes[(row[0], row[1])] for row in done), size_total=sum(self.sizes.values()))

    def close(self):
        if self.target is not None:
            self.target.close()


class DumpProbe(object):
    """Looks at a running ``backup_set`` on the source: the sizes of the tables pg_dump writes (the
    module's own table query), and the ``COPY TO`` sessions of the collection's pg_dump, which name
    the database being dumped and the bytes streamed so far."""

    task = "backup_set"
    sides = ("source",)

    @staticmethod
    def spec():
        return argument_spec(databases=dict(type="list", elements="str", required=True))

    def __init__(self, params, started):
        del started  # every dump of the set is this run's: what pg_dump streams is all new
        self.params = params
        self.sizes = {}
        self.read = {}  # {(database, table oid): the most its COPY streamed}
        self.conn = None

    def open(self):
        source = _quick(self.params["source"], "source")
        for database in self.params["databases"]:
            conn = connect(source, database, autocommit=True)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT coalesce(sum(pg_catalog.pg_table_size(t.oid)), 0) FROM (%s) t" % TABLES_QUERY)
                    self.sizes[database] = int(cur.fetchone()[0])
            finally:
                conn.close()
        self.conn = connect(source, _maintenance_db(source), autocommit=True)
        with self.conn.cursor() as cur:
            cur.execute("SET statement_timeout = %s", ("%ds" % PROBE_TIMEOUT,))

    def describe(self, elapsed):
        return backup_line(self.task, self.sample(), elapsed)

    def sample(self):
        databases = list(self.params["databases"])
        with self.conn.cursor() as cur:
            cur.execute(DUMPING, (APPLICATION_NAME, databases))
            rows = cur.fetchall()
        for database, relid, nbytes in rows:
            self.read[(database, relid)] = max(nbytes, self.read.get((database, relid), 0))
        current = rows[0][0] if rows else None
        position = databases.index(current) + 1 if current else 0
        return DumpSample(
            databases=len(databases), current=current, position=position, bytes_read=sum(self.read.values()),
            bytes_current=sum(nbytes for (database, _relid), nbytes in self.read.items() if database == current),
            size_passed=sum(self.sizes[name] for name in databases[:max(position - 1, 0)]),
            size_total=sum(self.sizes.values()))

    def close(self):
        if self.conn is not None:
            self.conn.close()


class VerifyProbe(object):
    """Looks at a running ``row_count_diff``: the tables it measures are planned from the catalogs the way the
    module plans them (its own catalog reads, pairing and :func:`rowdiff.plan_jobs`, in
    :func:`table_stats.measuring_order`), the ones being measured now are the relations the collection's active
    sessions hold locked (``pg_locks``) on each server. Nothing is written anywhere, as the module promises."""

    task = "row_count_diff"
    sides = ("target",)

    @staticmethod
    def spec():
        return argument_spec(mapping=True, target_database=dict(type="str", required=True),
                             expect_tables=dict(type="dict", default={}), run_id=dict(type="str"),
                             workers=dict(type="int", default=2))

    def __init__(self, params, started):
        del started  # a verification measures everything anew
        # Only the tables and their sizes are needed: no columns, no sequences.
        self.params = dict(params, checksum=False, check_sequences=False)
        self.jobs = []
        self.pairs = []  # per compared table, the indexes of its jobs
        self.orders = {}  # {side: its jobs' indexes in the order they are started}
        self.keys = {}  # {side: {(database oid, table oid): job index}}
        self.done = set()
        self.seen = set()  # the jobs any look found being measured
        self.conns = {}

    def open(self):
        verification = Verification(self.params, QueryJournal(unique=True))
        for side in ("target", "source"):
            if side == "target" or verification.modules:
                verification.pools[side] = table_stats.SessionPool(_quick(self.params[side], side),
                                                                   verification.journal)
        try:
            target = verification.read_target()
            source = verification.read_sources()
            pairs = rowdiff.pair_tables(verification.modules, source["tables"], target["tables"],
                                        source["partitions"], target["partitions"])
            pairs += rowdiff.expected_pairs(verification.expected, target["schemas"], target["tables"])
            _plans, self.jobs, job_index = rowdiff.plan_jobs(pairs, verification.modules, source, target,
                                                             self.params["target_database"], False)
            self.pairs = [[index for index in indexes if index is not None] for indexes in job_index]
            self.pairs = [indexes for indexes in self.pairs if indexes]
            order = table_stats.measuring_order(self.jobs)
            for side, pool in verification.pools.items():
                self.orders[side] = [index for index in order if self.jobs[index]["side"] == side]
                self.keys[side] = self._oids(pool, side)
        finally:
            for pool in verification.pools.values():
                pool.close()
        for side in verification.pools:
            self.conns[side] = connect(_quick(self.params[side], side), self.params["target_database"]
                                       if side == "target" else _maintenance_db(self.params[side]), autocommit=True)
            with self.conns[side].cursor() as cur:
                cur.execute("SET statement_timeout = %s", ("%ds" % PROBE_TIMEOUT,))

    def _oids(self, pool, side):
        """{(database oid, table oid): job index} of ``side``'s jobs."""
        keys = {}
        for dbname in sorted(set(job["dbname"] for job in self.jobs if job["side"] == side)):
            indexes = [index for index in self.orders[side] if self.jobs[index]["dbname"] == dbname]
            with pool.session(dbname) as conn, conn.cursor() as cur:
                names = [sql.Identifier(self.jobs[index]["schema"], self.jobs[index]["table"]).as_string(cur)
                         for index in indexes]
                cur.execute("SELECT (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()),"
                            " pg_catalog.to_regclass(n)::oid FROM unnest(%s::text[]) WITH ORDINALITY AS u(n, i)"
                            " ORDER BY i", (names,))
                for index, (database, relation) in zip(indexes, cur.fetchall()):
                    keys[(database, relation)] = index
        return keys

    def describe(self, elapsed):
        return verify_line(self.task, self.sample(), elapsed)

    def sample(self):
        active = set()
        for side, conn in self.conns.items():
            with conn.cursor() as cur:
                cur.execute(MEASURING, (APPLICATION_NAME,))
                seen = set(self.keys[side].get(row) for row in cur.fetchall()) - set([None])
            self.done |= measured_jobs(self.orders[side], seen)
            active |= seen
        # A job measured at an earlier look and no longer is done, even when no later one runs yet.
        self.done |= self.seen - active
        self.seen |= active
        sizes = [job["bytes"] for job in self.jobs]
        return VerifySample(
            tables_done=sum(1 for indexes in self.pairs if self.done.issuperset(indexes)),
            tables_total=len(self.pairs), measuring=sum(1 for indexes in self.pairs if active.intersection(indexes)),
            size_done=sum(sizes[index] for index in self.done), size_total=sum(sizes))

    def close(self):
        for conn in self.conns.values():
            conn.close()


PROBES = {"copy": CopyProbe, "dump": DumpProbe, "verify": VerifyProbe}


def open_probe(kind, args, started):
    """The ``kind`` probe for a task with ``args``, open; None when the options do not validate (the module
    then fails with the reason) or psycopg2 is missing on the controller."""
    probe_class = PROBES[kind]
    spec = probe_class.spec()
    validated = ArgumentSpecValidator(spec).validate(dict((key, value) for key, value in args.items() if key in spec))
    params = validated.validated_parameters
    if psycopg2 is None or validated.error_messages or not all(params.get(side) for side in probe_class.sides):
        return None
    probe = probe_class(params, started)
    try:
        probe.open()
    except Exception:
        probe.close()
        raise
    return probe
