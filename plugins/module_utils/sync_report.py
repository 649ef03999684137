# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How online mode's status reads, and whether a run can be cut over: pure functions of sync_status's answer.

``databases`` is the ``sync_status`` module's list, one entry per legacy database (slot, lag,
progress, applier). The sync role prints :func:`status_lines` and, before cutover.yml stops the
application, refuses what :func:`cutover_problems` finds: a cutover that cannot catch up must not
start the downtime.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _applier(entry):
    applier = entry.get("applier") or {}
    state = applier.get("state") or "not started"
    if applier.get("pid") and not applier.get("alive") and state not in ("stopped", "failed"):
        state += ", its process is gone"
    words = "applier %s" % state
    details = []
    if applier.get("pid"):
        details.append("pid %s" % applier["pid"])
    if applier.get("restarts"):
        details.append("%s restart(s)" % applier["restarts"])
    return words + (" (%s)" % ", ".join(details) if details else "")


def _lag(entry):
    if not entry.get("slot_exists"):
        return "no slot"
    seconds = entry.get("lag_seconds")
    return "lag %s byte(s)%s" % (entry.get("lag_bytes"), ", %.1f s" % seconds if seconds is not None else "")


def status_lines(databases):
    """One line per legacy database, then its applier's error when it has one."""
    lines = []
    for entry in databases:
        applier = entry.get("applier") or {}
        line = "%s: %s; %s; %s transaction(s), %s row(s) applied" % (
            entry["source_database"], _applier(entry), _lag(entry), entry.get("transactions") or 0,
            entry.get("rows") or 0)
        if entry.get("slot_exists"):
            line += "; slot %s%s retains %s of WAL on the source" % (
                entry.get("slot_name"), "" if entry.get("slot_active") else " (no consumer)", entry.get("wal_retained"))
        lines.append(line)
        if applier.get("error"):
            lines.append("  %s stopped: %s" % (entry["source_database"], applier["error"]))
    return lines


def cutover_problems(databases):
    """What keeps a run from catching up, per legacy database; empty when the cutover may stop the application."""
    problems = []
    for entry in databases:
        name = entry["source_database"]
        applier = entry.get("applier") or {}
        if not entry.get("slot_exists"):
            problems.append("%s has no replication slot %s: its changes since the copy cannot be applied (fix: roll "
                            "back with rollback.yml and run sync.yml again)" % (name, entry.get("slot_name")))
        elif applier.get("state") == "failed":
            problems.append("the applier of %s stopped for good: %s" % (
                name, applier.get("error") or "no error recorded"))
    return problems
