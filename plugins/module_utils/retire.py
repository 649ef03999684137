# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decommission of the legacy databases (migration plan step 8): the guards and decisions, pure.

A legacy database is retired only when every guard holds, each judged here
from data the caller has just read (nothing is assumed):

``verification``  the run's report (``verification.json``) passed, was made for this run
                  and this backup set, and covers every database of the mapping
``confirmation``  the operator named exactly the databases of the mapping
``final_backup``  the backup set holds a verified ``final`` archive of every database
                  about to be retired, still matching its sha256, taken after the report
``sessions``      nobody else is connected to a database about to be retired (unless
                  the caller asked to terminate them)
``mapping``       every database belongs to the run's mapping (``plan.json``), and none is
                  the consolidated database, a maintenance or a template database
``databases``     each database is where the decommission record says it should be, the
                  name it would be renamed to is free, and the run was not rolled back

What was done is kept in ``<run_dir>/decommission.json`` (the *record*): per
database the original and retired names, the mode, the times, and what a
rollback needs to recreate it (owner, comment, settings, grants). An entry is
written ``pending`` before the server is touched and ``retired`` after, so an
interrupted run is resumed, never guessed at. A rollback marks entries
``rolled_back``; a rolled-back run is never decommissioned again (its report and
final backup describe data the application has changed since).

Every function is a function of plain data and raises nothing for a failed
guard: it returns the problems, and ``decommission.Decommission`` reports them all at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.classifiedads.consolidation.plugins.module_utils.dbops import (
    describe_session,
    suffixed_name,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import parse_utc, utc_timestamp
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import DECOMMISSION_RECORD, PLAN
from ansible_collections.classifiedads.consolidation.plugins.module_utils.verify_report import REPORT_KIND

RECORD_KIND = "classifiedads.consolidation.decommission"
RECORD_FORMAT = 1
FINAL_LABEL = "final"
RETIRED_INFIX = "_retired_"
# Never retired, whatever a mapping says: connecting to them is how every tool reaches a server.
SYSTEM_DATABASES = ("postgres", "template0", "template1")


def retired_name(database, day):
    """``<database>_retired_<YYYYMMDD>``, shortened to fit 63 bytes."""
    return suffixed_name(database, RETIRED_INFIX + day)


# -- the record -------------------------------------------------------------------------------


def new_record(run_id, set_id):
    return {"format": RECORD_FORMAT, "kind": RECORD_KIND, "run_id": run_id, "backup_set": set_id, "databases": []}


def record_problems(record, run_id, set_id):
    """Why ``record`` is not this run's decommission record (empty when it is)."""
    if not isinstance(record, dict) or record.get("kind") != RECORD_KIND or not isinstance(
            record.get("databases"), list):
        return ["%s is not a decommission record" % DECOMMISSION_RECORD]
    if record.get("format") != RECORD_FORMAT:
        return ["%s has format %r; this collection reads %d"
                % (DECOMMISSION_RECORD, record.get("format"), RECORD_FORMAT)]
    if record.get("run_id") != run_id or record.get("backup_set") != set_id:
        return ["%s belongs to run %r, backup set %r, not to run %r, backup set %r"
                % (DECOMMISSION_RECORD, record.get("run_id"), record.get("backup_set"), run_id, set_id)]
    return []


def record_entry(record, database):
    for entry in (record or {}).get("databases", []):
        if entry.get("database") == database:
            return entry
    return None


def with_entry(record, entry):
    """A copy of ``record`` with ``entry`` in place of the one for the same database."""
    updated = copy.deepcopy(record)
    updated["databases"] = [existing for existing in updated["databases"]
                            if existing.get("database") != entry["database"]] + [copy.deepcopy(entry)]
    updated["databases"].sort(key=lambda item: item["database"])
    return updated


def rolled_back_entries(record):
    return [entry for entry in (record or {}).get("databases", []) if entry.get("state") == "rolled_back"]


# -- the guards -------------------------------------------------------------------------------


def check_mapping(databases, plan, protected=()):
    """Guard ``mapping``: the databases are the run's legacy databases, and none is protected.

    The rollback applies it too: neither ever touches another database.

    ``plan`` is the run's ``plan.json`` (None when missing); ``protected`` adds
    names that must never be retired (the maintenance database).
    """
    if plan is None:
        return ["the run directory has no %s: it is not a consolidation run" % PLAN]
    problems = []
    if plan.get("mode", "existing") != "existing":
        problems.append("run %s is a fresh deployment (mode %s): it has no legacy databases to retire"
                        % (plan.get("run_id"), plan.get("mode")))
    if not databases:
        problems.append("no database was given")
    duplicates = sorted(set(name for name in databases if databases.count(name) > 1))
    if duplicates:
        problems.append("listed more than once: %s" % ", ".join(duplicates))
    mapped = [module.get("source_database") for module in plan.get("modules") or []]
    outside = [name for name in databases if name not in mapped]
    if outside:
        problems.append("not a legacy database of run %s (its mapping has %s): %s"
                        % (plan.get("run_id"), ", ".join(mapped) or "none", ", ".join(outside)))
    never = set(SYSTEM_DATABASES) | set(name for name in protected if name)
    if plan.get("target_database"):
        never.add(plan["target_database"])
    forbidden = [name for name in databases if name in never]
    if forbidden:
        problems.append("never touched (the consolidated, a maintenance or a template database): %s"
                        % ", ".join(forbidden))
    return problems


def check_verification(report, report_path, run_id, set_id, databases):
    """Guard ``verification``: a passing report of this run and this backup set covering every database."""
    if report is None:
        return ["no verification report at %s: run the verification (plan step 5) of run %s first"
                % (report_path, run_id)]
    if not isinstance(report, dict) or report.get("kind") != REPORT_KIND:
        return ["%s is not a verification report" % report_path]
    problems = []
    if report.get("passed") is not True:
        summary = report.get("summary") or {}
        problems.append("the verification report %s did not pass (%s table(s) failed, %s sequence(s) failed)"
                        % (report_path, summary.get("failed", "?"), summary.get("sequences_failed", "?")))
    if report.get("run_id") != run_id:
        problems.append("the verification report %s belongs to run %r, not %r"
                        % (report_path, report.get("run_id"), run_id))
    if report.get("backup_set") != set_id:
        problems.append("the verification report %s was made for backup set %r, not %r"
                        % (report_path, report.get("backup_set"), set_id))
    if parse_utc(report.get("generated_at")) is None:
        problems.append("the verification report %s has no valid generated_at time" % report_path)
    covered = set(row.get("source_database") for row in report.get("tables") or [])
    uncovered = [name for name in databases if name not in covered]
    if uncovered:
        problems.append("the verification report %s does not cover %s" % (report_path, ", ".join(uncovered)))
    return problems


def check_confirmation(confirm, databases):
    """Guard ``confirmation``: ``confirm`` names exactly ``databases``, no more, no less."""
    confirm = list(confirm or [])
    missing = [name for name in databases if name not in confirm]
    unknown = [name for name in confirm if name not in databases]
    problems = []
    if missing:
        problems.append("not confirmed: %s" % ", ".join(missing))
    if unknown:
        problems.append("confirmed but not a database of this decommission (a typo?): %s" % ", ".join(unknown))
    if problems:
        problems.append("the confirmation must name exactly the databases to retire: %s" % ", ".join(databases))
    return problems


def final_archive_state(entry, file_problem, report_time):
    """``(state, reason)`` of a database's ``final`` archive.

    ``entry`` is its manifest entry (None when absent), ``file_problem`` what
    ``verify_archive`` said of the file (None when it matches), ``report_time``
    the verification report's ``generated_at`` (a datetime; None when there is no
    usable report, which the verification guard refuses). States: ``ok``,
    ``missing``, ``unverified``, ``damaged``, ``stale`` (taken before the report).
    """
    if entry is None:
        return "missing", "no final archive in the backup set"
    if not entry.get("verified"):
        return "unverified", "the final archive %s was never verified" % entry.get("file")
    if file_problem:
        return "damaged", file_problem
    if report_time is None:
        # No usable report: the verification guard refuses already; there is nothing to be newer than.
        return "ok", "verified final archive %s, sha256 matches (no report to compare its time with)" % entry.get(
            "file")
    started = parse_utc(entry.get("started_at"))
    if started is None or started < report_time:
        return "stale", ("the final archive %s was taken at %s, before the verification report (%s): it may miss "
                         "what changed since; move it out of the set so that a new one is taken"
                         % (entry.get("file"), entry.get("started_at"), utc_timestamp(report_time)))
    return "ok", "verified final archive %s, sha256 matches" % entry.get("file")


# A final backup the caller is about to take repairs exactly these (backup_set redoes them);
# a stale archive that still matches its checksum would be kept, so it is never "pending".
PENDING_STATES = ("missing", "unverified", "damaged")


def check_final_backup(states, backup_pending=False):
    """Guard ``final_backup`` over ``{database: (state, reason)}``: ``(problems, pending databases)``.

    With ``backup_pending`` (check mode, the caller takes the final backup
    before the real run) a missing, unverified or damaged archive is pending
    rather than a problem.
    """
    problems, pending = [], []
    for database in sorted(states):
        state, reason = states[database]
        if state == "ok":
            continue
        if backup_pending and state in PENDING_STATES:
            pending.append(database)
        else:
            problems.append("%s: %s" % (database, reason))
    return problems, pending


def check_sessions(sessions, terminate):
    """Guard ``sessions`` over ``{database: [session, ...]}``: refused while anyone is connected."""
    if terminate:
        return []
    problems = []
    for database in sorted(sessions):
        if sessions[database]:
            problems.append("%d other session(s) connected to %s: %s" % (
                len(sessions[database]), database, "; ".join(describe_session(s) for s in sessions[database])))
    if problems:
        problems.append("stop the application (or set terminate_sessions) and run again")
    return problems


# -- what to do with each database ------------------------------------------------------------


def decide(database, entry, catalog, mode, day):
    """What to do with one database: a dict with ``action`` and, on a problem, ``problem``.

    ``entry`` is its decommission record entry (or None), ``catalog`` maps the
    names found on the server to ``{"allow_connections": bool, ...}``, ``day``
    is today (``YYYYMMDD``) for the retired name. Actions: ``retire`` (rename or
    drop it now), ``already_retired`` (nothing to do), ``record`` (an
    interrupted run finished the server side; only the record is completed).
    """
    exists = database in catalog
    state = (entry or {}).get("state")
    done_mode = (entry or {}).get("mode")
    recorded_name = (entry or {}).get("retired_name")
    if state == "retired":
        if exists:
            how = "renamed to " + recorded_name if done_mode == "rename" else "dropped"
            return dict(action=None, problem="%s exists although %s records it as retired (%s) at %s; was it "
                        "brought back by hand?" % (database, DECOMMISSION_RECORD, how, entry.get("retired_at")))
        note = None
        if done_mode == "rename" and recorded_name not in catalog:
            note = "the retired database %s no longer exists" % recorded_name
        return dict(action="already_retired", mode=done_mode, retired_name=recorded_name, note=note)
    if not exists:
        if state == "pending" and done_mode == "drop":
            return dict(action="record", mode="drop", retired_name=None)
        if state == "pending" and recorded_name in catalog:
            return dict(action="record", mode="rename", retired_name=recorded_name)
        return dict(action=None, problem="%s does not exist on the source server and %s does not record it as "
                    "retired" % (database, DECOMMISSION_RECORD))
    if mode == "drop":
        return dict(action="retire", mode="drop", retired_name=None)
    name = retired_name(database, day)
    if name in catalog:
        return dict(action=None, problem="cannot rename %s: a database named %s already exists (drop or rename "
                    "it first, or retire on another day)" % (database, name))
    return dict(action="retire", mode="rename", retired_name=name)


def retired_name_collisions(decisions):
    """Problems when two databases would be renamed to the same (shortened) name."""
    seen, problems = {}, []
    for database, decision in sorted(decisions.items()):
        name = decision.get("retired_name") if decision.get("action") == "retire" else None
        if name is None:
            continue
        if name in seen:
            problems.append("%s and %s would both be renamed to %s" % (seen[name], database, name))
        seen[name] = database
    return problems


def check_databases(decisions, record, run_id):
    """Guard ``databases``: every decision is possible, names do not collide, the run was not rolled back."""
    problems = []
    rolled_back = rolled_back_entries(record)
    if rolled_back:
        problems.append("run %s was rolled back (%s at %s): its verification and final backup describe data the "
                        "application has changed since; consolidate again under a new run id"
                        % (run_id, ", ".join(entry["database"] for entry in rolled_back),
                           max(entry.get("rolled_back_at") or "" for entry in rolled_back)))
    problems.extend(decision["problem"] for _database, decision in sorted(decisions.items())
                    if decision.get("problem"))
    problems.extend(retired_name_collisions(decisions))
    return problems


def guard(name, problems, **extra):
    result = dict(guard=name, passed=not problems, problems=list(problems))
    result.update(extra)
    return result


def refusal_message(guards):
    """One message naming every failed guard and its reasons."""
    failed = [result for result in guards if not result["passed"]]
    return "decommission refused by guard%s %s: %s" % (
        "s" if len(failed) > 1 else "", ", ".join(result["guard"] for result in failed),
        " | ".join("%s: %s" % (result["guard"], "; ".join(result["problems"])) for result in failed))
