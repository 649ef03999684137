#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: database_restore
short_description: Bring the legacy databases of a consolidation run back, verified against its backup set
version_added: 0.1.0
description:
  - The database part of the migration plan's I(Rollback Plan). For each legacy database of O(databases) on the
    O(source) server, decides from the server and the run's C(decommission.json) what brings it back.
  - C(present). It exists and takes connections. Its row counts are compared with the manifest, and it is left as
    it is.
  - C(reopen). It exists but is closed to connections (an interrupted decommission). It is opened, then compared.
  - C(undo). The decommission renamed it. The renamed database is opened and compared with the manifest, then
    renamed back.
  - C(restore). It was dropped, or is missing. The set's archive of it is used, the C(final) generation if the set
    has one, else the first. The archive is checked against its sha256 and size, then restored with C(pg_restore)
    into a new database C(<database>_restoring). That database gets the archived database's encoding and locale,
    and its owner (the one the decommission recorded, else the archive's, else the login role). Its per-table row
    counts are compared with the manifest. Only then is it renamed into place, and the comment, settings, grants
    and connection limit the decommission recorded are put back.
  - Nothing is changed before every archive to restore has matched its sha256 (a mismatch refuses, naming the file),
    and no database is put in place before its row counts match the manifest. Nothing is ever dropped except a
    leftover C(<database>_restoring) that this module created (recognised by its comment).
  - With O(retire_target=true), then closes the consolidated database O(target_database) on the O(target) server
    to connections and renames it to C(<target_database>_rolledback_<YYYYMMDD>). It is never dropped.
  - Marks each entry of C(decommission.json) C(rolled_back), so that the run is never decommissioned again, and
    records what was done in C(rollback.json) in O(run_dir) (mode 0600).
  - Idempotent. A second run finds every database C(present) and matching, and changes nothing.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.run_files
attributes:
  check_mode:
    description:
      - Decides, checks every archive to restore against its sha256, compares the databases in place, and reports
        the statements and programs it would run; changes nothing.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  databases:
    description: The legacy databases to bring back, the C(source_database) of every module of the run's mapping.
    type: list
    elements: str
    required: true
  pg_restore_path:
    description:
      - C(pg_restore) binary to use. Omitted means the one beside the C(pg_dump) that wrote the archives, else the
        installed one of the lowest major version that reads them.
    type: path
  no_owner:
    description: Restore objects owned by the login role instead of their archived owners (C(pg_restore --no-owner)).
    type: bool
    default: false
  no_privileges:
    description: Do not restore the archived grants on objects (C(pg_restore --no-privileges)).
    type: bool
    default: false
  verify_present:
    description:
      - A database already in place whose row counts differ from the manifest fails the rollback (before anything
        changes). With V(false) the difference is only reported.
      - A database that an earlier run of this rollback brought back is only reported, since the application has
        used it since.
    type: bool
    default: true
  retire_target:
    description: Close and rename the consolidated database once the legacy databases are back.
    type: bool
    default: false
  target_database:
    description: The consolidated database, on the O(target) server. Required with O(retire_target=true).
    type: str
  terminate_sessions:
    description:
      - With O(retire_target=true), terminate sessions connected to the consolidated database (after closing it to
        new connections) instead of refusing.
    type: bool
    default: false
notes:
  - Creating and renaming databases needs C(CREATEDB) (and ownership of a database to rename), or a superuser. A
    restored database can only be given to an owner the login role is a member of.
  - The password reaches C(pg_restore) only through a private 0600 pgpass file, and the database name through
    C(PGDATABASE); neither is on a command line or in RV(commands).
seealso:
  - module: classifiedads.consolidation.database_retire
  - module: classifiedads.consolidation.backup_set
'''

EXAMPLES = r'''
- name: Bring the legacy databases of run 20261124T040000Z back
  classifiedads.consolidation.database_restore:
    databases: "{{ consolidation_plan.modules | map(attribute='source_database') | list }}"
    run_dir: /var/lib/classifiedads-consolidation/runs/20261124T040000Z
    backup_root: /var/backups/classifiedads-consolidation
    set_id: 20261124T040000Z
  register: rollback
'''

RETURN = r'''
databases:
  description:
    - Per database, the C(action) (C(present), C(reopen), C(undo), C(restore)), its C(source) (the database opened or
      renamed back), the C(archive) used or compared with (C(file), C(label), C(sha256), C(size), C(started_at)),
      whether its row counts were C(verified) against it (null when not yet possible, in check mode), the
      C(differences), whether it C(changed), the C(recorded_state) in C(decommission.json), and a C(note).
  returned: always
  type: list
  elements: dict
  sample: [{"database": "ClassifiedAds_Product", "action": "undo", "source": "ClassifiedAds_Product_retired_20261124",
            "verified": true, "differences": [], "changed": true}]
target:
  description: With O(retire_target=true), the consolidated database's C(action) (C(retire), C(absent),
    C(already_retired)), C(retired_name) and connected C(sessions); otherwise null.
  returned: always
  type: dict
pg_restore:
  description: The C(pg_restore) used, when an archive was restored.
  returned: always
  type: str
record:
  description: Path of the decommission record read and updated.
  returned: always
  type: str
rollback_record:
  description: Path of C(rollback.json).
  returned: always
  type: str
table_text:
  description:
    - RV(databases) as a fixed-width plain-text table, one line per database. Its outcome, whether its rows
      C(verified) against the manifest (C(differ), or C(-) when not compared yet), where it came from (the archive
      restored or the database opened or renamed back), and a note (the differences, or what did not come back).
  returned: always
  type: str
queries:
  description: SQL statements run (in check mode, the changes are those that would run).
  returned: always
  type: list
  elements: str
commands:
  description: Programs run, as argument lists, without password or database name.
  returned: always
  type: list
  elements: list
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.dbops import run_lock
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.restore import Rollback


def main():
    module = ConsolidationModule(
        argument_spec(
            run_files=("run_dir", "backup_root", "set_id"),
            databases=dict(type="list", elements="str", required=True),
            pg_restore_path=dict(type="path"),
            no_owner=dict(type="bool", default=False),
            no_privileges=dict(type="bool", default=False),
            verify_present=dict(type="bool", default=True),
            retire_target=dict(type="bool", default=False),
            target_database=dict(type="str"),
            terminate_sessions=dict(type="bool", default=False),
        ),
        needs=("source",),
        required_if=[("retire_target", True, ("target", "target_database"))],
    )
    rollback = Rollback(module.params, module.journal)
    with module.failures(message=rollback.failure_message, result=rollback.result):
        with run_lock(module.params["run_dir"], module.check_mode):
            rollback.plan()
            rollback.apply()
    for warning in rollback.warnings:
        module.warn(warning)
    module.exit_json(msg=rollback.summary(), **rollback.result())


if __name__ == "__main__":
    main()
