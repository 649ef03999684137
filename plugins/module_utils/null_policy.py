# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-column NULL policies: what becomes of a NULL that the target column forbids.

A legacy column can be nullable where the application's migration has made the target column
NOT NULL (ClassifiedAds: the shadow foreign keys ``UserClaims.UserId`` and ``RoleClaims.RoleId``).
Copied as it is, the first NULL fails the table's COPY. The module mapping says per column what to
do instead, ``tables: {UserClaims: {columns: {UserId: {on_null: <policy>}}}}``:

``fail``        (the default) the copy stops before any row moves, naming the column, how many rows
                hold NULL there and a few of their primary key values (never the rows).
``default``     such rows are copied with the target column's default, as the application's
                migration declares it, evaluated once on the target and bound into the source query.
``quarantine``  such rows are not copied; each is kept as jsonb, with its key and the reason, in
                ``<state schema>.quarantined_rows`` of the target database, written in the table's
                own transaction (so a resumed run never finds half of it).

The copy reads such a table through one SELECT (COALESCE for ``default``, a filter for
``quarantine``) instead of the plain binary COPY of the table, still inside the database's one
snapshot. The verification reads the source through the same expressions: the content checksum
compares the source *with the policy applied*, so any other difference still fails, and the
quarantined rows must be exactly the source rows the filter leaves out.

Pure functions build and judge; the few functions taking a cursor read or write one thing each.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import json

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import qualified, quote_ident

ON_NULL_FAIL = "fail"
ON_NULL_DEFAULT = "default"
ON_NULL_QUARANTINE = "quarantine"
ON_NULL_CHOICES = (ON_NULL_FAIL, ON_NULL_DEFAULT, ON_NULL_QUARANTINE)
COLUMN_KEYS = ("on_null",)

QUARANTINE_TABLE = "quarantined_rows"
KEY_SAMPLE = 5  # key values named per column in a plan-time problem

# What the plan found for one table with NULLs to handle.
#   defaults: {column: (value as text, type as format_type writes it)}, the value evaluated on the target.
#   quarantine: the columns whose NULL keeps a row out of the copy, sorted.
#   key_columns: the source table's primary key, in key order ([] without one).
NullPlan = collections.namedtuple("NullPlan", "defaults quarantine key_columns")

# A target column's default: pg_get_expr's text, and whether it calls a volatile function
# (one value for every row would then be wrong: a nextval() or gen_random_uuid() key, say).
TargetDefault = collections.namedtuple("TargetDefault", "expression volatile")

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.{table} (
    source_database text NOT NULL,
    source_schema text NOT NULL,
    source_table text NOT NULL,
    target_schema text NOT NULL,
    target_table text NOT NULL,
    key jsonb,
    reason text NOT NULL,
    "row" jsonb NOT NULL,
    run_id text NOT NULL,
    quarantined_at timestamp with time zone NOT NULL DEFAULT now()
)
"""

# Settings pinned while rows are turned into jsonb, so that the copy and the verification render
# every value the same (the verification's sessions pin the same values, see table_stats).
JSON_SETTINGS = (("TimeZone", "UTC"), ("IntervalStyle", "postgres"), ("extra_float_digits", "3"),
                 ("bytea_output", "hex"))


# -- the mapping ----------------------------------------------------------------------------------

def normalize_columns(label, raw):
    """The ``columns`` of one table override, checked: ``({column: {"on_null": policy}}, problems)``.

    ``label`` names the table in messages (``module 'Identity': table 'UserClaims'``); whether a
    name can be a PostgreSQL identifier at all is plan.normalize_module's check.
    """
    problems, columns = [], {}
    if raw is None:
        return columns, problems
    if not isinstance(raw, dict):
        return columns, ["%s: columns must map column names to settings, got %r" % (label, raw)]
    for name, settings in sorted(raw.items(), key=lambda item: str(item[0])):
        settings = settings if settings is not None else {}
        if not isinstance(settings, dict):
            problems.append("%s: column %r must map to settings such as {on_null: quarantine}, got %r"
                            % (label, name, settings))
            continue
        unknown = sorted(set(settings) - set(COLUMN_KEYS))
        if unknown:
            problems.append("%s: column %r has unknown keys %s (known: %s)"
                            % (label, name, ", ".join(str(key) for key in unknown), ", ".join(COLUMN_KEYS)))
        on_null = settings.get("on_null", ON_NULL_FAIL)
        if on_null not in ON_NULL_CHOICES:
            problems.append("%s: column %r: on_null must be one of %s, got %r"
                            % (label, name, ", ".join(ON_NULL_CHOICES), on_null))
            continue
        columns[name] = {"on_null": on_null}
    return columns, problems


def table_policies(module, source_table):
    """``{column: on_null}`` that a normalised module mapping sets for one source table."""
    entry = (module.get("tables") or {}).get(source_table) or {}
    return dict((name, column["on_null"]) for name, column in (entry.get("columns") or {}).items())


def acting(policies):
    """The policies that change what is copied (``fail`` only stops the copy)."""
    return dict((name, on_null) for name, on_null in policies.items() if on_null != ON_NULL_FAIL)


# -- plan time ------------------------------------------------------------------------------------

def policy_problems(label, policies, source_columns, target_columns, defaults):
    """Why the policies of one table cannot apply, one sentence each.

    ``source_columns``/``target_columns`` are ``copy_plan.Column`` lists (``target_columns`` None
    when check mode plans from the source alone); ``defaults`` the target table's column defaults
    ``{column: TargetDefault}``. A policy must name a column that is nullable in the source and
    NOT NULL in the target: anywhere else it would never act, which is a typo or a stale mapping.
    """
    source = dict((column.name, column) for column in source_columns)
    target = dict((column.name, column) for column in target_columns) if target_columns is not None else None
    problems = []
    for name, on_null in sorted(policies.items()):
        where = "%s: on_null policy for column %s" % (label, quote_ident(name))
        missing = [side for side, columns in (("source", source), ("target", target))
                   if columns is not None and name not in columns]
        if missing:
            problems.append("%s: no such column in the %s table" % (where, " and the ".join(missing)))
            continue
        if source[name].not_null:
            problems.append("%s: the column is NOT NULL in the source, so it holds no NULL to handle; "
                            "remove the policy" % where)
            continue
        if target is None:
            continue
        if not target[name].not_null:
            problems.append("%s: the column is nullable in the target, so NULLs copy as they are; "
                            "remove the policy" % where)
            continue
        if on_null != ON_NULL_DEFAULT:
            continue
        default = defaults.get(name)
        if default is None:
            problems.append("%s: on_null: default, but the target column has no default; give it one in the "
                            "application's migration (ALTER TABLE ... ALTER COLUMN %s SET DEFAULT ...) or choose "
                            "on_null: quarantine" % (where, quote_ident(name)))
        elif default.volatile:
            problems.append("%s: on_null: default, but the target column's default %s calls a volatile function "
                            "and would differ per row; choose on_null: quarantine" % (where, default.expression))
    return problems


def reference_problem(label, column, value, constraint, referenced_label, referenced_column):
    """The problem of a ``default`` whose value the column's foreign key would reject once it is validated."""
    return ("%s: on_null: default would write %s into column %s, but the foreign key %s needs a row of %s with %s = "
            "that value, which the copied data does not hold; the key's validation after the copy would fail. "
            "Choose on_null: quarantine, or see that the referenced table holds that row"
            % (label, value, quote_ident(column), quote_ident(constraint), referenced_label,
               quote_ident(referenced_column)))


def format_key(key_columns, values):
    """One row's key for messages and reports: ``Id=3f2a...`` or ``A=1, B=x``."""
    return ", ".join("%s=%s" % (name, value) for name, value in zip(key_columns, values))


def resolve(label, target_label, policies, counts, keys, key_columns):
    """What the NULLs of one table lead to: ``(problems, notes, columns)``.

    ``counts`` maps each null-sensitive column (nullable in the source, NOT NULL in the target) to
    the rows holding NULL there; ``keys`` maps such a column to a few of those rows' keys (text);
    ``policies`` the table's ``{column: on_null}``. ``problems`` are the columns that stop the copy
    (no policy, or ``fail``), with counts and keys; ``notes`` one line per column a policy handles
    (``identity."UserClaims"."UserId": 3 NULLs -> quarantined (policy)``); ``columns`` maps
    the handled columns to their policy.
    """
    problems, notes, handled = [], [], {}
    failing = []
    for name, count in sorted(counts.items()):
        if not count:
            continue
        on_null = policies.get(name, ON_NULL_FAIL)
        nulls = "%d NULL%s" % (count, "" if count == 1 else "s")
        if on_null == ON_NULL_FAIL:
            sample = keys.get(name) or []
            shown = ""
            if key_columns and sample:
                shown = ", e.g. %s%s" % ("; ".join(sample), " ..." if count > len(sample) else "")
            elif not key_columns:
                shown = ", the table has no primary key to name them by"
            failing.append("%s (%s%s)" % (quote_ident(name), nulls, shown))
            continue
        handled[name] = on_null
        outcome = "quarantined" if on_null == ON_NULL_QUARANTINE else "set to the target column's default"
        notes.append("%s: %s -> %s (policy)" % (qualified(*(target_label + (name,))), nulls, outcome))
    if failing:
        problems.append("%s -> %s: NULL in column(s) %s, which are NOT NULL in the target; nothing was copied. "
                        "Fix the legacy rows, or set a policy in the module mapping: tables: {<table>: {columns: "
                        "{<column>: {on_null: default|quarantine}}}}"
                        % (label, qualified(*target_label), ", ".join(failing)))
    return problems, notes, handled


def build_plan(handled, default_values, source_columns, key_columns):
    """The NullPlan of one table, or None when no policy acts on it.

    ``handled`` is ``{column: policy}`` from :func:`resolve`; ``default_values`` the target
    defaults evaluated as text (none when check mode plans without the target database, which
    then only counts and filters).
    """
    if not handled:
        return None
    types = dict((column.name, column.type_display) for column in source_columns)
    defaults = dict((name, (default_values[name], types[name])) for name, on_null in handled.items()
                    if on_null == ON_NULL_DEFAULT and name in default_values)
    quarantine = sorted(name for name, on_null in handled.items() if on_null == ON_NULL_QUARANTINE)
    return NullPlan(defaults, quarantine, list(key_columns))


# -- SQL ------------------------------------------------------------------------------------------

def column_item(plan, name):
    """How the source reads one column under the plan: itself, or COALESCE with the target's default.

    COPY and the verification's scans take no bound parameters, so the default goes in as a
    literal quoted by psycopg2's own adapter (exactly what binding it would send) and cast to the
    source column's type, which the copy has checked is the target's.
    """
    if plan is not None and name in plan.defaults:
        value, type_display = plan.defaults[name]
        return sql.SQL("COALESCE({}, CAST({} AS {}))").format(sql.Identifier(name), sql.Literal(value),
                                                              sql.SQL(type_display))
    return sql.Identifier(name)


def kept_condition(plan):
    """The rows the copy keeps (None: all of them)."""
    if plan is None or not plan.quarantine:
        return None
    return sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(name)) for name in plan.quarantine)


def rejected_condition(plan):
    return sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(name)) for name in plan.quarantine)


def select_statement(plan, columns, table, only=False):
    """``SELECT <columns under the plan> FROM [ONLY] <table> [WHERE <kept>]``; ``table`` is composed SQL."""
    statement = sql.SQL("SELECT {} FROM {}{}").format(
        sql.SQL(", ").join(column_item(plan, name) for name in columns), sql.SQL("ONLY ") if only else sql.SQL(""),
        table)
    condition = kept_condition(plan)
    if condition is not None:
        statement += sql.SQL(" WHERE ") + condition
    return statement


def key_object(key_columns):
    """``jsonb_build_object('Id', "Id", ...)``, or NULL for a table without a primary key."""
    if not key_columns:
        return sql.SQL("NULL::jsonb")
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(name), sql.Identifier(name)) for name in key_columns))


def quarantine_reason(plan, target_label):
    return "NULL in %s, which is NOT NULL in %s (on_null: quarantine)" % (
        " or ".join(quote_ident(name) for name in plan.quarantine), qualified(*target_label))


def rejected_rows_query(plan, table, only=False):
    """The rows the plan keeps out, as (key jsonb text, row jsonb text), read on the source."""
    return sql.SQL("SELECT {}::text, to_jsonb(t)::text FROM {}{} AS t WHERE {}").format(
        key_object(plan.key_columns), sql.SQL("ONLY ") if only else sql.SQL(""), table, rejected_condition(plan))


def json_settings_statement():
    return sql.SQL("SELECT {}").format(sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(value))
        for name, value in JSON_SETTINGS))


def quarantine_table(state_schema):
    return sql.SQL("{}.{}").format(sql.Identifier(state_schema), sql.Identifier(QUARANTINE_TABLE))


def ensure_quarantine_table(cur, journal, state_schema):
    """Create ``<state schema>.quarantined_rows`` if it is missing (the state schema exists by then)."""
    ddl = sql.SQL(QUARANTINE_DDL).format(schema=sql.Identifier(state_schema), table=sql.Identifier(QUARANTINE_TABLE))
    journal.change(cur, ddl)


# -- the copy -------------------------------------------------------------------------------------

def quarantine(job, source, target_cur, journal, state_schema, run_id):
    """Keep the rows a table's plan leaves out, inside the table's transaction on the target.

    They are read on ``source`` within the job's snapshot, so they are exactly the rows the COPY
    left out; the table's earlier quarantine (an earlier run, a rerun) is replaced, as the TRUNCATE
    replaces its copied rows. Returns how many rows were quarantined (None in check mode).
    """
    table = sql.SQL("{}.{}").format(sql.Identifier(job.source_schema), sql.Identifier(job.source_table))
    read = rejected_rows_query(job.null_plan, table, only=job.source_relkind == "r")
    target_label = (job.target_schema, job.target_table)
    delete = sql.SQL("DELETE FROM {} WHERE source_database = %s AND source_schema = %s AND source_table = %s").format(
        quarantine_table(state_schema))
    insert = sql.SQL(
        "INSERT INTO {} (source_database, source_schema, source_table, target_schema, target_table, key, reason, "
        '"row", run_id) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s)').format(
        quarantine_table(state_schema))
    identity = (job.source_database, job.source_schema, job.source_table)
    journal.change(target_cur, delete, identity)
    if journal.check_mode:
        with source.cursor() as cur:
            journal.record(cur, read)
        journal.record(target_cur, insert, identity + target_label + (None, "...", None, run_id))
        return None
    reason = quarantine_reason(job.null_plan, target_label)
    with source.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cur.execute("SET TRANSACTION SNAPSHOT %s", (job.source.snapshot,))
        cur.execute(json_settings_statement())
        journal.execute(cur, read)
        rows = cur.fetchall()
        cur.execute("COMMIT")
    journal.record(target_cur, insert, identity + target_label + (None, reason, None, run_id))
    for key, row in rows:
        target_cur.execute(insert, identity + target_label + (key, reason, row, run_id))
    return len(rows)


# -- catalog reads --------------------------------------------------------------------------------

# A default is volatile when it calls a volatile function. pg_depend records the functions it
# calls except the built-in ones (pinned objects have no entries), so those are found by name in
# the expression's text: a name merely containing a volatile function's name counts as volatile,
# which can only refuse a default that was fine, never let a volatile one through.
TARGET_DEFAULTS = r"""
SELECT a.attname, pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       EXISTS (SELECT FROM pg_catalog.pg_depend dep JOIN pg_catalog.pg_proc p ON p.oid = dep.refobjid
               WHERE dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND dep.objid = d.oid
                 AND dep.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.provolatile = 'v')
       OR EXISTS (SELECT FROM pg_catalog.pg_proc p
                  WHERE p.provolatile = 'v'
                    AND pg_catalog.strpos(pg_catalog.pg_get_expr(d.adbin, d.adrelid), p.proname || '(') > 0)
FROM pg_catalog.pg_attrdef d
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE d.adrelid = %s AND a.attname = ANY(%s) AND a.attgenerated = ''
"""

PRIMARY_KEY = """
SELECT a.attname
FROM pg_catalog.pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary
ORDER BY k.position
"""


def _run(cur, journal, statement, params=None):
    """Run a read; through the journal where the caller keeps one (the verification keeps every statement)."""
    if journal is None:
        cur.execute(statement, params)
    else:
        journal.execute(cur, statement, params)


def target_defaults(cur, table_oid, columns, journal=None):
    """``{column: TargetDefault}`` of the named columns of one target table that have a default."""
    if not columns:
        return {}
    _run(cur, journal, TARGET_DEFAULTS, (table_oid, list(columns)))
    return dict((name, TargetDefault(expression, volatile)) for name, expression, volatile in cur.fetchall())


def evaluate_defaults(cur, defaults, journal=None):
    """``{column: value as text}``: each default evaluated once, on the server of ``cur``."""
    values = {}
    for name, default in sorted(defaults.items()):
        # pg_get_expr's own text, schema-qualified by the session's empty search_path.
        _run(cur, journal, sql.SQL("SELECT ({})::text").format(sql.SQL(default.expression)))
        values[name] = cur.fetchone()[0]
    return values


# Single-column foreign keys on the named columns of one target table, with what they reference.
FOREIGN_KEYS_ON = """
SELECT a.attname, con.conname, con.confrelid, fa.attname
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
JOIN pg_catalog.pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = con.confkey[1]
WHERE con.contype = 'f' AND con.conrelid = %s AND pg_catalog.cardinality(con.conkey) = 1 AND a.attname = ANY(%s)
ORDER BY 1, 2
"""


def foreign_keys_on(cur, table_oid, columns):
    """``[(column, constraint, referenced table oid, referenced column)]`` for the named columns."""
    if not columns:
        return []
    cur.execute(FOREIGN_KEYS_ON, (table_oid, list(columns)))
    return cur.fetchall()


def holds_value(cur, table, column, type_display, value):
    """Whether ``table`` (composed SQL) has a row whose ``column`` equals ``value`` (text, cast to the type)."""
    cur.execute(sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {} = CAST(%s AS {}))").format(
        table, sql.Identifier(column), sql.SQL(type_display)), (value,))
    return cur.fetchone()[0]


def primary_key(cur, table_oid, journal=None):
    _run(cur, journal, PRIMARY_KEY, (table_oid,))
    return [name for (name,) in cur.fetchall()]


def count_nulls(cur, table, columns):
    """``{column: rows holding NULL there}`` in one scan of ``table`` (composed SQL)."""
    cur.execute(sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE {} IS NULL)").format(sql.Identifier(name))
                           for name in columns), table))
    return dict(zip(columns, cur.fetchone()))


def sample_keys(cur, table, column, key_columns, limit=KEY_SAMPLE):
    """A few keys (text, :func:`format_key`) of the rows holding NULL in ``column``, lowest first."""
    if not key_columns:
        return []
    keys = sql.SQL(", ").join(sql.SQL("({})::text").format(sql.Identifier(name)) for name in key_columns)
    order = sql.SQL(", ").join(sql.Identifier(name) for name in key_columns)
    cur.execute(sql.SQL("SELECT {} FROM {} WHERE {} IS NULL ORDER BY {} LIMIT %s").format(
        keys, table, sql.Identifier(column), order), (limit,))
    return [format_key(key_columns, row) for row in cur.fetchall()]


# -- the verification -----------------------------------------------------------------------------
#
# The verification measures a policy table's source through its plan (table_stats.count_query and
# checksum_query take it): the rows the copy kept, with the defaults the copy wrote. What the plan
# keeps out is measured on its own, on the source and in the quarantine, and must be the same rows.

REJECTED_SOURCE = "SELECT {key}::text, hashtextextended(to_jsonb(t)::text, 0) FROM {table} AS t WHERE {condition}"
QUARANTINED_TARGET = ('SELECT key::text, hashtextextended("row"::text, 0) FROM {table} '
                      "WHERE source_database = %s AND source_schema = %s AND source_table = %s")
COLUMN_TYPES = """
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
"""


def _table_sql(schema, table):
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def _oid(cur, journal, schema, table):
    _run(cur, journal, "SELECT pg_catalog.to_regclass(%s)::oid", (_table_sql(schema, table).as_string(cur),))
    return cur.fetchone()[0]


def verification_plan(source_session, target_session, journal, pair, policies):
    """The plan of one compared table under its acting ``policies``: ``(NullPlan, problems)``.

    ``source_session``/``target_session`` are open read-only sessions on the table's legacy
    database and on the target database. The target defaults are read and evaluated as the copy
    does; a policy that cannot apply is a problem of the table (it fails the verification).
    """
    with target_session.cursor() as cur:
        target_oid = _oid(cur, journal, pair["target_schema"], pair["target_table"])
        wanted = [name for name, on_null in policies.items() if on_null == ON_NULL_DEFAULT]
        defaults = target_defaults(cur, target_oid, wanted, journal)
        problems = ["on_null: default for column %s, but the target column has no default that can be evaluated "
                    "once" % quote_ident(name) for name in sorted(wanted)
                    if name not in defaults or defaults[name].volatile]
        values = evaluate_defaults(cur, dict((name, default) for name, default in defaults.items()
                                             if not default.volatile), journal)
    with source_session.cursor() as cur:
        source_oid = _oid(cur, journal, pair["source_schema"], pair["source_table"])
        key_columns = primary_key(cur, source_oid, journal)
        _run(cur, journal, COLUMN_TYPES, (source_oid,))
        types = dict(cur.fetchall())
    missing = sorted(name for name in policies if name not in types)
    problems.extend("on_null policy for column %s, which the source table does not have" % quote_ident(name)
                    for name in missing)
    handled = dict((name, on_null) for name, on_null in policies.items()
                   if name in types and (on_null != ON_NULL_DEFAULT or name in values))
    defaults_found = dict((name, (values[name], types[name])) for name, on_null in handled.items()
                          if on_null == ON_NULL_DEFAULT)
    quarantine = sorted(name for name, on_null in handled.items() if on_null == ON_NULL_QUARANTINE)
    return NullPlan(defaults_found, quarantine, key_columns), problems


def measure_rejected(source_session, target_session, journal, pair, plan, state_schema):
    """What the plan keeps out of one table, on both sides, and which rows it defaults.

    Returns ``{"source": {key: hash}, "quarantined": {key: hash} or None (no quarantine table),
    "defaulted": [key]}``; keys are the rows' key objects as jsonb text (the whole row's hash
    stands in for a table without a primary key).
    """
    found = {"source": {}, "quarantined": {}, "defaulted": []}
    table = _table_sql(pair["source_schema"], pair["source_table"])
    key = key_object(plan.key_columns)
    with source_session.cursor() as cur:
        if plan.quarantine:
            statement = sql.SQL(REJECTED_SOURCE).format(key=key, table=table, condition=rejected_condition(plan))
            _run(cur, journal, statement)
            found["source"] = _by_key(cur.fetchall())
        if plan.defaults:
            condition = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(name))
                                             for name in sorted(plan.defaults))
            kept = kept_condition(plan)
            if kept is not None:
                condition = sql.SQL("({}) AND {}").format(condition, kept)
            _run(cur, journal, sql.SQL("SELECT {}::text FROM {} AS t WHERE {}").format(key, table, condition))
            found["defaulted"] = sorted(row[0] or "(no primary key)" for row in cur.fetchall())
    if plan.quarantine:
        with target_session.cursor() as cur:
            _run(cur, journal, "SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                 (quarantine_table(state_schema).as_string(cur),))
            if cur.fetchone()[0]:
                _run(cur, journal, sql.SQL(QUARANTINED_TARGET).format(table=quarantine_table(state_schema)),
                     (pair["source_database"], pair["source_schema"], pair["source_table"]))
                found["quarantined"] = _by_key(cur.fetchall())
            else:
                found["quarantined"] = None
    return found


def _by_key(rows):
    """{key: sorted hashes}: rows without a key are told apart by their content alone."""
    keyed = {}
    for key, digest in rows:
        keyed.setdefault(key or "(no primary key)", []).append(digest)
    return dict((key, sorted(digests)) for key, digests in keyed.items())


def readable_key(text):
    """A key object's jsonb text as ``Id=...`` for reports."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return text
    if not isinstance(value, dict):
        return text
    return format_key(list(value), list(value.values()))


def judge(row, plan, policies, problems, rejected):
    """The verification row of a policy table, with the policy accounted for. Pure.

    ``row`` is rowdiff.classify's row of the table measured *through the plan* (its source count
    is the rows the copy kept); ``rejected`` what :func:`measure_rejected` found. The source must
    equal the target plus the quarantine: the kept rows match by count (and checksum, when
    taken), and the rows kept out are exactly the quarantined ones, key by key and by content.
    The row gains ``null_policy`` (the policies, defaulted and quarantined keys) and the source
    count becomes the whole table's.
    """
    row = dict(row)
    kept = row["source_rows"]
    source_out = rejected["source"]
    quarantined = rejected["quarantined"]
    out_count = sum(len(digests) for digests in source_out.values())
    quarantined_count = None if quarantined is None else sum(len(digests) for digests in quarantined.values())
    reasons = [reason for reason in row["reasons"] if not reason.startswith("row counts differ")]
    reasons.extend(problems)
    if kept is not None and row["target_rows"] is not None:
        if kept + out_count != row["target_rows"] + (quarantined_count or 0) or kept != row["target_rows"]:
            reasons.insert(0, "row counts differ: source %d (%d kept by the NULL policy, %d kept out), target %d, "
                              "quarantined %d" % (kept + out_count, kept, out_count, row["target_rows"],
                                                  quarantined_count or 0))
        row["source_rows"] = kept + out_count
    if plan.quarantine:
        if quarantined is None:
            reasons.append("the quarantine table does not exist, yet the source holds %d row(s) the policy keeps out"
                           % out_count if out_count else "")
        elif quarantined != source_out:
            differing = sorted(set(source_out) ^ set(quarantined))
            changed = sorted(key for key in set(source_out) & set(quarantined) if source_out[key] != quarantined[key])
            reasons.append("the quarantined rows are not the source rows the policy keeps out: %d missing or extra "
                           "(%s), %d changed since" % (len(differing), ", ".join(readable_key(key) for key in
                                                                                 differing[:KEY_SAMPLE]) or "-",
                                                       len(changed)))
    reasons = [reason for reason in reasons if reason]
    row["null_policy"] = {
        "columns": dict(sorted(policies.items())),
        "defaulted_keys": [readable_key(key) for key in rejected["defaulted"]],
        "quarantined_keys": [readable_key(key) for key in sorted(quarantined or {})],
        "quarantined_rows": quarantined_count or 0,
    }
    row["reasons"] = reasons
    if reasons and row["state"] in ("match", "mismatch"):
        row["state"], row["ok"] = "mismatch", False
    return row


def prepare_verification(pools, journal, modules, pairs, jobs, job_index, target_database):
    """Give each policy table's source measurement its plan: ``{pair index: (plan, policies, problems)}``.

    ``pools`` are the verification's session pools by side; ``jobs``/``job_index`` what
    rowdiff.plan_jobs made. Tables without an acting policy are left as they are.
    """
    by_name = dict((module["name"], module) for module in modules)
    prepared = {}
    for index, pair in enumerate(pairs):
        if pair["kind"] != "copied" or not pair["target_exists"] or job_index[index][0] is None:
            continue
        policies = acting(table_policies(by_name[pair["module"]], pair["source_table"]))
        if not policies:
            continue
        with pools["source"].session(pair["source_database"]) as source, \
                pools["target"].session(target_database) as target:
            plan, problems = verification_plan(source, target, journal, pair, policies)
        jobs[job_index[index][0]]["null_plan"] = plan
        prepared[index] = (plan, policies, problems)
    return prepared


def account_verification(pools, journal, rows, pairs, prepared, target_database, state_schema):
    """The verification's rows with every policy table judged by :func:`judge`."""
    rows = list(rows)
    for index, (plan, policies, problems) in sorted(prepared.items()):
        if rows[index]["state"] not in ("match", "mismatch"):
            continue
        pair = pairs[index]
        with pools["source"].session(pair["source_database"]) as source, \
                pools["target"].session(target_database) as target:
            rejected = measure_rejected(source, target, journal, pair, plan, state_schema)
        rows[index] = judge(rows[index], plan, policies, problems, rejected)
    return rows
