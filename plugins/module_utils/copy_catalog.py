# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data copy's view of the two catalogs: the survey before anything changes.

A :class:`Survey` opens one :class:`SourceDatabase` per legacy database (its
exported snapshot is what every table of that database is read from), maps
each source table to its target table as a :class:`TableJob`, and reads on the
target what decides the table's fate: whether it exists and belongs to the
target role, whether this run has copied it already, whether its columns
match, whether it is empty. Every problem is collected before any is raised,
so that an operator sees them all at once. The other catalog reads of the run
(indexes and triggers of a table, foreign keys that touch the loaded tables)
live here too; names are always bound parameters or ``sql.Identifier``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan, data_checks, null_policy
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import qualified
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import find_collisions
from ansible_collections.classifiedads.consolidation.plugins.module_utils.proof import read_counters
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sequences import (
    COLUMN_SEQUENCES,
    FEEDS_NO_COLUMN,
)

# -- catalog queries (names are always bound parameters) ---------------------------------------------

# Every table of the schema, leaf partitions included: a leaf holds rows and is copied as a table of its
# own (COPY FREEZE into the same leaf of the target, its partition constraint checked there); a
# partitioned table holds none and is listed only so that the mapping can name it. ``root`` is the
# top of a partition's hierarchy (it decides where the partition lands), ``parent`` the table it
# is a partition of; the RLS flags say whether reading the table needs the role to bypass RLS.
SOURCE_TABLES = """
SELECT c.oid, c.relname, c.relkind, pg_catalog.pg_table_size(c.oid), pg_catalog.pg_total_relation_size(c.oid),
       pg_catalog.has_table_privilege(c.oid, 'SELECT'),
       CASE WHEN c.relispartition THEN (SELECT r.relname FROM pg_catalog.pg_class r
                                        WHERE r.oid = pg_catalog.pg_partition_root(c.oid)) END,
       CASE WHEN c.relispartition THEN (SELECT p.relname FROM pg_catalog.pg_inherits i
                                        JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
                                        WHERE i.inhrelid = c.oid) END,
       c.relrowsecurity, c.relforcerowsecurity, pg_catalog.pg_has_role(c.relowner, 'USAGE')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
"""

# Whether the session's role bypasses row-level security everywhere (superuser or BYPASSRLS).
ROLE_BYPASSES_RLS = """
SELECT current_user, r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
"""

# Columns of the given tables. "portable": the type's binary COPY form carries no database-local
# OID (built-in types, enums, domains over built-ins). FirstNormalObjectId is 16384.
COLUMNS = """
SELECT a.attrelid, a.attname, t.typname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attgenerated <> '', (t.oid < 16384 OR t.typtype = 'e' OR (t.typtype = 'd' AND t.typbasetype < 16384)),
       a.attnotnull
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Sequences feeding columns of the given tables: serial and identity columns, and defaults calling nextval().
COLUMN_SEQUENCE_STATE = """
SELECT u.table_oid, a.attname, sn.nspname, s.relname, q.seqincrement,
       pg_catalog.has_sequence_privilege(s.oid, 'SELECT')
FROM (%s) u
JOIN pg_catalog.pg_class s ON s.oid = u.sequence_oid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid
JOIN pg_catalog.pg_attribute a ON a.attrelid = u.table_oid AND a.attnum = u.attnum
WHERE u.table_oid = ANY(%%s)
ORDER BY u.table_oid, a.attnum
""" % COLUMN_SEQUENCES

TARGET_TABLES = """
SELECT n.nspname, c.relname, c.oid, c.relkind, pg_catalog.pg_has_role(c.relowner, 'USAGE'),
       c.relrowsecurity, c.relforcerowsecurity
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

# The loaded tables and the partitioned tables above them: a foreign key of a partition is its
# partitioned table's, cloned, and comes off and back on with it.
WITH_ANCESTORS = """
SELECT DISTINCT a.relid FROM pg_catalog.unnest(%s::pg_catalog.oid[]) AS t(oid),
LATERAL (SELECT t.oid AS relid UNION SELECT relid FROM pg_catalog.pg_partition_ancestors(t.oid)) AS a
"""

# The indexes of one plain table that are dropped for its COPY and rebuilt after it, inside the
# same transaction: all of them, primary key and unique constraints included, except those with
# a property the definitions below do not carry (a comment, CLUSTER ON, REPLICA IDENTITY, a
# tablespace of their own), invalid ones, those something else depends on, and a partition's share of
# its partitioned table's index (it cannot be dropped alone).
TABLE_INDEXES = """
SELECT ic.relname, con.conname, con.contype,
       CASE WHEN con.oid IS NULL THEN pg_catalog.pg_get_indexdef(i.indexrelid)
            ELSE pg_catalog.pg_get_constraintdef(con.oid) END
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE i.indrelid = %s AND c.relkind = 'r' AND ic.relkind = 'i' AND i.indisvalid AND NOT ic.relispartition
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

# A partition's clones of its partitioned table's triggers included: they fire on rows COPY writes
# into the partition, and PostgreSQL lets each be disabled on the partition alone.
TABLE_TRIGGERS = """
SELECT t.tgname, t.tgenabled
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = %s AND NOT t.tgisinternal AND t.tgenabled <> 'D'
ORDER BY t.tgname
"""


# Sequences of a schema that feed no column of any table (the application calls nextval() itself).
STANDALONE_SEQUENCES = """
SELECT s.relname, q.seqincrement, pg_catalog.has_sequence_privilege(s.oid, 'SELECT')
FROM pg_catalog.pg_class s
JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid
WHERE n.nspname = %%s AND s.relkind = 'S' AND %s
ORDER BY s.relname
""" % FEEDS_NO_COLUMN

# Materialized views of a schema and whether they hold data (REFRESH ... WITH NO DATA leaves them empty).
MATERIALIZED_VIEWS = """
SELECT n.nspname, c.relname, c.relispopulated, pg_catalog.pg_has_role(c.relowner, 'USAGE')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s) AND c.relkind = 'm'
"""

# Which relations each view and materialized view reads (through its rewrite rule), anywhere in the database.
VIEW_DEPENDENCIES = """
SELECT DISTINCT vn.nspname, v.relname, rn.nspname, rc.relname
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind IN ('v', 'm')
JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid AND rc.relkind IN ('v', 'm')
JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
"""


class TableJob(object):
    """One source table and everything known about its copy."""

    def __init__(self, module, mapping, source, source_row):
        oid, _relkind, size, total_size, readable, root, parent = source_row[:7]
        self.module = module["name"]
        self.source_database = module["source_database"]
        self.source_schema = module["source_schema"]
        self.source_table = mapping.source_table
        self.target_schema = mapping.target_schema
        self.target_table = mapping.target_table
        self.truncate_override = mapping.truncate
        self.source = source
        self.source_oid = oid
        self.size = size
        self.total_size = total_size
        self.readable = readable
        self.partition_of = parent  # the table it is a partition of, None for a table of its own
        self.partition_root = root  # the top of its partition hierarchy, None for a table of its own
        self.source_columns = []
        self.target_oid = None
        self.target_relkind = None
        self.match = None
        self.null_sensitive = []  # copied columns NOT NULL in the target, nullable in the source
        self.null_policies = null_policy.table_policies(module, mapping.source_table)  # {column: on_null}
        self.default_values = {}  # {column: the target column's default, evaluated on the target, as text}
        self.default_references = []  # [(column, foreign key, referenced table oid, column)] of default policies
        self.null_counts = {}  # {null-sensitive column: rows holding NULL there, in the snapshot}
        self.null_handled = {}  # {column: policy} of the columns whose NULLs a policy handles
        self.null_notes = []  # one line per such column, for the progress
        self.null_plan = None  # null_policy.NullPlan when a policy changes what is read
        self.quarantined = None
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
        return qualified(self.target_schema, self.target_table)

    @property
    def loads(self):
        return self.action in (copy_plan.COPY, copy_plan.TRUNCATE_AND_COPY)

    def target_table_sql(self):
        return sql.SQL("{}.{}").format(sql.Identifier(self.target_schema), sql.Identifier(self.target_table))

    def target_own_rows_sql(self):
        """The target table in LOCK, TRUNCATE and emptiness checks: ``ONLY`` it, for a plain table.

        An inheritance parent's children are jobs of their own. A partitioned target (a source table the
        migrator partitioned) is loaded through its partitions as a whole, which ONLY would leave out.
        """
        return (sql.SQL("ONLY ") if self.target_relkind == "r" else sql.SQL("")) + self.target_table_sql()

    def result(self):
        return {
            "module": self.module,
            "source_database": self.source_database,
            "source_table": self.source_table,
            "target_schema": self.target_schema,
            "target_table": self.target_table,
            "partition_of": self.partition_of,
            "rows": self.rows,
            "bytes": self.bytes,
            "source_size": self.size,
            "seconds": self.seconds,
            "status": self.status,
            "format": self.match.copy_format if self.match else None,
            "null_policy": dict((name, {"on_null": on_null, "nulls": self.null_counts.get(name, 0)})
                                for name, on_null in sorted(self.null_handled.items())),
            "quarantined": self.quarantined,
        }


class SourceDatabase(object):
    """One legacy database, read through one exported snapshot held by a coordinator connection."""

    def __init__(self, module, conn, snapshot_from=None):
        """``snapshot_from(conn)``, when given, returns an object whose ``snapshot`` the coordinator
        imports instead of starting from its own (online mode: the slot's), then ``close()``s it; or None."""
        self.module = module
        self.conn = conn
        with self.conn.cursor() as cur:
            # Before the snapshot, in a transaction of its own (the connection autocommits): proof.py says why.
            self.write_counters = read_counters(cur, [module["source_schema"]])
            origin = snapshot_from(conn) if snapshot_from else None
            try:
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                if origin is not None:
                    cur.execute("SET TRANSACTION SNAPSHOT %s", (origin.snapshot,))
                # Re-exported for the workers: an imported snapshot, when there is one, is what they import.
                cur.execute("SELECT pg_catalog.pg_export_snapshot()")
                self.snapshot = cur.fetchone()[0]
            finally:
                if origin is not None:
                    origin.close()

    def tables(self):
        """The tables of the source schema: {name: (oid, relkind, size, total size, readable, root, parent,
        RLS enabled, RLS forced, owned by the role)}."""
        return source_tables(self.conn, self.module["source_schema"])

    def role_bypasses_rls(self):
        """(role name, whether it bypasses row-level security on every table)."""
        with self.conn.cursor() as cur:
            cur.execute(ROLE_BYPASSES_RLS)
            return cur.fetchone()

    def columns(self, oids):
        return read_columns(self.conn, oids)

    def read_sequences(self, jobs):
        """The sequences feeding the jobs' columns and their state, read inside the snapshot's transaction.

        Sequences are not transactional, so the state read is the current one, never older than the
        snapshot: continuing from it cannot hand out a value that the copied rows hold.
        """
        by_oid = dict((job.source_oid, job) for job in jobs)
        problems = []
        if not by_oid:
            return problems
        with self.conn.cursor() as cur:
            cur.execute(COLUMN_SEQUENCE_STATE, (list(by_oid),))
            for table_oid, column, schema, name, increment, readable in cur.fetchall():
                job = by_oid[table_oid]
                if not readable:
                    problems.append("%s: no SELECT privilege on its sequence %s"
                                    % (job.source_label, qualified(schema, name)))
                    continue
                cur.execute(sql.SQL("SELECT last_value, is_called FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(name)))
                last_value, is_called = cur.fetchone()
                job.source_sequences[column] = dict(schema=schema, name=name, increment=increment,
                                                    last_value=last_value, is_called=is_called)
        return problems

    def standalone_sequences(self):
        """The sequences no column uses, with their state (read like :meth:`read_sequences`), and problems."""
        found, problems = [], []
        with self.conn.cursor() as cur:
            cur.execute(STANDALONE_SEQUENCES, (self.module["source_schema"],))
            for name, increment, readable in cur.fetchall():
                label = copy_plan.source_label(self.module["source_database"], self.module["source_schema"], name)
                if not readable:
                    problems.append("%s: no SELECT privilege on the sequence" % label)
                    continue
                cur.execute(sql.SQL("SELECT last_value, is_called FROM {}.{}").format(
                    sql.Identifier(self.module["source_schema"]), sql.Identifier(name)))
                last_value, is_called = cur.fetchone()
                found.append(dict(source_database=self.module["source_database"], source_label=label,
                                  source_schema=self.module["source_schema"],
                                  target_schema=self.module["schema"], name=name, increment=increment,
                                  last_value=last_value, is_called=is_called))
        return found, problems

    def materialized_views(self):
        """{name: populated} of the materialized views of the source schema."""
        with self.conn.cursor() as cur:
            cur.execute(MATERIALIZED_VIEWS, ([self.module["source_schema"]],))
            return dict((name, populated) for _schema, name, populated, _owned in cur.fetchall())

    def null_problems(self, jobs):
        """Count, in the snapshot, the NULLs each job's null-sensitive columns hold, and apply the policies.

        A column without a policy (or ``fail``) is one problem per table, with a few primary key
        values; a column a policy handles sets the job's ``null_plan`` and a progress note.
        """
        problems = []
        with self.conn.cursor() as cur:
            for job in jobs:
                if not job.null_sensitive:
                    continue
                # ONLY: an inheritance parent's rows, not its children's (they are jobs of their own).
                table = sql.SQL("ONLY {}.{}").format(sql.Identifier(job.source_schema),
                                                     sql.Identifier(job.source_table))
                job.null_counts = null_policy.count_nulls(cur, table, job.null_sensitive)
                key_columns = null_policy.primary_key(cur, job.source_oid)
                handled = null_policy.acting(job.null_policies)
                failing = [name for name, count in job.null_counts.items() if count and name not in handled]
                keys = dict((name, null_policy.sample_keys(cur, table, name, key_columns)) for name in failing)
                found, job.null_notes, job.null_handled = null_policy.resolve(
                    job.source_label, (job.target_schema, job.target_table), job.null_policies, job.null_counts,
                    keys, key_columns)
                problems.extend(found)
                job.null_plan = null_policy.build_plan(job.null_handled, job.default_values, job.source_columns,
                                                       key_columns)
        return problems

    def count_rows(self, job):
        """The rows the copy would write: all of them, less those a NULL policy quarantines."""
        table = sql.SQL("{}.{}").format(sql.Identifier(job.source_schema), sql.Identifier(job.source_table))
        condition = null_policy.kept_condition(job.null_plan)
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(table)
                        + (sql.SQL(" WHERE ") + condition if condition is not None else sql.SQL("")))
            return cur.fetchone()[0]


def source_tables(conn, schema):
    """:meth:`SourceDatabase.tables` of ``schema``, on any session of the legacy database."""
    with conn.cursor() as cur:
        cur.execute(SOURCE_TABLES, (schema,))
        return dict((row[1], (row[0],) + tuple(row[2:])) for row in cur.fetchall())


def map_source_tables(module, tables):
    """copy_plan.map_tables of the tables :func:`source_tables` found (partitions placed by their root)."""
    return copy_plan.map_tables(module, list(tables), dict((name, row[6]) for name, row in tables.items() if row[6]))


def read_columns(conn, oids):
    """{table oid: [copy_plan.Column, ...]} in column order."""
    found = dict((oid, []) for oid in oids)
    if not found:
        return found
    with conn.cursor() as cur:
        cur.execute(COLUMNS, (list(oids),))
        for relid, name, type_name, type_display, generated, portable, not_null in cur.fetchall():
            found[relid].append(copy_plan.Column(name, type_name, type_display, generated, portable, not_null))
    return found


def target_database_exists(target, dbname):
    conn = connect(target, target.get("maintenance_db") or "postgres", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = %s)", (dbname,))
            return cur.fetchone()[0]
    finally:
        conn.close()


# -- survey: everything the run needs to know, checked before anything changes -----------------------

class Survey(object):
    """The tables of a run and what each needs, read from both servers before anything changes.

    ``sources``, ``jobs`` and ``excluded`` fill up as the survey goes, so that a run stopped by a
    problem still reports the tables it found.
    """

    def __init__(self, modules, truncate, snapshot_from=None):
        """``snapshot_from(module, conn, mapped_tables)``: online mode's snapshot of a legacy database
        (:class:`SourceDatabase` says what it returns), ``mapped_tables()`` that database's mapped
        tables holding rows, as (schema, table) pairs."""
        self.modules = modules
        self.truncate = truncate
        self.snapshot_from = snapshot_from
        # (source database, source table) this run copied from an earlier snapshot: emptied and copied again.
        self.refill = set()
        self.sources = []
        self.jobs = []
        self.excluded = []
        self.data_checks = data_checks.DataCheckReport()
        self.matviews = []  # copy_plan.refresh_order's entries: the materialized views to refresh after the copy
        self.standalone_sequences = []  # SourceDatabase.standalone_sequences' entries, continued after the copy

    def run(self, open_source, control, state):
        """Raise CopyPlanError with every problem found.

        ``open_source(dbname)`` opens a source connection; ``control`` is the coordinator connection
        to the target database, None when check mode plans from the source alone; ``state`` the
        run's records (:class:`copy_state.CopyState`).
        """
        problems = []
        landing = []
        for module in self.modules:
            source = SourceDatabase(module, open_source(module["source_database"]), self._snapshot_hook(module))
            self.sources.append(source)
            tables = source.tables()
            try:
                mappings, excluded = map_source_tables(module, tables)
            except copy_plan.CopyPlanError as exc:
                problems.extend(exc.problems)
                continue
            self.excluded.extend({"source_database": module["source_database"], "source_table": name}
                                 for name in excluded)
            # A partitioned table holds no rows of its own: its partitions are the jobs.
            jobs = [TableJob(module, mapping, source, tables[mapping.source_table]) for mapping in mappings
                    if tables[mapping.source_table][1] != "p"]
            columns = source.columns([job.source_oid for job in jobs])
            role, bypasses = source.role_bypasses_rls()
            for job in jobs:
                job.source_columns = columns[job.source_oid]
                if not job.readable:
                    problems.append("%s: no SELECT privilege on the table" % job.source_label)
                enabled, forced, owned = tables[job.source_table][7:10]
                problem = copy_plan.rls_problem("source", job.source_label, role, bypasses, enabled, forced, owned)
                if problem:
                    problems.append(problem)
                landing.append((job.source_database, job.source_table, job.target_schema, job.target_table))
            self.jobs.extend(jobs)
        problems.extend(find_collisions(landing))
        if not problems and control is None:
            for job in self.jobs:
                job.action = copy_plan.COPY
                problems.extend(null_policy.policy_problems(
                    "%s -> %s" % (job.source_label, job.target_label), job.null_policies, job.source_columns, None, {}))
                # Without the target only the mapping says which columns the target forbids NULL in.
                nullable = set(column.name for column in job.source_columns if not column.not_null)
                job.null_sensitive = sorted(name for name in job.null_policies if name in nullable)
        elif not problems:
            problems.extend(self._survey_target(control, state))
        if control is not None:
            self.data_checks = data_checks.DataChecks(self.jobs, control).run(
                [job for job in self.jobs if job.target_oid is not None and job.readable
                 and job.action != copy_plan.SKIP_COMPLETE])
            problems.extend(self.data_checks.messages())
        if not problems:
            for source in self.sources:
                loading = [job for job in self.jobs if job.source is source and job.loads]
                problems.extend(source.null_problems(loading))
                problems.extend(source.read_sequences(loading))
                standalone, unreadable = source.standalone_sequences()
                self.standalone_sequences.extend(standalone)
                problems.extend(unreadable)
            if control is not None:
                problems.extend(self.default_reference_problems(control))
            problems.extend(self._survey_matviews(control))
        if problems:
            raise copy_plan.CopyPlanError(problems)

    def _snapshot_hook(self, module):
        if self.snapshot_from is None:
            return None

        def mapped_tables(conn):
            tables = source_tables(conn, module["source_schema"])
            mappings, _excluded = map_source_tables(module, tables)
            return [(module["source_schema"], mapping.source_table) for mapping in mappings
                    if tables[mapping.source_table][1] != "p"]

        return lambda conn: self.snapshot_from(module, conn, lambda: mapped_tables(conn))

    def _survey_matviews(self, control):
        """Which materialized views the copy refreshes: those populated in the source, in dependency order.

        Without the target (check mode before it exists) the source alone says which would be.
        """
        populated = {}
        for source in self.sources:
            for name, filled in source.materialized_views().items():
                populated[(source.module["schema"], name)] = dict(source_database=source.module["source_database"],
                                                                  populated=filled)
        if control is None:
            self.matviews = copy_plan.refresh_order(populated, None, {})
            return []
        with control.cursor() as cur:
            cur.execute(MATERIALIZED_VIEWS, (sorted(set(schema for schema, _name in populated)),))
            target = dict(((schema, name), dict(populated=filled, owned=owned))
                          for schema, name, filled, owned in cur.fetchall())
            cur.execute(VIEW_DEPENDENCIES)
            edges = {}
            for schema, name, ref_schema, ref_name in cur.fetchall():
                edges.setdefault((schema, name), set()).add((ref_schema, ref_name))
        control.rollback()
        self.matviews = copy_plan.refresh_order(populated, target, edges)
        return [copy_plan.matview_owner_problem(entry) for entry in self.matviews if not entry["owned"]]

    def _survey_target(self, conn, state):
        with conn.cursor() as cur:
            cur.execute(TARGET_TABLES, (sorted(set(job.target_schema for job in self.jobs)),))
            existing = dict(((row[0], row[1]), row[2:]) for row in cur.fetchall())
            complete = state.recorded_complete(cur)
            cur.execute(ROLE_BYPASSES_RLS)
            role, bypasses = cur.fetchone()
        missing, not_owned, rls, unpartitioned = [], [], [], set()
        for job in self.jobs:
            found = existing.get((job.target_schema, job.target_table))
            if found is None:
                root = existing.get((job.target_schema, job.partition_root))
                if job.partition_root and root is not None and root[1] == "r":
                    unpartitioned.add(copy_plan.source_label(job.source_database, job.source_schema,
                                                             job.partition_root))
                missing.append("%s (for %s)" % (job.target_label, job.source_label))
                continue
            job.target_oid, job.target_relkind, owned, enabled, forced = found
            problem = copy_plan.rls_problem("target", job.target_label, role, bypasses, enabled, forced, owned)
            if problem:
                rls.append(problem)
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
        for label in sorted(unpartitioned):
            problems.append("%s is partitioned in the source but a plain table in the target: the copy loads each "
                            "partition into the target partition of the same name; create the target table "
                            "partitioned like the source (migrator_mode source_ddl does)" % label)
        if not_owned:
            problems.append("the target role does not own these tables, which it must to drop and restore their "
                            "keys and indexes and to load them with TRUNCATE and COPY FREEZE: %s"
                            % ", ".join(not_owned))
        problems.extend(rls)
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
                    job.null_sensitive = copy_plan.null_sensitive_columns(
                        job.source_columns, target_columns[job.target_oid], job.match.columns)
                except copy_plan.CopyPlanError as exc:
                    problems.extend(exc.problems)
                    continue
                problems.extend(self._survey_null_policies(cur, job, target_columns[job.target_oid]))
                cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(job.target_own_rows_sql()))
                empty = cur.fetchone()[0]
                job.action = copy_plan.table_action(False, empty, self.truncate or job.truncate_override
                                                    or (job.source_database, job.source_table) in self.refill)
                if job.action is None:
                    refused.append(job.target_label)
            if pending:
                cur.execute(COLUMN_SEQUENCE_STATE, ([job.target_oid for job in pending],))
                by_oid = dict((job.target_oid, job) for job in pending)
                for table_oid, column, schema, name, increment, _readable in cur.fetchall():
                    by_oid[table_oid].target_sequences[column] = dict(schema=schema, name=name, increment=increment)
        conn.rollback()
        if refused:
            problems.append(copy_plan.refusal_problem(refused))
        return problems

    @staticmethod
    def _survey_null_policies(cur, job, target_columns):
        """The job's policies checked against both tables; each target default evaluated once, here."""
        wanted = [name for name, on_null in job.null_policies.items() if on_null == null_policy.ON_NULL_DEFAULT]
        defaults = null_policy.target_defaults(cur, job.target_oid, wanted)
        problems = null_policy.policy_problems("%s -> %s" % (job.source_label, job.target_label), job.null_policies,
                                               job.source_columns, target_columns, defaults)
        if not problems:
            job.default_values = null_policy.evaluate_defaults(cur, defaults)
            job.default_references = null_policy.foreign_keys_on(cur, job.target_oid, sorted(defaults))
        return problems

    def default_reference_problems(self, control):
        """A ``default`` policy must not write a value its column's foreign key rejects.

        The key is dropped for the load and validated after it, so such a default would fail the run
        with every table copied. The referenced rows are those the copy leaves: a table this run
        loads is read in its source snapshot, any other on the target as it is.
        """
        problems = []
        by_target = dict((job.target_oid, job) for job in self.jobs if job.target_oid is not None)
        for job in self.jobs:
            if job.null_plan is None:
                continue
            for column, constraint, referenced_oid, referenced_column in job.default_references:
                if column not in job.null_plan.defaults:
                    continue
                value, type_display = job.null_plan.defaults[column]
                referenced = by_target.get(referenced_oid)
                if referenced is not None and referenced.loads:
                    conn, table = referenced.source.conn, sql.SQL("{}.{}").format(
                        sql.Identifier(referenced.source_schema), sql.Identifier(referenced.source_table))
                    where = referenced.target_label
                else:
                    conn = control
                    with conn.cursor() as cur:
                        cur.execute("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN "
                                    "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
                                    (referenced_oid,))
                        schema, name = cur.fetchone()
                    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
                    where = qualified(schema, name)
                with conn.cursor() as cur:
                    if null_policy.holds_value(cur, table, referenced_column, type_display, value):
                        continue
                problems.append(null_policy.reference_problem("%s -> %s" % (job.source_label, job.target_label),
                                                              column, value, constraint, where, referenced_column))
        if control is not None:
            control.rollback()
        return problems


# -- what a table's load takes away and brings back ---------------------------------------------------

def table_indexes(cur, job):
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


def table_triggers(cur, job):
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


def foreign_keys(cur, jobs):
    """Foreign keys from or to a table of ``jobs``: they would check rows against tables still
    loading and keep TRUNCATE from running."""
    oids = [job.target_oid for job in jobs]
    if not oids:
        return []
    cur.execute(WITH_ANCESTORS, (oids,))
    oids = [row[0] for row in cur.fetchall()]
    cur.execute(FOREIGN_KEYS, (oids, oids))
    return [dict(kind="foreign_key", target_schema=schema, target_table=table, name=name,
                 definition=definition, phase="dropped")
            for schema, table, name, definition in cur.fetchall()]
