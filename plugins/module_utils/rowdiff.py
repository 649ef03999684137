# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification of a consolidation, table by table: the pure part.

Everything here is a function of plain data (table lists, counts, checksums,
sequence states) and is unit-tested case by case; the database side lives in
``table_stats`` and the module only wires the two together.

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

from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import (
    PlanError,
    identifier_problem,
    schema_problem,
    table_destination,
)

REPORT_FORMAT = 1
REPORT_KIND = "classifiedads.consolidation.verification"
# How the content checksum is computed (recorded in the report, see table_stats.checksum_query).
CHECKSUM_METHOD = ("sum of hash_record_extended(ROW(columns sorted by name), 0) over all rows; "
                   "columns of differing types or inexact hashing compared by their text form")

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


def pair_tables(modules, source_tables, target_tables):
    """Pair every legacy table with its destination; find the target tables nothing maps to.

    ``modules`` are normalised module mappings (plan.build_plan), ``source_tables``
    maps a module name to the table names of its source schema, ``target_tables``
    is the set of (schema, table) that exist in the target database (at least
    every table of every schema a module maps to). Returns pairs in report
    order: per module, its legacy tables by name, then the extra and excluded
    tables of its schema.
    """
    target_tables = set(target_tables)
    claimed = set()
    for module in modules:
        for table in source_tables.get(module["name"], ()):
            destination = table_destination(module, table)
            if destination:
                claimed.add(destination[:2])
    pairs = []
    for module in modules:
        for table in sorted(source_tables.get(module["name"], ())):
            destination = table_destination(module, table)
            if destination is None:
                pairs.append(_pair(module, "excluded", source_table=table))
            else:
                target = destination[:2]
                pairs.append(_pair(module, "copied", table, target, target in target_tables))
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


# -- sequences ----------------------------------------------------------------------------------

def next_value(last_value, is_called, increment):
    """The value nextval() would return, from a sequence's last_value/is_called."""
    return last_value + increment if is_called else last_value


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


# -- summary ------------------------------------------------------------------------------------

def summarize(rows, sequences):
    summary = {"tables": len(rows)}
    for state in STATES:
        summary[state] = sum(1 for row in rows if row["state"] == state)
    summary["extra_with_rows"] = sum(1 for row in rows if row["state"] == "extra" and not row["ok"])
    summary["failed"] = sum(1 for row in rows if not row["ok"])
    summary["sequences"] = len(sequences)
    summary["sequences_behind"] = sum(1 for entry in sequences if entry["state"] == "behind")
    summary["sequences_failed"] = sum(1 for entry in sequences if entry["state"] != "ok")
    summary["passed"] = summary["failed"] == 0 and summary["sequences_failed"] == 0
    return summary


def problems(rows, sequences):
    """One line per failing table or sequence, for messages and reports."""
    lines = []
    for row in rows:
        if not row["ok"]:
            lines.append("%s [%s]: %s" % (_row_label(row), row["state"], "; ".join(row["reasons"])))
    for entry in sequences:
        if entry["state"] != "ok":
            lines.append("%s (sequence %s) [%s]: %s" % (
                qualified(entry["target_schema"], entry["target_table"], entry["column"]),
                qualified(entry["sequence_schema"], entry["sequence"]), entry["state"], "; ".join(entry["reasons"])))
    return lines


def verdict_line(summary):
    counts = ", ".join("%d %s" % (summary[state], state) for state in STATES if summary[state])
    line = "%d table(s): %s" % (summary["tables"], counts or "none")
    if summary["sequences"]:
        line += "; %d sequence(s), %d behind" % (summary["sequences"], summary["sequences_behind"])
        if summary["sequences_failed"] > summary["sequences_behind"]:
            line += ", %d unreadable" % (summary["sequences_failed"] - summary["sequences_behind"])
    return line + (" - PASSED" if summary["passed"] else " - FAILED")


# -- names for people ---------------------------------------------------------------------------

def visible(text):
    """Control characters as their Unicode pictures, so that no name can break a line or a table."""
    return "".join(chr(0x2400 + ord(char)) if ord(char) < 32 else u"\u2421" if ord(char) == 127 else char
                   for char in text)


def quote_ident(name):
    """A name as it would be written in SQL: bare when plainly lower-case, else double-quoted."""
    plain = name and (name[0].isalpha() or name[0] == "_") and all(
        char.isdigit() or char == "_" or ("a" <= char <= "z") for char in name)
    return visible(name if plain else '"%s"' % name.replace('"', '""'))


def qualified(*parts):
    return ".".join(quote_ident(part) for part in parts if part is not None)


def _source_label(row):
    if row["source_table"] is None:
        return "-"
    return qualified(row["source_database"], row["source_schema"], row["source_table"])


def _target_label(row):
    if row["target_schema"] is None:
        return "-"
    return qualified(row["target_schema"], row["target_table"])


def _row_label(row):
    if row["kind"] in ("copied", "excluded") and row["source_table"] is not None:
        return "%s -> %s" % (_source_label(row), _target_label(row))
    return _target_label(row)


def _count(value):
    return "-" if value is None else str(value)


def _checksum_cell(row):
    if row["source_checksum"] is None or row["target_checksum"] is None:
        return "-"
    return "same" if row["source_checksum"] == row["target_checksum"] else "differs"


# -- rendering ----------------------------------------------------------------------------------

# CommonMark lets a backslash escape exactly these.
MARKDOWN_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
TABLE_HEADINGS = ("module", "source table", "target", "source rows", "target rows", "state")
SEQUENCE_HEADINGS = ("target column", "sequence", "next value", "column max", "legacy next", "state")
NUMERIC_COLUMNS = ("source rows", "target rows", "next value", "column max", "legacy next")


def table_cells(rows, with_checksum):
    headings = TABLE_HEADINGS + (("checksum",) if with_checksum else ())
    cells = []
    for row in rows:
        line = [row["module"] or "-", _source_label(row), _target_label(row), _count(row["source_rows"]),
                _count(row["target_rows"]), row["state"] if row["ok"] or row["state"] != "extra" else "extra (rows)"]
        if with_checksum:
            line.append(_checksum_cell(row))
        cells.append([visible(cell) for cell in line])
    return headings, cells


def sequence_cells(sequences):
    cells = []
    for entry in sequences:
        cells.append([
            qualified(entry["target_schema"], entry["target_table"], entry["column"]),
            qualified(entry["sequence_schema"], entry["sequence"]),
            _count(entry["next_value"]), _count(entry.get("column_max")), _count(entry.get("source_next_value")),
            entry["state"],
        ])
    return SEQUENCE_HEADINGS, cells


def render_fixed_width(headings, cells):
    widths = [max([len(heading)] + [len(line[index]) for line in cells]) for index, heading in enumerate(headings)]

    def fmt(values):
        out = [value.rjust(width) if heading in NUMERIC_COLUMNS else value.ljust(width)
               for heading, value, width in zip(headings, values, widths)]
        return "  ".join(out).rstrip()

    return "\n".join([fmt(headings), "  ".join("-" * width for width in widths)] + [fmt(line) for line in cells])


def render_text(rows, sequences, summary, with_checksum):
    """The plain-text report: the table, sequences, problems and the verdict."""
    parts = [render_fixed_width(*table_cells(rows, with_checksum))]
    if sequences:
        parts.append(render_fixed_width(*sequence_cells(sequences)))
    found = problems(rows, sequences)
    if found:
        parts.append("\n".join(["problems:"] + ["  - " + visible(line) for line in found]))
    parts.append(verdict_line(summary))
    return "\n\n".join(parts) + "\n"


def md_code(text, table_cell=False):
    """Any text as Markdown that renders literally: a code span, or escaped text in a table cell with a backslash.

    Nothing inside a code span is interpreted, except that a table cell splits on
    a pipe even there (GitHub-flavoured Markdown), so in a cell it is escaped as
    ``\\|``. The fence is longer than any backtick run of the text, and control
    characters become visible pictures. A backslash before a pipe would make
    that escape ambiguous (GitHub reads ``\\\\|`` as a backslash and a cell
    boundary), so a cell whose text has a backslash is written as plain text with
    every ASCII punctuation character backslash-escaped instead.
    """
    text = visible(str(text))
    if table_cell and "\\" in text:
        return "".join("\\" + char if char in MARKDOWN_PUNCTUATION else char for char in text)
    longest, run = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or text.startswith(" ") or text.endswith(" ") else ""
    if table_cell:
        text = text.replace("|", "\\|")
    return "%s%s%s%s%s" % (fence, pad, text, pad, fence)


def _md_table(headings, cells, literal_columns):
    align = ["---:" if heading in NUMERIC_COLUMNS else "---" for heading in headings]
    lines = ["| " + " | ".join(headings) + " |", "| " + " | ".join(align) + " |"]
    for line in cells:
        rendered = [md_code(cell, table_cell=True) if index in literal_columns and cell != "-" else cell
                    for index, cell in enumerate(line)]
        lines.append("| " + " | ".join(rendered) + " |")
    return "\n".join(lines)


def render_markdown(report):
    """The Markdown report: what was compared, the table, sequences, problems."""
    servers = report["servers"]
    lines = [
        "# Consolidation verification",
        "",
        "- result: **%s**" % ("PASSED" if report["passed"] else "FAILED"),
        "- run: %s" % (md_code(report["run_id"]) if report["run_id"] else "-"),
        "- backup set: %s" % (md_code(report["backup_set"]) if report["backup_set"] else "-"),
        "- generated: %s" % report["generated_at"],
        "- target database: %s" % md_code(report["target_database"]),
    ]
    for side in ("source", "target"):
        if servers.get(side):
            lines.append("- %s server: %s, PostgreSQL %s" % (
                side, md_code(servers[side]["address"]), md_code(servers[side]["version"])))
    lines.append("- checksums: %s; sequences: %s" % ("yes" if report["checksum"] else "no (row counts only)",
                                                     "checked" if report["check_sequences"] else "not checked"))
    lines += ["", "## Tables", "", _md_table(*table_cells(report["tables"], report["checksum"]),
                                             literal_columns=(0, 1, 2))]
    if report["sequences"]:
        lines += ["", "## Sequences", "", _md_table(*sequence_cells(report["sequences"]), literal_columns=(0, 1))]
    found = problems(report["tables"], report["sequences"])
    if found:
        lines += ["", "## Problems", ""] + ["- " + md_code(line) for line in found]
    lines += ["", verdict_line(report["summary"])]
    return "\n".join(lines) + "\n"


def build_report(meta, rows, sequences, summary):
    """The machine-readable report (verification.json).

    ``meta`` carries run_id, backup_set, generated_at, target_database,
    checksum, check_sequences and servers ({source, target}: address, version).
    """
    report = {"format": REPORT_FORMAT, "kind": REPORT_KIND}
    for key in ("run_id", "backup_set", "generated_at", "target_database", "checksum", "check_sequences", "servers"):
        report[key] = meta.get(key)
    report["checksum_method"] = CHECKSUM_METHOD if meta.get("checksum") else None
    report.update(tables=rows, sequences=sequences, summary=summary, passed=summary["passed"])
    return report


def same_result(old, new):
    """Whether two reports say the same, whenever they were generated (so a rerun need not rewrite it)."""
    if not isinstance(old, dict):
        return False
    return _without_time(old) == _without_time(new)


def _without_time(report):
    return dict((key, value) for key, value in report.items() if key != "generated_at")
