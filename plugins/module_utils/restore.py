# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring the legacy databases back (the migration plan's Rollback Plan), and the operations on
whole databases that the decommission shares.

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
server (through ``Journal``, which keeps every statement and program that ran, or in
check mode would run) and to ``pg_restore``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import json
import os
import re
import time

from ansible_collections.classifiedads.consolidation.plugins.module_utils.backup import (
    Recorder,
    load_manifest,
    pg_dump_candidates,
    program_major,
    server_address,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    connect,
    libpq_environment,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.manifest import (
    MANIFEST_NAME,
    BackupError,
    check_manifest,
    find_archive,
    parse_program_version,
    validate_set_id,
    verify_archive,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.preflight import write_private_json
from ansible_collections.classifiedads.consolidation.plugins.module_utils.retire import (
    FINAL_LABEL,
    PLAN_NAME,
    RECORD_NAME,
    check_mapping,
    describe_session,
    record_entry,
    record_problems,
    suffixed_name,
    utc_day,
    utc_timestamp,
    with_entry,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import directory_lock

ROLLBACK_RECORD_NAME = "rollback.json"
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
# pg_dump's list of settings whose value is a list of (quoted) names (variable_is_guc_list_quote).
GUC_LIST_QUOTE = ("local_preload_libraries", "search_path", "session_preload_libraries", "shared_preload_libraries",
                  "temp_tablespaces", "unix_socket_directories")
DATABASE_PRIVILEGES = ("CREATE", "CONNECT", "TEMPORARY")


class RestoreError(Exception):
    """The rollback cannot go on; ``problems`` lists every reason (nothing was changed when raised early)."""

    def __init__(self, problems):
        self.problems = list(problems) if isinstance(problems, (list, tuple)) else [problems]
        super(RestoreError, self).__init__("; ".join(self.problems))


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


def split_guc_list(value):
    """The items of a list setting as the server stores it (``a, "B c", d``), unquoted."""
    items, current, quoted, index = [], "", False, 0
    while index < len(value):
        char = value[index]
        if quoted:
            if char == '"' and value[index + 1:index + 2] == '"':
                current += '"'
                index += 1
            elif char == '"':
                quoted = False
            else:
                current += char
        elif char == '"':
            quoted = True
        elif char == ",":
            items.append(current.strip())
            current = ""
        else:
            current += char
        index += 1
    if current.strip() or items:
        items.append(current.strip())
    return items


def split_setting(text):
    """``("search_path", ["$user", "public"])`` from a stored ``name=value`` setting."""
    name, _sep, value = text.partition("=")
    if name.lower() in GUC_LIST_QUOTE:
        return name, split_guc_list(value)
    return name, [value]


# -- what ran ---------------------------------------------------------------------------------


class Journal(Recorder):
    """A Recorder that, in check mode, records changes instead of making them.

    ``execute``/``run`` are for reads (they run in check mode too); ``change``
    and ``run_change`` are for what changes something.
    """

    def __init__(self, run, check_mode):
        super(Journal, self).__init__(run)
        self.check_mode = check_mode

    def change(self, cur, query, params=None):
        if self.check_mode:
            text = cur.mogrify(query, params)
            self.queries.append(text.decode("utf-8", "replace") if isinstance(text, bytes) else text)
            return
        self.execute(cur, query, params)

    def run_change(self, argv, env=None):
        if self.check_mode:
            self.commands.append(list(argv))
            return 0, "", ""
        return self.run(argv, env)


# -- files ------------------------------------------------------------------------------------


def read_json(path):
    """The JSON document at ``path``, or None when there is no such file."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise RestoreError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    except ValueError as exc:
        raise RestoreError("%s is not valid JSON: %s" % (path, exc)) from None


@contextlib.contextmanager
def run_lock(run_dir, check_mode):
    """Hold an exclusive lock on the run directory while a decommission or rollback changes things:
    two of them must not interleave their records. Check mode only reads and takes no lock."""
    if check_mode or not os.path.isdir(run_dir):
        yield
        return
    with directory_lock(run_dir, RestoreError("run %s is being decommissioned or rolled back by another play"
                                              % run_dir)):
        yield


# -- the server -------------------------------------------------------------------------------


CATALOG_QUERY = """
SELECT d.datname, d.datallowconn, pg_catalog.pg_get_userbyid(d.datdba),
       pg_catalog.shobj_description(d.oid, 'pg_database'), d.datconnlimit,
       (SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0),
       d.datacl IS NULL,
       (SELECT coalesce(json_agg(json_build_object(
                  'grantee', CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
                  'privilege', a.privilege_type, 'grantable', a.is_grantable)
                ORDER BY a.grantee, a.privilege_type), '[]'::json)
          FROM pg_catalog.aclexplode(d.datacl) a)
FROM pg_catalog.pg_database d WHERE d.datname = ANY(%s)
"""

SESSIONS_QUERY = """
SELECT pid, datname, usename, application_name, client_addr::text, state, backend_type
FROM pg_catalog.pg_stat_activity
WHERE datname = ANY(%s) AND pid <> pg_catalog.pg_backend_pid() AND backend_type <> 'autovacuum worker'
ORDER BY datname, pid
"""


def read_catalog(cur, journal, names):
    """``{name: facts}`` for the databases of ``names`` that exist (facts a rollback can recreate)."""
    journal.execute(cur, CATALOG_QUERY, (sorted(set(name for name in names if name)),))
    catalog = {}
    for name, allow, owner, comment, limit, settings, acl_default, acl in cur.fetchall():
        catalog[name] = {"allow_connections": allow, "owner": owner, "comment": comment, "connection_limit": limit,
                         "settings": list(settings or []), "acl_default": acl_default, "acl": acl}
    return catalog


def list_sessions(cur, journal, databases):
    """``{database: [session, ...]}`` of every other session connected to ``databases``."""
    journal.execute(cur, SESSIONS_QUERY, (list(databases),))
    sessions = dict((name, []) for name in databases)
    for pid, datname, user, application, client, state, backend_type in cur.fetchall():
        sessions.setdefault(datname, []).append(dict(pid=pid, user=user, application=application, client_addr=client,
                                                     state=state, backend_type=backend_type))
    return sessions


def set_allow_connections(cur, journal, database, allow):
    journal.change(cur, sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
        sql.Identifier(database), sql.SQL("true" if allow else "false")))


def rename_database(cur, journal, database, new_name):
    journal.change(cur, sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(database),
                                                                         sql.Identifier(new_name)))


def drop_database(cur, journal, database):
    journal.change(cur, sql.SQL("DROP DATABASE {}").format(sql.Identifier(database)))


def terminate_sessions(cur, journal, database, timeout=30.0):
    """Terminate every other session on ``database`` and wait until they are gone.

    Call it after ``ALLOW_CONNECTIONS false``, so that none can come back.
    Returns the sessions terminated; raises RestoreError when some outlive ``timeout``.
    """
    sessions = list_sessions(cur, journal, [database])[database]
    if not sessions:
        return []
    journal.change(cur, sql.SQL("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                                "WHERE datname = %s AND pid <> pg_catalog.pg_backend_pid() "
                                "AND backend_type <> 'autovacuum worker'"), (database,))
    if journal.check_mode:
        return sessions
    deadline = time.time() + timeout
    while True:
        remaining = list_sessions(cur, journal, [database])[database]
        if not remaining:
            return sessions
        if time.time() > deadline:
            raise RestoreError("%d session(s) on %s survived pg_terminate_backend for %d s: %s" % (
                len(remaining), database, timeout, ", ".join(str(session["pid"]) for session in remaining)))
        time.sleep(0.2)


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


def archive_major(archive):
    return parse_program_version("(PostgreSQL) %s" % archive.get("pg_dump_version"))


def locate_pg_restore(explicit, archives, journal):
    """A pg_restore that reads every archive of ``archives``: the one given, else the one beside the
    pg_dump that wrote them, else the installed one closest to it."""
    needed = max(archive_major(archive) for archive in archives)
    if explicit:
        candidates = [explicit]
    else:
        candidates = [os.path.join(os.path.dirname(archive["pg_dump_path"]), "pg_restore")
                      for archive in archives if archive.get("pg_dump_path")]
        candidates += [os.path.join(os.path.dirname(path), "pg_restore") for path in pg_dump_candidates()]
    tried = []
    fitting = []
    for index, path in enumerate(candidates):
        if not os.access(path, os.X_OK) or path in tried:
            continue
        tried.append(path)
        try:
            major = program_major(path, journal)[0]
        except BackupError:
            continue
        if tuple(major) >= tuple(needed):
            fitting.append((0 if index < len(archives) and not explicit else 1, tuple(major), index, path))
    if not fitting:
        raise RestoreError("no pg_restore of PostgreSQL %s or newer found (tried: %s); install the client programs "
                           "or set pg_restore_path" % (".".join(str(part) for part in needed),
                                                       ", ".join(tried) or "none"))
    return min(fitting)[3]


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


def apply_properties(cur, journal, database, properties, existing_roles):
    """Put back what a database's pg_dump archive does not hold: comment, settings, grants, connection limit.

    ``properties`` is what the decommission recorded (the catalog facts of
    ``read_catalog``). Returns warnings for what could not be put back.
    """
    warnings = []
    name = sql.Identifier(database)
    journal.change(cur, sql.SQL("COMMENT ON DATABASE {} IS %s").format(name), (properties.get("comment"),))
    if properties.get("connection_limit", -1) != -1:
        journal.change(cur, sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(
            name, sql.Literal(int(properties["connection_limit"]))))
    for setting in properties.get("settings") or []:
        setting_name, values = split_setting(setting)
        journal.change(cur, sql.SQL("ALTER DATABASE {} SET {} TO {}").format(
            name, sql.SQL(".").join(sql.Identifier(part) for part in setting_name.split(".")),
            sql.SQL(", ").join(sql.Literal(value) for value in values)))
    if not properties.get("acl_default", True):
        owner = properties.get("owner")
        journal.change(cur, sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name))
        if owner in existing_roles:
            journal.change(cur, sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(name, sql.Identifier(owner)))
        for grant in properties.get("acl") or []:
            if grant["privilege"] not in DATABASE_PRIVILEGES:
                continue
            if grant["grantee"] != "PUBLIC" and grant["grantee"] not in existing_roles:
                warnings.append("%s: role %s no longer exists; its %s privilege was not granted again"
                                % (database, grant["grantee"], grant["privilege"]))
                continue
            grantee = sql.SQL("PUBLIC") if grant["grantee"] == "PUBLIC" else sql.Identifier(grant["grantee"])
            journal.change(cur, sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                sql.SQL(grant["privilege"]), name, grantee,
                sql.SQL(" WITH GRANT OPTION" if grant["grantable"] else "")))
    return warnings


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

    def __init__(self, params, journal, now):
        self.params = params
        self.journal = journal
        self.now = now
        self.source = params["source"]
        self.databases = list(params["databases"])
        self.set_id = validate_set_id(params["set_id"])
        self.set_dir = os.path.join(os.path.abspath(params["backup_root"]), self.set_id)
        self.run_dir = params["run_dir"]
        self.record_path = os.path.join(self.run_dir, RECORD_NAME)
        self.rollback_path = os.path.join(self.run_dir, ROLLBACK_RECORD_NAME)
        self.items = []
        self.target_item = None
        self.pg_restore = None
        self.warnings = []

    # -- evaluation (reads only) --

    def plan(self):
        problems = []
        run_plan = read_json(os.path.join(self.run_dir, PLAN_NAME))
        problems.extend(check_mapping(self.databases, run_plan, [self.source.get("maintenance_db")]))
        if problems:
            raise RestoreError(problems)
        self.run_id = run_plan["run_id"]
        manifest = load_manifest(self.set_dir)
        if manifest is None:
            raise RestoreError("backup set %s has no %s" % (self.set_dir, MANIFEST_NAME))
        check_manifest(manifest, self.set_id, server_address(self.source))
        self.record = read_json(self.record_path)
        if self.record is not None:
            problems.extend(record_problems(self.record, self.run_id, self.set_id))
        self.rollback_record = read_json(self.rollback_path) or new_rollback_record(self.run_id, self.set_id)
        if problems:
            raise RestoreError(problems)

        names = list(self.databases)
        for database in self.databases:
            names.append(scratch_name(database))
            names.append((record_entry(self.record, database) or {}).get("retired_name"))
        conn = connect(self.source, self.source.get("maintenance_db") or "postgres", autocommit=True)
        try:
            with conn.cursor() as cur:
                self.catalog = read_catalog(cur, self.journal, names)
                self.login, self.roles, self.member_of = roles_of(cur, self.journal)
        finally:
            conn.close()

        for database in self.databases:
            entry = record_entry(self.record, database)
            decision = restore_decision(database, entry, self.catalog)
            archive = choose_archive(manifest, database)
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
            if archive is None:
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
            except RestoreError as exc:
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
        conn = connect(target, target.get("maintenance_db") or "postgres", autocommit=True)
        try:
            with conn.cursor() as cur:
                catalog = read_catalog(cur, self.journal, [database, new_name])
                sessions = list_sessions(cur, self.journal, [database])[database] if database in catalog else []
        finally:
            conn.close()
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
        if sessions and not self.params.get("terminate_sessions"):
            problems.append("%d other session(s) connected to %s: %s; stop the application (or set "
                            "terminate_sessions) and run again" % (
                                len(sessions), database, "; ".join(describe_session(s) for s in sessions)))
        return problems

    # -- changes --

    def apply(self):
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

    def _maintenance(self, endpoint=None):
        endpoint = endpoint or self.source
        return connect(endpoint, endpoint.get("maintenance_db") or "postgres", autocommit=True)

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
        conn = self._maintenance()
        try:
            with conn.cursor() as cur:
                set_allow_connections(cur, self.journal, item["database"], True)
        finally:
            conn.close()
        self._counts_or_fail(item, item["database"], item["_archive"], lambda: None)

    def _undo(self, item):
        retired = item["source"]
        conn = self._maintenance()
        try:
            with conn.cursor() as cur:
                set_allow_connections(cur, self.journal, retired, True)

                def close_again():
                    set_allow_connections(cur, self.journal, retired, False)

                self._counts_or_fail(item, retired, item["_archive"], close_again)
                rename_database(cur, self.journal, retired, item["database"])
        finally:
            conn.close()

    def _restore(self, item):
        database, archive = item["database"], item["_archive"]
        path = os.path.join(self.set_dir, archive["file"])
        scratch = scratch_name(database)
        definition = archive_database_definition(self.pg_restore, path, self.journal)
        properties = ((item["_entry"] or {}).get("properties")) or {}
        owner = restore_owner([properties.get("owner"), definition["owner"]], self.login, self.member_of)
        conn = self._maintenance()
        try:
            with conn.cursor() as cur:
                if item["leftover_scratch"]:
                    drop_database(cur, self.journal, scratch)
                self.journal.change(cur, create_database_statement(scratch, owner, definition["options"]))
                self.journal.change(cur, sql.SQL("COMMENT ON DATABASE {} IS %s").format(sql.Identifier(scratch)),
                                    ("%s%s from backup set %s, %s" % (SCRATCH_MARKER, database, self.set_id,
                                                                      archive["file"]),))
        finally:
            conn.close()
        restore_archive(self.source, scratch, path, self.pg_restore, self.params, self.journal)
        self._counts_or_fail(item, scratch, archive, lambda: None)
        conn = self._maintenance()
        try:
            with conn.cursor() as cur:
                rename_database(cur, self.journal, scratch, database)
                self.warnings.extend(apply_properties(cur, self.journal, database, properties, self.roles))
        finally:
            conn.close()
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
        conn = self._maintenance(self.params["target"])
        try:
            with conn.cursor() as cur:
                set_allow_connections(cur, self.journal, item["database"], False)
                try:
                    item["terminated"] = terminate_sessions(cur, self.journal, item["database"])
                    rename_database(cur, self.journal, item["database"], item["retired_name"])
                except Exception:
                    set_allow_connections(cur, self.journal, item["database"], True)
                    raise
        finally:
            conn.close()
        if not self.journal.check_mode:
            self.rollback_record["target"] = dict(database=item["database"], retired_name=item["retired_name"],
                                                  retired_at=utc_timestamp(self.now))
            write_private_json(self.rollback_path, self.rollback_record)

    def result(self):
        public = [dict((key, value) for key, value in item.items() if not key.startswith("_")) for item in self.items]
        changed = any(item["changed"] for item in self.items) or bool(self.target_item and self.target_item["changed"])
        return dict(
            changed=changed,
            databases=public, target=self.target_item, pg_restore=self.pg_restore,
            record=self.record_path, rollback_record=self.rollback_path,
            queries=self.journal.queries, commands=self.journal.commands)
