# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writes made to the consolidated database after its verification: what a rollback would leave behind.

A rollback puts the application back on the legacy databases. Whatever was written into the
consolidated database after the cutover does not go back with it: it stays in a database nobody
reads any more. Before a rollback stops or changes anything, :class:`TargetWrites` measures the
consolidated database again, table by table, and compares it with the target side of the run's
verification report (``verification.json``): exact row counts and, when the report has them,
content checksums, taken with the verification's own queries (``table_stats``) over the columns
the verification hashed (``rowdiff.column_plan``). A table is a *new write* when

``rows``        its row count differs
``content``     its count is the same but its checksum is not (an update; or an insert and a delete)
``added``       it appeared in a module schema after the verification
``unmeasured``  the verification could not measure it, and it exists now
``dropped``     it was verified and is gone
``error``       it cannot be measured now, so nothing can be said about it

Rows the play wrote itself are not new writes. The smoke role's write probes (``consolidate.yml``
step 7) create records that carry the run's marker, ``smoke-<run id>-<hex>``, and leave them. In a
table that differs, the rows whose text contains that marker are measured on their own; when the
other rows alone are what the verification measured (their count, and their checksum: a sum, so the
whole table's minus the marked rows'), the table is *accounted* and listed with its probe rows.
Rows the play wrote and removed again change neither count nor checksum.

With ``discard`` the list is recorded in the run directory (``discarded_writes.json``, 0600) and the
rollback may go on; without it, it refuses, unless that record already lists exactly these writes
(an earlier rollback discarded them). The first half of this file is pure and unit-tested.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.classifiedads.consolidation.plugins.module_utils import table_stats
from ansible_collections.classifiedads.consolidation.plugins.module_utils.dbops import maintenance_cursor, read_catalog
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import (
    qualified,
    render_table,
    utc_timestamp,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.rowdiff import column_plan
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    DISCARDED_WRITES,
    PLAN,
    ROLLBACK_RECORD,
    VERIFICATION_REPORT,
    read_json,
    write_private_json,
)

RECORD_KIND = "classifiedads.consolidation.discarded_writes"
# Tables measured at once, as the verification role's default.
WORKERS = 2
CHANGE_WORDS = {
    "content": "content changed",
    "added": "created after verification",
    "unmeasured": "not measured by the verification",
    "dropped": "dropped after verification",
    "error": "cannot be measured",
}
# What the comparison of two lists of writes looks at (a second rollback compares with the record).
WRITE_KEYS = ("schema", "table", "change", "verified_rows", "rows", "delta")


class TargetWritesError(ConsolidationError):
    """The run's records cannot be read or do not belong together."""


# -- pure ---------------------------------------------------------------------------------------


def own_rows_marker(run_id):
    """How the marker of the smoke role's records begins for this run (roles/smoke/tasks/preflight.yml)."""
    return "smoke-%s-" % run_id


def baseline(report):
    """``{(schema, table): entry}`` of every target table the verification report lists.

    ``entry``: ``rows`` and ``checksum`` as the verification measured them on the target
    (``rows`` None: listed but not measured; ``checksum`` None: counts only), what the column
    plan needs (``only_in_target``, ``type_differences``), and ``excluded`` for a table left out
    by name (never measured, never a new write).
    """
    with_checksum = bool(report.get("checksum"))
    tables = {}
    for row in report.get("tables") or []:
        if row.get("target_schema") is None or row.get("target_table") is None:
            continue
        tables[(row["target_schema"], row["target_table"])] = {
            "rows": row.get("target_rows"),
            "checksum": row.get("target_checksum") if with_checksum else None,
            "only_in_target": list(row.get("columns_only_in_target") or []),
            "type_differences": list(row.get("column_type_differences") or []),
            "excluded": row.get("kind") == "excluded",
        }
    return tables


def verified_column_plan(entry, target_columns):
    """The columns the verification hashed for a table and how, rebuilt from its report entry and its columns now.

    The report keeps what ``rowdiff.column_plan`` needed from the legacy side: the columns only
    the target had and the columns whose type differed; every other column of the target had its
    twin in the legacy table. A column added or dropped since changes the plan, and so the checksum.
    """
    legacy_types = dict((item["column"], item["source_type"]) for item in entry["type_differences"])
    legacy = [dict(column, type=legacy_types.get(column["name"], column["type"])) for column in target_columns
              if column["name"] not in entry["only_in_target"]]
    return column_plan(legacy, target_columns)["columns"]


def plan_measurements(base, module_schemas, tables_now, columns_now):
    """``{(schema, table): columns or None}``: the tables to measure now, with a checksum or (None) counted only.

    ``tables_now`` are the tables found now in the schemas the report covers, ``columns_now`` their
    columns (``table_stats.list_columns``; only needed with checksums). A verified table is measured
    as the verification measured it. A table the report does not list is measured only in a module
    schema (the verification listed every table there; other schemas, such as those of ``tables``
    overrides, only the tables that landed there).
    """
    plans = {}
    for key in sorted(tables_now):
        entry = base.get(key)
        if entry is None:
            if key[0] in module_schemas:
                plans[key] = None
        elif not entry["excluded"]:
            plans[key] = (verified_column_plan(entry, columns_now.get(key, []))
                          if entry["rows"] is not None and entry["checksum"] is not None else None)
    return plans


def dropped_tables(base, tables_now):
    """The verified tables that are gone."""
    return sorted(key for key, entry in base.items()
                  if not entry["excluded"] and entry["rows"] is not None and key not in tables_now)


def differs(entry, now):
    """Whether a verified table measured ``now`` is not what the verification measured."""
    if entry is None or entry["rows"] is None or "error" in now:
        return True
    return now["rows"] != entry["rows"] or (entry["checksum"] is not None and now["checksum"] != entry["checksum"])


def _finding(key, change, verified_rows=None, rows=None, delta=None, own_rows=0, note=None):
    return {"schema": key[0], "table": key[1], "change": change, "verified_rows": verified_rows, "rows": rows,
            "delta": delta, "own_rows": own_rows, "new_write": change != "own", "note": note}


def judge(key, entry, now, own=None):
    """The finding for one table, or None when it holds what the verification measured.

    ``entry`` is its :func:`baseline` entry (None: not in the report), ``now`` what it holds now
    (``{"rows", "checksum"}``, ``{"error"}``, or None when it is gone), ``own`` the same for its rows
    that carry the run's marker (None: not measured). A finding's ``change`` is one of the module
    docstring's, or ``own`` when the play's own rows are the whole difference (``new_write`` false).
    """
    if now is None:
        return _finding(key, "dropped", entry["rows"], None, -entry["rows"])
    if "error" in now:
        return _finding(key, "error", entry and entry["rows"], note=now["error"])
    if entry is None or entry["rows"] is None:
        return _finding(key, "added" if entry is None else "unmeasured", None, now["rows"], now["rows"])
    if not differs(entry, now):
        return None
    rows, checksum, own_rows = now["rows"], now["checksum"], 0
    if own and "error" not in own and own["rows"]:
        own_rows = own["rows"]
        rows -= own_rows
        if entry["checksum"] is not None:
            checksum = str(int(checksum) - int(own["checksum"]))
    if not differs(entry, {"rows": rows, "checksum": checksum}):
        return _finding(key, "own", entry["rows"], now["rows"], 0, own_rows)
    delta = rows - entry["rows"]
    return _finding(key, "rows" if delta else "content", entry["rows"], now["rows"], delta, own_rows)


def same_writes(first, second):
    """Whether two lists of new writes name the same tables with the same changes."""
    def key(writes):
        return sorted(tuple(write.get(name) for name in WRITE_KEYS) for write in writes)
    return key(first) == key(second)


def describe_write(finding):
    """``product."Products": +1 row(s)`` for messages."""
    name = qualified(finding["schema"], finding["table"])
    change = finding["change"]
    if change == "rows":
        text = "%+d row(s)" % finding["delta"]
    elif change in ("added", "unmeasured"):
        text = "%s, %d row(s)" % (CHANGE_WORDS[change], finding["rows"])
    elif change == "dropped":
        text = "%s, had %d row(s)" % (CHANGE_WORDS[change], finding["verified_rows"])
    elif change == "error":
        text = "%s: %s" % (CHANGE_WORDS[change], finding["note"])
    elif change == "own":
        return "%s: only %d smoke probe row(s) of this run, not a new write" % (name, finding["own_rows"])
    else:
        text = CHANGE_WORDS[change]
    if finding["own_rows"]:
        text += " (besides %d smoke probe row(s))" % finding["own_rows"]
    return "%s: %s" % (name, text)


def render(findings):
    """The findings as a fixed-width text table."""
    def number(value, signed=False):
        return "-" if value is None else ("%+d" % value if signed else str(value))
    cells = [[qualified(item["schema"], item["table"]), number(item["verified_rows"]), number(item["rows"]),
              number(item["delta"], signed=True), describe_write(item).split(": ", 1)[1]]
             for item in findings]
    numeric = ("verified rows", "rows now", "delta")
    return render_table(("table", "verified rows", "rows now", "delta", "change"), cells, numeric=numeric) + "\n"


# -- the server ---------------------------------------------------------------------------------


class TargetWrites(object):
    """The comparison for one run (``run_dir``) and its consolidated database, read-only but for the record."""

    def __init__(self, params, journal):
        self.params = params
        self.journal = journal
        self.run_dir = params["run_dir"]
        self.database = params["target_database"]
        self.record_path = os.path.join(self.run_dir, DISCARDED_WRITES)
        self.result = dict(changed=False, refused=False, skipped=None, writes=[], accounted=[], verified_at=None,
                           record=self.record_path, table_text="", target_database=self.database)

    def run(self):
        """Compare, decide and (with ``discard``) record; the module's result."""
        plan = read_json(os.path.join(self.run_dir, PLAN), error=TargetWritesError)
        if plan is None:
            raise TargetWritesError("%s has no %s: not the directory of a consolidation run" % (self.run_dir, PLAN))
        report_path = os.path.join(self.run_dir, VERIFICATION_REPORT)
        report = read_json(report_path, error=TargetWritesError)
        if report is None:
            return self._skip("run %s has no verification report (%s): it stopped before verifying, so it never "
                              "reached the cutover and nothing was written to %s after one"
                              % (plan["run_id"], report_path, self.database))
        if report.get("run_id") != plan["run_id"]:
            raise TargetWritesError("%s was written by run %r, not by run %s" % (report_path, report.get("run_id"),
                                                                                 plan["run_id"]))
        self.result["verified_at"] = report.get("generated_at")
        absent = self._database_absent()
        if absent:
            return self._skip(absent)
        findings = self.compare(report, [module["schema"] for module in plan["modules"]], plan["run_id"])
        return self.decide(findings, report)

    def _skip(self, reason):
        self.result.update(skipped=reason, msg="not compared: " + reason)
        return self.result

    def _database_absent(self):
        """Why the consolidated database cannot hold anything to lose, or None when it is there and open."""
        with maintenance_cursor(self.params["target"]) as cur:
            catalog = read_catalog(cur, self.journal, [self.database])
        if self.database in catalog and catalog[self.database]["allow_connections"]:
            return None
        retired = (read_json(os.path.join(self.run_dir, ROLLBACK_RECORD), error=TargetWritesError) or {}).get("target")
        if retired and retired.get("database") == self.database:
            return ("the consolidated database %s was retired by the rollback at %s (renamed to %s)"
                    % (self.database, retired.get("retired_at"), retired.get("retired_name")))
        if self.database in catalog:
            return "the consolidated database %s is closed to connections (retired?)" % self.database
        return "the consolidated database %s is not on the target server any more" % self.database

    def compare(self, report, module_schemas, run_id):
        """Every finding, measured on the target server (read-only sessions)."""
        base = baseline(report)
        schemas = sorted(set(module_schemas) | set(schema for schema, _table in base))
        pool = table_stats.SessionPool(self.params["target"], self.journal)
        try:
            with pool.session(self.database) as conn:
                sizes = table_stats.list_tables(conn, self.journal, schemas)
                columns = table_stats.list_columns(conn, self.journal, schemas) if report.get("checksum") else {}
            plans = plan_measurements(base, set(module_schemas), set(sizes), columns)
            now = self._measure(pool, plans, sizes)
            marker = own_rows_marker(run_id)
            suspects = dict((key, plan) for key, plan in plans.items()
                            if key in base and base[key]["rows"] is not None and "error" not in now[key]
                            and differs(base[key], now[key]))
            own = self._measure(pool, suspects, sizes, containing=marker)
        finally:
            pool.close()
        findings = [judge(key, base.get(key), now[key], own.get(key)) for key in sorted(plans)]
        findings += [judge(key, base[key], None) for key in dropped_tables(base, set(sizes))]
        return sorted((item for item in findings if item), key=lambda item: (item["schema"], item["table"]))

    def _measure(self, pool, plans, sizes, containing=None):
        keys = sorted(plans)
        jobs = [dict(side="target", dbname=self.database, schema=key[0], table=key[1], columns=plans[key],
                     bytes=sizes[key], containing=containing) for key in keys]
        measured = table_stats.measure_all({"target": pool}, jobs, WORKERS)
        for result in measured:
            if "query" in result:
                self.journal.record(None, result["query"])
        return dict(zip(keys, measured))

    def decide(self, findings, report):
        writes = [item for item in findings if item["new_write"]]
        accounted = [item for item in findings if not item["new_write"]]
        verified = "its verification at %s" % report.get("generated_at")
        self.result.update(writes=writes, accounted=accounted, table_text=render(findings) if findings else "")
        if not report.get("checksum"):
            verified += " (row counts only: the report has no checksums, so an update is not seen)"
        if not writes:
            self.result["msg"] = "%s holds what %s measured%s" % (
                self.database, verified, "" if not accounted else ", besides the rows of the play's smoke probes "
                "(%s)" % "; ".join(describe_write(item) for item in accounted))
            return self.result
        listed = "; ".join(describe_write(item) for item in writes)
        self.result["msg"] = "%d table(s) of %s changed after %s: %s" % (len(writes), self.database, verified, listed)
        record = read_json(self.record_path, error=TargetWritesError)
        if record and same_writes(record.get("writes") or [], writes):
            self.result["msg"] += "; already discarded by the rollback at %s (%s)" % (
                record.get("discarded_at"), self.record_path)
        elif self.params["discard"]:
            self.result.update(changed=True, msg=self.result["msg"] + "; discarded as asked, %s in %s"
                               % ("would be recorded" if self.journal.check_mode else "recorded", self.record_path))
            if not self.journal.check_mode:
                write_private_json(self.record_path, {
                    "format": 1, "kind": RECORD_KIND, "run_id": report.get("run_id"),
                    "target_database": self.database, "verified_at": report.get("generated_at"),
                    "discarded_at": utc_timestamp(), "writes": writes, "accounted": accounted})
        else:
            self.result["refused"] = True
        return self.result
