# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the data copy, as pure functions of plain data.

Nothing here talks to a database: :mod:`copy_catalog` reads the catalogs and
hands the facts in; these functions decide which columns to stream and in
which COPY format, which table to copy, skip or refuse, in which order, where a
sequence must continue, how a deferred foreign key comes back, and how a
progress line reads. They raise :class:`CopyPlanError` listing every problem,
never call ``fail_json``, and are unit-tested case by case. :class:`CopyFailed`
is the other error of the copy, raised once data has started to move.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import qualified, quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import table_destination

# One column as the catalog describes it.
#   type_name: pg_type.typname ("int4", "_text", "varchar"); compared across servers, so the schema is left out.
#   type_display: format_type(atttypid, atttypmod), for messages.
#   generated: a stored generated column (pg_attribute.attgenerated = 's').
#   portable: the binary COPY format of the type carries no OID that is local to one database
#             (a built-in type, an enum, or a domain over one); composites and arrays of
#             user-defined types embed OIDs and must travel as text.
Column = collections.namedtuple("Column", "name type_name type_display generated portable not_null",
                                defaults=(False,))

# Where one source table lands. truncate: the per-table override allows emptying a non-empty target.
TableMapping = collections.namedtuple("TableMapping", "source_table target_schema target_table truncate")

# Which columns to stream, in which order, and in which COPY format ("binary" or "text").
ColumnMatch = collections.namedtuple("ColumnMatch", "columns copy_format")

# Different type names whose binary COPY representation is identical (the receive function of the
# target applies its own length limit, so a too-long value still fails loudly).
BINARY_COMPATIBLE_TYPES = (
    frozenset(("text", "varchar")),
    frozenset(("_text", "_varchar")),
)

COPY = "copy"
TRUNCATE_AND_COPY = "truncate_and_copy"
SKIP_COMPLETE = "skip_complete"

MEGABYTE = 1024.0 * 1024.0


class CopyPlanError(ConsolidationError):
    """The copy cannot go ahead; ``problems`` lists every reason (each names its table)."""


class CopyFailed(ConsolidationError):
    """A table or a deferred foreign key could not be copied or restored; the message names it.

    Everything committed before it stays: the tables recorded as copied, the foreign keys still
    recorded for restoring. A rerun with the same run id resumes from there.
    """


# -- names ------------------------------------------------------------------------------------------

def source_label(database, schema, table):
    return "%s:%s" % (database, qualified(schema, table))


# -- which tables -----------------------------------------------------------------------------------

def partition_destination(module, table, root):
    """Where one source table lands, a partition (``root``: the top of its hierarchy) beside its root.

    A partition named in the mapping goes where its entry says; any other follows its root: excluded
    with it, or into the root's schema under its own name (the partition bounds come with the
    schema). ``root`` None: a table of its own, :func:`plan.table_destination`.
    """
    if root is None or root == table or table in module["tables"] or table in module["exclude_tables"]:
        return table_destination(module, table)
    destination = table_destination(module, root)
    return None if destination is None else (destination[0], table, destination[2])


def map_tables(module, source_tables, roots=None):
    """Where each table of one legacy database lands.

    ``module`` is a normalised module mapping (plan.build_plan); ``source_tables`` the table names
    found in its source schema, ``roots`` {partition: the top of its hierarchy}. Returns ``(mappings,
    excluded)``; raises CopyPlanError when an override names a table the source does not have (a typo
    there would silently copy the table to the wrong place or not at all).
    """
    present = set(source_tables)
    missing = sorted(set(module["tables"]) - present)
    if missing:
        raise CopyPlanError([
            "module %r: table override for %s, which %s does not have in schema %s"
            % (module["name"], ", ".join(quote_ident(name) for name in missing), module["source_database"],
               quote_ident(module["source_schema"]))])
    mappings, excluded = [], []
    for source_table in sorted(present):
        destination = partition_destination(module, source_table, (roots or {}).get(source_table))
        if destination is None:
            excluded.append(source_table)
        else:
            mappings.append(TableMapping(source_table, destination[0], destination[1], destination[2]))
    return mappings, excluded


# -- which columns ----------------------------------------------------------------------------------

def _describe_columns(columns):
    return ", ".join("%s %s%s" % (quote_ident(column.name), column.type_display,
                                  " (generated)" if column.generated else "")
                     for column in columns) or "(none)"


def _same_binary_type(left, right):
    return left == right or frozenset((left, right)) in BINARY_COMPATIBLE_TYPES


def match_columns(label, source_columns, target_columns):
    """The columns to stream from source to target, matched by name, and the COPY format.

    Column order may differ between the two tables; the stream uses the target's order on both
    sides. A generated column of the target is computed there and left out; a generated source
    column is read like any other when the target column is plain. Every other column must exist
    on both sides with the same type (typmods may differ: the target enforces its own), or the
    table cannot be copied faithfully and CopyPlanError names both column lists. Binary format is
    used unless a type's binary form embeds a database-local OID, then text.
    """
    source_by_name = dict((column.name, column) for column in source_columns)
    target_names = set(column.name for column in target_columns)
    only_source = [column.name for column in source_columns if column.name not in target_names]
    only_target = [column.name for column in target_columns
                   if column.name not in source_by_name and not column.generated]
    type_differs = []
    names = []
    portable = True
    for column in target_columns:
        source = source_by_name.get(column.name)
        if column.generated or source is None:
            continue
        if not _same_binary_type(source.type_name, column.type_name):
            type_differs.append("%s is %s in the source but %s in the target"
                                % (quote_ident(column.name), source.type_display, column.type_display))
        portable = portable and source.portable and column.portable
        names.append(column.name)
    problems = []
    if only_source:
        problems.append("only in the source: %s" % ", ".join(quote_ident(name) for name in only_source))
    if only_target:
        problems.append("only in the target: %s" % ", ".join(quote_ident(name) for name in only_target))
    problems.extend(type_differs)
    if not names and not problems:
        problems.append("no column to copy")
    if problems:
        raise CopyPlanError(["%s: columns do not match (%s); source columns: %s; target columns: %s"
                             % (label, "; ".join(problems), _describe_columns(source_columns),
                                _describe_columns(target_columns))])
    return ColumnMatch(names, "binary" if portable else "text")


def null_sensitive_columns(source_columns, target_columns, names):
    """The copied columns that are NOT NULL in the target but nullable in the source.

    A NULL there fails the table's COPY mid-run; the survey counts them in the
    snapshot first, so that every such problem is known before any row moves.
    """
    nullable = set(column.name for column in source_columns if not column.not_null)
    return [column.name for column in target_columns
            if column.name in names and column.not_null and column.name in nullable]


# -- row-level security ----------------------------------------------------------------------------

def rls_problem(side, label, role, bypasses, enabled, forced, owned):
    """Why ``role`` cannot read or load the table ``label`` on ``side`` past its row-level security, or None.

    The copy's sessions set ``row_security = off``, so a role the policies apply to gets an error
    rather than a silently filtered table; this names it before anything changes. A role passes as
    superuser or BYPASSRLS (``bypasses``), or as the table's owner (``owned``) unless RLS is FORCEd.
    """
    if not enabled or bypasses or (owned and not forced):
        return None
    fix = "ALTER ROLE %s BYPASSRLS" % quote_ident(role)
    if not forced:
        fix += ", or make it the table's owner"
    return ("%s: row-level security is enabled%s on the %s table and role %s is subject to its policies, so "
            "rows would be hidden from the copy (or refused by COPY): %s"
            % (label, " and forced" if forced else "", side, quote_ident(role), fix))


# -- copy, skip or refuse ---------------------------------------------------------------------------

def table_action(complete, target_empty, truncate_allowed):
    """What to do with one target table: SKIP_COMPLETE, COPY or TRUNCATE_AND_COPY; None = refuse.

    A table recorded complete for this run is skipped whatever it holds now. Otherwise the copy
    replaces the table's content inside one transaction, so an empty table is simply loaded and a
    non-empty one only when truncation is allowed (globally or for that table).
    """
    if complete:
        return SKIP_COMPLETE
    if target_empty:
        return COPY
    if truncate_allowed:
        return TRUNCATE_AND_COPY
    return None


def refusal_problem(tables):
    """The error for non-empty target tables that may not be emptied (``tables``: qualified names)."""
    return ("target tables already hold rows and are not recorded as copied by this run: %s; allow "
            "emptying them with truncate=true (all tables) or a per-table override "
            "tables: {<source table>: {truncate: true}}" % ", ".join(tables))


# -- order ------------------------------------------------------------------------------------------

def order_work(items, size_key="size"):
    """Biggest first, so the longest copies start early and the parallel tail stays short.

    ``items`` are dicts with a size; ties keep a stable, readable order by database then table.
    """
    return sorted(items, key=lambda item: (-(item.get(size_key) or 0), item.get("source_database") or "",
                                           item.get("source_table") or ""))


# -- indexes rebuilt inside a table's transaction ----------------------------------------------------

# pg_constraint.contype of the constraints whose index is rebuilt with the table.
CONSTRAINT_KINDS = {"p": "primary_key", "u": "unique", "x": "exclusion"}
_REBUILD_ORDER = {"primary_key": 0, "unique": 1, "exclusion": 2, "index": 3}


def order_index_rebuilds(indexes):
    """Primary key first, then unique and exclusion constraints, then plain indexes; by name within each."""
    return sorted(indexes, key=lambda index: (_REBUILD_ORDER[index["kind"]], index["name"]))


# -- sequences --------------------------------------------------------------------------------------

def sequence_setval(source_last_value, source_is_called, increment, target_extreme):
    """Arguments ``(value, is_called)`` for setval on the target column's sequence, or None.

    The target continues exactly as the source sequence would have, unless that would hand out a
    value the copied column already holds (rows inserted with explicit ids); then it continues
    after max(column). ``source_last_value``/``source_is_called`` describe the source sequence
    (None when the source column has none); ``target_extreme`` is max(column) after the copy (min
    for a descending sequence), None for an empty table.
    """
    if increment == 0:
        raise CopyPlanError(["a sequence increment of 0 is impossible"])
    if source_last_value is not None:
        source_next = source_last_value + increment if source_is_called else source_last_value
        if target_extreme is None or (source_next > target_extreme if increment > 0
                                      else source_next < target_extreme):
            return source_last_value, bool(source_is_called)
    if target_extreme is None:
        return None
    return target_extreme, True


# -- foreign keys and triggers --------------------------------------------------------------------------

FOREIGN_KEY_ADD = "add"
FOREIGN_KEY_VALIDATE = "validate"


def foreign_key_steps(definition, phase, partitioned=False):
    """The steps that bring a dropped foreign key back, from its recorded phase.

    ``definition`` is pg_get_constraintdef's text. A key that was valid is added NOT VALID (a brief
    lock, no scan) and then validated in its own transaction (one anti-join scan under a lock that
    lets other validations and reads proceed); a key that was NOT VALID before comes back as it was.
    ``phase`` is "dropped" or "added" (added NOT VALID, validation pending). A key of a partitioned
    table comes back valid in one step: PostgreSQL 15 cannot add one NOT VALID there.
    """
    was_not_valid = definition.rstrip().upper().endswith("NOT VALID")
    if partitioned:
        return [] if phase == "added" else [(FOREIGN_KEY_ADD, definition)]
    if phase == "added":
        return [] if was_not_valid else [(FOREIGN_KEY_VALIDATE, None)]
    if was_not_valid:
        return [(FOREIGN_KEY_ADD, definition)]
    return [(FOREIGN_KEY_ADD, definition + " NOT VALID"), (FOREIGN_KEY_VALIDATE, None)]


TRIGGER_ENABLE_CLAUSE = {"O": "ENABLE TRIGGER", "A": "ENABLE ALWAYS TRIGGER", "R": "ENABLE REPLICA TRIGGER"}


def trigger_enable_clause(tgenabled):
    """The ALTER TABLE clause that restores a trigger's firing mode (pg_trigger.tgenabled)."""
    try:
        return TRIGGER_ENABLE_CLAUSE[tgenabled]
    except KeyError:
        raise CopyPlanError(["trigger firing mode %r cannot be restored (expected O, A or R)" % (tgenabled,)]) from None


# -- materialized views -------------------------------------------------------------------------------

def refresh_order(source, target, edges):
    """The materialized views to refresh after the copy, each after those it reads (directly or through views).

    ``source`` maps (target schema, name) to ``{source_database, populated}`` as the legacy
    database has them; ``target`` maps (schema, name) to ``{populated, owned}`` in the target, None
    when the target was not read; ``edges`` maps a view or materialized view to the ones it reads.
    Only those populated in the source are refreshed (one left WITH NO DATA there stays so); one
    missing from the target is the schema step's to report. Entries: ``target_schema``, ``name``,
    ``source_database``, ``populated`` (in the target before the copy, None when not read) and
    ``owned`` (REFRESH needs the owner).
    """
    wanted = sorted(key for key, entry in source.items()
                    if entry["populated"] and (target is None or key in target))
    order, done = [], set()

    def visit(key, path):
        if key in done or key in path:
            return
        for referenced in sorted(edges.get(key, ())):
            visit(referenced, path | {key})
        done.add(key)
        if key in wanted:
            order.append(key)

    for key in wanted:
        visit(key, frozenset())
    return [dict(target_schema=schema, name=name, source_database=source[(schema, name)]["source_database"],
                 populated=None if target is None else target[(schema, name)]["populated"],
                 owned=True if target is None else target[(schema, name)]["owned"])
            for schema, name in order]


def matview_owner_problem(entry):
    return ("materialized view %s: the target role does not own it, and only its owner may refresh it after the "
            "copy: ALTER MATERIALIZED VIEW %s OWNER TO <the target role>"
            % (qualified(entry["target_schema"], entry["name"]), qualified(entry["target_schema"], entry["name"])))


# -- progress ---------------------------------------------------------------------------------------

def megabytes(nbytes):
    return (nbytes or 0) / MEGABYTE


def rate(nbytes, seconds):
    """MB/s, 0 when no time passed (a tiny table)."""
    return megabytes(nbytes) / seconds if seconds and seconds > 0 else 0.0


def format_progress(schema, table, rows, nbytes, seconds):
    """``product."Products": 12,345 rows, 3.2 MB in 0.4 s (8.0 MB/s)``: one line per copied table."""
    return "%s: %s %s, %.1f MB in %.1f s (%.1f MB/s)" % (
        qualified(schema, table), "{:,}".format(rows), "row" if rows == 1 else "rows", megabytes(nbytes), seconds,
        rate(nbytes, seconds))


def format_plan_line(schema, table, rows, nbytes):
    """The check-mode line of a table a run would copy: ``would copy product."Products": 12,345 rows, 3.2 MB``."""
    return "would copy %s: %s %s, %.1f MB" % (qualified(schema, table), "{:,}".format(rows),
                                              "row" if rows == 1 else "rows", megabytes(nbytes))


def totals(entries, seconds):
    """Run totals over the tables copied now; ``seconds`` is the wall time of the copy phase."""
    copied = [entry for entry in entries if entry.get("status") == "copied"]
    rows = sum(entry.get("rows") or 0 for entry in copied)
    nbytes = sum(entry.get("bytes") or 0 for entry in copied)
    return {
        "tables": len(copied),
        "rows": rows,
        "bytes": nbytes,
        "seconds": round(seconds, 3),
        "mb_per_second": round(rate(nbytes, seconds), 1),
    }


def format_totals(summary):
    return "total: %d tables, %s rows, %.1f MB in %.1f s (%.1f MB/s)" % (
        summary["tables"], "{:,}".format(summary["rows"]), megabytes(summary["bytes"]), summary["seconds"],
        summary["mb_per_second"])
