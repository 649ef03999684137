# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The write fence: the legacy databases refuse writes from the start of the window until rollback.

*Fencing* a database sets ``default_transaction_read_only = on`` for it
(``ALTER DATABASE``, from the maintenance database). A session reads the
database's settings when it connects, so every session that connects after
the fence is read-only: its INSERT, UPDATE and DELETE fail with PostgreSQL's
"cannot execute ... in a read-only transaction" while reads go on. A session
that connected before keeps the setting it started with and could still
write: those are ended (``pg_terminate_backend``), after waiting up to a
timeout for them to close on their own when the play has just stopped the
application. Then no session that connected before the fence may be left.

A session may still ``SET default_transaction_read_only = off`` and write on
purpose: the fence stops accidents (a cron job, a forgotten worker), not a
writer who means it; the verification catches that one.

*Lifting* resets the setting on each legacy database that is still on the
server, under its own name or the name the decommission retired it to.
Sessions that connected while the fence was up stay read-only until they
reconnect; they are reported, not ended.

What was done is kept in ``<run_dir>/fence.json`` (0600): per database the
time of the fence (the server's clock right after the ``ALTER DATABASE``),
the sessions ended, and the time it was lifted.

The first half of this file is pure and unit-tested; :class:`Fence` talks
to the server through the module's journal, so check mode reads everything,
runs none of the changes and reports them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.dbops import (
    describe_session,
    maintenance_cursor,
    read_catalog,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import (
    parse_utc,
    quote_ident,
    render_table,
    utc_timestamp,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.retire import (
    check_mapping,
    record_entry,
    with_entry,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    DECOMMISSION_RECORD,
    FENCE_RECORD,
    PLAN,
    read_json,
    write_private_json,
)

SETTING = "default_transaction_read_only"
RECORD_KIND = "classifiedads.consolidation.fence"
RECORD_FORMAT = 1
# How long terminated sessions may take to disappear from pg_stat_activity.
TERMINATE_TIMEOUT = 30.0
POLL_INTERVAL = 0.2

# A WAL sender streaming a logical slot decodes WAL and writes nothing to its database: online mode's cutover
# fences the legacy databases while the appliers' streams carry the last changes, so it is neither waited for
# nor ended.
SESSIONS_QUERY = """
SELECT pid, datname, usename, application_name, client_addr::text, state, backend_type, backend_start
FROM pg_catalog.pg_stat_activity
WHERE datname = ANY(%s) AND pid <> pg_catalog.pg_backend_pid() AND backend_type <> 'autovacuum worker'
  AND NOT (backend_type = 'walsender' AND pid IN (
    SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_type = 'logical' AND active_pid IS NOT NULL))
ORDER BY datname, pid
"""


class FenceError(ConsolidationError):
    """The fence could not be set, completed or lifted; ``problems`` lists every reason."""


# -- pure decisions ---------------------------------------------------------------------------


def parse_bool(value):
    """A boolean setting's value as PostgreSQL's parse_bool reads it (on, true, yes, 1 and their prefixes)."""
    text = (value or "").strip().lower()
    if text in ("on", "1"):
        return True
    if text in ("off", "of", "0", "o"):
        return False
    return bool(text) and ("true".startswith(text) or "yes".startswith(text))


def is_fenced(settings):
    """Whether a database's own settings (``name=value`` strings, as pg_db_role_setting holds them) fence it."""
    for setting in settings or []:
        name, _sep, value = setting.partition("=")
        if name.strip().lower() == SETTING:
            return parse_bool(value)
    return False


def fence_actions(databases, catalog, record):
    """What the fence does with each database: ``{database: (action, recorded fence time or None)}``.

    ``fence``           not fenced yet: set the fence now
    ``already_fenced``  fenced, by this run's record at the time it gives; without a record
                        entry (fenced by hand, or the record was lost) the time is unknown
                        (None) and every session now connected counts as older than the fence
    ``missing``         not on the server
    """
    actions = {}
    for database in databases:
        if database not in catalog:
            actions[database] = ("missing", None)
        elif not is_fenced(catalog[database].get("settings")):
            actions[database] = ("fence", None)
        else:
            entry = record_entry(record, database) or {}
            recorded = parse_utc(entry.get("fenced_at")) if entry.get("state") == "fenced" else None
            actions[database] = ("already_fenced", recorded)
    return actions


def sessions_to_end(sessions, fenced_at):
    """The sessions that connected before ``fenced_at`` and so may still write.

    ``backend_start`` is None when the login may not see it (a session of
    another role, without pg_read_all_stats): such a session counts as older.
    """
    return [session for session in sessions
            if session.get("backend_start") is None or session["backend_start"] < fenced_at]


def lift_name(database, catalog, decommission_entry):
    """The name ``database`` has on the server now: its own, the one the decommission renamed it to, or None."""
    if database in catalog:
        return database
    retired = (decommission_entry or {}).get("retired_name")
    if (decommission_entry or {}).get("mode") == "rename" and retired in catalog:
        return retired
    return None


def lift_action(fenced, name, entry):
    """What the lift does with one database: ``lift`` only a fence this run set (its record says so),
    ``not_ours`` for one read-only before (or without a record: left as it is, with a warning),
    ``absent`` or ``not_fenced``."""
    if name is None:
        return "absent"
    if not fenced:
        return "not_fenced"
    if not entry or entry.get("preexisting"):
        return "not_ours"
    return "lift"


def new_record(run_id):
    return {"format": RECORD_FORMAT, "kind": RECORD_KIND, "run_id": run_id, "databases": []}


def record_problems(record, run_id):
    """Why ``record`` is not this run's fence record (empty when it is)."""
    if not isinstance(record, dict) or record.get("kind") != RECORD_KIND or not isinstance(
            record.get("databases"), list):
        return ["%s is not a fence record" % FENCE_RECORD]
    if record.get("format") != RECORD_FORMAT:
        return ["%s has format %r; this collection reads %d" % (FENCE_RECORD, record.get("format"), RECORD_FORMAT)]
    if record.get("run_id") != run_id:
        return ["%s belongs to run %r, not to run %r" % (FENCE_RECORD, record.get("run_id"), run_id)]
    return []


def public_session(session):
    """What a report keeps of a session: who and where, and when it connected (no query text)."""
    started = session.get("backend_start")
    return dict(pid=session["pid"], database=session.get("database"), user=session.get("user"),
                application=session.get("application"), client_addr=session.get("client_addr"),
                state=session.get("state"), backend_start=utc_timestamp(started) if started else None)


# -- the server -------------------------------------------------------------------------------


def list_sessions(cur, journal, databases):
    """``{database: [session, ...]}`` of every other session connected to ``databases``, with ``backend_start``."""
    journal.execute(cur, SESSIONS_QUERY, (list(databases),))
    sessions = dict((name, []) for name in databases)
    for pid, datname, user, application, client, state, backend_type, started in cur.fetchall():
        sessions.setdefault(datname, []).append(dict(
            pid=pid, database=datname, user=user, application=application, client_addr=client, state=state,
            backend_type=backend_type, backend_start=started))
    return sessions


def server_now(cur, journal):
    journal.execute(cur, "SELECT pg_catalog.clock_timestamp()")
    return cur.fetchone()[0]


class Fence(object):
    """The fence of one run's legacy databases: ``fence()`` or ``lift()``, then ``result()``."""

    def __init__(self, params, journal):
        self.params = params
        self.journal = journal
        self.source = params["source"]
        self.databases = list(params["databases"])
        self.run_dir = params["run_dir"]
        self.record_path = os.path.join(self.run_dir, FENCE_RECORD)
        self.items = []
        self.warnings = []
        self.started = False

    def _load(self):
        """The run's id and its fence record; refuses databases outside the run's mapping."""
        plan = read_json(os.path.join(self.run_dir, PLAN), error=FenceError)
        if plan is None and self.journal.check_mode and not os.path.isdir(self.run_dir):
            # A first --check: preflight has not opened the run directory, the real run will have. The databases
            # are taken as given (still never a maintenance or template database).
            plan = {"run_id": os.path.basename(os.path.normpath(self.run_dir)), "mode": "existing",
                    "modules": [{"source_database": database} for database in self.databases]}
        problems = check_mapping(self.databases, plan, [self.source.get("maintenance_db")])
        if problems:
            raise FenceError(problems)
        self.run_id = plan["run_id"]
        self.record = read_json(self.record_path, error=FenceError) or new_record(self.run_id)
        problems = record_problems(self.record, self.run_id)
        if problems:
            raise FenceError(problems)

    def _write_record(self, entry):
        if self.journal.check_mode:
            return
        self.record = with_entry(self.record, entry)
        write_private_json(self.record_path, self.record)

    # -- fence --

    def fence(self):
        self._load()
        with maintenance_cursor(self.source) as cur:
            catalog = read_catalog(cur, self.journal, self.databases)
            actions = fence_actions(self.databases, catalog, self.record)
            missing = [database for database, (action, _at) in actions.items() if action == "missing"]
            if missing:
                raise FenceError("not on the source server, so it cannot be fenced: %s" % ", ".join(missing))
            self.started = True
            for database in self.databases:
                action, recorded = actions[database]
                if action == "fence":
                    self.journal.change(cur, sql.SQL("ALTER DATABASE {} SET {} = on").format(
                        sql.Identifier(database), sql.Identifier(SETTING)))
                # Taken after the ALTER committed: a session that connected later read the fence.
                fenced_at = recorded or server_now(cur, self.journal)
                item = dict(database=database, action=action, fenced_at=fenced_at, sessions_to_end=[],
                            sessions_closed=[], sessions_ended=[])
                self.items.append(item)
                if action == "fence" or recorded is None:
                    # Read-only before this run fenced anything (by hand, or an archive kept read-only): the
                    # lift must leave it so, not make it writable.
                    self._write_record(dict(database=database, state="fenced", fenced_at=utc_timestamp(fenced_at),
                                            sessions_ended=[], sessions_closed=[],
                                            preexisting=action == "already_fenced"
                                            and not (record_entry(self.record, database) or {}).get("state")))
            self._end_older_sessions(cur)
        for item in self.items:
            if item["sessions_ended"] or item["sessions_closed"]:
                entry = record_entry(self.record, item["database"])
                self._write_record(dict(entry, sessions_ended=entry["sessions_ended"] + [
                    public_session(session) for session in item["sessions_ended"]], sessions_closed=entry[
                    "sessions_closed"] + [public_session(session) for session in item["sessions_closed"]]))

    def _older(self, cur):
        """``{database: [session, ...]}`` of the sessions that connected before each database's fence."""
        sessions = list_sessions(cur, self.journal, self.databases)
        return dict((item["database"], sessions_to_end(sessions[item["database"]], item["fenced_at"]))
                    for item in self.items)

    def _end_older_sessions(self, cur):
        older = self._older(cur)
        for item in self.items:
            item["sessions_to_end"] = older[item["database"]]
        if not any(older.values()):
            return
        if self.journal.check_mode:
            self._terminate(cur, older)  # kept in the journal, not run
            return
        wait = self.params.get("wait_timeout") or 0
        deadline = time.time() + wait
        while wait and any(older.values()) and time.time() < deadline:
            time.sleep(POLL_INTERVAL)
            older = self._older(cur)
        for item in self.items:
            left = set(session["pid"] for session in older[item["database"]])
            item["sessions_closed"] = [s for s in item["sessions_to_end"] if s["pid"] not in left]
            item["sessions_ended"] = older[item["database"]]
        if any(older.values()):
            self._terminate(cur, older)
        deadline = time.time() + TERMINATE_TIMEOUT
        while any(older.values()) and time.time() < deadline:
            time.sleep(POLL_INTERVAL)
            older = self._older(cur)
        problems = ["%d session(s) on %s connected before the fence and may still write: %s" % (
            len(sessions), database, "; ".join(describe_session(session) for session in sessions))
            for database, sessions in sorted(older.items()) if sessions]
        if problems:
            raise FenceError(problems + [
                "the fence is set, but these outlived pg_terminate_backend for %d s (or started at a time this "
                "login cannot see: grant it pg_read_all_stats, and pg_signal_backend to end other roles' "
                "sessions); end them and run again" % TERMINATE_TIMEOUT])

    def _terminate(self, cur, sessions):
        pids = [session["pid"] for listed in sessions.values() for session in listed]
        self.journal.change(cur, "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                                 "WHERE pid = ANY(%s) AND datname = ANY(%s)", (pids, self.databases))

    # -- lift --

    def lift(self):
        self._load()
        decommission = read_json(os.path.join(self.run_dir, DECOMMISSION_RECORD), error=FenceError)
        retired = dict((database, record_entry(decommission, database)) for database in self.databases)
        names = self.databases + [(entry or {}).get("retired_name") for entry in retired.values()]
        with maintenance_cursor(self.source) as cur:
            catalog = read_catalog(cur, self.journal, names)
            self.started = True
            for database in self.databases:
                name = lift_name(database, catalog, retired[database])
                fenced = name is not None and is_fenced(catalog[name]["settings"])
                action = lift_action(fenced, name, record_entry(self.record, database))
                item = dict(database=database, name=name, action=action, sessions_still_read_only=[])
                self.items.append(item)
                if action == "not_ours":
                    self.warnings.append(
                        "%s was read-only before this run fenced it (or its fence record is gone): left read-only; "
                        "ALTER DATABASE %s RESET default_transaction_read_only makes it accept writes"
                        % (quote_ident(name), quote_ident(name)))
                if action != "lift":
                    continue
                self.journal.change(cur, sql.SQL("ALTER DATABASE {} RESET {}").format(
                    sql.Identifier(name), sql.Identifier(SETTING)))
                lifted_at = server_now(cur, self.journal)
                item["lifted_at"] = lifted_at
                entry = record_entry(self.record, database) or dict(database=database)
                self._write_record(dict(entry, state="lifted", lifted_at=utc_timestamp(lifted_at), lifted_name=name))
            lifted = [item for item in self.items if item["action"] == "lift"]
            sessions = list_sessions(cur, self.journal, [item["name"] for item in lifted])
        for item in lifted:
            item["sessions_still_read_only"] = sessions[item["name"]]
            if item["sessions_still_read_only"]:
                self.warnings.append(
                    "%d session(s) connected to %s while it was fenced stay read-only until they reconnect: %s" % (
                        len(item["sessions_still_read_only"]), item["name"],
                        "; ".join(describe_session(s) for s in item["sessions_still_read_only"])))

    # -- what the module reports --

    def failure_message(self, problems):
        """Refused: nothing changed. Failed: the fence may be partly in place; the result says what."""
        return "write fence %s: %s" % ("failed" if self.started else "refused", "; ".join(problems))

    def changed(self):
        return any(item["action"] in ("fence", "lift") or item.get("sessions_ended") or item.get("sessions_closed")
                   for item in self.items) or (self.journal.check_mode and any(
                       item.get("sessions_to_end") for item in self.items))

    def summary(self):
        would = "would be " if self.journal.check_mode else ""
        groups = {}
        for item in self.items:
            groups.setdefault(item["action"], []).append(item["name"] if item["action"] == "lift" and item["name"]
                                                         != item["database"] else item["database"])
        words = {"fence": would + "fenced", "already_fenced": "already fenced", "lift": would + "lifted",
                 "not_fenced": "not fenced", "absent": "not on the server",
                 "not_ours": "left read-only (read-only before this run)"}
        parts = ["%s: %s" % (words[action], ", ".join(names)) for action, names in sorted(groups.items())]
        ending = sum(len(item.get("sessions_to_end") or []) for item in self.items)
        if ending:
            parts.append("%d session(s) connected before the fence %s" % (
                ending, "would be ended" if self.journal.check_mode else "ended"))
        return "; ".join(parts)

    def table(self):
        rows = []
        for item in self.items:
            if "fenced_at" in item:
                when = utc_timestamp(item["fenced_at"])
                note = "; ".join(describe_session(s) for s in item["sessions_to_end"])
            else:
                when = utc_timestamp(item["lifted_at"]) if item.get("lifted_at") else "-"
                note = "%d session(s) read-only until they reconnect" % len(item["sessions_still_read_only"]) \
                    if item["sessions_still_read_only"] else ""
            rows.append([item["database"], item["action"], when, note])
        return render_table(("database", "action", "at", "sessions"), rows)

    def result(self):
        databases = []
        for item in self.items:
            public = dict(item)
            for key in ("fenced_at", "lifted_at"):
                if public.get(key) is not None:
                    public[key] = utc_timestamp(public[key])
            for key in ("sessions_to_end", "sessions_closed", "sessions_ended", "sessions_still_read_only"):
                if key in public:
                    public[key] = [public_session(session) for session in public[key]]
            databases.append(public)
        return dict(changed=self.changed(), databases=databases, record=self.record_path, table_text=self.table(),
                    queries=self.journal.queries)
