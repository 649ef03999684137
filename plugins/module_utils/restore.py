# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring the legacy databases back (the migration plan's Rollback Plan).

For each legacy database a rollback decides (``restore_decision``, pure):

``present``  it is there and takes connections: compare its row counts with the manifest, leave it
``reopen``   it is there but closed (``datallowconn`` false, an interrupted decommission): open it, compare
``undo``     the decommission renamed it: open the renamed database, compare, rename it back
``restore``  it is gone (dropped, or lost): ``pg_restore`` the set's archive - the ``final`` generation
             when there is one, else the first - into a new database ``<db>_restoring``, compare
             its row counts with the manifest, and only then rename it into place

Nothing is dropped or renamed before every archive to restore has matched its sha256
(a mismatch refuses the whole rollback, naming the file), and a database is put in
place only after its row counts matched. The row counts compared are the manifest's,
taken in the dump's own snapshot.

The first half of this file is pure and unit-tested; the second half talks to the
server (through the module's journal, which keeps every statement and program that
ran, or in check mode would run) and to ``pg_restore``. The operations on whole
databases that the decommission shares are in ``dbops.py``; which ``pg_restore``
reads the archives is ``pgclient``'s subject.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    connect,
    libpq_environment,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.dbops import (
    apply_properties,
    close_and_retire,
    drop_database,
    list_sessions,
    maintenance_cursor,
    read_catalog,
    rename_database,
    set_allow_connections,
    suffixed_name,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import (
    address,
    render_table,
    utc_day,
    utc_now,
    utc_timestamp,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.manifest import (
    find_archive,
    load_manifest,
    validate_set_id,
    verify_archive,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.pgclient import (
    ClientProgramError,
    locate_pg_restore,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.retire import (
    FINAL_LABEL,
    check_mapping,
    check_sessions,
    record_entry,
    record_problems,
    with_entry,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    DECOMMISSION_RECORD,
    MANIFEST,
    PLAN,
    ROLLBACK_RECORD,
    read_json,
    write_private_json,
)

ROLLBACK_RECORD_KIND = "classifiedads.consolidation.rollback"
SCRATCH_SUFFIX = "_restoring"
ROLLED_BACK_INFIX = "_rolledback_"
# The comment a scratch database carries: a leftover with it is ours to drop, any other is not.
SCRATCH_MARKER = "classifiedads.consolidation: restoring "

# CREATE DATABASE options that pg_dump writes and a restore must keep (encoding and locale
# decide text ordering and so every index on text). TEMPLATE is always template0.
_WORD_OPTIONS = ("LOCALE_PROVIDER",)
_LITERAL_OPTIONS = ("ENCODING", "LOCALE", "LC_COLLATE", "LC_CTYPE", "ICU_LOCALE", "ICU_RULES", "BUILTIN_LOCALE")
_IDENT = r'(?:"(?:[^"]|"")*"|[^\s";]+)'
_CREATE_DATABASE = re.compile(r"^CREATE DATABASE " + _IDENT + r" WITH (.*?);\s*$", re.MULTILINE | re.DOTALL)
_OWNER = re.compile(r"^ALTER DATABASE " + _IDENT + r" OWNER TO (" + _IDENT + r");\s*$", re.MULTILINE)
_OPTION = re.compile(r"([A-Z_]+) = ('(?:[^']|'')*'|[^\s']+)")
# How the summary line and the table name each action.
SUMMARY_WORDS = {"present": "already present", "reopen": "reopened", "undo": "renamed back", "restore": "restored"}
OUTCOME_WORDS = dict(SUMMARY_WORDS, undo="undone (renamed back)")
NOT_BACKED_UP = ("not compared: the run ended before its backup, so there is no manifest to compare it with; it "
                 "never left its place and was left as it is")


class RestoreError(ConsolidationError):
    """The rollback cannot go on; ``problems`` lists every reason (nothing was changed when raised early)."""


# -- pure decisions ---------------------------------------------------------------------------


def scratch_name(database):
    """``<database>_restoring``, where an archive is restored before it is put in place."""
    return suffixed_name(database, SCRATCH_SUFFIX)


def rolled_back_name(database, day):
    """``<database>_rolledback_<YYYYMMDD>``, what a rollback renames the consolidated database to."""
    return suffixed_name(database, ROLLED_BACK_INFIX + day)


def choose_archive(manifest, database):
    """The archive a rollback uses: the ``final`` generation if the set has one, else the first."""
    return find_archive(manifest, database, FINAL_LABEL) or find_archive(manifest, database, None)


def restore_decision(database, entry, catalog):
    """What a rollback does with ``database``: a dict with ``action`` and ``from`` (or ``problem``).

    ``entry`` is its decommission record entry (None when it was never retired),
    ``catalog`` maps the database names found on the server to
    ``{"allow_connections": bool, "comment": str}``.
    """
    if database in catalog:
        if catalog[database]["allow_connections"]:
            return dict(action="present", source=database)
        return dict(action="reopen", source=database)
    retired = (entry or {}).get("retired_name")
    if (entry or {}).get("mode") == "rename" and retired and retired in catalog:
        return dict(action="undo", source=retired)
    scratch = scratch_name(database)
    if scratch in catalog and not (catalog[scratch].get("comment") or "").startswith(SCRATCH_MARKER):
        return dict(action=None, problem="cannot restore %s: a database named %s exists that this collection did "
                    "not create (drop or rename it first)" % (database, scratch))
    return dict(action="restore", source=None, leftover_scratch=scratch in catalog)


def count_differences(expected_tables, counted):
    """Lines for every table whose count differs from the manifest (empty when all match).

    ``expected_tables`` is a manifest entry's ``tables`` ([{schema, table, rows}]),
    ``counted`` maps ``(schema, table)`` to the exact count now (absent: no such table).
    """
    lines = []
    for table in expected_tables:
        key = (table["schema"], table["table"])
        name = "%s.%s" % key
        if key not in counted:
            lines.append("%s: missing (manifest %d rows)" % (name, table["rows"]))
        elif counted[key] != table["rows"]:
            lines.append("%s: %d rows, manifest %d" % (name, counted[key], table["rows"]))
    return lines


def _unquote_ident(text):
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def parse_create_database(script):
    """Owner and CREATE DATABASE options from ``pg_restore --create`` output.

    Returns ``{"owner": str or None, "options": [(KEYWORD, value), ...]}`` with
    the options a restore keeps (encoding and locale); values unquoted.
    """
    match = _CREATE_DATABASE.search(script or "")
    if not match:
        raise RestoreError("the archive has no CREATE DATABASE entry (not a pg_dump archive of a whole database?)")
    options = []
    for keyword, value in _OPTION.findall(match.group(1)):
        if keyword in _LITERAL_OPTIONS and value.startswith("'"):
            options.append((keyword, value[1:-1].replace("''", "'")))
        elif keyword in _WORD_OPTIONS and re.match(r"^[a-z]+$", value):
            options.append((keyword, value))
    owner = _OWNER.search(script)
    return {"owner": _unquote_ident(owner.group(1)) if owner else None, "options": options}


# -- the server -------------------------------------------------------------------------------


def count_tables(endpoint, database, tables, journal):
    """Exact ``count(*)`` of each manifest table present in ``database``, in one snapshot."""
    conn = connect(endpoint, database)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            journal.execute(cur, "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
                                 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE c.relkind IN ('r', 'p')")
            existing = set(cur.fetchall())
            counted = {}
            for table in tables:
                key = (table["schema"], table["table"])
                if key in existing:
                    journal.execute(cur, sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(*key)))
                    counted[key] = cur.fetchone()[0]
        conn.rollback()
    finally:
        conn.close()
    return counted


def verify_counts(endpoint, database, archive, journal):
    """Compare ``database`` with the manifest entry ``archive``: the list of differences."""
    return count_differences(archive["tables"], count_tables(endpoint, database, archive["tables"], journal))


# -- pg_restore -------------------------------------------------------------------------------


def archive_database_definition(pg_restore, path, journal):
    """Owner, encoding and locale of the archived database, from its CREATE DATABASE entry."""
    rc, out, err = journal.run([pg_restore, "--create", "--schema-only", "--section=pre-data", "--file=-", path])
    if rc != 0:
        raise RestoreError("pg_restore cannot read %s (exit %d): %s" % (path, rc, err.strip()))
    return parse_create_database(out)


def create_database_statement(name, owner, options):
    clauses = [sql.SQL("OWNER = {}").format(sql.Identifier(owner)), sql.SQL("TEMPLATE = template0")]
    for keyword, value in options:
        value_sql = sql.SQL(value) if keyword in _WORD_OPTIONS else sql.Literal(value)
        clauses.append(sql.SQL("{} = {}").format(sql.SQL(keyword), value_sql))
    return sql.SQL("CREATE DATABASE {} WITH ").format(sql.Identifier(name)) + sql.SQL(" ").join(clauses)


def pg_restore_argv(pg_restore, path, no_owner, no_privileges):
    # The database name reaches libpq through PGDATABASE: a connection string without a
    # dbname makes pg_restore connect (it writes a script otherwise) and keeps the name,
    # which may contain "=", off the command line.
    argv = [pg_restore, "--dbname=application_name=classifiedads.consolidation", "--no-password",
            "--exit-on-error", "--single-transaction"]
    if no_owner:
        argv.append("--no-owner")
    if no_privileges:
        argv.append("--no-privileges")
    return argv + [path]


def restore_archive(endpoint, database, path, pg_restore, options, journal):
    """Run pg_restore of ``path`` into the existing, empty ``database``."""
    with libpq_environment(endpoint, database) as env:
        rc, _out, err = journal.run_change(pg_restore_argv(pg_restore, path, options.get("no_owner"),
                                                           options.get("no_privileges")), env)
    if rc != 0:
        raise RestoreError("pg_restore of %s into %s failed (exit %d): %s" % (path, database, rc, err.strip()))


def roles_of(cur, journal):
    """``(login role, {every role}, {roles the login is a member of})`` (a superuser is a member of all)."""
    journal.execute(cur, "SELECT current_user")
    login = cur.fetchone()[0]
    journal.execute(cur, "SELECT rolname, pg_catalog.pg_has_role(current_user, oid, 'MEMBER') FROM pg_catalog.pg_roles")
    rows = cur.fetchall()
    return login, set(name for name, _member in rows), set(name for name, member in rows if member)


def restore_owner(candidates, login, member_of):
    """The first of ``candidates`` the login may give a database to (it is a member), else the login."""
    for owner in candidates:
        if owner and owner in member_of:
            return owner
    return login


# -- the rollback of the databases ------------------------------------------------------------


def new_rollback_record(run_id, set_id):
    return {"format": 1, "kind": ROLLBACK_RECORD_KIND, "run_id": run_id, "backup_set": set_id, "databases": [],
            "target": None}


def _archive_summary(archive):
    if archive is None:
        return None
    return dict((key, archive.get(key)) for key in ("file", "label", "sha256", "size", "started_at"))


class Rollback(object):
    """One rollback of a run: evaluated completely (``plan``) before anything changes (``apply``)."""

    def __init__(self, params, journal, now=None):
        self.params = params
        self.journal = journal
        self.now = now or utc_now()
        self.source = params["source"]
        self.databases = list(params["databases"])
        self.run_dir = params["run_dir"]
        self.record_path = os.path.join(self.run_dir, DECOMMISSION_RECORD)
        self.rollback_path = os.path.join(self.run_dir, ROLLBACK_RECORD)
        self.items = []
        self.target_item = None
        self.pg_restore = None
        self.warnings = []
        self.started = False

    # -- evaluation (reads only) --

    def plan(self):
        """Decide for each database and check every archive to restore; raises RestoreError, changing nothing."""
        self.set_id = validate_set_id(self.params["set_id"])
        self.set_dir = os.path.join(os.path.abspath(self.params["backup_root"]), self.set_id)
        problems = []
        run_plan = read_json(os.path.join(self.run_dir, PLAN), error=RestoreError)
        problems.extend(check_mapping(self.databases, run_plan, [self.source.get("maintenance_db")]))
        if problems:
            raise RestoreError(problems)
        self.run_id = run_plan["run_id"]
        # No manifest: the run ended before its backup (consolidation_backup_timing after_start takes it once the
        # application is back). A database still in place is the fenced original; anything else cannot come back.
        manifest = load_manifest(self.set_dir, self.set_id, address(self.source))
        self.record = read_json(self.record_path, error=RestoreError)
        if self.record is not None:
            problems.extend(record_problems(self.record, self.run_id, self.set_id))
        self.rollback_record = (read_json(self.rollback_path, error=RestoreError)
                                or new_rollback_record(self.run_id, self.set_id))
        if problems:
            raise RestoreError(problems)

        names = list(self.databases)
        for database in self.databases:
            names.append(scratch_name(database))
            names.append((record_entry(self.record, database) or {}).get("retired_name"))
        with maintenance_cursor(self.source) as cur:
            self.catalog = read_catalog(cur, self.journal, names)
            self.login, self.roles, self.member_of = roles_of(cur, self.journal)

        for database in self.databases:
            entry = record_entry(self.record, database)
            decision = restore_decision(database, entry, self.catalog)
            archive = choose_archive(manifest, database) if manifest is not None else None
            item = dict(database=database, action=decision["action"], source=decision.get("source"),
                        archive=_archive_summary(archive), verified=None, differences=[],
                        changed=decision["action"] in ("reopen", "undo", "restore")
                        or (entry is not None and entry.get("state") != "rolled_back"),
                        leftover_scratch=decision.get("leftover_scratch", False), note=None,
                        recorded_state=(entry or {}).get("state"))
            item["_archive"], item["_entry"] = archive, entry
            self.items.append(item)
            if decision.get("problem"):
                problems.append(decision["problem"])
            if manifest is None and decision["action"] == "present":
                item["note"] = NOT_BACKED_UP
            elif manifest is None:
                problems.append("backup set %s has no %s, so %s (%s) cannot be brought back: the run ended before "
                                "its backup" % (self.set_dir, MANIFEST, database, decision["action"]))
            elif archive is None:
                problems.append("backup set %s has no archive of %s" % (self.set_id, database))
            elif decision["action"] == "restore":
                if not archive.get("verified"):
                    problems.append("archive %s of %s was never verified" % (
                        os.path.join(self.set_dir, archive["file"]), database))
                else:
                    problem = verify_archive(os.path.join(self.set_dir, archive["file"]), archive["sha256"],
                                             archive.get("size"))
                    if problem:
                        problems.append(problem)
            elif decision["action"] == "present":
                self._verify_present(item, archive, problems)
        to_restore = [item["_archive"] for item in self.items if item["action"] == "restore" and item["_archive"]]
        if to_restore and not problems:
            try:
                self.pg_restore = locate_pg_restore(self.params.get("pg_restore_path"), to_restore, self.journal)
            except ClientProgramError as exc:
                problems.extend(exc.problems)
        if self.params.get("retire_target"):
            problems.extend(self._plan_target())
        if problems:
            raise RestoreError(problems)

    def _verify_present(self, item, archive, problems):
        differences = verify_counts(self.source, item["database"], archive, self.journal)
        item.update(verified=not differences, differences=differences)
        if not differences:
            return
        earlier = [entry for entry in self.rollback_record["databases"] if entry["database"] == item["database"]]
        message = "%s is in place but differs from archive %s: %s" % (
            item["database"], archive["file"], "; ".join(differences))
        if earlier:
            item["note"] = "changed since rollback brought it back at %s" % earlier[0]["rolled_back_at"]
            self.warnings.append(message + " (changed since this rollback brought it back at %s; left as it is)"
                                 % earlier[0]["rolled_back_at"])
        elif self.params.get("verify_present", True):
            problems.append(message + "; it was left as it is (verify_present=false accepts it)")
        else:
            self.warnings.append(message + "; left as it is")

    def _plan_target(self):
        target, database = self.params.get("target"), self.params.get("target_database")
        if not target or not database:
            return ["retire_target needs target and target_database"]
        new_name = rolled_back_name(database, utc_day(self.now))
        with maintenance_cursor(target) as cur:
            catalog = read_catalog(cur, self.journal, [database, new_name])
            sessions = list_sessions(cur, self.journal, [database])[database] if database in catalog else []
        recorded = self.rollback_record.get("target") or {}
        self.target_item = dict(database=database, retired_name=new_name, sessions=sessions, changed=False,
                                action="retire" if database in catalog else "absent")
        if database not in catalog:
            if recorded.get("database") == database:
                self.target_item.update(action="already_retired", retired_name=recorded.get("retired_name"))
            return []
        problems = []
        if new_name in catalog:
            problems.append("cannot retire %s: a database named %s already exists" % (database, new_name))
        problems.extend(check_sessions({database: sessions}, self.params.get("terminate_sessions")))
        return problems

    # -- changes --

    def apply(self):
        """Bring back what ``plan`` decided, each database put in place only after its row counts matched."""
        self.started = True
        for item in self.items:
            if item["action"] == "reopen":
                self._reopen(item)
            elif item["action"] == "undo":
                self._undo(item)
            elif item["action"] == "restore":
                self._restore(item)
            self._record(item)
        if self.target_item and self.target_item["action"] == "retire":
            self._retire_target()

    def _counts_or_fail(self, item, database, archive, undo):
        if self.journal.check_mode:
            return
        differences = verify_counts(self.source, database, archive, self.journal)
        item.update(verified=not differences, differences=differences)
        if differences:
            undo()
            raise RestoreError("%s differs from archive %s, so it was not put in place: %s"
                               % (database, archive["file"], "; ".join(differences)))

    def _reopen(self, item):
        with maintenance_cursor(self.source) as cur:
            set_allow_connections(cur, self.journal, item["database"], True)
        self._counts_or_fail(item, item["database"], item["_archive"], lambda: None)

    def _undo(self, item):
        retired = item["source"]
        with maintenance_cursor(self.source) as cur:
            set_allow_connections(cur, self.journal, retired, True)

            def close_again():
                set_allow_connections(cur, self.journal, retired, False)

            self._counts_or_fail(item, retired, item["_archive"], close_again)
            rename_database(cur, self.journal, retired, item["database"])

    def _restore(self, item):
        database, archive = item["database"], item["_archive"]
        path = os.path.join(self.set_dir, archive["file"])
        scratch = scratch_name(database)
        definition = archive_database_definition(self.pg_restore, path, self.journal)
        properties = ((item["_entry"] or {}).get("properties")) or {}
        owner = restore_owner([properties.get("owner"), definition["owner"]], self.login, self.member_of)
        with maintenance_cursor(self.source) as cur:
            if item["leftover_scratch"]:
                drop_database(cur, self.journal, scratch)
            self.journal.change(cur, create_database_statement(scratch, owner, definition["options"]))
            self.journal.change(cur, sql.SQL("COMMENT ON DATABASE {} IS %s").format(sql.Identifier(scratch)),
                                ("%s%s from backup set %s, %s" % (SCRATCH_MARKER, database, self.set_id,
                                                                  archive["file"]),))
        restore_archive(self.source, scratch, path, self.pg_restore, self.params, self.journal)
        self._counts_or_fail(item, scratch, archive, lambda: None)
        with maintenance_cursor(self.source) as cur:
            rename_database(cur, self.journal, scratch, database)
            self.warnings.extend(apply_properties(cur, self.journal, database, properties, self.roles))
        item["owner"] = owner
        if not properties:
            item["note"] = ("no decommission record of its database-level settings and grants: only its contents, "
                            "owner, encoding and locale came back")

    def _record(self, item):
        """Mark the decommission entry rolled back and note what was done, unless nothing changed."""
        if self.journal.check_mode or not item["changed"]:
            return
        entry = item["_entry"]
        stamp = utc_timestamp(self.now)
        if entry is not None and entry.get("state") != "rolled_back":
            self.record = with_entry(self.record, dict(entry, state="rolled_back", rolled_back_at=stamp,
                                                       rollback_action=item["action"]))
            write_private_json(self.record_path, self.record)
        done = dict(database=item["database"], action=item["action"], source=item["source"],
                    archive=item["archive"], verified=item["verified"], rolled_back_at=stamp)
        self.rollback_record["databases"] = [existing for existing in self.rollback_record["databases"]
                                             if existing["database"] != item["database"]] + [done]
        write_private_json(self.rollback_path, self.rollback_record)

    def _retire_target(self):
        item = self.target_item
        item["changed"] = True
        with maintenance_cursor(self.params["target"]) as cur:
            # Sessions refused the plan unless terminate_sessions; any that connected since are terminated.
            item["terminated"] = close_and_retire(cur, self.journal, item["database"], item["retired_name"],
                                                  terminate=True)
        if not self.journal.check_mode:
            self.rollback_record["target"] = dict(database=item["database"], retired_name=item["retired_name"],
                                                  retired_at=utc_timestamp(self.now))
            write_private_json(self.rollback_path, self.rollback_record)

    # -- what the module reports --

    def failure_message(self, problems):
        """Refused: found before anything changed. Failed: something may have changed; the result says what."""
        return "rollback %s: %s" % ("failed" if self.started else "refused", "; ".join(problems))

    def summary(self):
        """``restored: A, B; renamed back: C`` (in check mode ``would be restored: ...``)."""
        names = {}
        for item in self.items:
            names.setdefault(item["action"], []).append(item["database"])
        would = "would be " if self.journal.check_mode else ""
        parts = ["%s%s: %s" % ("" if action == "present" else would, SUMMARY_WORDS[action], ", ".join(names[action]))
                 for action in ("undo", "restore", "reopen", "present") if action in names]
        target = self.target_item
        if target and target["action"] == "retire":
            parts.append("%s %sclosed and renamed to %s" % (target["database"], would, target["retired_name"]))
        return "; ".join(parts)

    def table(self):
        """One line per database: its outcome, whether its rows matched the manifest, and where it came from."""
        rows = []
        for item in self.items:
            rows.append([
                item["database"], OUTCOME_WORDS.get(item["action"], "-"),
                "verified" if item["verified"] else ("differ" if item["verified"] is False else "-"),
                (item["archive"] or {}).get("file") if item["action"] == "restore" else item["source"],
                "; ".join(item["differences"] + ([item["note"]] if item["note"] else []))])
        return render_table(("database", "outcome", "rows", "from", "note"), rows)

    def result(self):
        public = [dict((key, value) for key, value in item.items() if not key.startswith("_")) for item in self.items]
        changed = any(item["changed"] for item in self.items) or bool(self.target_item and self.target_item["changed"])
        return dict(
            changed=changed,
            databases=public, target=self.target_item, pg_restore=self.pg_restore,
            record=self.record_path, rollback_record=self.rollback_path, table_text=self.table(),
            queries=self.journal.queries, commands=self.journal.commands)
