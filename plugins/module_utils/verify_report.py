# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification report: what ``row_count_diff`` shows people and writes for later steps.

Pure functions of the rows and sequences that :mod:`rowdiff` judged: the
problems and the verdict line of messages, the fixed-width text table
(``table_text``), the Markdown report (``verification.md``) and the
machine-readable one (``verification.json``) that decommissioning reads.
Names are written as PostgreSQL would spell them (``display.quote_ident``)
and nothing a name holds can break a line, a text table or a Markdown table.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import (
    qualified,
    quote_ident,
    render_table,
    visible,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.proof import describe_delta
from ansible_collections.classifiedads.consolidation.plugins.module_utils.rowdiff import STATES
from ansible_collections.classifiedads.consolidation.plugins.module_utils.schema_inventory import (
    difference_lines,
    excluded_lines,
    stale_lines,
)

REPORT_FORMAT = 1
REPORT_KIND = "classifiedads.consolidation.verification"
# How the content checksum is computed (recorded in the report, see table_stats.checksum_query).
CHECKSUM_METHOD = ("sum of hash_record_extended(ROW(columns sorted by name), 0) over all rows; "
                   "columns of differing types or inexact hashing compared by their text form")


# -- messages -----------------------------------------------------------------------------------

def written_after_copy(rows):
    """The tables whose source was written after the copy read them: what they are, their counter deltas, result."""
    return [{
        "source_database": row["source_database"], "source_schema": row["source_schema"],
        "source_table": row["source_table"], "target_schema": row["target_schema"],
        "target_table": row["target_table"], "copy_snapshot": row.get("copy_snapshot"),
        "delta": (row.get("write_counters") or {}).get("delta"),
        "content": "matches" if row["state"] == "match" else "differs" if row["state"] == "mismatch" else row["state"],
        "ok": row["ok"],
    } for row in rows if row.get("written_after_copy")]


def written_lines(rows):
    """One line per table written after the copy: name, counter delta, and whether its content still matches."""
    return ["%s: %s; content %s" % (_row_label(entry), describe_delta(entry["delta"]), entry["content"])
            for entry in written_after_copy(rows)]


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


def null_policy_lines(rows):
    """One line per table a NULL policy acted on, naming every defaulted and every quarantined key."""
    lines = []
    for row in rows:
        policy = row.get("null_policy")
        if not policy:
            continue
        columns = ", ".join("%s: %s" % (quote_ident(name), on_null) for name, on_null in policy["columns"].items())
        parts = []
        for what, keys in (("defaulted", policy["defaulted_keys"]), ("quarantined", policy["quarantined_keys"])):
            if keys:
                parts.append("%d %s (%s)" % (len(keys), what, ", ".join(keys)))
        lines.append("%s [%s]: %s" % (_target_label(row), columns, "; ".join(parts) or "no NULLs"))
    return lines


def verdict_line(summary):
    counts = ", ".join("%d %s" % (summary[state], state) for state in STATES if summary[state])
    line = "%d table(s): %s" % (summary["tables"], counts or "none")
    if summary["sequences"]:
        line += "; %d sequence(s), %d behind" % (summary["sequences"], summary["sequences_behind"])
        if summary["sequences_failed"] > summary["sequences_behind"]:
            line += ", %d unreadable" % (summary["sequences_failed"] - summary["sequences_behind"])
    if summary.get("rehearsal_writes"):
        line += "; %d written by the application during the rehearsal (not compared)" % summary["rehearsal_writes"]
    line += fidelity_verdict(summary)
    return line + (" - PASSED" if summary["passed"] else " - FAILED")


def _source_label(row):
    if row["source_table"] is None:
        return "-"
    return qualified(row["source_database"], row["source_schema"], row["source_table"])


def _target_label(row):
    if row["target_schema"] is None:
        return "-"
    return qualified(row["target_schema"], row["target_table"])


def _row_label(row):
    if row.get("kind", "copied") in ("copied", "excluded") and row["source_table"] is not None:
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
    # Without checksums asked for, the tables written after the copy were checksummed all the same: show them.
    with_checksum = with_checksum or any(row["source_checksum"] is not None for row in rows)
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


def render_text(rows, sequences, summary, with_checksum, fidelity=None):
    """The plain-text report: the table, sequences, problems, the schema's differences and the verdict."""
    parts = [render_table(*table_cells(rows, with_checksum), numeric=NUMERIC_COLUMNS)]
    if sequences:
        parts.append(render_table(*sequence_cells(sequences), numeric=NUMERIC_COLUMNS))
    policies = null_policy_lines(rows)
    if policies:
        parts.append("\n".join(["NULL policies (source rows = target rows + quarantined):"]
                               + ["  - " + visible(line) for line in policies]))
    written = written_lines(rows)
    if written:
        parts.append("\n".join(["written after the copy (must match by content):"]
                               + ["  - " + visible(line) for line in written]))
    found = problems(rows, sequences)
    if found:
        parts.append("\n".join(["problems:"] + ["  - " + visible(line) for line in found]))
    if fidelity and fidelity_lines(fidelity):
        parts.append("\n".join(["schema fidelity (%s):" % fidelity["mode"]]
                               + ["  - " + visible(line) for line in fidelity_lines(fidelity)]))
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


def fence_words(fence):
    """How the report names the run's write fence; the operator's reason for none is shown literally."""
    if fence.get("mode") == "none":
        return "**none**, the legacy databases stayed writable; reason given: %s" % md_code(fence.get("reason") or "")
    return "%s (the legacy databases refused writes during the window)" % md_code(fence.get("mode"))


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
    lines.append("- checksums: %s; sequences: %s" % ("yes" if report["checksum"] else
                                                     "no (row counts; checksums for tables written after the copy)",
                                                     "checked" if report["check_sequences"] else "not checked"))
    if report.get("fence"):
        lines.append("- write fence: %s" % fence_words(report["fence"]))
    counters = ("compared with those the copy recorded before its snapshots" if report.get("write_counters") else
                "not recorded by a copy of this run: writes after the copy show only in counts and checksums")
    lines.append("- write counters: %s" % counters)
    lines += ["", "## Tables", "", _md_table(*table_cells(report["tables"], report["checksum"]),
                                             literal_columns=(0, 1, 2))]
    if report["sequences"]:
        lines += ["", "## Sequences", "", _md_table(*sequence_cells(report["sequences"]), literal_columns=(0, 1))]
    policies = null_policy_lines(report["tables"])
    if policies:
        lines += ["", "## NULL policies", "", "Source rows = target rows + quarantined rows; the source was compared "
                  "with the policy applied.", ""] + ["- " + md_code(line) for line in policies]
    written = written_lines(report["tables"])
    if written:
        lines += ["", "## Written after the copy", "",
                  "Their write counters moved since the copy read them; each must match by content.", ""]
        lines += ["- " + md_code(line) for line in written]
    if report.get("schema_fidelity"):
        lines += ["", "## Schema fidelity", ""] + fidelity_markdown(report["schema_fidelity"])
    found = problems(report["tables"], report["sequences"])
    if found:
        lines += ["", "## Problems", ""] + ["- " + md_code(line) for line in found]
    lines += ["", verdict_line(report["summary"])]
    return "\n".join(lines) + "\n"


def build_report(meta, rows, sequences, summary):
    """The machine-readable report (verification.json).

    ``meta`` carries run_id, backup_set, generated_at, target_database,
    checksum, check_sequences, servers ({source, target}: address, version), fence
    (the run's write fence, {mode, reason}; None when not given), write_counters (whether the
    copy's write counters were compared) and schema_fidelity (:func:`fidelity_section`, None when off).
    """
    report = {"format": REPORT_FORMAT, "kind": REPORT_KIND}
    for key in ("run_id", "backup_set", "generated_at", "target_database", "checksum", "check_sequences", "servers",
                "fence", "write_counters"):
        report[key] = meta.get(key)
    report["checksum_method"] = CHECKSUM_METHOD if meta.get("checksum") else None
    report.update(tables=rows, sequences=sequences, written_after_copy=written_after_copy(rows), summary=summary,
                  passed=summary["passed"])
    report["schema_fidelity"] = meta.get("schema_fidelity")
    return report


def same_result(old, new):
    """Whether two reports say the same, whenever they were generated (so a rerun need not rewrite it)."""
    if not isinstance(old, dict):
        return False
    return _without_time(old) == _without_time(new)


def _without_time(report):
    return dict((key, value) for key, value in report.items() if key != "generated_at")


# -- schema fidelity ----------------------------------------------------------------------------

FIDELITY_HEADINGS = ("kind", "source", "target", "missing", "extra", "changed", "excluded")


def fidelity_section(mode, modules):
    """The report's ``schema_fidelity``: per module its comparison (schema_inventory.compare), and the verdict.

    ``modules`` are dicts with module, source, target (labels) and either the
    comparison's keys or ``error`` (the schema could not be read). In ``enforce``
    mode any difference or unreadable schema fails; in ``report`` mode nothing does.
    """
    for module in modules:
        module["passed"] = mode != "enforce" or (not module.get("error") and not module["differences"])
    return {
        "mode": mode,
        "modules": modules,
        "differences": sum(module.get("differences") or 0 for module in modules),
        "errors": sum(1 for module in modules if module.get("error")),
        "stale_exclusions": sum(len(module.get("stale_exclusions") or []) for module in modules),
        "passed": all(module["passed"] for module in modules),
    }


def fidelity_verdict(summary):
    """The verdict line's part on the schema (empty without a schema comparison)."""
    if summary.get("schema_fidelity") is None:
        return ""
    how = "enforced" if summary["schema_fidelity"] == "enforce" else "reported, not enforced"
    words = "; schema: %d difference(s) (%s)" % (summary["schema_differences"], how)
    if summary.get("schema_errors"):
        words += ", %d module(s) unreadable" % summary["schema_errors"]
    return words


def fidelity_lines(fidelity, differences=True):
    """One line per difference and unreadable schema (unless not ``differences``) and per stale exclusion,
    each prefixed with its module."""
    lines = []
    for module in fidelity["modules"]:
        prefix = "module %s: " % module["module"]
        if module.get("error"):
            lines += [prefix + "schema not compared: " + module["error"]] if differences else []
            continue
        lines += [prefix + line for line in difference_lines(module)] if differences else []
        lines += [prefix + "stale schema exclusion " + line for line in stale_lines(module)]
    return lines


def fidelity_warnings(fidelity):
    """What warns rather than fails: in report mode every difference, in any mode every stale exclusion."""
    return ["schema fidelity, " + line for line in fidelity_lines(fidelity, differences=fidelity["mode"] != "enforce")]


def fidelity_cells(module):
    cells = []
    for entry in module["kinds"]:
        cells.append([entry["kind"], str(entry["source"]), str(entry["target"]), str(len(entry["missing"])),
                      str(len(entry["extra"])), str(len(entry["changed"])), str(len(entry["excluded"]))])
    return FIDELITY_HEADINGS, cells


def fidelity_markdown(fidelity):
    """The Markdown lines of the schema-fidelity section: per module, the table by kind and the differences named."""
    mode_words = {"enforce": "enforced: a difference not excluded fails the verification",
                  "report": "reported: differences are listed (and written to warnings.log) but do not fail"}
    lines = ["Mode: %s (%s)." % (md_code(fidelity["mode"]), mode_words.get(fidelity["mode"], fidelity["mode"]))]
    for module in fidelity["modules"]:
        lines += ["", "### %s: %s -> %s" % (md_code(module["module"]), md_code(module["source"]),
                                            md_code(module["target"])), ""]
        if module.get("error"):
            lines.append("- schema not compared: %s" % md_code(module["error"]))
            continue
        headings, cells = fidelity_cells(module)
        align = ["---"] + ["---:"] * (len(headings) - 1)
        lines += ["| " + " | ".join(headings) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(line) + " |" for line in cells]
        listed = (("Differences", difference_lines(module)), ("Excluded (with reason)", excluded_lines(module)),
                  ("Stale exclusions (match no object)", stale_lines(module)))
        for title, found in listed:
            if found:
                lines += ["", "%s:" % title, ""] + ["- " + md_code(line) for line in found]
    return lines
