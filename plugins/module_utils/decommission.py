# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decommission of a run's legacy databases (migration plan step 8): every guard is judged
(``plan``) before anything changes (``apply``).

Guard ``proof`` binds the retirement to what was verified: the final
backup's counts and checksums, taken inside its dump's snapshot, must equal
the verified source's, and every table whose write counters moved since then
(since the verification while the final backup is still to be taken) must
still match by content, measured now (``proof.py``).

The guards and decisions are pure functions in ``retire.py``; this file reads
what they judge (the run's plan, verification report and decommission record,
the backup set's final archives, the server's catalog and sessions) and does
what they allow through ``dbops.py``. Each database's record entry is written
``pending`` before the server is touched and ``retired`` after, so an
interrupted run is resumed from the record.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.classifiedads.consolidation.plugins.module_utils import proof, table_stats
from ansible_collections.classifiedads.consolidation.plugins.module_utils.dbops import (
    close_and_retire,
    list_sessions,
    maintenance_cursor,
    read_catalog,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import (
    address,
    parse_utc,
    qualified,
    render_table,
    utc_day,
    utc_now,
    utc_timestamp,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.manifest import (
    BackupError,
    find_archive,
    load_manifest,
    validate_set_id,
    verify_archive,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.retire import (
    FINAL_LABEL,
    check_confirmation,
    check_databases,
    check_final_backup,
    check_mapping,
    check_sessions,
    check_verification,
    decide,
    final_archive_state,
    guard,
    new_record,
    record_entry,
    record_problems,
    refusal_message,
    retired_name,
    with_entry,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    DECOMMISSION_RECORD,
    PLAN,
    VERIFICATION_REPORT,
    read_json,
    write_private_json,
)

# The catalog facts of a database that its archive does not hold: recorded, so that a rollback can put them back.
PROPERTY_KEYS = ("owner", "comment", "connection_limit", "settings", "acl_default", "acl")
CHANGING_ACTIONS = ("retire", "record")


class DecommissionError(ConsolidationError):
    """The decommission cannot go on (a guard refused, or a step failed)."""


class Decommission(object):
    """One decommission of a run: every guard evaluated (``plan``, reads only) before anything changes (``apply``)."""

    def __init__(self, params, journal, now=None):
        self.params = params
        self.journal = journal
        self.now = now or utc_now()
        self.source = params["source"]
        self.databases = list(params["databases"])
        self.run_dir = params["run_dir"]
        self.record_path = os.path.join(self.run_dir, DECOMMISSION_RECORD)
        self.guards = []
        self.items = []
        self.to_retire = []
        self.pending = []
        self.refused = False
        self.started = False
        self.run_id = self.set_id = self.record = self.manifest = None

    # -- evaluation (reads only) --

    def plan(self):
        """Judge every guard and decide for each database; raises DecommissionError when a guard refuses."""
        self.set_id = validate_set_id(self.params["set_id"])
        set_dir = os.path.join(os.path.abspath(self.params["backup_root"]), self.set_id)
        run_plan = read_json(os.path.join(self.run_dir, PLAN), error=DecommissionError)
        self.run_id = (run_plan or {}).get("run_id")
        report_path = os.path.join(self.run_dir, VERIFICATION_REPORT)
        report = read_json(report_path, error=DecommissionError)
        self.record = read_json(self.record_path, error=DecommissionError)
        record_issues = record_problems(self.record, self.run_id, self.set_id) if self.record is not None else []

        day = utc_day(self.now)
        names = list(self.databases)
        for database in self.databases:
            names.append(retired_name(database, day))
            names.append((record_entry(self.record, database) or {}).get("retired_name"))
        with maintenance_cursor(self.source) as cur:
            catalog = read_catalog(cur, self.journal, names)
            sessions = list_sessions(cur, self.journal, [name for name in self.databases if name in catalog])

        decisions = dict((database, decide(database, record_entry(self.record, database), catalog,
                                           self.params["mode"], day)) for database in self.databases)
        self.to_retire = [database for database in self.databases if decisions[database]["action"] == "retire"]
        states = self._final_archive_states(set_dir, report)
        final_problems, self.pending = check_final_backup(
            states, self.params["final_backup_pending"] and self.journal.check_mode)
        proof_problems, written = self._prove(report, states)
        retiring_sessions = dict((database, sessions.get(database, [])) for database in self.to_retire)
        self.guards = [
            guard("mapping", check_mapping(self.databases, run_plan, [self.source.get("maintenance_db")])),
            guard("verification", check_verification(report, report_path, self.run_id, self.set_id,
                                                     self.databases)),
            guard("confirmation", check_confirmation(self.params["confirm"], self.databases)),
            guard("final_backup", final_problems, pending=self.pending),
            guard("proof", proof_problems, written=written),
            guard("sessions", check_sessions(retiring_sessions, self.params["terminate_sessions"])),
            guard("databases", record_issues + check_databases(decisions, self.record, self.run_id)),
        ]
        for database in self.databases:
            decision, facts, state = decisions[database], catalog.get(database) or {}, states.get(database)
            self.items.append(dict(
                database=database, action=decision.get("action"), mode=decision.get("mode"),
                retired_name=decision.get("retired_name"), owner=facts.get("owner"),
                sessions=sessions.get(database, []), terminated=[], note=decision.get("note"),
                final_backup=dict(state=state[0], reason=state[1]) if state else None,
                properties=dict((key, facts.get(key)) for key in PROPERTY_KEYS) if facts else None))
        failed = [result for result in self.guards if not result["passed"]]
        if failed:
            self.refused = True
            raise DecommissionError(["%s: %s" % (result["guard"], problem) for result in failed
                                     for problem in result["problems"]])

    def _final_archive_states(self, set_dir, report):
        """``{database: (state, reason)}`` of the final archive of every database about to be retired."""
        manifest_problem = None
        try:
            self.manifest = load_manifest(set_dir, self.set_id, address(self.source))
        except BackupError as exc:
            manifest_problem = str(exc)
        report_time = parse_utc(report.get("generated_at")) if isinstance(report, dict) else None
        states = {}
        for database in self.to_retire:
            entry = find_archive(self.manifest, database, FINAL_LABEL) if self.manifest else None
            file_problem = None
            if entry is not None and entry.get("verified"):
                file_problem = verify_archive(os.path.join(set_dir, entry["file"]), entry["sha256"], entry.get("size"))
            states[database] = final_archive_state(entry, file_problem, report_time)
            if entry is None and self.manifest is None:
                states[database] = ("missing", manifest_problem or "backup set %s has no manifest" % set_dir)
        return states

    def _prove(self, report, states):
        """Guard ``proof`` for the databases about to be retired: ``(problems, tables written since)``.

        With a usable final archive, its proof must equal the verified source and the counters are compared
        with those read before its snapshot; without one yet (check mode), with those read at verification.
        """
        if not isinstance(report, dict):
            return [], []  # the verification guard refuses already
        problems, written = [], []
        pool = table_stats.SessionPool(self.source, self.journal)
        try:
            for database in self.to_retire:
                tables = proof.verified_tables(report, database)
                archive = find_archive(self.manifest, database, FINAL_LABEL) if self.manifest else None
                if states.get(database, ("missing",))[0] != "ok":
                    archive = None  # the final_backup guard speaks for it; still judged against the verification
                if not tables:
                    continue
                if archive is not None and not archive.get("proof"):
                    problems.append("%s: the final archive %s holds no counts and checksums of its snapshot: rerun the "
                                    "decommission role, which takes it again" % (database, archive.get("file")))
                    continue
                with pool.session(database) as conn:
                    problems.extend(self._prove_database(conn, database, tables, archive, written))
        finally:
            pool.close()  # before the sessions guard's work: no session of ours may stay on a database to retire
        return problems, written

    def _prove_database(self, conn, database, tables, archive, written):
        archived = dict(((entry["schema"], entry["table"]), entry) for entry in archive["proof"]["tables"]) \
            if archive else None
        since = "the final backup" if archive else "the verification"
        with conn.cursor() as cur:
            now = proof.read_counters(cur, sorted(set(table["schema"] for table in tables)), self.journal)
        problems = []
        for table in tables:
            key = (table["schema"], table["table"])
            label = qualified(database, *key)
            baseline = table["write_counters"]
            if archived is not None:
                entry = archived.get(key)
                if entry is None:
                    problems.append("%s: not counted in the final backup" % label)
                    continue
                differences = proof.content_differences(table, entry)
                if differences:
                    problems.append("%s: the final backup differs from the verified source: %s (once the legacy table "
                                    "holds what was verified again, move %s out of the backup set so that a new final "
                                    "backup is taken)" % (label, "; ".join(differences), archive.get("file")))
                elif proof.written_between(baseline, entry["write_counters"]):
                    # Written between verification and the final backup, maybe just before the verification read
                    # the counters (a flush can lag by seconds): without a verified checksum it is unproven.
                    problem, note = proof.judge_written(label, "the verification", proof.counter_delta(
                        baseline, entry["write_counters"]), table, entry)
                    written.append(note)
                    if problem:
                        problems.append(problem)
                baseline = entry["write_counters"]
            if not proof.written_between(baseline, now.get(key)):
                continue
            with conn.cursor() as cur:
                rows, checksum = table_stats.count_and_checksum(cur, key[0], key[1], table["columns"],
                                                                self.journal.execute)
            problem, entry = proof.judge_written(label, since, proof.counter_delta(baseline, now.get(key)), table,
                                                 dict(rows=rows, checksum=checksum))
            written.append(entry)
            if problem:
                problems.append(problem)
        return problems

    # -- changes --

    def apply(self):
        """Retire what ``plan`` decided; each step recorded before and after it touches the server."""
        self.started = True
        record = self.record or new_record(self.run_id, self.set_id)
        with maintenance_cursor(self.source) as cur:
            for item in self.items:
                if item["action"] not in CHANGING_ACTIONS:
                    continue
                entry = record_entry(record, item["database"]) or {}
                if item["action"] == "retire":
                    entry = self._pending_entry(item)
                    record = self._write_record(record, entry)
                    item["terminated"] = close_and_retire(
                        cur, self.journal, item["database"],
                        item["retired_name"] if item["mode"] == "rename" else None, self.params["terminate_sessions"])
                record = self._write_record(record, dict(entry, state="retired", mode=item["mode"],
                                                         retired_name=item["retired_name"],
                                                         retired_at=utc_timestamp()))

    def _pending_entry(self, item):
        archive = find_archive(self.manifest, item["database"], FINAL_LABEL) if self.manifest else None
        return dict(database=item["database"], mode=item["mode"], retired_name=item["retired_name"],
                    state="pending", started_at=utc_timestamp(self.now), owner=item["owner"],
                    properties=item["properties"],
                    final_archive=dict((key, archive.get(key)) for key in ("file", "sha256", "size"))
                    if archive else None)

    def _write_record(self, record, entry):
        """``record`` with ``entry``, written to the run directory (in check mode, only returned unchanged)."""
        if self.journal.check_mode:
            return record
        record = with_entry(record, entry)
        write_private_json(self.record_path, record)
        return record

    # -- what the module reports --

    def failure_message(self, problems):
        if self.refused:
            return refusal_message(self.guards)
        return "decommission failed: %s" % "; ".join(problems)

    def summary(self):
        """``retired 2 database(s): A, B; already retired: C`` (in check mode ``would retire ...``)."""
        verb = "would retire" if self.journal.check_mode else "retired"
        done = [item["database"] for item in self.items if item["action"] == "already_retired"]
        line = "%s %d database(s)" % (verb, len(self.to_retire))
        if self.to_retire:
            line += ": " + ", ".join(self.to_retire)
        if done:
            line += "; already retired: " + ", ".join(done)
        if self.pending:
            line += "; final backup still to take: " + ", ".join(self.pending)
        return line

    def table(self):
        """One line per database: what is (or would be) done with it, under which name, its final backup."""
        verb = "would terminate" if self.journal.check_mode else "terminated"
        rows = []
        for item in self.items:
            notes = []
            if item["terminated"]:
                notes.append("%s %d session(s): %s" % (verb, len(item["terminated"]), ", ".join(
                    str(session["pid"]) for session in item["terminated"])))
            if item["note"]:
                notes.append(item["note"])
            rows.append([item["database"], item["action"] or "-", item["mode"] or "-", item["retired_name"] or "-",
                         (item["final_backup"] or {}).get("state", "-"), "; ".join(notes)])
        return render_table(("database", "action", "mode", "retired as", "final backup", "note"), rows)

    def result(self):
        changed = self.started and any(item["action"] in CHANGING_ACTIONS for item in self.items)
        return dict(changed=changed, guards=self.guards, databases=self.items, to_retire=self.to_retire,
                    final_backup_pending=self.pending, record=self.record_path, table_text=self.table(),
                    queries=self.journal.queries, commands=self.journal.commands)
