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
quarantined rows must be exactly the source rows the filter leaves out (:mod:`null_verification`).

Pure functions build and judge; the few functions taking a cursor read or write one thing each.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections

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
    read = rejected_rows_query(job.null_plan, table, only=True)
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


def run_read(cur, journal, statement, params=None):
    """Run a read; through the journal where the caller keeps one (the verification keeps every statement)."""
    if journal is None:
        cur.execute(statement, params)
    else:
        journal.execute(cur, statement, params)


def target_defaults(cur, table_oid, columns, journal=None):
    """``{column: TargetDefault}`` of the named columns of one target table that have a default."""
    if not columns:
        return {}
    run_read(cur, journal, TARGET_DEFAULTS, (table_oid, list(columns)))
    return dict((name, TargetDefault(expression, volatile)) for name, expression, volatile in cur.fetchall())


def evaluate_defaults(cur, defaults, journal=None):
    """``{column: value as text}``: each default evaluated once, on the server of ``cur``."""
    values = {}
    for name, default in sorted(defaults.items()):
        # pg_get_expr's own text, schema-qualified by the session's empty search_path.
        run_read(cur, journal, sql.SQL("SELECT ({})::text").format(sql.SQL(default.expression)))
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
    run_read(cur, journal, PRIMARY_KEY, (table_oid,))
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
