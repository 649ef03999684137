# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operations on whole databases, shared by the decommission and the rollback.

The catalog facts of a database that its pg_dump archive does not hold
(owner, comment, settings, grants, connection limit), read before it is
retired and put back when it is restored; the sessions connected to it;
closing it to connections, renaming and dropping it; and the lock on
the run directory that keeps a decommission and a rollback of one run from
interleaving. Every statement goes through the module's journal, so check
mode records the changes instead of making them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import time

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import directory_lock

MAX_IDENTIFIER_BYTES = 63
# pg_dump's list of settings whose value is a list of (quoted) names (variable_is_guc_list_quote).
GUC_LIST_QUOTE = ("local_preload_libraries", "search_path", "session_preload_libraries", "shared_preload_libraries",
                  "temp_tablespaces", "unix_socket_directories")
DATABASE_PRIVILEGES = ("CREATE", "CONNECT", "TEMPORARY")

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


class DatabaseOperationError(ConsolidationError):
    """A database could not be closed, emptied of sessions, renamed or dropped."""


def suffixed_name(name, suffix):
    """``name + suffix`` within PostgreSQL's 63 bytes: ``name`` is shortened (never mid-character)."""
    room = MAX_IDENTIFIER_BYTES - len(suffix.encode("utf-8"))
    encoded = name.encode("utf-8")
    if len(encoded) > room:
        name = encoded[:room].decode("utf-8", "ignore")
    return name + suffix


def describe_session(session):
    return "pid %s, user %s, application %r, client %s, %s" % (
        session.get("pid"), session.get("user"), session.get("application") or "",
        session.get("client_addr") or "local", session.get("state") or "state unknown")


@contextlib.contextmanager
def maintenance_cursor(endpoint):
    """A cursor on the server's maintenance database, in autocommit (databases are created, renamed and
    dropped outside a transaction)."""
    conn = connect(endpoint, endpoint.get("maintenance_db") or "postgres", autocommit=True)
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


@contextlib.contextmanager
def run_lock(run_dir, check_mode):
    """Hold an exclusive lock on the run directory while a decommission or rollback changes things:
    two of them must not interleave their records. Check mode only reads and takes no lock."""
    if check_mode or not os.path.isdir(run_dir):
        yield
        return
    with directory_lock(run_dir, DatabaseOperationError("run %s is being decommissioned or rolled back by another "
                                                        "play" % run_dir)):
        yield


# -- reads ------------------------------------------------------------------------------------


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


# -- database settings as the catalog stores them ----------------------------------------------


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


# -- changes ----------------------------------------------------------------------------------


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
    Returns the sessions terminated (in check mode, those that would be);
    raises DatabaseOperationError when some outlive ``timeout``.
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
            raise DatabaseOperationError("%d session(s) on %s survived pg_terminate_backend for %d s: %s" % (
                len(remaining), database, timeout, ", ".join(str(session["pid"]) for session in remaining)))
        time.sleep(0.2)


def close_and_retire(cur, journal, database, new_name, terminate):
    """Close ``database`` to connections, then rename it to ``new_name`` (None: drop it).

    With ``terminate`` the sessions still connected are terminated first; without it a session that
    connected since the caller looked refuses. Reopens the database when anything fails. Returns the
    sessions terminated.
    """
    set_allow_connections(cur, journal, database, False)
    try:
        terminated = []
        if terminate:
            terminated = terminate_sessions(cur, journal, database)
        else:
            # Someone may have connected between the caller's look and the close: they would block the rename.
            late = list_sessions(cur, journal, [database])[database]
            if late and not journal.check_mode:
                raise DatabaseOperationError("session(s) connected to %s while it was being closed: %s; it was "
                                             "opened again" % (database, ", ".join(str(s["pid"]) for s in late)))
        if new_name is None:
            drop_database(cur, journal, database)
        else:
            rename_database(cur, journal, database, new_name)
    except Exception:
        if not journal.check_mode:
            set_allow_connections(cur, journal, database, True)
        raise
    return terminated


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
