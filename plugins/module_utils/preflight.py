# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only inspection of the source and target servers before anything changes.

``inspect_source`` and ``inspect_target`` gather facts; ``server_problems`` is
the pure judgement on those facts (unit-tested), so every problem is reported
at once, before the first change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    LATEST_POINTER,
    PLAN,
    read_json,
    write_private_file,
    write_private_json,
)


def inspect_source(endpoint, modules):
    """Which legacy databases exist, their size, tables and unreadable tables."""
    facts = {"databases": {}}
    conn = connect(endpoint, endpoint["maintenance_db"], autocommit=True)
    try:
        facts["version"] = conn.server_version
        with conn.cursor() as cur:
            # pg_database_size needs CONNECT too: without it the query itself would fail, naming nothing.
            cur.execute("SELECT datname, CASE WHEN pg_catalog.has_database_privilege(oid, 'CONNECT') "
                        "THEN pg_catalog.pg_database_size(oid) END, datallowconn, "
                        "pg_catalog.has_database_privilege(oid, 'CONNECT'), current_user "
                        "FROM pg_catalog.pg_database WHERE datname = ANY(%s)",
                        ([module["source_database"] for module in modules],))
            present = dict((name, (size, allowed, may_connect, user))
                           for name, size, allowed, may_connect, user in cur.fetchall())
    finally:
        conn.close()
    for module in modules:
        name = module["source_database"]
        if name not in present:
            continue
        size, allowed, may_connect, user = present[name]
        entry = {"size": size, "allow_connections": allowed, "may_connect": may_connect, "user": user,
                 "tables": [], "unreadable_tables": []}
        facts["databases"][name] = entry
        if not (allowed and may_connect):
            continue
        db = connect(endpoint, name)
        try:
            with db.cursor() as cur:
                cur.execute(
                    "SELECT c.relname, pg_catalog.has_table_privilege(c.oid, 'SELECT') "
                    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname",
                    (module["source_schema"],))
                for table, readable in cur.fetchall():
                    entry["tables"].append(table)
                    if not readable:
                        entry["unreadable_tables"].append(table)
        finally:
            db.rollback()
            db.close()
    return facts


def inspect_target(endpoint, target_database, schemas):
    """Whether the target database exists and what the login role may do there."""
    conn = connect(endpoint, endpoint["maintenance_db"], autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, rolsuper, rolcreatedb FROM pg_catalog.pg_roles "
                        "WHERE rolname = current_user")
            user, superuser, createdb = cur.fetchone()
            cur.execute("SELECT pg_catalog.has_database_privilege(oid, 'CREATE'), "
                        "pg_catalog.pg_get_userbyid(datdba), datallowconn "
                        "FROM pg_catalog.pg_database WHERE datname = %s", (target_database,))
            row = cur.fetchone()
        facts = {"version": conn.server_version, "user": user, "superuser": superuser, "createdb": createdb,
                 "database_exists": row is not None, "schemas": {}}
    finally:
        conn.close()
    if row is None:
        return facts
    facts.update(can_create_in_database=row[0], database_owner=row[1], allow_connections=row[2])
    if not row[2]:
        return facts
    db = connect(endpoint, target_database)
    try:
        with db.cursor() as cur:
            cur.execute("SELECT nspname, pg_catalog.pg_get_userbyid(nspowner), "
                        "pg_catalog.pg_has_role(nspowner, 'USAGE'), "
                        "(SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid "
                        " AND c.relkind IN ('r', 'p')) "
                        "FROM pg_catalog.pg_namespace n WHERE nspname = ANY(%s)", (list(schemas),))
            for name, owner, is_member, tables in cur.fetchall():
                facts["schemas"][name] = {"owner": owner, "owned_by_login": is_member, "tables": tables}
    finally:
        db.rollback()
        db.close()
    return facts


def server_problems(plan_modules, mode, source_facts, target_facts):
    """Pure: every reason not to start, given the gathered facts.

    ``mode`` is ``existing`` (legacy databases must all be there) or ``fresh``
    (no legacy data: only the target matters).
    """
    problems = []
    if mode == "existing":
        present = source_facts["databases"]
        missing = [m["source_database"] for m in plan_modules if m["source_database"] not in present]
        if missing:
            problems.append("legacy database(s) not found on the source server: %s" % ", ".join(missing))
        for name, entry in sorted(present.items()):
            if not entry["allow_connections"]:
                problems.append("legacy database %s does not allow connections (already retired?)" % name)
            elif not entry.get("may_connect", True):
                problems.append("the source role %s may not connect to the legacy database %s: GRANT CONNECT ON "
                                "DATABASE %s TO %s" % (entry["user"], name, quote_ident(name),
                                                       quote_ident(entry["user"])))
            if entry["unreadable_tables"]:
                problems.append("the source role cannot SELECT from %s tables: %s"
                                % (name, ", ".join(entry["unreadable_tables"])))
    if target_facts["database_exists"]:
        if not target_facts.get("allow_connections", True):
            problems.append("target database does not allow connections")
        elif not (target_facts["superuser"] or target_facts.get("can_create_in_database")):
            problems.append("the target role %s has no CREATE privilege on the target database (it creates the "
                            "module schemas and the copy's state schema there)" % target_facts["user"])
        foreign = [name for name, schema in sorted(target_facts["schemas"].items())
                   if not (schema["owned_by_login"] or target_facts["superuser"])]
        if foreign:
            problems.append("the target role %s does not own the existing schema(s) %s: loading needs the owner's "
                            "rights (drop/recreate deferred indexes and foreign keys)"
                            % (target_facts["user"], ", ".join(foreign)))
    elif not (target_facts["superuser"] or target_facts["createdb"]):
        problems.append("the target database does not exist and the target role %s may not create databases "
                        "(needs CREATEDB)" % target_facts["user"])
    return problems


def decide_mode(requested, plan_modules, source_facts):
    """``existing`` or ``fresh``; ``auto`` means fresh only when no legacy database exists at all."""
    if requested != "auto":
        return requested
    return "existing" if source_facts["databases"] else "fresh"


def mode_reason(requested, mode, plan_modules, server):
    """Why the run takes the path it takes, for the plan and the operator; names what auto did not find.

    A mistyped database name (or prefix) in the mapping looks exactly like a fresh
    deployment to ``auto``: the reason lists every legacy database looked for and
    the server, so that nobody mistakes one for the other.
    """
    if requested != "auto":
        return "consolidation_mode is %s" % requested
    if mode == "existing":
        return "auto: legacy databases found on %s" % server
    return ("auto: none of the legacy databases %s exists on %s, so this is a fresh deployment (nothing is copied); "
            "if they should exist, check the names in consolidation_modules and the source server"
            % (", ".join(module["source_database"] for module in plan_modules), server))


def new_run_id(now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def resolve_run_id(requested, run_root, target_database):
    """The run to work on: the one asked for, else the latest run for this target, else a new one.

    Reusing the latest run is what makes a second ``consolidate.yml`` a no-op
    and lets an interrupted one resume without anyone copying an id around;
    a new consolidation of the same target needs an explicit new id.
    """
    if requested:
        return requested, False
    pointer = os.path.join(run_root, LATEST_POINTER)
    try:
        with open(pointer) as handle:
            latest = handle.read().strip()
        with open(os.path.join(run_root, latest, PLAN)) as handle:
            if json.load(handle).get("target_database") == target_database:
                return latest, True
    except (OSError, ValueError):
        pass
    return new_run_id(), False


def rehearsal_run_id(requested, now=None):
    """A rehearsal never resumes (its scratch database starts empty each time): a new id unless one is given."""
    return requested or new_run_id(now) + "-rehearsal"


def rehearsal_facts(scratch_facts):
    """Pure: the target facts a rehearsal plans with. Its scratch database is always created afresh (an earlier
    one is dropped first), so what an existing one holds does not matter; creating it needs CREATEDB."""
    return dict(scratch_facts, database_exists=False, schemas={})


def open_run(plan, run_root):
    """Create the run directory (0700) with ``plan.json`` and point ``latest`` at it; False when it exists.

    The plan as first opened is the run's record; later runs of the same id do not rewrite it. A rehearsal
    does not move ``latest``: the real run after it must still find (and resume) the real run before it.
    """
    if os.path.isdir(plan["run_dir"]):
        return False
    for directory in (run_root, plan["run_dir"]):
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
    write_private_json(os.path.join(plan["run_dir"], PLAN), plan)
    if not plan.get("rehearsal"):
        write_private_file(os.path.join(run_root, LATEST_POINTER), plan["run_id"] + "\n")
    return True


def run_stage(plan):
    """How far the run named by ``plan`` has got, one of plan.RUN_STAGES, read from its run directory and backup set.

    Each stage leaves its evidence before it changes anything: the backup set's manifest (step 1), the
    copy's progress log (step 4), the verification report (step 5), the state record (completion).
    """
    files = plan["files"]
    for stage, path in (("completed", files["state_record"]), ("verified", files["verification_report"]),
                        ("copy_started", files["data_copy_log"]), ("backed_up", plan["backup_files"]["manifest"])):
        if os.path.exists(path):
            return stage
    return "opened"


def completion(plan):
    """The run's completion (when, and what was kept of the dropped state schema), or None while it runs."""
    record = read_json(plan["files"]["state_record"])
    if not record:
        return None
    return {"completed_at": record.get("completed_at"), "state_record": plan["files"]["state_record"]}


def amend_run(plan, applied, now=None):
    """Rewrite ``plan.json`` with the contract a resumed run took, and append what changed to its record.

    Both files are replaced atomically (0600): a crash leaves the old plan or the new one, and
    ``contract_changes.json`` lists every amendment with its time.
    """
    path = plan["files"]["contract_changes"]
    record = read_json(path) or {"run_id": plan["run_id"], "amendments": []}
    record["amendments"].append({"at": (now or datetime.datetime.now(datetime.timezone.utc)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "changes": [change["text"] for change in applied]})
    write_private_json(path, record)
    write_private_json(plan["files"]["plan"], plan)
