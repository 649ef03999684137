# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The last thing consolidate.yml prints: the verdict, the run id, where the reports are and what to do next.

An operator reading a long job output (AWX, a CI log) looks at its end. The
verdict is PASSED only when the play got to its end and this run's own
verification passed: a failed task, a missing verification or a failed one
never reads as PASSED.

Online mode ends two playbooks: sync.yml (SYNCING: the appliers stream, the
application still runs on the legacy databases; next the cutover) and
cutover.yml (judged like consolidate.yml; a failed one keeps its slots, which
retain WAL on the source until it is rerun or rolled back).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.verify_report import verdict_line

ROLLBACK = "ansible-playbook classifiedads.consolidation.rollback -e consolidation_run_id=%s"
PLAYBOOK = "ansible-playbook classifiedads.consolidation.%s -e consolidation_run_id=%s"


def _syncing(plan):
    return ("Run %s SYNCING: every legacy database was copied from its replication slot's snapshot and its applier "
            "streams every later change into %s; the application keeps running on the legacy databases."
            % (plan["run_id"], plan["target_database"]))


def _next_sync(plan, failed_task, playbook, drained=False):
    """What follows sync.yml, or a failed cutover.yml: the way out drops the slots (gone already once drained)."""
    run_id = plan["run_id"]
    rollback = "or give up the run: %s (stops the appliers, drops the slots and publications)" % (ROLLBACK % run_id)
    if failed_task:
        steps = ["fix the cause named above and run %s again: %s" % (playbook, PLAYBOOK % (playbook, run_id))]
        if playbook == "cutover":
            steps[0] += (" (the appliers had caught up with the fenced legacy databases and stopped, and the slots "
                         "were dropped: the rerun verifies again, cuts over and starts the application)" if drained
                         else " (the appliers resume from their slots, which keep WAL on the source meanwhile)")
            rollback = ("or go back to the legacy databases: %s (lifts the fence, drops the slots and publications)"
                        % (ROLLBACK % run_id))
        return steps + [rollback]
    return ["watch the lag: %s" % (PLAYBOOK % ("sync_status", run_id)),
            "in the window: %s (stops the application, fences, waits for the appliers, verifies, cuts over)"
            % (PLAYBOOK % ("cutover", run_id)),
            rollback + "; a slot left behind keeps WAL on the source until its disk fills"]


def verdict(failed_task, verification, check_mode, playbook=None):
    """PASSED, FAILED, NOT VERIFIED, CHECK MODE or (sync.yml) SYNCING."""
    if failed_task:
        return "FAILED"
    if check_mode:
        return "CHECK MODE"
    if playbook == "sync":
        return "SYNCING"
    if not verification:
        return "NOT VERIFIED"
    return "PASSED" if verification["passed"] else "FAILED"


def _outcome(plan, failed_task, verification, check_mode):
    run = "Run %s" % plan["run_id"]
    if failed_task:
        return "%s FAILED at task \"%s\" (its error is printed above%s)." % (
            run, failed_task, "; check mode: nothing was changed" if check_mode else "")
    if check_mode:
        return "%s, CHECK MODE: nothing was changed; the tasks above say what the run would do." % run
    if not verification:
        return "%s NOT VERIFIED: the play ended without a verification result." % run
    # The verification's own verdict line: its counts, the excluded tables and schema differences included.
    found = "verification of %s: %s" % (plan["target_database"], verdict_line(verification["summary"]))
    if verification["passed"]:
        return "%s PASSED, %s" % (run, found)
    return "%s FAILED (continued, verify_fail_on_mismatch is false), %s" % (run, found)


def _backup_words(plan, failed_task):
    """Where step 1 went in this run (plan.backup_timing_plan), so that an operator knows what the window held."""
    timing = plan.get("backup_timing") or {"timing": "before_copy", "reason": None}
    if (plan.get("sync") or {}).get("mode") == "online":
        return "taken by sync.yml before the copy, while the application ran: outside the window"
    if timing["timing"] == "before_copy":
        return "taken before the copy, inside the window%s" % ("; " + timing["reason"] if timing["reason"] else "")
    words = "taken after the application started, outside the window: the fenced legacy databases as copied"
    if failed_task:
        words += "; not yet, if the run failed before that (rollback.yml does not need it then)"
    return words


def _reports(plan, verification, failed_task=None):
    files = plan["files"]
    lines = ["Reports: run directory %s" % plan["run_dir"]]
    if verification:
        lines.append("  verification: %s (and %s)" % (verification["report"]["markdown"],
                                                      verification["report"]["json"]))
    if plan["mode"] == "existing" and not plan.get("rehearsal"):
        lines.append("  backup set: %s (%s)" % (plan["backup_dir"], _backup_words(plan, failed_task)))
    lines.append("  plan: %s" % files["plan"])
    return lines


def _next(plan, failed_task, verification, check_mode, decommissioned):
    run_id = plan["run_id"]
    rollback = ROLLBACK % run_id
    existing = plan["mode"] == "existing"
    if failed_task and check_mode:
        # A check run changed nothing: there is nothing to resume or to roll back because of it.
        return ["fix the cause named above and run the check again, then run without --check"]
    if failed_task or (verification and not verification["passed"]):
        steps = ["fix the cause named above and run again with -e consolidation_run_id=%s: the run resumes where "
                 "it stopped" % run_id]
        if existing:
            steps.append("or put the legacy databases back instead: %s" % rollback)
        return steps
    if check_mode:
        return ["run without --check to consolidate"]
    if not existing:
        return ["point the application at %s (no legacy database to retire)" % plan["target_database"]]
    if decommissioned:
        return ["the legacy databases are retired, their final backups are in the backup set; %s would still "
                "restore them" % rollback]
    databases = ", ".join(module["source_database"] for module in plan["modules"])
    return ["check the application on %s" % plan["target_database"],
            "then retire the legacy databases: run again with -e consolidation_run_id=%s and decommission_confirm "
            "naming %s" % (run_id, databases),
            "or undo the consolidation: %s" % rollback]


def run_summary(plan, verification=None, failed_task=None, check_mode=False, decommissioned=False, playbook=None,
                drained=False):
    """``{"verdict", "lines"}`` for a run of consolidate.yml, or of online mode's ``playbook`` (sync, cutover).

    ``plan`` is the consolidation role's ``consolidation_plan`` (None when the
    play failed before publishing it), ``verification`` the verify role's
    ``verify_outcome`` of this play (None when it did not verify), ``failed_task``
    the name of the task that failed (None when the play got to its end) and
    ``decommissioned`` whether step 8 retired the legacy databases.
    """
    result = verdict(failed_task, verification, check_mode, playbook)
    if plan is None:
        return {"verdict": result, "lines": [
            "FAILED before the run was opened, at task \"%s\" (its error is printed above): no run directory "
            "was written and nothing was copied." % failed_task,
            "Next: fix the cause named above and run again."]}
    lines = [_syncing(plan) if result == "SYNCING" else _outcome(plan, failed_task, verification, check_mode)]
    lines += _reports(plan, verification, failed_task)
    if playbook == "sync" and not check_mode or playbook == "cutover" and failed_task and not check_mode:
        steps = _next_sync(plan, failed_task, playbook, drained)
    else:
        steps = _next(plan, failed_task, verification, check_mode, decommissioned)
    lines += ["Next: " + step for step in steps]
    return {"verdict": result, "lines": lines}
