# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rehearsal: the whole copy into a scratch database beside the target, while the application runs.

A rehearsal creates its scratch database itself and marks it with a comment
naming the collection and the run, so that it only ever drops a database it
made: a database of that name without the mark is refused, never replaced.
``phase_report`` turns the clock readings the play takes between phases into
the window the real run will need.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import address, quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import identifier_problem

MARK_PREFIX = "classifiedads.consolidation rehearsal scratch database"
DEFAULT_SUFFIX = "_rehearsal"


class RehearsalError(ConsolidationError):
    """The scratch database cannot be prepared or dropped."""


def scratch_database(target_database, requested=""):
    """Pure: the scratch database's name, ``requested`` or ``<target>_rehearsal``; raises RehearsalError."""
    name = requested or target_database + DEFAULT_SUFFIX
    problem = identifier_problem("rehearsal database", name)
    if problem:
        raise RehearsalError(["%s: set consolidation_rehearsal_database to a name PostgreSQL can hold" % problem])
    if name == target_database:
        raise RehearsalError(["the rehearsal database %s is the target database itself: a rehearsal never writes "
                              "into the real target; set consolidation_rehearsal_database to another name"
                              % quote_ident(name)])
    return name


def mark(run_id):
    """Pure: the comment that makes a scratch database ours."""
    return "%s (run %s)" % (MARK_PREFIX, run_id)


def is_ours(comment):
    return bool(comment) and comment.startswith(MARK_PREFIX)


def scratch_action(exists, comment, state):
    """Pure: what ``state`` (present/absent) means for the scratch database as found.

    present: a rehearsal always starts from an empty database, so an earlier
    scratch database of ours is replaced. A database of that name that is not
    ours is refused in both states.
    """
    if exists and not is_ours(comment):
        return "refuse"
    if state == "present":
        return "replace" if exists else "create"
    return "drop" if exists else "none"


# What the real window adds to the rehearsed phases, by the plan's backup timing (plan.backup_timing_plan).
WINDOW_ADDS = {
    "before_copy": "the window needs this plus the backup of the fenced databases, the cutover and the application's "
                   "restart",
    "after_start": "the window needs this plus the cutover and the application's restart; the backup of the fenced "
                   "databases follows once the application is back (consolidation_backup_timing after_start)",
}


def phase_report(marks, backup_timing="before_copy"):
    """Pure: the rehearsal's phases from the clock readings the play took, [[phase, epoch seconds], ...] at each
    phase's start and ["end", seconds] last: {"phases": [{"phase", "seconds"}], "total_seconds", "lines"}.
    ``backup_timing`` is the plan's (after_start or before_copy): whether the real window holds the backup."""
    phases = [{"phase": label, "seconds": round(max(0.0, float(ended) - float(started)), 1)}
              for (label, started), (_next_label, ended) in zip(marks, marks[1:])]
    total = round(sum(item["seconds"] for item in phases), 1)
    lines = ["%-10s %8.1f s" % (item["phase"], item["seconds"]) for item in phases]
    lines.append("%-10s %8.1f s  (%s)" % ("total", total, WINDOW_ADDS[backup_timing]))
    return {"phases": phases, "total_seconds": total, "lines": lines}


def _lookup(cur, name):
    cur.execute("SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database "
                "WHERE datname = %s", (name,))
    row = cur.fetchone()
    return (row is not None), (row[0] if row else None)


def manage_scratch(target, name, run_id, state, journal, encoding="UTF8"):
    """Create (replacing an earlier one of ours) or drop the scratch database; returns the action taken."""
    conn = connect(target, target["maintenance_db"], autocommit=True)
    try:
        with conn.cursor() as cur:
            exists, comment = _lookup(cur, name)
            action = scratch_action(exists, comment, state)
            if action == "refuse":
                raise RehearsalError(["database %s exists on the target server %s and was not made by a rehearsal "
                                      "(its comment does not carry the rehearsal mark): a rehearsal never drops a "
                                      "database it did not create; set consolidation_rehearsal_database to a free "
                                      "name" % (quote_ident(name), address(target))])
            database = sql.Identifier(name)
            if action in ("replace", "drop"):
                journal.change(cur, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(database))
            if action in ("replace", "create"):
                journal.change(cur, sql.SQL("CREATE DATABASE {} ENCODING {} TEMPLATE template0").format(
                    database, sql.Literal(encoding)))
                journal.change(cur, sql.SQL("COMMENT ON DATABASE {} IS {}").format(database, sql.Literal(mark(run_id))))
            return action
    finally:
        conn.close()
