# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification of a consolidation, table by table: the pure part.

Everything here is a function of plain data (table lists, counts, checksums,
sequence states) and is unit-tested case by case; the database side lives in
``table_stats``, ``verification`` wires the two together, and
``verify_report`` writes the outcome for people.

A *pair* is one line of the verification: a legacy table and where it lands
(``kind`` ``copied``), a table left out by name (``excluded``), a table of a
module schema that no legacy table maps to (``extra``), or a table the caller
expects to exist (``expected``). :func:`classify` turns a pair and what was
measured on both sides into a *row* with a ``state``:

``match``     counts (and checksums, when computed) are equal
``mismatch``  counts or checksums differ, or checksummed columns exist on one side only
``missing``   the target table (or its schema) does not exist
``extra``     a target table no legacy table maps to. Informational while it is
              empty (the new model may add tables the legacy one lacked); one with
              rows fails, because those rows were neither copied nor compared
``excluded``  left out by name (``exclude_tables``), never counted
``present``   an expected table exists (``expect_tables``)
``error``     a side could not be measured (the reason says why)

A row fails (``ok`` false) when its state is ``mismatch``, ``missing`` or
``error``, or ``extra`` with rows. A sequence fails when it is ``behind`` (its
next value would collide with a value already in its column, or is behind the
legacy sequence) or could not be read (``error``). The verification passes
when nothing fails.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import partition_destination
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import (
    PlanError,
    identifier_problem,
    schema_problem,
)

STATES = ("match", "mismatch", "missing", "extra", "excluded", "present", "error")
ROW_KEYS = ("module", "source_database", "source_schema", "source_table", "target_schema", "target_table",
            "kind", "state", "ok", "source_rows", "target_rows", "source_checksum", "target_checksum",
            "columns_only_in_source", "columns_only_in_target", "column_type_differences", "reasons")


# -- pairing ------------------------------------------------------------------------------------

def _pair(module, kind, source_table=None, target=None, target_exists=False):
    return {
        "module": module["name"] if module else None,
        "source_database": module["source_database"] if module and source_table is not None else None,
        "source_schema": module["source_schema"] if module and source_table is not None else None,
        "source_table": source_table,
        "target_schema": target[0] if target else None,
        "target_table": target[1] if target else None,
        "kind": kind,
        "target_exists": target_exists,
    }


def _destination(module, table, partitions):
    """Where a legacy table lands; a partition beside the root of its hierarchy, as the copy puts it."""
    root = (partitions.get(module["name"]) or {}).get(table, {}).get("root")
    return partition_destination(module, table, root)


def pair_tables(modules, source_tables, target_tables, partitions=None, target_partitions=None):
    """Pair every legacy table with its destination; find the target tables nothing maps to.

    ``modules`` are normalised module mappings (plan.build_plan), ``source_tables``
    maps a module name to the table names of its source schema, ``target_tables``
    is the set of (schema, table) that exist in the target database (at least
    every table of every schema a module maps to), ``partitions`` maps a module
    name to table_stats.list_partitions of its source schema, by table name.
    Returns pairs in report order: per module, its legacy tables by name, then
    the extra and excluded tables of its schema. A partition is a pair of its
    own (``partition_of`` names its parent), a partitioned table one that holds
    no rows (``partitioned``). ``target_partitions`` is table_stats.list_partitions
    of the target: a plain legacy table that lands on a partitioned one is
    compared with it as a whole (``target_whole``), its partitions with it.
    """
    partitions = partitions or {}
    target_partitions = target_partitions or {}
    target_tables = set(target_tables)
    claimed, whole = set(), set()
    for module in modules:
        for table in source_tables.get(module["name"], ()):
            destination = _destination(module, table, partitions)
            if destination:
                claimed.add(destination[:2])
                if (target_partitions.get(destination[:2], {}).get("partitioned")
                        and not (partitions.get(module["name"]) or {}).get(table)):
                    whole.add(destination[:2])
    claimed.update(key for key, entry in target_partitions.items()
                   if (key[0], entry["root"]) in whole)
    pairs = []
    for module in modules:
        for table in sorted(source_tables.get(module["name"], ())):
            destination = _destination(module, table, partitions)
            if destination is None:
                pairs.append(_pair(module, "excluded", source_table=table))
            else:
                target = destination[:2]
                pairs.append(_pair(module, "copied", table, target, target in target_tables))
            found = (partitions.get(module["name"]) or {}).get(table)
            if found:
                pairs[-1].update(partition_of=found["parent"], partitioned=found["partitioned"])
            if destination is not None and destination[:2] in whole:
                pairs[-1]["target_whole"] = True
        unclaimed = sorted(table for schema, table in target_tables
                           if schema == module["schema"] and (schema, table) not in claimed)
        for table in unclaimed:
            kind = "excluded" if table in module["exclude_tables"] else "extra"
            pairs.append(_pair(module, kind, target=(module["schema"], table), target_exists=True))
    return pairs


def normalize_expectations(raw):
    """``expect_tables`` ({schema: [table, ...]}) checked and sorted; raises PlanError with every problem."""
    problems, expected = [], {}
    for schema, tables in sorted((raw or {}).items()):
        problem = schema_problem(schema)
        if problem:
            problems.append("expect_tables: %s" % problem)
        if tables is not None and not isinstance(tables, (list, tuple)):
            problems.append("expect_tables: schema %r must map to a list of table names, got %r" % (schema, tables))
            continue
        for table in tables or ():
            problem = identifier_problem("table", table)
            if problem:
                problems.append("expect_tables: schema %r: %s" % (schema, problem))
        expected[schema] = sorted(set(tables or ()))
    if problems:
        raise PlanError(problems)
    return expected


def expected_pairs(expected, existing_schemas, target_tables):
    """One pair per expected table; a schema expected with no tables is a pair of its own (table None)."""
    target_tables = set(target_tables)
    pairs = []
    for schema, tables in sorted(expected.items()):
        if not tables:
            pair = _pair(None, "expected", target=(schema, None), target_exists=schema in existing_schemas)
            pairs.append(pair)
        for table in tables:
            exists = (schema, table) in target_tables
            pairs.append(_pair(None, "expected", target=(schema, table), target_exists=exists))
    for pair in pairs:
        pair["schema_exists"] = pair["target_schema"] in existing_schemas
    return pairs


# -- checksums ----------------------------------------------------------------------------------

def column_plan(source_columns, target_columns):
    """Which columns the content checksum covers, and how each is hashed on both sides.

    Each argument lists a table's columns as ``{"name", "type", "exact_hash"}``
    (``exact_hash``: the type's own hash function tells every two distinct
    values apart, see table_stats). The checksum covers the columns both sides
    have, sorted by name so that column order does not matter. A column is
    hashed in its binary form only when it has the same type on both sides and
    that type hashes exactly; otherwise both sides hash its text form, so that
    integer/bigint or varchar/text still compare equal when the values are.
    """
    source = dict((column["name"], column) for column in source_columns)
    target = dict((column["name"], column) for column in target_columns)
    common = sorted(set(source) & set(target))
    columns, type_differences = [], []
    for name in common:
        same_type = source[name]["type"] == target[name]["type"]
        if not same_type:
            type_differences.append({"column": name, "source_type": source[name]["type"],
                                     "target_type": target[name]["type"]})
        columns.append({"name": name,
                        "binary": same_type and source[name]["exact_hash"] and target[name]["exact_hash"]})
    return {
        "columns": columns,
        "only_in_source": sorted(set(source) - set(target)),
        "only_in_target": sorted(set(target) - set(source)),
        "type_differences": type_differences,
    }


# -- measurements -------------------------------------------------------------------------------

def plan_jobs(pairs, modules, source, target, target_database, checksum):
    """Per pair: its column plan (checksum mode) and the measurements to take.

    ``source`` holds what the legacy databases list (``sizes`` and ``columns``
    by database, each by (schema, table)), ``target`` what the target database
    lists (``tables``: size by (schema, table), ``columns``). Returns the
    column plans (one per pair, None without a checksum), the jobs
    (``side``, ``dbname``, ``schema``, ``table``, ``columns``, ``bytes``; see
    table_stats.measure_all) and per pair the indexes of its (source, target)
    jobs in that list, None for a side not measured.
    """
    by_name = dict((module["name"], module) for module in modules)
    column_plans, jobs, job_index = [], [], []
    for pair in pairs:
        plan, source_job, target_job = None, None, None
        target_key = (pair["target_schema"], pair["target_table"])
        if pair["kind"] == "copied":
            database = by_name[pair["module"]]["source_database"]
            source_key = (pair["source_schema"], pair["source_table"])
            if checksum and pair["target_exists"]:
                plan = column_plan(source["columns"][database].get(source_key, []),
                                   target["columns"].get(target_key, []))
            source_job = dict(side="source", dbname=database, schema=source_key[0], table=source_key[1],
                              columns=plan["columns"] if plan else None, bytes=source["sizes"][database][source_key])
        if pair["kind"] != "excluded" and pair["target_exists"] and pair["target_table"] is not None:
            target_job = dict(side="target", dbname=target_database, schema=target_key[0],
                              table=target_key[1], columns=plan["columns"] if plan else None,
                              bytes=target["tables"][target_key])
            if pair.get("target_whole"):
                target_job["whole"] = True
        indexes = []
        for job in (source_job, target_job):
            if job is None:
                indexes.append(None)
            else:
                indexes.append(len(jobs))
                jobs.append(job)
        column_plans.append(plan)
        job_index.append(indexes)
    return column_plans, jobs, job_index


# -- classification -----------------------------------------------------------------------------

def _row(pair, state, reasons, source=None, target=None, columns=None):
    row = dict((key, pair.get(key)) for key in ROW_KEYS)
    row.update(
        state=state,
        source_rows=(source or {}).get("rows"),
        target_rows=(target or {}).get("rows"),
        source_checksum=(source or {}).get("checksum"),
        target_checksum=(target or {}).get("checksum"),
        columns_only_in_source=list((columns or {}).get("only_in_source", [])),
        columns_only_in_target=list((columns or {}).get("only_in_target", [])),
        column_type_differences=copy.deepcopy((columns or {}).get("type_differences", [])),
        reasons=reasons,
    )
    row["ok"] = state in ("match", "excluded", "present") or (state == "extra" and not row["target_rows"])
    return row


def classify(pair, source=None, target=None, columns=None):
    """The row of one pair, given what was measured.

    ``source`` / ``target`` are ``{"rows": int, "checksum": str or None}`` or
    ``{"error": str}``, None when that side was not measured; ``columns`` is the
    :func:`column_plan` of a checksummed pair.
    """
    kind = pair["kind"]
    if kind == "excluded":
        return _row(pair, "excluded", ["excluded by name"])
    errors = ["%s: %s" % (side, measured["error"]) for side, measured in (("source", source), ("target", target))
              if measured and measured.get("error")]
    if errors:
        return _row(pair, "error", errors, source if not (source or {}).get("error") else None,
                    target if not (target or {}).get("error") else None, columns)
    if kind == "expected":
        if not pair["target_exists"]:
            what = "table" if pair["target_table"] is not None else "schema"
            reason = "schema does not exist" if not pair.get("schema_exists") else "%s does not exist" % what
            return _row(pair, "missing", [reason])
        return _row(pair, "present", [], target=target)
    if kind == "extra":
        rows = target["rows"]
        reason = ("no legacy table maps to it; empty" if not rows else
                  "no legacy table maps to it, yet it holds %d row(s) that were neither copied nor compared" % rows)
        return _row(pair, "extra", [reason], target=target)
    if not pair["target_exists"]:
        return _row(pair, "missing", ["target table does not exist"], source=source)
    reasons = []
    if source["rows"] != target["rows"]:
        reasons.append("row counts differ: source %d, target %d" % (source["rows"], target["rows"]))
    if columns is not None:
        for side, key in (("source", "only_in_source"), ("target", "only_in_target")):
            if columns[key]:
                reasons.append("columns only in the %s: %s" % (side, ", ".join(columns[key])))
        if source.get("checksum") != target.get("checksum"):
            reasons.append("content checksums differ")
    return _row(pair, "mismatch" if reasons else "match", reasons, source, target, columns)


def mark_partitions(rows, pairs):
    """The rows with their pair's place in a partition hierarchy: ``partition_of`` and ``partitioned``.

    A partition is reported as a table of its own with its parent named; a partitioned table
    holds no rows of its own (its count is 0 on both sides, its partitions carry the rows).
    """
    return [dict(row, partition_of=pair.get("partition_of"), partitioned=bool(pair.get("partitioned")))
            for row, pair in zip(rows, pairs)]


# -- sequences ----------------------------------------------------------------------------------

def sequence_checks(pairs, target_sequences, source_sequences):
    """The sequence-backed target columns to check, as (pair, entry, legacy sequence or None).

    Every serial or identity column of a compared (``copied``) or ``extra``
    target table that exists is checked. ``target_sequences`` maps (schema,
    table) to its columns' sequences (table_stats.list_sequences),
    ``source_sequences`` does the same per legacy database; the legacy sequence
    is that of the same column of the legacy table, for copied tables only.
    ``entry`` is the sequence's result before its values are read.
    """
    checks = []
    for pair in pairs:
        if pair["kind"] not in ("copied", "extra") or not pair["target_exists"]:
            continue
        legacy_columns = source_sequences.get(pair["source_database"], {}).get(
            (pair["source_schema"], pair["source_table"]), [])
        for found in target_sequences.get((pair["target_schema"], pair["target_table"]), []):
            entry = dict(module=pair["module"], target_schema=pair["target_schema"], target_table=pair["target_table"],
                         column=found["column"], sequence_schema=found["sequence_schema"], sequence=found["sequence"],
                         increment=found["increment"], next_value=None, column_max=None, source_sequence=None,
                         source_next_value=None)
            legacy = [candidate for candidate in legacy_columns if candidate["column"] == found["column"]]
            checks.append((pair, entry, legacy[0] if pair["kind"] == "copied" and legacy else None))
    return checks


def standalone_sequence_checks(modules, source_sequences, target_sequences):
    """The sequences of each legacy schema that feed no column, paired with the same sequence in the module schema.

    ``source_sequences`` maps a legacy database to table_stats.list_standalone_sequences of it,
    ``target_sequences`` is that of the target database. Returns (entry, legacy) like
    :func:`sequence_checks`, entries without a table or column; a sequence missing from the
    target carries ``error``. The application alone calls nextval() on such a sequence, so only
    its legacy state tells where it must go on: the target must not be behind it.
    """
    checks = []
    for module in modules:
        found = dict((item["sequence"], item) for item in target_sequences.get(module["schema"], ()))
        for legacy in source_sequences.get(module["source_database"], {}).get(module["source_schema"], ()):
            legacy = dict(legacy, sequence_schema=module["source_schema"])
            entry = dict(module=module["name"], target_schema=module["schema"], target_table=None, column=None,
                         sequence_schema=module["schema"], sequence=legacy["sequence"],
                         increment=legacy["increment"], next_value=None, column_max=None, source_sequence=None,
                         source_next_value=None)
            if legacy["sequence"] not in found:
                entry["error"] = "the sequence does not exist in the target schema"
            checks.append((entry, legacy))
    return checks


def check_sequence(entry):
    """Verdict on one sequence-backed target column: the entry with ``state`` and ``reasons``.

    ``entry`` holds ``next_value``, ``increment``, ``column_max`` (None for an
    empty column) and ``source_next_value`` (None when the legacy column had no
    sequence), or ``error`` when they could not be read. The next value must
    lie beyond every value in the column and must not be behind the legacy
    sequence, so that no id is ever handed out twice.
    """
    result = dict(entry)
    error = result.pop("error", None)
    if error:
        result.update(state="error", reasons=[error])
        return result
    ascending = entry["increment"] > 0
    value = entry["next_value"]
    reasons = []
    column_max = entry.get("column_max")
    if column_max is not None and (value <= column_max if ascending else value >= column_max):
        reasons.append("next value %d would collide with existing value %d" % (value, column_max))
    source_next = entry.get("source_next_value")
    if source_next is not None and (value < source_next if ascending else value > source_next):
        reasons.append("next value %d is behind the legacy sequence (next %d)" % (value, source_next))
    result.update(state="behind" if reasons else "ok", reasons=reasons)
    return result


# -- rehearsal ----------------------------------------------------------------------------------

REHEARSAL_WRITE = ("written by the running application after the copy read it (a rehearsal leaves the legacy "
                   "databases open): not comparable here; the real run fences them and compares it")


def excuse_rehearsal_writes(rows, sequences):
    """Pure: a rehearsal's rows and sequences with the application's own writes set apart.

    A rehearsal copies from snapshots while the application keeps writing: a table whose source
    write counters moved after the copy read it (``written_after_copy``) cannot be compared with
    the live source, and neither can its sequences. Such a table that differs is marked
    ``rehearsal_write`` and no longer fails; every other table must still match. The count of
    those set apart is what the rehearsal reports as not compared.
    """
    written = set()
    rows = [dict(row) for row in rows]
    for row in rows:
        if row.get("written_after_copy") and not row["ok"] and row["state"] == "mismatch":
            row.update(ok=True, rehearsal_write=True, reasons=list(row["reasons"]) + [REHEARSAL_WRITE])
            written.add((row["target_schema"], row["target_table"]))
    sequences = [dict(entry) for entry in sequences]
    for entry in sequences:
        if entry["state"] == "behind" and (entry["target_schema"], entry["target_table"]) in written:
            entry.update(state="rehearsal_write", reasons=list(entry["reasons"]) + [REHEARSAL_WRITE])
    return rows, sequences


# -- summary ------------------------------------------------------------------------------------

def summarize(rows, sequences):
    summary = {"tables": len(rows)}
    for state in STATES:
        summary[state] = sum(1 for row in rows if row["state"] == state)
    summary["extra_with_rows"] = sum(1 for row in rows if row["state"] == "extra" and not row["ok"])
    summary["failed"] = sum(1 for row in rows if not row["ok"])
    summary["sequences"] = len(sequences)
    summary["sequences_behind"] = sum(1 for entry in sequences if entry["state"] == "behind")
    summary["sequences_failed"] = sum(1 for entry in sequences if entry["state"] not in ("ok", "rehearsal_write"))
    summary["rehearsal_writes"] = sum(1 for row in rows if row.get("rehearsal_write"))
    summary["passed"] = summary["failed"] == 0 and summary["sequences_failed"] == 0
    return summary
