# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification of a consolidation: the side that reads both servers and writes the report.

:class:`Verification` is what ``row_count_diff`` runs. It reads the catalogs
of the legacy databases and of the target database, has ``rowdiff`` pair the
tables and plan the measurements, takes them with ``table_stats`` (both
servers at once), reads the sequences, and writes ``verification.json`` and
``verification.md`` as ``verify_report`` renders them. Every statement goes
through the module's journal, each kept once.

Proof by content: when the copy of ``run_id`` recorded the sources' write
counters (:mod:`proof`, ``<state_schema>.copied_tables``), they are read again
after the tables were measured, so that a write made while measuring shows
too. A table whose counters moved was written after it was copied: it is named
in the report and passes only with equal content checksums, measured again by
checksum when ``checksum`` is false.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible_collections.classifiedads.consolidation.plugins.module_utils import (
    null_verification,
    proof,
    rowdiff,
    run_state,
    schema_inventory,
    table_stats,
    verify_report,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import ConnectionFailure, psycopg2
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_state import CopyState
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import (
    address,
    qualified,
    quote_ident,
    utc_timestamp,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import (
    ConsolidationError,
    postgres_problem,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import missing_server
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import PlanError, build_plan
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    VERIFICATION_MARKDOWN,
    VERIFICATION_REPORT,
    append_warnings,
    read_json,
    run_id_problem,
    write_private_file,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sequences import next_value


class VerificationAborted(ConsolidationError):
    """The verification cannot run at all (missing database, schema, old server); ``problems`` lists why."""


def validate(params):
    """The normalised modules and expectations, or PlanError listing every problem."""
    problems = []
    if params["modules"] and not params["source"]:
        problems.append(missing_server("source"))
    if params["run_id"] and run_id_problem(params["run_id"]):
        problems.append(run_id_problem(params["run_id"]))
    if params["workers"] < 1:
        problems.append("workers must be at least 1")
    if problems:
        raise PlanError(problems)
    modules = []
    if params["modules"]:
        modules = build_plan(params["modules"], params["target_database"], params["source"], params["target"],
                             params["exclude_tables"])
    expected = rowdiff.normalize_expectations(params["expect_tables"])
    if not modules and not expected:
        raise PlanError(["nothing to verify: give modules (legacy databases to compare) or expect_tables"])
    return modules, expected


def report_paths(report_dir):
    """(verification.json, verification.md) in ``report_dir``."""
    return tuple(os.path.join(report_dir, name) for name in (VERIFICATION_REPORT, VERIFICATION_MARKDOWN))


def write_report(report_dir, report):
    """Write both files unless the same result is already there.

    Returns (directory changed, files written, the report as on disk).
    """
    paths = report_paths(report_dir)
    dir_changed = written = False
    if not os.path.isdir(report_dir):
        os.makedirs(report_dir, 0o700)
        dir_changed = True
    if os.stat(report_dir).st_mode & 0o777 != 0o700:
        os.chmod(report_dir, 0o700)
        dir_changed = True
    try:
        previous = read_json(paths[0])
    except ConsolidationError:
        previous = None  # an unreadable report is simply written anew
    if verify_report.same_result(previous, report):
        report = dict(report, generated_at=previous["generated_at"])
    # Keys in the report's own order (format and kind first), not sorted as runfiles.write_private_json would.
    texts = [json.dumps(report, indent=2) + "\n", verify_report.render_markdown(report)]
    for path, text in zip(paths, texts):
        try:
            with open(path) as handle:
                same = handle.read() == text and os.stat(path).st_mode & 0o777 == 0o600
        except (OSError, IOError):
            same = False
        if not same:
            write_private_file(path, text)
            written = True
    return dir_changed, written, report


class Verification(object):
    """One verification as the module's options describe it (validated on creation, see :func:`validate`).

    ``journal`` keeps every statement (a ``QueryJournal(unique=True)``); in its
    check mode everything is measured but no report file is written.
    """

    def __init__(self, params, journal):
        self.params = params
        self.journal = journal
        self.check_mode = journal.check_mode
        self.modules, self.expected = validate(params)
        self.pools = {}
        self.warnings = []
        self.fidelity = None

    def run(self):
        """(result, failure): the module's result, and the failure message when the task must fail, else None."""
        params = self.params
        started = time.time()
        rows, sequences, servers = self.measure()
        if params.get("rehearsal"):
            rows, sequences = rowdiff.excuse_rehearsal_writes(rows, sequences)
        elapsed = round(time.time() - started, 3)
        summary = rowdiff.summarize(rows, sequences)
        summary["written_after_copy"] = len(verify_report.written_after_copy(rows))
        fidelity = self.judge_schema_fidelity(summary)
        report = verify_report.build_report(dict(
            run_id=params["run_id"], backup_set=params["backup_set"], target_database=params["target_database"],
            generated_at=utc_timestamp(whole_seconds=True), checksum=params["checksum"],
            check_sequences=params["check_sequences"], servers=servers, fence=params.get("fence"),
            write_counters=any(row.get("written_after_copy") is not None for row in rows),
            schema_fidelity=fidelity), rows, sequences, summary)
        returned_report, changed = self.publish(report)
        if fidelity:
            self.warnings.extend(verify_report.fidelity_warnings(fidelity))
        if self.warnings and returned_report["written"]:
            # With the report they belong to: a rerun that finds the report unchanged adds no line.
            append_warnings(params["report_dir"], "row_count_diff", self.warnings)
        table_text = verify_report.render_text(rows, sequences, summary, params["checksum"], fidelity)
        verdict = verify_report.verdict_line(summary)
        result = dict(changed=changed, msg=verdict, tables=rows, sequences=sequences, summary=summary,
                      written_after_copy=report["written_after_copy"], schema_fidelity=fidelity,
                      report=returned_report, table_text=table_text, servers=servers, queries=self.journal.queries,
                      elapsed=elapsed, warnings=self.warnings)
        if summary["passed"] or not params["fail_on_mismatch"]:
            return result, None
        where = ""
        if params["report_dir"] and not self.check_mode:
            where = "; reports: %s, %s" % (returned_report["json"], returned_report["markdown"])
        return result, "verification failed: %s%s\n%s" % (verdict, where, table_text)

    def publish(self, report):
        """Write the report files where asked; (the result's ``report`` entry, whether anything changed)."""
        report_dir = self.params["report_dir"]
        paths = report_paths(report_dir) if report_dir else (None, None)
        returned = dict(json=paths[0], markdown=paths[1], written=False, reason=None,
                        generated_at=report["generated_at"])
        if not report_dir:
            returned["reason"] = "no report_dir given"
            return returned, False
        if self.check_mode:
            returned["reason"] = "check mode: report files not written"
            return returned, False
        dir_changed, written, report = write_report(report_dir, report)
        returned.update(written=written, generated_at=report["generated_at"],
                        reason=None if written else "the same result is already on disk")
        return returned, dir_changed or written

    # -- measuring --------------------------------------------------------------------------------

    def measure(self):
        """Measure both sides and judge: (rows, sequences, servers)."""
        self.pools = {"target": table_stats.SessionPool(self.params["target"], self.journal)}
        if self.modules:
            self.pools["source"] = table_stats.SessionPool(self.params["source"], self.journal)
        try:
            target = self.read_target()
            source = self.read_sources()
            pairs = rowdiff.pair_tables(self.modules, source["tables"], target["tables"], source["partitions"],
                                        target["partitions"])
            pairs += rowdiff.expected_pairs(self.expected, target["schemas"], target["tables"])
            column_plans, jobs, job_index = rowdiff.plan_jobs(pairs, self.modules, source, target,
                                                              self.params["target_database"], self.params["checksum"])
            with_policy = null_verification.prepare_verification(
                self.pools, self.journal, self.modules, pairs, jobs, job_index, self.params["target_database"])
            measured = table_stats.measure_all(self.pools, jobs, self.params["workers"])
            for result in measured:
                if "query" in result:
                    self.journal.record(None, result["query"])  # in the order of the jobs, not of completion
            rows = [rowdiff.classify(pair, *[measured[index] if index is not None else None for index in indexes],
                                     columns=plan)
                    for pair, indexes, plan in zip(pairs, job_index, column_plans)]
            rows = null_verification.account_verification(
                self.pools, self.journal, rows, pairs, with_policy, self.params["target_database"],
                self.params["state_schema"], column_plans, self.completed_records()[1])
            rows = rowdiff.mark_partitions(rows, pairs)
            self.prove(pairs, rows, column_plans, source, target)
            sequences = self.check_sequences(pairs, source, target) if self.params["check_sequences"] else []
            self.fidelity = self.read_schema_fidelity()
        finally:
            for pool in self.pools.values():
                pool.close()
        return rows, sequences, {"source": source["server"], "target": target["server"]}

    def _server(self, pool, conn, checksum):
        facts = table_stats.server_facts(conn, self.journal)
        where = address(pool.endpoint)
        if facts["version_num"] < table_stats.MIN_SERVER_VERSION:
            raise VerificationAborted(["%s runs PostgreSQL %s; 12 or later is required" % (where, facts["version"])])
        if checksum and facts["version_num"] < table_stats.MIN_CHECKSUM_SERVER_VERSION:
            raise VerificationAborted(["%s runs PostgreSQL %s; checksum=true needs 14 or later (hash_record_extended)"
                                       % (where, facts["version"])])
        return {"address": where, "version": facts["version"]}

    def read_target(self):
        params, pool, journal = self.params, self.pools["target"], self.journal
        # Columns and sequences only matter for tables compared with a legacy one.
        checksum = params["checksum"] and bool(self.modules)
        check_sequences = params["check_sequences"] and bool(self.modules)
        schemas = set(self.expected)
        for module in self.modules:
            schemas.add(module["schema"])
            schemas.update(entry["schema"] for entry in module["tables"].values())
        with pool.session(params["target_database"]) as conn:
            found = {
                "server": self._server(pool, conn, checksum),
                "schemas": table_stats.existing_schemas(conn, journal, schemas),
                "tables": table_stats.list_tables(conn, journal, schemas),
                "partitions": table_stats.list_partitions(conn, journal, schemas),
            }
            found["columns"] = table_stats.list_columns(conn, journal, schemas) if checksum else {}
            found["sequences"] = table_stats.list_sequences(conn, journal, schemas) if check_sequences else {}
            found["standalone_sequences"] = (table_stats.list_standalone_sequences(conn, journal, schemas)
                                             if check_sequences else {})
        return found

    def read_sources(self):
        found = {"server": None, "tables": {}, "sizes": {}, "columns": {}, "sequences": {}, "partitions": {},
                 "standalone_sequences": {}}
        if not self.modules:
            return found
        params, pool, journal = self.params, self.pools["source"], self.journal
        problems = []
        for module in self.modules:
            database, schema = module["source_database"], module["source_schema"]
            try:
                with pool.session(database) as conn:
                    if found["server"] is None:
                        found["server"] = self._server(pool, conn, params["checksum"])
                    if not table_stats.existing_schemas(conn, journal, [schema]):
                        problems.append("schema %r does not exist in the legacy database %s" % (schema, database))
                        continue
                    sizes = table_stats.list_tables(conn, journal, [schema])
                    found["tables"][module["name"]] = [table for _schema, table in sizes]
                    found["sizes"][database] = sizes
                    found["partitions"][module["name"]] = dict(
                        (table, entry) for (_schema, table), entry in
                        table_stats.list_partitions(conn, journal, [schema]).items())
                    if params["checksum"]:
                        found["columns"][database] = table_stats.list_columns(conn, journal, [schema])
                    if params["check_sequences"]:
                        found["sequences"][database] = table_stats.list_sequences(conn, journal, [schema])
                        found["standalone_sequences"][database] = table_stats.list_standalone_sequences(
                            conn, journal, [schema])
            except ConnectionFailure as exc:
                problems.append(str(exc))
        if problems:
            raise VerificationAborted(problems)
        return found

    # -- schema fidelity --------------------------------------------------------------------------

    def read_schema_fidelity(self):
        """Per module, the comparison of the legacy schema's inventory with the target's; None when off."""
        mode = self.params.get("schema_fidelity") or "report"
        if mode == "off" or not self.modules:
            return None
        compared = []
        for module in self.modules:
            entry = {"module": module["name"], "source": qualified(module["source_database"], module["source_schema"]),
                     "target": qualified(self.params["target_database"], module["schema"])}
            # Tables an override placed in another schema are the module's too.
            elsewhere = [(override["schema"], override["table"]) for override in module["tables"].values()
                         if override["schema"] != module["schema"]]
            try:
                with self.pools["source"].session(module["source_database"]) as conn:
                    source = schema_inventory.read_inventory(conn, self.journal, module["source_schema"])
                with self.pools["target"].session(self.params["target_database"]) as conn:
                    target = schema_inventory.read_inventory(conn, self.journal, module["schema"], elsewhere)
            except psycopg2.Error as exc:
                entry["error"] = postgres_problem(exc)
                compared.append(entry)
                continue
            entry.update(schema_inventory.compare(source, target, module.get("schema_exclusions") or [],
                                                  module["exclude_tables"]))
            compared.append(entry)
        return compared

    def judge_schema_fidelity(self, summary):
        """The report's schema_fidelity section; in enforce mode a difference fails ``summary``."""
        if self.fidelity is None:
            return None
        fidelity = verify_report.fidelity_section(self.params.get("schema_fidelity") or "report", self.fidelity)
        summary.update(schema_fidelity=fidelity["mode"], schema_differences=fidelity["differences"],
                       schema_errors=fidelity["errors"], passed=summary["passed"] and fidelity["passed"])
        return fidelity

    # -- proof by content -------------------------------------------------------------------------

    def prove(self, pairs, rows, column_plans, source, target):
        """Compare the write counters the copy recorded with today's; a written table must match by content.

        Updates ``rows`` in place: each gets ``copy_snapshot``, ``write_counters`` (``copied``, ``verified``,
        ``delta``), ``written_after_copy`` and ``checksum_columns`` (the column plan a final backup reuses).
        """
        recorded = self.copy_records() if self.modules else None
        current = self.read_write_counters(pairs) if recorded is not None else {}
        written = []
        for index, pair in enumerate(pairs):
            rows[index].update(copy_snapshot=None, write_counters=None, written_after_copy=None)
            # A partitioned table holds no rows, so the copy records none: its partitions carry the proof.
            if recorded is None or pair["kind"] != "copied" or pair.get("partitioned"):
                continue
            record = recorded.get((pair["source_database"], pair["source_table"])) or {}
            copied = record.get("write_counters")
            verified = current.get((pair["source_database"], pair["source_schema"], pair["source_table"]))
            rows[index].update(copy_snapshot=record.get("snapshot"), written_after_copy=False, write_counters=dict(
                copied=copied, verified=verified, delta=proof.counter_delta(copied, verified)))
            if proof.written_between(copied, verified):
                written.append(index)
        unproven = [index for index in written if rows[index]["source_checksum"] is None
                    and rows[index]["state"] in ("match", "mismatch")]
        if unproven:
            self.checksum_again(pairs, rows, column_plans, unproven, source, target)
        for index in written:
            row = rows[index]
            row["written_after_copy"] = True
            row["reasons"].append("source written after it was copied (%s): %s" % (
                proof.describe_delta(row["write_counters"]["delta"]),
                "content still matches" if row["state"] == "match" else "it must match by content and does not"))
        for row, plan in zip(rows, column_plans):
            row["checksum_columns"] = [dict(column) for column in plan["columns"]] if plan else None

    def copy_records(self):
        """The copy's records of this run (CopyState.recorded_proof), None when it recorded nothing."""
        if not self.params["run_id"]:
            return None
        state = CopyState(self.params["state_schema"], self.params["run_id"], self.journal)
        with self.pools["target"].session(self.params["target_database"]) as conn, conn.cursor() as cur:
            try:
                recorded = state.recorded_proof(cur)
            except psycopg2.errors.InsufficientPrivilege as exc:
                # A verification may log in as a role that only reads the module schemas: it still compares
                # every table (with checksums, by default); it cannot also compare the write counters.
                self.warnings.append("the copy's records in %s could not be read (%s): write counters were not "
                                     "compared" % (quote_ident(self.params["state_schema"]), postgres_problem(exc)))
                return None
            self.journal.record(cur)
        if recorded is None:
            # A completed run dropped its state schema, keeping the records in its run directory.
            recorded = run_state.recorded_proof(self.completed_records()[0], self.params["run_id"])
        return recorded

    def completed_records(self):
        """(state.json, quarantined rows) a completed run kept in the run directory, or (None, None)."""
        if not self.params["report_dir"]:
            return None, None
        return run_state.completed_records(self.params["report_dir"])

    def read_write_counters(self, pairs):
        """{(database, schema, table): counters} now, one catalog query per legacy database (proof.read_counters)."""
        schemas = {}
        for pair in pairs:
            if pair["kind"] == "copied":
                schemas.setdefault(pair["source_database"], set()).add(pair["source_schema"])
        found = {}
        for database, names in sorted(schemas.items()):
            with self.pools["source"].session(database) as conn, conn.cursor() as cur:
                for (schema, table), counters in proof.read_counters(cur, sorted(names), self.journal).items():
                    found[(database, schema, table)] = counters
        return found

    def checksum_again(self, pairs, rows, column_plans, indexes, source, target):
        """Measure ``indexes`` again with a content checksum (they were only counted) and classify them anew."""
        params, journal = self.params, self.journal
        chosen = [pairs[index] for index in indexes]
        source = dict(source, columns={})
        for database in sorted(set(pair["source_database"] for pair in chosen)):
            with self.pools["source"].session(database) as conn:
                source["columns"][database] = table_stats.list_columns(
                    conn, journal, sorted(set(pair["source_schema"] for pair in chosen)))
        with self.pools["target"].session(params["target_database"]) as conn:
            target = dict(target, columns=table_stats.list_columns(
                conn, journal, sorted(set(pair["target_schema"] for pair in chosen))))
        plans, jobs, job_index = rowdiff.plan_jobs(chosen, self.modules, source, target, params["target_database"],
                                                   True)
        measured = table_stats.measure_all(self.pools, jobs, params["workers"])
        for result in measured:
            if "query" in result:
                journal.record(None, result["query"])
        for index, pair, indexes_of_pair, plan in zip(indexes, chosen, job_index, plans):
            extra = dict((key, rows[index][key]) for key in ("copy_snapshot", "write_counters", "written_after_copy"))
            rows[index] = dict(rowdiff.classify(
                pair, *[measured[job] if job is not None else None for job in indexes_of_pair], columns=plan), **extra)
            column_plans[index] = plan

    # -- sequences --------------------------------------------------------------------------------

    def _next_value(self, side, dbname, sequence):
        pool = self.pools[side]
        with pool.session(dbname) as conn:
            last_value, is_called = table_stats.sequence_state(conn, self.journal, sequence["sequence_schema"],
                                                               sequence["sequence"])
        return next_value(last_value, is_called, sequence["increment"])

    def check_sequences(self, pairs, source, target):
        results = []
        target_database = self.params["target_database"]
        for pair, entry, legacy in rowdiff.sequence_checks(pairs, target["sequences"], source["sequences"]):
            try:
                entry["next_value"] = self._next_value("target", target_database, entry)
                with self.pools["target"].session(target_database) as conn:
                    entry["column_max"] = table_stats.column_max(conn, self.journal, pair["target_schema"],
                                                                 pair["target_table"], entry["column"])
                if legacy:
                    entry["source_sequence"] = qualified(legacy["sequence_schema"], legacy["sequence"])
                    entry["source_next_value"] = self._next_value("source", pair["source_database"], legacy)
            except psycopg2.Error as exc:
                entry["error"] = postgres_problem(exc)
            results.append(rowdiff.check_sequence(entry))
        return results + self.check_standalone_sequences(source, target)

    def check_standalone_sequences(self, source, target):
        """The sequences no column uses: each must stand at or beyond its legacy sequence."""
        results = []
        for entry, legacy in rowdiff.standalone_sequence_checks(self.modules, source["standalone_sequences"],
                                                                target["standalone_sequences"]):
            module = [item for item in self.modules if item["name"] == entry["module"]][0]
            entry["source_sequence"] = qualified(legacy["sequence_schema"], legacy["sequence"])
            if "error" not in entry:
                try:
                    entry["next_value"] = self._next_value("target", self.params["target_database"], entry)
                    entry["source_next_value"] = self._next_value("source", module["source_database"], legacy)
                except psycopg2.Error as exc:
                    entry["error"] = postgres_problem(exc)
            results.append(rowdiff.check_sequence(entry))
        return results
