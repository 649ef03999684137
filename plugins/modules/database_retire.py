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
  - Guard C(proof). The final archive's C(proof) (row counts and content checksums taken inside its dump's own
    snapshot, see O(classifiedads.consolidation.backup_set#module:verification_report)) equals the verified source
    of every table of the verification report. The tables' write counters (C(pg_stat_user_tables)) are read again;
    a table written since the final backup's snapshot must still match the verified source by content, measured
    now. Each refusal names the table and the delta (rows, checksum, counters). With the final backup still to be
    taken (O(final_backup_pending), check mode) the counters are compared with those the verification read.
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
  - classifiedads.consolidation.run_files
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
  description:
    - Every guard, in order, with C(guard) (its name), C(passed) and C(problems).
    - The C(proof) guard also lists in C(written) every table written since the final backup (or since the
      verification), with C(table), C(since), the counter C(delta) and whether its C(content) C(matches), C(differs)
      or is C(unproven).
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
table_text:
  description:
    - RV(databases) as a fixed-width plain-text table, one line per database. Its C(action), C(mode), the name it is
      retired as, the state of its final backup, and a note (sessions terminated, or that would be in check mode).
  returned: always
  type: str
queries:
  description: SQL statements run against the source server (in check mode, the changes are those that would run).
  returned: always
  type: list
  elements: str
commands:
  description: Programs run, as argument lists (none; returned as by every module of the collection).
  returned: always
  type: list
  elements: list
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.dbops import run_lock
from ansible_collections.classifiedads.consolidation.plugins.module_utils.decommission import Decommission
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)


def main():
    module = ConsolidationModule(
        argument_spec(
            run_files=("run_dir", "backup_root", "set_id"),
            databases=dict(type="list", elements="str", required=True),
            confirm=dict(type="list", elements="str", required=True),
            mode=dict(type="str", default="rename", choices=["rename", "drop"]),
            terminate_sessions=dict(type="bool", default=False),
            final_backup_pending=dict(type="bool", default=False),
        ),
        needs=("source",),
    )
    decommission = Decommission(module.params, module.journal)
    with module.failures(message=decommission.failure_message, result=decommission.result):
        with run_lock(module.params["run_dir"], module.check_mode):
            decommission.plan()
            decommission.apply()
    module.exit_json(msg=decommission.summary(), **decommission.result())


if __name__ == "__main__":
    main()
