#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: database_retire
short_description: Retire the legacy databases of a verified consolidation, behind guards
version_added: 0.1.0
description:
  - Plan step 8 (I(Decommission Old Databases)). Retires the legacy databases O(databases) on the O(source) server,
    by default reversibly - C(ALLOW_CONNECTIONS false), then a rename to C(<database>_retired_<YYYYMMDD>) (UTC day,
    the database part shortened to keep the name within 63 bytes) - or, with O(mode=drop), with C(DROP DATABASE).
  - Nothing changes unless every guard holds, each checked when the module runs. A refusal names each failed guard
    and why (RV(guards)).
  - Guard C(mapping). Every database belongs to the run's mapping (C(plan.json) in O(run_dir)). None is the
    consolidated database, the maintenance database, C(postgres), C(template0) or C(template1).
  - Guard C(verification). C(verification.json) in O(run_dir) passed, was made for this run and for backup set
    O(set_id), and covers every database.
  - Guard C(confirmation). O(confirm) names exactly the databases of O(databases). A missing name or a typo refuses.
  - Guard C(final_backup). The backup set holds a verified C(final) archive of every database about to be retired.
    Its sha256 and size are checked again now, and it was taken after the verification report (the report's time
    has one-second resolution). The C(classifiedads.consolidation.decommission) role takes that backup with
    C(classifiedads.consolidation.backup_set) and C(label=final) right before.
  - Guard C(sessions). No other session is connected to a database about to be retired; each one is listed (pid,
    user, application, client address). With O(terminate_sessions=true) the database is closed to new connections
    first, then they are terminated.
  - Guard C(databases). Each database exists, or the decommission record says it was retired. The retired name is
    free, and the run has not been rolled back (a rolled-back run must be consolidated again under a new run id).
  - What was done is recorded in C(decommission.json) in O(run_dir) (mode 0600), which C(rollback.yml) reads. It
    holds the original and retired names, the mode, the times, and the owner, comment, settings, grants and
    connection limit of each database, which a dump of a database does not hold. An entry is written C(pending)
    before the server is touched and C(retired) after, so an interrupted run is resumed.
  - Idempotent. A database the record lists as retired is left alone.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
attributes:
  check_mode:
    description:
      - Evaluates every guard (reads the report, the manifest, the archives and the server) and reports what would be
        done and the statements it would run; changes nothing.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  databases:
    description:
      - The legacy databases to retire, named exactly; the C(source_database) of every module of the run's mapping.
    type: list
    elements: str
    required: true
  confirm:
    description:
      - The operator's confirmation; it must name exactly the databases of O(databases).
    type: list
    elements: str
    required: true
  mode:
    description:
      - C(rename) closes each database to connections and renames it; C(rollback.yml) can undo it.
      - C(drop) drops it. The backup set's archives are then the only copy.
    type: str
    default: rename
    choices: [rename, drop]
  terminate_sessions:
    description:
      - Terminate other sessions connected to a database about to be retired (after closing it to new connections),
        instead of refusing.
    type: bool
    default: false
  run_dir:
    description: The run directory (C(plan.json), C(verification.json); C(decommission.json) is written there).
    type: path
    required: true
  backup_root:
    description: Directory that holds the backup sets.
    type: path
    required: true
  set_id:
    description: The backup set of the run (the run id in this collection).
    type: str
    required: true
  final_backup_pending:
    description:
      - Check mode only. The caller takes the final backup between this evaluation and the real run, as the
        C(classifiedads.consolidation.decommission) role does. A C(final) archive that is missing, unverified or
        damaged is then reported in RV(final_backup_pending) instead of refusing.
      - A stale archive (older than the report) still refuses, because C(backup_set) would keep it.
      - Ignored outside check mode.
    type: bool
    default: false
notes:
  - O(target) is accepted and ignored so that a play can set both connections once with C(module_defaults).
  - Renaming or dropping a database needs its owner (or a superuser), and C(CREATEDB) to rename it.
    Terminating sessions of other roles needs C(pg_signal_backend) or a superuser.
  - Reads C(pg_stat_activity.backend_type), so the source server must be PostgreSQL 10 or newer.
seealso:
  - module: classifiedads.consolidation.database_restore
  - module: classifiedads.consolidation.backup_set
'''

EXAMPLES = r'''
- name: Retire the six legacy databases of run 20261124T040000Z (rename, reversible)
  classifiedads.consolidation.database_retire:
    databases: "{{ consolidation_plan.modules | map(attribute='source_database') | list }}"
    confirm: [ClassifiedAds_Product, ClassifiedAds_Identity, ClassifiedAds_Storage,
              ClassifiedAds_Notification, ClassifiedAds_AuditLog, ClassifiedAds_Configuration]
    run_dir: /var/lib/classifiedads-consolidation/runs/20261124T040000Z
    backup_root: /var/backups/classifiedads-consolidation
    set_id: 20261124T040000Z
'''

RETURN = r'''
guards:
  description: Every guard, in order, with C(guard) (its name), C(passed) and C(problems).
  returned: always
  type: list
  elements: dict
  sample: [{"guard": "confirmation", "passed": false, "problems": ["not confirmed: ClassifiedAds_Storage"]}]
databases:
  description:
    - Per database, its C(action) (C(retire), C(already_retired), C(record) to complete an interrupted run's record,
      or null when refused), C(mode), C(retired_name), C(owner), C(sessions) connected, C(terminated) sessions,
      the state of its C(final) archive (C(final_backup) with C(state) and C(reason)) and a C(note).
  returned: always
  type: list
  elements: dict
to_retire:
  description: Databases retired now (in check mode, that would be).
  returned: always
  type: list
  elements: str
final_backup_pending:
  description: In check mode with O(final_backup_pending=true), databases whose final backup must still be taken.
  returned: always
  type: list
  elements: str
record:
  description: Path of the decommission record.
  returned: always
  type: str
  sample: /var/lib/classifiedads-consolidation/runs/20261124T040000Z/decommission.json
queries:
  description: SQL statements run against the source server (in check mode, the changes are those that would run).
  returned: always
  type: list
  elements: str
'''

import datetime
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.classifiedads.consolidation.plugins.module_utils.backup import load_manifest, server_address
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    PSYCOPG2_IMPORT_ERROR,
    ConnectionFailure,
    connect,
    endpoint_spec,
    program_runner,
    psycopg2,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.manifest import (
    BackupError,
    check_manifest,
    find_archive,
    validate_set_id,
    verify_archive,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.preflight import write_private_json
from ansible_collections.classifiedads.consolidation.plugins.module_utils.restore import (
    Journal,
    RestoreError,
    drop_database,
    list_sessions,
    read_catalog,
    read_json,
    rename_database,
    run_lock,
    set_allow_connections,
    terminate_sessions,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.retire import (
    FINAL_LABEL,
    PLAN_NAME,
    RECORD_NAME,
    REPORT_NAME,
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
    parse_utc,
    record_entry,
    record_problems,
    refusal_message,
    retired_name,
    utc_day,
    utc_timestamp,
    with_entry,
)

PROPERTY_KEYS = ("owner", "comment", "connection_limit", "settings", "acl_default", "acl")


class Refused(Exception):
    def __init__(self, guards, result):
        super(Refused, self).__init__(refusal_message(guards))
        self.result = result


def evaluate(params, check_mode, journal, now):
    """Every guard and the decision for each database; reads only."""
    databases = list(params["databases"])
    set_id = validate_set_id(params["set_id"])
    set_dir = os.path.join(os.path.abspath(params["backup_root"]), set_id)
    run_dir = params["run_dir"]
    source = params["source"]
    plan = read_json(os.path.join(run_dir, PLAN_NAME))
    run_id = (plan or {}).get("run_id")
    report_path = os.path.join(run_dir, REPORT_NAME)
    report = read_json(report_path)
    record = read_json(os.path.join(run_dir, RECORD_NAME))
    record_issues = record_problems(record, run_id, set_id) if record is not None else []

    day = utc_day(now)
    names = list(databases)
    for database in databases:
        names.append(retired_name(database, day))
        names.append((record_entry(record, database) or {}).get("retired_name"))
    conn = connect(source, source.get("maintenance_db") or "postgres", autocommit=True)
    try:
        with conn.cursor() as cur:
            catalog = read_catalog(cur, journal, names)
            sessions = list_sessions(cur, journal, [name for name in databases if name in catalog])
    finally:
        conn.close()

    decisions = dict((database, decide(database, record_entry(record, database), catalog, params["mode"], day))
                     for database in databases)
    to_retire = [database for database in databases if decisions[database]["action"] == "retire"]

    manifest, manifest_problem = None, None
    try:
        manifest = load_manifest(set_dir)
        if manifest is not None:
            check_manifest(manifest, set_id, server_address(source))
    except BackupError as exc:
        manifest, manifest_problem = None, str(exc)
    report_time = parse_utc((report or {}).get("generated_at")) if isinstance(report, dict) else None
    backup_pending = params["final_backup_pending"] and check_mode
    states = {}
    for database in to_retire:
        entry = find_archive(manifest, database, FINAL_LABEL) if manifest else None
        file_problem = None
        if entry is not None and entry.get("verified"):
            file_problem = verify_archive(os.path.join(set_dir, entry["file"]), entry["sha256"], entry.get("size"))
        states[database] = final_archive_state(entry, file_problem, report_time)
        if entry is None and manifest is None:
            states[database] = ("missing", manifest_problem or "backup set %s has no manifest" % set_dir)
    final_problems, pending = check_final_backup(states, backup_pending)

    retiring_sessions = dict((database, sessions.get(database, [])) for database in to_retire)
    guards = [
        guard("mapping", check_mapping(databases, plan, [source.get("maintenance_db")])),
        guard("verification", check_verification(report, report_path, run_id, set_id, databases)),
        guard("confirmation", check_confirmation(params["confirm"], databases)),
        guard("final_backup", final_problems, pending=pending),
        guard("sessions", check_sessions(retiring_sessions, params["terminate_sessions"])),
        guard("databases", record_issues + check_databases(decisions, record, run_id)),
    ]

    items = []
    for database in databases:
        decision = decisions[database]
        facts = catalog.get(database) or {}
        state = states.get(database)
        items.append(dict(database=database, action=decision.get("action"), mode=decision.get("mode"),
                          retired_name=decision.get("retired_name"), owner=facts.get("owner"),
                          sessions=sessions.get(database, []), terminated=[], note=decision.get("note"),
                          final_backup=dict(state=state[0], reason=state[1]) if state else None,
                          properties=dict((key, facts.get(key)) for key in PROPERTY_KEYS) if facts else None))
    result = dict(guards=guards, databases=items, to_retire=to_retire, final_backup_pending=pending,
                  record=os.path.join(run_dir, RECORD_NAME), changed=False)
    context = dict(run_id=run_id, set_id=set_id, record=record, manifest=manifest, set_dir=set_dir)
    if not all(result_guard["passed"] for result_guard in guards):
        raise Refused(guards, result)
    return result, context


def retire_one(cur, journal, item, terminate):
    """Close, empty (when allowed) and rename or drop one database; reopens it if that fails."""
    database = item["database"]
    set_allow_connections(cur, journal, database, False)
    try:
        if terminate:
            item["terminated"] = terminate_sessions(cur, journal, database)
        else:
            # Someone may have connected between the guard and the close: they would block the rename.
            late = list_sessions(cur, journal, [database])[database]
            if late and not journal.check_mode:
                raise RestoreError("session(s) connected to %s while it was being closed: %s; it was opened again"
                                   % (database, ", ".join(str(session["pid"]) for session in late)))
        if item["mode"] == "drop":
            drop_database(cur, journal, database)
        else:
            rename_database(cur, journal, database, item["retired_name"])
    except Exception:
        if not journal.check_mode:
            set_allow_connections(cur, journal, database, True)
        raise


def apply(params, result, context, journal, now):
    """Retire what ``evaluate`` decided; each step recorded before and after it touches the server."""
    record_path = result["record"]
    record = context["record"] or new_record(context["run_id"], context["set_id"])
    manifest = context["manifest"]
    conn = connect(params["source"], params["source"].get("maintenance_db") or "postgres", autocommit=True)
    try:
        with conn.cursor() as cur:
            for item in result["databases"]:
                if item["action"] not in ("retire", "record"):
                    continue
                result["changed"] = True
                entry = record_entry(record, item["database"]) or {}
                if item["action"] == "retire":
                    archive = find_archive(manifest, item["database"], FINAL_LABEL) if manifest else None
                    entry = dict(database=item["database"], mode=item["mode"], retired_name=item["retired_name"],
                                 state="pending", started_at=utc_timestamp(now), owner=item["owner"],
                                 properties=item["properties"],
                                 final_archive=dict((key, archive.get(key)) for key in ("file", "sha256", "size"))
                                 if archive else None)
                    if not journal.check_mode:
                        record = with_entry(record, entry)
                        write_private_json(record_path, record)
                    retire_one(cur, journal, item, params["terminate_sessions"])
                if not journal.check_mode:
                    record = with_entry(record, dict(entry, state="retired", mode=item["mode"],
                                                     retired_name=item["retired_name"],
                                                     retired_at=utc_timestamp(datetime.datetime.now(
                                                         datetime.timezone.utc))))
                    write_private_json(record_path, record)
    finally:
        conn.close()
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=endpoint_spec(required=False),
            target=endpoint_spec(required=False),
            databases=dict(type="list", elements="str", required=True),
            confirm=dict(type="list", elements="str", required=True),
            mode=dict(type="str", default="rename", choices=["rename", "drop"]),
            terminate_sessions=dict(type="bool", default=False),
            run_dir=dict(type="path", required=True),
            backup_root=dict(type="path", required=True),
            set_id=dict(type="str", required=True),
            final_backup_pending=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if PSYCOPG2_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
    if not module.params["source"]:
        module.fail_json(msg="source is required: the server that holds the legacy databases")
    journal = Journal(program_runner(module), module.check_mode)
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        with run_lock(module.params["run_dir"], module.check_mode):
            result, context = evaluate(module.params, module.check_mode, journal, now)
            result = apply(module.params, result, context, journal, now)
    except Refused as exc:
        module.fail_json(msg=str(exc), queries=journal.queries, **exc.result)
    except (RestoreError, BackupError, ConnectionFailure) as exc:
        module.fail_json(msg="decommission failed: %s" % exc, queries=journal.queries)
    except psycopg2.Error as exc:
        module.fail_json(msg="decommission failed: %s" % (exc.pgerror or str(exc)).strip(), queries=journal.queries)
    except (IOError, OSError) as exc:
        module.fail_json(msg="decommission failed: %s: %s" % (exc.filename or "", exc.strerror or exc),
                         queries=journal.queries)
    result["queries"] = journal.queries
    if module.check_mode:
        result["changed"] = bool(result["to_retire"]) or any(item["action"] == "record"
                                                             for item in result["databases"])
    module.exit_json(msg=summary_line(result, module.check_mode), **result)


def summary_line(result, check_mode):
    verb = "would retire" if check_mode else "retired"
    done = [item["database"] for item in result["databases"] if item["action"] == "already_retired"]
    line = "%s %d database(s)" % (verb, len(result["to_retire"]))
    if result["to_retire"]:
        line += ": " + ", ".join(result["to_retire"])
    if done:
        line += "; already retired: " + ", ".join(done)
    if result["final_backup_pending"]:
        line += "; final backup still to take: " + ", ".join(result["final_backup_pending"])
    return line


if __name__ == "__main__":
    main()
