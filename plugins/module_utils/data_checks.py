# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan-time data checks: what the source rows would break in the target, found before any row moves.

The copy's survey matches tables and columns by name; this compares each source table's data with
what its target table will demand and reports every problem at once, with a count and at most
:data:`MAX_KEYS` primary-key values of the offending rows (never a whole row):

* a source column without a target column whose rows hold values (they would be lost), and a target
  column NOT NULL without a default that the source lacks (every row would fail);
* a type change that can lose data, by type family (:func:`type_rule` names the rule of each);
* a unique or primary key of the target that the source rows would duplicate;
* a foreign key of the target whose referenced rows are not in the source table that fills the
  referenced target table (same legacy database);
* a check constraint of the target the source rows fail, evaluated on the source when its
  expression uses only the table's columns and built-in immutable functions.

PostgreSQL answers every question on the source side, inside the snapshot the copy reads from
(``length(col) > n``, ``round(col, s)``, the target's own check expression), so no cast is
re-implemented here. A constraint the source provably enforces already (the same unique key, foreign
key or check, validated) costs nothing; every other one costs one scan of its table, and columns
with a rule share one scan per table. Nothing is ever changed: each statement runs read-only under a
savepoint, so a failing one cannot end the snapshot's transaction.

The decisions are pure functions of plain data (unit-tested); :class:`DataChecks` reads the
catalogs and runs the counts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import psycopg2, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import postgres_problem

MAX_KEYS = 5
KEY_TEXT_LIMIT = 64  # characters of one key value shown; a key is an identifier, not content
FIRST_NORMAL_OID = 16384  # objects below it come with PostgreSQL itself
VARHDRSZ = 4

# One column with what the checks need. typmod: pg_attribute.atttypmod (-1: none).
# required: NOT NULL without a default, not generated, not identity (a row without it fails).
# generated: computed by the table itself (a target's is never copied into).
Column = collections.namedtuple("Column", "name type_name typmod display required generated")

# A rule on one column's source values; ``params`` hold what the SQL needs, ``what`` is the message's noun phrase.
ColumnRule = collections.namedtuple("ColumnRule", "column kind params what")

# A unique index (or primary key / unique constraint) of one table.
#   columns: key column names ([] when the index has expressions); predicate: pg_get_expr of a partial index.
UniqueIndex = collections.namedtuple("UniqueIndex", "name primary columns predicate nulls_not_distinct deterministic")

# A foreign key: ``columns`` of the table referencing ``referenced_columns`` of (schema, table).
ForeignKey = collections.namedtuple("ForeignKey",
                                    "name columns referenced_schema referenced_table referenced_columns match_full "
                                    "validated")

# A check constraint. definition: pg_get_constraintdef; expression: pg_get_expr(conbin); tree: conbin as text.
CheckConstraint = collections.namedtuple("CheckConstraint", "name columns definition expression tree validated")

INTEGER_RANGES = {"int2": (-32768, 32767), "int4": (-2147483648, 2147483647),
                  "int8": (-9223372036854775808, 9223372036854775807)}
INTEGER_DIGITS = {"int2": 5, "int4": 10, "int8": 19}
CHARACTER_TYPES = ("text", "varchar", "bpchar")
FRACTIONAL_SECONDS_TYPES = ("timestamp", "timestamptz", "time", "timetz", "interval")
ZONE_DROPPED = {"timestamptz": "timestamp", "timetz": "time"}

# Expression nodes (pg_node_tree names) whose value depends on nothing but their inputs and the
# functions they name; anything else (a cast through text I/O, a sublink, CURRENT_DATE ...) may not.
PURE_NODES = frozenset((
    "VAR", "CONST", "FUNCEXPR", "OPEXPR", "DISTINCTEXPR", "NULLIFEXPR", "SCALARARRAYOPEXPR", "BOOLEXPR",
    "NULLTEST", "BOOLEANTEST", "RELABELTYPE", "CASE", "WHEN", "CASETESTEXPR", "COALESCEEXPR", "MINMAXEXPR",
    "ARRAYEXPR", "COLLATEEXPR",
))
_NODE = re.compile(r"\{([A-Z_]+)")
_FUNCTION = re.compile(r":(?:funcid|opfuncid) (\d+)")
_OPERATOR = re.compile(r":opno (\d+)")
_OTHER_OBJECT = re.compile(r":(\w*(?:type|collid)\w*) (\d+)", re.IGNORECASE)


# -- types ------------------------------------------------------------------------------------------

def numeric_typmod(typmod):
    """(precision, scale) of numeric(p, s), or None when unconstrained; scale may be negative (PostgreSQL 15)."""
    if typmod is None or typmod < VARHDRSZ:
        return None
    value = typmod - VARHDRSZ
    return (value >> 16) & 0xFFFF, ((value & 0x7FF) ^ 1024) - 1024


def character_limit(type_name, typmod):
    """n of varchar(n) or char(n) (and their arrays), None when unlimited."""
    if type_name.lstrip("_") in ("varchar", "bpchar") and typmod is not None and typmod >= VARHDRSZ:
        return typmod - VARHDRSZ
    return None


def _numeric_fits(source, target_precision, target_scale):
    """Whether every value of the source column fits numeric(p, s) unchanged."""
    if source.type_name in INTEGER_DIGITS:
        return target_scale >= 0 and target_precision - target_scale >= INTEGER_DIGITS[source.type_name]
    declared = numeric_typmod(source.typmod) if source.type_name == "numeric" else None
    if declared is None:
        return False
    precision, scale = declared
    return target_scale >= scale and target_precision - target_scale >= precision - scale


def type_rule(source, target):
    """The rule that finds the source values the target column would reject or change, or None.

    By family (``kind`` and ``params`` of the returned (kind, params, what)):

    * character: varchar(n) / char(n) from a longer or unlimited text type: ``length(value) > n``
      (``length_array`` for arrays, any element); varchar drops trailing blanks beyond n silently
      and rejects anything else, char(n) compares without them;
    * numeric(p, s) from numeric or an integer that may not fit: values that differ from
      ``round(value, s)`` (rounded silently) or reach 10^(p - s) (rejected); NaN fits;
    * integers narrowed (bigint to integer, ...): values outside the target's range;
    * timestamp, time, interval with fewer fractional digits (or fields): values that differ from
      their cast to the target type (rounded silently);
    * timestamptz to timestamp, timetz to time: every non-NULL value, since the zone is dropped;
    * bit(n) / varbit(n): ``length(value) <> n`` / ``> n``.

    Any other difference of typmod within one type cannot be proven lossless here: ``unprovable``
    (the COPY enforces the target's typmod and fails the whole table if a value does not fit).
    Different types outside these families are refused by the column match already; None.
    """
    src, tgt = source.type_name, target.type_name
    if tgt.lstrip("_") in ("varchar", "bpchar") and src.lstrip("_") in CHARACTER_TYPES \
            and src.startswith("_") == tgt.startswith("_"):
        limit = character_limit(tgt, target.typmod)
        if limit is None:
            return None
        own = character_limit(src, source.typmod)
        if own is not None and own <= limit:
            return None
        kind = "length_array" if tgt.startswith("_") else "length"
        return kind, (limit,), "hold values longer than %d characters (%s)" % (limit, target.display)
    if tgt == "numeric" and (src == "numeric" or src in INTEGER_DIGITS):
        declared = numeric_typmod(target.typmod)
        if declared is None or _numeric_fits(source, *declared):
            return None
        return "numeric", declared, "hold values %s would round or reject" % target.display
    if src in INTEGER_RANGES and tgt in INTEGER_RANGES:
        if INTEGER_DIGITS[tgt] >= INTEGER_DIGITS[src]:
            return None
        return "range", INTEGER_RANGES[tgt], "hold values outside the range of %s" % target.display
    if ZONE_DROPPED.get(src) == tgt:
        return "not_null", (), "hold values whose time zone would be dropped (%s to %s)" % (
            source.display, target.display)
    if src == tgt and src in FRACTIONAL_SECONDS_TYPES:
        if target.typmod < 0 or source.typmod == target.typmod or (
                src != "interval" and 0 <= source.typmod <= target.typmod):
            return None
        return "cast_changes", (target.display,), "hold values %s would round" % target.display
    if src == tgt and src in ("bit", "varbit"):
        limit = target.typmod
        if limit < 0 or (src == "bit" and source.typmod == limit) or (src == "varbit" and 0 <= source.typmod <= limit):
            return None
        return ("bit_length" if src == "bit" else "length"), (limit,), "hold values that do not fit %s" % target.display
    if src == tgt and target.typmod >= 0 and source.typmod != target.typmod:
        return "unprovable", (), "cannot prove lossless: %s to %s" % (source.display, target.display)
    return None


def column_rules(source_columns, target_columns):
    """Every rule on the source rows of one table, from the two column lists (matched by name).

    A source column without a target column loses its non-NULL values (``not_null``); a required
    target column the source lacks fails every row (``every_row``); a column on both sides gets its
    :func:`type_rule`. A generated target column computes its own values: nothing is copied into it.
    """
    targets = dict((column.name, column) for column in target_columns)
    sources = dict((column.name, column) for column in source_columns)
    rules = []
    for column in source_columns:
        target = targets.get(column.name)
        if target is not None and target.generated:
            continue
        if target is None:
            rules.append(ColumnRule(column.name, "not_null", (),
                                    "hold values with no target column (they would be lost)"))
            continue
        found = type_rule(column, target)
        if found:
            rules.append(ColumnRule(column.name, *found))
    for column in target_columns:
        if column.name not in sources and column.required and not column.generated:
            rules.append(ColumnRule(column.name, "every_row", (),
                                    "have no value for this target column, NOT NULL without a default, which "
                                    "the source lacks"))
    return rules


# -- constraints ------------------------------------------------------------------------------------

def unique_implied(index, source_indexes):
    """Whether a unique index of the source proves the target's ``index`` cannot be violated.

    A plain unique index on a subset of the target's key columns does, when the target compares
    them deterministically (a case-insensitive collation finds duplicates the source allows), and
    when the target treats NULLs as equal only if the source did too.
    """
    if not index.columns or not index.deterministic:
        return False
    for candidate in source_indexes:
        if not candidate.columns or candidate.predicate is not None:
            continue
        if not set(candidate.columns) <= set(index.columns):
            continue
        if index.nulls_not_distinct and not candidate.nulls_not_distinct:
            continue
        return True
    return False


def foreign_key_implied(key, parent_table, source_keys):
    """Whether a validated foreign key of the source table proves the target's ``key`` holds.

    ``parent_table`` is the source table that fills the key's referenced target table;
    ``source_keys`` are the foreign keys of the source table filling the key's own table (their
    ``referenced_table`` a source table of the same schema). MATCH FULL in the target needs MATCH
    FULL in the source.
    """
    wanted = list(zip(key.columns, key.referenced_columns))
    for candidate in source_keys:
        if not candidate.validated or candidate.referenced_table != parent_table:
            continue
        if key.match_full and not candidate.match_full:
            continue
        if list(zip(candidate.columns, candidate.referenced_columns)) == wanted:
            return True
    return False


def check_implied(check, source_checks):
    """Whether the source enforces the same check (same definition, validated)."""
    definition = strip_not_valid(check.definition)
    return any(candidate.validated and strip_not_valid(candidate.definition) == definition
               for candidate in source_checks)


def strip_not_valid(definition):
    text = definition.rstrip()
    return text[:-len(" NOT VALID")] if text.upper().endswith(" NOT VALID") else text


def expression_references(tree):
    """(node names, function oids, operator oids, other object oids) named in a pg_node_tree text."""
    nodes = set(_NODE.findall(tree))
    functions = set(int(oid) for oid in _FUNCTION.findall(tree))
    operators = set(int(oid) for oid in _OPERATOR.findall(tree))
    others = set(int(oid) for _key, oid in _OTHER_OBJECT.findall(tree))
    return nodes, functions, operators, others


def expression_problem(tree, immutable_builtins, columns, source_columns):
    """Why an expression of the target cannot be evaluated on the source before the copy, or None.

    ``immutable_builtins(functions, operators)`` answers, from the target's catalog, whether all of
    them are built-in and immutable; ``columns`` are the columns the expression uses and
    ``source_columns`` the names the source table has.
    """
    nodes, functions, operators, others = expression_references(tree)
    unknown = sorted(nodes - PURE_NODES)
    if unknown:
        return "it uses %s, whose result is not a function of the row alone" % ", ".join(unknown)
    if any(oid >= FIRST_NORMAL_OID for oid in others):
        return "it uses a type or collation that is not built in"
    if not immutable_builtins(functions, operators):
        return "it calls a function that is not built in or not immutable"
    missing = [name for name in columns if name not in source_columns]
    if missing:
        return "the source has no column %s" % ", ".join(quote_ident(name) for name in missing)
    return None


# -- problems ---------------------------------------------------------------------------------------

def key_text(values):
    """One offending row's key as shown: ``42`` or ``(1, a)``; long values cut."""
    shown = [value if value is None or len(value) <= KEY_TEXT_LIMIT else value[:KEY_TEXT_LIMIT] + "..."
             for value in values]
    shown = ["NULL" if value is None else value for value in shown]
    return shown[0] if len(shown) == 1 else "(%s)" % ", ".join(shown)


def make_problem(source_label, target_label, kind, subject, what, count, keys, key_columns, more_keys=None):
    """One problem as the result, the JSON file and the message carry it.

    ``keys`` are the offending rows' key values (a unique key's: the duplicated values), at most
    :data:`MAX_KEYS` of them kept; ``more_keys`` says whether there are others (by default: whether
    ``count`` offending rows are more than the keys; never without key columns).
    """
    kept = keys[:MAX_KEYS]
    return {
        "source": source_label,
        "target": target_label,
        "kind": kind,
        "subject": subject,
        "what": what,
        "count": count,
        "key_columns": list(key_columns),
        "keys": [key_text(key) for key in kept],
        "more_keys": bool(key_columns) and count > len(kept) if more_keys is None else more_keys,
    }


def problem_message(problem):
    """``src -> tgt: column "Name": 3 rows hold values longer than 20 characters (...); keys 1, 2, 7 ("Id")``."""
    count = problem["count"]
    text = "%s -> %s: %s: %d %s %s" % (problem["source"], problem["target"], problem["subject"], count,
                                       "row" if count == 1 else "rows", problem["what"])
    if problem["keys"]:
        text += "; %s %s" % ("first keys" if problem["more_keys"] else "keys", ", ".join(problem["keys"]))
        if problem["key_columns"]:
            text += " (%s)" % ", ".join(quote_ident(name) for name in problem["key_columns"])
    return text


def summary_line(problems, report_path):
    """The one line that sends the operator to the full list."""
    return ("%d data problem%s found before the copy (counts above; %s)"
            % (len(problems), "" if len(problems) == 1 else "s",
               "every one with its keys in %s" % report_path if report_path else "keys in the task result"))


# -- the checks, in the snapshot ----------------------------------------------------------------------

COLUMNS = """
SELECT a.attrelid, a.attname, t.typname, a.atttypmod, pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attnotnull AND NOT a.atthasdef AND a.attidentity = '', a.attgenerated <> ''
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Unique indexes with their key columns (INCLUDE columns left out). indnullsnotdistinct exists from
# PostgreSQL 15 on; reading it through to_jsonb keeps older servers working (they have no such option).
UNIQUE_INDEXES = """
SELECT i.indrelid, coalesce(con.conname, ic.relname), i.indisprimary,
       CASE WHEN i.indexprs IS NULL THEN ARRAY(
           SELECT a.attname FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) k(n)
           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n]
           ORDER BY k.n) END,
       pg_catalog.pg_get_expr(i.indpred, i.indrelid), i.indpred::pg_catalog.text,
       coalesce((pg_catalog.to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false),
       NOT EXISTS (SELECT FROM pg_catalog.pg_collation co
                   WHERE co.oid = ANY(i.indcollation::pg_catalog.oid[]) AND NOT co.collisdeterministic)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                                     AND con.contype IN ('p', 'u')
WHERE i.indrelid = ANY(%s) AND i.indisunique AND i.indisvalid
ORDER BY i.indrelid, NOT i.indisprimary, 2
"""

CONSTRAINTS = """
SELECT con.conrelid, con.contype, con.conname,
       ARRAY(SELECT a.attname FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.n),
       rn.nspname, rc.relname,
       ARRAY(SELECT a.attname FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.n),
       con.confmatchtype = 'f', con.convalidated, pg_catalog.pg_get_constraintdef(con.oid),
       pg_catalog.pg_get_expr(con.conbin, con.conrelid), con.conbin::pg_catalog.text
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY(%s) AND con.contype IN ('f', 'c') AND con.conparentid = 0
ORDER BY con.conrelid, con.conname
"""

# Whether every function and operator given is built in and immutable (an operator through its function).
IMMUTABLE_BUILTINS = """
SELECT count(*) = 0 FROM (
    SELECT p.oid, p.provolatile FROM pg_catalog.pg_proc p WHERE p.oid = ANY(%s)
    UNION ALL
    SELECT o.oid, p.provolatile FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
    WHERE o.oid = ANY(%s)
) r WHERE r.oid >= 16384 OR r.provolatile <> 'i'
"""


class DataCheckReport(object):
    """The problems (dicts, see :func:`make_problem`) and the warnings of the checks of one run."""

    def __init__(self):
        self.problems = []
        self.warnings = []
        self.scans = 0  # statements that read a whole source table: the cost of the checks

    def messages(self):
        return [problem_message(problem) for problem in self.problems]


class _Catalog(object):
    """Columns, unique indexes, foreign keys and checks of a set of tables, read on one connection."""

    def __init__(self, conn, oids):
        self.columns = collections.defaultdict(list)
        self.unique = collections.defaultdict(list)
        self.foreign_keys = collections.defaultdict(list)
        self.checks = collections.defaultdict(list)
        self.trees = {}  # (table oid, unique index name) -> its predicate as pg_node_tree text
        oids = sorted(set(oids))
        if not oids:
            return
        with conn.cursor() as cur:
            cur.execute(COLUMNS, (oids,))
            for relid, name, type_name, typmod, display, required, generated in cur.fetchall():
                self.columns[relid].append(Column(name, type_name, typmod, display, required, generated))
            cur.execute(UNIQUE_INDEXES, (oids,))
            for relid, name, primary, columns, predicate, tree, nnd, deterministic in cur.fetchall():
                self.unique[relid].append(UniqueIndex(name, primary, list(columns or []), predicate, nnd,
                                                      deterministic))
                self.trees[(relid, name)] = tree
            cur.execute(CONSTRAINTS, (oids,))
            for (relid, contype, name, columns, ref_schema, ref_table, ref_columns, match_full, validated,
                 definition, expression, tree) in cur.fetchall():
                if contype == "f":
                    self.foreign_keys[relid].append(ForeignKey(name, list(columns), ref_schema, ref_table,
                                                               list(ref_columns), match_full, validated))
                else:
                    self.checks[relid].append(CheckConstraint(name, list(columns), definition, expression, tree,
                                                              validated))

    def primary_key(self, relid):
        for index in self.unique[relid]:
            if index.primary:
                return index.columns
        return []


def _conjunction(parts):
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


class DataChecks(object):
    """Runs the checks of the tables of one run.

    ``jobs`` are the survey's :class:`copy_catalog.TableJob` objects (every table of the run, so that
    a foreign key finds the source table filling its referenced table); ``checked`` those to check.
    ``control`` is the target connection; each job's ``source.conn`` holds its database's snapshot.
    """

    def __init__(self, jobs, control):
        self.jobs = jobs
        self.control = control
        self.report = DataCheckReport()
        self._target = None
        self._target_cursor = None

    def run(self, checked):
        if not checked:
            return self.report
        target = _Catalog(self.control, [job.target_oid for job in checked])
        self._target = target
        with self.control.cursor() as cur:
            self._target_cursor = cur
            by_source = collections.OrderedDict()
            for job in checked:
                by_source.setdefault(job.source, []).append(job)
            for source, jobs in by_source.items():
                catalog = _Catalog(source.conn, [job.source_oid for job in self.jobs if job.source is source])
                with source.conn.cursor() as src:
                    for job in jobs:
                        self._check_table(job, catalog, src)
        self.control.rollback()
        return self.report

    # -- one table --------------------------------------------------------------------------------

    def _check_table(self, job, catalog, cur):
        target = self._target
        source_columns = catalog.columns[job.source_oid]
        source_names = set(column.name for column in source_columns)
        key_columns = catalog.primary_key(job.source_oid) or [
            name for name in target.primary_key(job.target_oid) if name in source_names]
        if any(name not in source_names for name in key_columns):
            key_columns = []
        # ONLY: the rows the copy reads (an inheritance child is a job of its own).
        table = sql.SQL("ONLY {}.{}").format(sql.Identifier(job.source_schema), sql.Identifier(job.source_table))
        context = (job, cur, table, key_columns)

        rules = column_rules(source_columns, target.columns[job.target_oid])
        conditions = []
        for rule in rules:
            if rule.kind == "unprovable":
                self.report.warnings.append("%s -> %s: column %s: %s; the COPY enforces the target's type and "
                                            "fails the table if a value does not fit"
                                            % (job.source_label, job.target_label, quote_ident(rule.column),
                                               rule.what))
            else:
                conditions.append((rule, _rule_condition(rule)))
        if conditions:
            counts = self._scan(cur, sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE {})").format(condition)
                                   for _rule, condition in conditions), table), "the column rules", job)
            for (rule, condition), count in zip(conditions, counts or ()):
                if count:
                    self._problem(context, "column", "column %s" % quote_ident(rule.column), rule.what, count,
                                  condition)

        for index in target.unique[job.target_oid]:
            self._check_unique(context, index, catalog, source_names)
        for key in target.foreign_keys[job.target_oid]:
            self._check_foreign_key(context, key, catalog, source_names)
        for check in target.checks[job.target_oid]:
            self._check_check(context, check, catalog, source_names)

    def _check_unique(self, context, index, catalog, source_names):
        job, cur, table, _keys = context
        label = "%s %s" % ("primary key" if index.primary else "unique key", quote_ident(index.name))
        if unique_implied(index, catalog.unique[job.source_oid]):
            return
        if not index.columns or not index.deterministic:
            self._cannot_check(job, label, "its key is an expression or compares with a nondeterministic collation")
            return
        if any(name not in source_names for name in index.columns):
            return  # the missing column is reported as such
        predicate = sql.SQL("true")
        if index.predicate is not None:
            reason = expression_problem(self._target.trees[(job.target_oid, index.name)], self._immutable_builtins,
                                        [], source_names)
            if reason:
                self._cannot_check(job, label, "its WHERE clause cannot be evaluated on the source: %s" % reason)
                return
            predicate = sql.SQL(index.predicate)
        columns = [sql.Identifier(name) for name in index.columns]
        present = [] if index.nulls_not_distinct else [sql.SQL("{} IS NOT NULL").format(column) for column in columns]
        rows = self._run(cur, sql.SQL(
            "SELECT count(*) OVER (), sum(d.n) OVER (), {keys} FROM ("
            "SELECT {columns}, count(*) AS n FROM {table} WHERE {present} AND ({predicate}) GROUP BY {columns} "
            "HAVING count(*) > 1) d ORDER BY {keys} LIMIT {limit}").format(
            keys=sql.SQL(", ").join(sql.SQL("d.{}::pg_catalog.text").format(column) for column in columns),
            columns=sql.SQL(", ").join(columns), table=table, present=_conjunction(present), predicate=predicate,
            limit=sql.Literal(MAX_KEYS)), label, job, scan=True)
        if rows:
            problem = make_problem(job.source_label, job.target_label, "unique", label,
                                   "share their key with another row (%d duplicated key value%s)"
                                   % (rows[0][0], "" if rows[0][0] == 1 else "s"),
                                   int(rows[0][1]), [row[2:] for row in rows], index.columns,
                                   more_keys=rows[0][0] > len(rows))
            self.report.problems.append(problem)

    def _check_foreign_key(self, context, key, catalog, source_names):
        job, cur, table, _keys = context
        label = "foreign key %s" % quote_ident(key.name)
        parents = [other for other in self.jobs if (other.target_schema, other.target_table)
                   == (key.referenced_schema, key.referenced_table)]
        same_database = [other for other in parents if other.source_database == job.source_database]
        if not same_database:
            self._cannot_check(job, label, "its referenced table %s is %s" % (
                "%s.%s" % (quote_ident(key.referenced_schema), quote_ident(key.referenced_table)),
                "filled from another legacy database" if parents else "not filled by this copy"))
            return
        parent = same_database[0]
        source_keys = [fk for fk in catalog.foreign_keys[job.source_oid]
                       if fk.referenced_schema == parent.source_schema]
        if foreign_key_implied(key, parent.source_table, source_keys):
            return
        parent_names = set(column.name for column in catalog.columns[parent.source_oid])
        if any(name not in source_names for name in key.columns) or \
                any(name not in parent_names for name in key.referenced_columns):
            return  # the missing column is reported as such
        child = [sql.SQL("c.{}").format(sql.Identifier(name)) for name in key.columns]
        matched = _conjunction([sql.SQL("p.{} = {}").format(sql.Identifier(name), column)
                                for name, column in zip(key.referenced_columns, child)])
        # ONLY, as a foreign key sees its referenced table: without its inheritance children.
        missing = sql.SQL("{} AND NOT EXISTS (SELECT FROM ONLY {}.{} p WHERE {})").format(
            _conjunction([sql.SQL("{} IS NOT NULL").format(column) for column in child]),
            sql.Identifier(parent.source_schema), sql.Identifier(parent.source_table), matched)
        if key.match_full and len(child) > 1:
            missing = sql.SQL("({}) OR pg_catalog.num_nulls({}) NOT IN (0, {})").format(
                missing, sql.SQL(", ").join(child), sql.Literal(len(child)))
        self._count_and_keys(context, "foreign_key", label,
                             "reference no row of %s (the source table filling %s)" % (
                                 parent.source_label, parent.target_label),
                             missing, alias="c")

    def _check_check(self, context, check, catalog, source_names):
        job = context[0]
        label = "check %s" % quote_ident(check.name)
        if check_implied(check, catalog.checks[job.source_oid]):
            return
        reason = expression_problem(check.tree, self._immutable_builtins, check.columns, source_names)
        if reason:
            self._cannot_check(job, label, reason)
            return
        self._count_and_keys(context, "check", label, "fail %s" % strip_not_valid(check.definition),
                             sql.SQL("NOT ({})").format(sql.SQL(check.expression)))

    # -- statements -------------------------------------------------------------------------------

    def _immutable_builtins(self, functions, operators):
        cur = self._target_cursor
        cur.execute(IMMUTABLE_BUILTINS, (sorted(functions), sorted(operators)))
        return cur.fetchone()[0]

    def _count_and_keys(self, context, kind, label, what, condition, alias="t"):
        job, cur, table, _keys = context
        row = self._scan(cur, sql.SQL("SELECT count(*) FROM {} {} WHERE {}").format(
            table, sql.Identifier(alias), condition), label, job)
        if row and row[0]:
            self._problem(context, kind, label, what, row[0], condition, alias)

    def _problem(self, context, kind, label, what, count, condition, alias="t"):
        job, cur, table, key_columns = context
        keys = []
        if key_columns:
            columns = [sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(name)) for name in key_columns]
            keys = self._run(cur, sql.SQL("SELECT {} FROM {} {} WHERE {} ORDER BY {} LIMIT {}").format(
                sql.SQL(", ").join(sql.SQL("{}::pg_catalog.text").format(column) for column in columns),
                table, sql.Identifier(alias), condition, sql.SQL(", ").join(columns), sql.Literal(MAX_KEYS)),
                label, job) or []
        self.report.problems.append(make_problem(job.source_label, job.target_label, kind, label, what, count,
                                                 keys, key_columns))

    def _scan(self, cur, statement, label, job):
        rows = self._run(cur, statement, label, job, scan=True)
        return rows[0] if rows else None

    def _run(self, cur, statement, label, job, scan=False):
        """Rows of one read-only statement on the source, under a savepoint; None (and a warning) on error."""
        if scan:
            self.report.scans += 1
        cur.execute("SAVEPOINT data_check")
        try:
            cur.execute(statement)
            rows = cur.fetchall()
        except psycopg2.Error as exc:
            cur.execute("ROLLBACK TO SAVEPOINT data_check")
            self._cannot_check(job, label, "evaluating it on the source failed: %s" % postgres_problem(exc))
            return None
        cur.execute("RELEASE SAVEPOINT data_check")
        return rows

    def _cannot_check(self, job, label, reason):
        self.report.warnings.append("%s -> %s: %s cannot be checked before the copy (%s); the copy still enforces "
                                    "it and fails the table if a row breaks it"
                                    % (job.source_label, job.target_label, label, reason))


def _rule_condition(rule):
    """The SQL condition that picks the source rows a column rule reports (see :func:`type_rule`)."""
    column = sql.Identifier(rule.column)
    if rule.kind == "not_null":
        return sql.SQL("{} IS NOT NULL").format(column)
    if rule.kind == "every_row":
        return sql.SQL("true")
    if rule.kind == "length":
        return sql.SQL("pg_catalog.length({}) > {}").format(column, sql.Literal(rule.params[0]))
    if rule.kind == "bit_length":
        return sql.SQL("pg_catalog.length({}) <> {}").format(column, sql.Literal(rule.params[0]))
    if rule.kind == "length_array":
        return sql.SQL("EXISTS (SELECT FROM pg_catalog.unnest({}) e(v) WHERE pg_catalog.length(e.v) > {})").format(
            column, sql.Literal(rule.params[0]))
    if rule.kind == "numeric":
        precision, scale = rule.params
        value = sql.SQL("{}::pg_catalog.numeric").format(column)
        rounded = sql.SQL("pg_catalog.round({}, {})").format(value, sql.Literal(scale))
        return sql.SQL("{value} <> 'NaN' AND ({value} <> {rounded} OR pg_catalog.abs({rounded}) >= "
                       "pg_catalog.power(10::pg_catalog.numeric, {digits}))").format(
            value=value, rounded=rounded, digits=sql.Literal(precision - scale))
    if rule.kind == "range":
        low, high = rule.params
        return sql.SQL("{} NOT BETWEEN {} AND {}").format(column, sql.Literal(low), sql.Literal(high))
    if rule.kind == "cast_changes":
        # The type's name as format_type printed it for a built-in type of the target catalog.
        return sql.SQL("{} IS DISTINCT FROM CAST({} AS {})").format(column, column, sql.SQL(rule.params[0]))
    raise ValueError("no condition for rule %r" % (rule.kind,))
