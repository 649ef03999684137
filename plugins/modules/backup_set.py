#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: backup_set
short_description: Back up legacy databases into a verified, checksummed backup set
version_added: 0.1.0
description:
  - Writes one C(pg_dump) custom-format archive per database of O(databases) into the backup set directory
    C(<backup_root>/<set_id>/) (mode 0700, files 0600), and describes every archive in C(manifest.json) - sha256,
    size, the exact row count of every table, start and end times, server and C(pg_dump) versions.
  - Each database is dumped from a snapshot exported by a REPEATABLE READ transaction of the module
    (C(pg_export_snapshot()) passed to C(pg_dump --snapshot)); the row counts are taken in that transaction, so
    they describe exactly the rows in the archive.
  - An archive is written as C(<file>.partial) and renamed only once C(pg_restore --list) has listed the data of
    every counted table and C(pg_restore) has read the whole archive back; the manifest then records
    C(verified=true). The manifest is replaced atomically after each archive.
  - Idempotent. A database whose verified archive still matches its recorded sha256 is kept as it is. A C(.partial)
    file left by an interrupted run is removed and that database dumped again; so is a database whose archive
    is missing, unverified or no longer matches its checksum (reported in RV(databases)).
  - Refuses to start when the free space at O(backup_root) is less than the sum of C(pg_database_size) of the
    databases to dump. Custom format compresses (typically 5-10 fold for this application's text columns) but
    not every column does; 1.0 times the on-disk size is the conservative bound used.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.progress
attributes:
  check_mode:
    description: Connects, reads sizes and versions, and reports what would be dumped and whether the space
      suffices; writes nothing.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  databases:
    description:
      - Databases on the O(source) server to back up, named exactly (quoted, so case matters).
    type: list
    elements: str
    required: true
  backup_root:
    description:
      - Directory that holds the backup sets, on the host the module runs on. Created with mode 0700 if missing.
    type: path
    required: true
  set_id:
    description:
      - Name of the backup set, and of its directory below O(backup_root). The consolidation uses its run id.
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, up to 64 characters.
    type: str
    required: true
  label:
    description:
      - Generation of the archives inside the set. Without a label the archive of a database is
        C(<database>.dump); with one it is C(<database>.<label>.dump), so a set can hold, say, the backup taken
        before the copy and a C(final) one taken just before the legacy databases are decommissioned.
      - Letters, digits, C(_) and C(-), at most 32 characters.
      - Characters of a database name other than letters, digits, C(_) and C(-) appear as C(%XX) in file names.
    type: str
  compress:
    description:
      - Compression of the archives, as C(pg_dump --compress).
      - A level C(0)-C(9) works with every C(pg_dump) (gzip in custom format; C(0) is none).
      - C(method[:level]) with method C(gzip), C(lz4), C(zstd) or C(none) needs C(pg_dump) 16 or newer.
      - The default C(1) measured on ClassifiedAds data is as fast as no compression and within about 10% of the
        size of level 6, which takes twice as long.
    type: str
    default: "1"
  pg_dump_path:
    description:
      - C(pg_dump) binary to use; C(pg_restore) must be next to it.
      - Omitted means the installed C(pg_dump) of the lowest major version that is at least the server's, from
        C(/usr/lib/postgresql/*/bin), C(/usr/pgsql-*/bin), C(/usr/local/pgsql/bin) and C(PATH).
      - A C(pg_dump) older than the server is refused.
    type: path
  verification_report:
    description:
      - Path of the run's C(verification.json) (C(classifiedads.consolidation.row_count_diff)). For every table it
        compared in a database being dumped, the manifest entry's C(proof) then records the exact row count and
        the content checksum (computed as the verification did, with its column plan) taken inside the dump's own
        snapshot, and the table's write counters read just before that snapshot.
        C(classifiedads.consolidation.database_retire) compares them with the verified source.
      - A verified archive without that C(proof) is dumped again.
      - The decommission role passes it for the C(final) generation.
    type: path
  space_factor:
    description:
      - Free space required at O(backup_root), as a multiple of the summed C(pg_database_size) of the databases
        to dump. Lower it only when the data is known to compress.
    type: float
    default: 1.0
notes:
  - O(target) is accepted and ignored so that a play can set both connections once with C(module_defaults).
  - The password reaches C(pg_dump) only through a private 0600 pgpass file; the database name through
    C(PGDATABASE). Neither appears on a command line or in RV(commands).
  - Custom-format archives are written by one C(pg_dump) process each; databases are dumped one after another.
  - The whole database is dumped, including tables the consolidation does not copy (C(__EFMigrationsHistory)),
    since the set is what a rollback restores.
seealso:
  - name: pg_dump
    description: Options and archive formats of pg_dump.
    link: https://www.postgresql.org/docs/current/app-pgdump.html
'''

EXAMPLES = r'''
- name: Back up the six legacy databases before the copy
  classifiedads.consolidation.backup_set:
    source:
      host: db1.example.internal
      user: consolidation
      password: "{{ vault_consolidation_password }}"
    databases: [ClassifiedAds_Product, ClassifiedAds_Identity, ClassifiedAds_Storage,
                ClassifiedAds_Notification, ClassifiedAds_AuditLog, ClassifiedAds_Configuration]
    backup_root: /var/backups/classifiedads-consolidation
    set_id: 20261124T040000Z
  register: backup

- name: Take the final generation just before the legacy databases are dropped
  classifiedads.consolidation.backup_set:
    databases: "{{ legacy_databases }}"
    backup_root: /var/backups/classifiedads-consolidation
    set_id: "{{ run_id }}"
    label: final
'''

RETURN = r'''
set_id:
  description: The backup set id.
  returned: always
  type: str
  sample: 20261124T040000Z
label:
  description: The generation written or checked (null without O(label)).
  returned: always
  type: str
path:
  description: Directory of the backup set.
  returned: always
  type: str
  sample: /var/backups/classifiedads-consolidation/20261124T040000Z
manifest_path:
  description: Path of C(manifest.json).
  returned: always
  type: str
manifest:
  description:
    - The manifest after the run (in check mode, as it is; null when the set has none yet).
    - C(archives) lists, per database and label, C(file) (relative to RV(path)), C(format), C(compress), C(sha256),
      C(size), C(database_size), C(snapshot), C(tables) (C(schema), C(table), C(rows)), C(started_at),
      C(finished_at) (UTC), C(server_version), C(pg_dump_path), C(pg_dump_version), C(verified), C(verified_at),
      C(verification), and with O(verification_report) C(proof) (C(tables) with C(schema), C(table), C(rows),
      C(checksum), C(write_counters)).
  returned: always
  type: dict
databases:
  description: Per database, its archive file, C(pg_database_size), the C(action) (C(dump), C(redo) or C(keep)) and
    why.
  returned: always
  type: list
  elements: dict
  sample: [{"database": "ClassifiedAds_Product", "file": "ClassifiedAds_Product.dump", "size": 8532323,
            "action": "keep", "reason": "verified archive ClassifiedAds_Product.dump matches its sha256"}]
dumped:
  description: Databases dumped (in check mode, that would be dumped).
  returned: always
  type: list
  elements: str
kept:
  description:
    - Databases whose verified archive was kept (not called C(skipped), which Ansible reserves for skipped tasks).
  returned: always
  type: list
  elements: str
space:
  description: C(needed) and C(free) bytes at RV(path), the C(factor) applied and whether the space is C(sufficient).
  returned: always
  type: dict
  sample: {"needed": 51200000, "free": 85899345920, "factor": 1.0, "sufficient": true}
pg_dump:
  description: The C(pg_dump) used (C(path), C(version)).
  returned: always
  type: dict
removed_partials:
  description: Files of an interrupted run that were removed (in check mode, that would be removed).
  returned: always
  type: list
  elements: str
table_text:
  description:
    - RV(databases) as a fixed-width plain-text table, one line per database. Its C(action), its C(pg_database_size),
      and the set's archive of the generation (C(-) when there is none yet). The archive's size, table count, summed
      row count, C(verified) and the first 16 hex digits of its sha256.
  returned: always
  type: str
queries:
  description: SQL statements run against the source (sizes, the snapshot export, the table list, the row counts).
  returned: always
  type: list
  elements: str
commands:
  description: Programs run, as argument lists. They carry no password and no database name by construction.
  returned: always
  type: list
  elements: list
  sample: [["/usr/lib/postgresql/15/bin/pg_dump", "--format=custom", "--compress=1",
            "--snapshot=00000003-0000001B-1", "--no-password",
            "--file=/backups/run-1/ClassifiedAds_Product.dump.partial"]]
'''


from ansible_collections.classifiedads.consolidation.plugins.module_utils.backup import run_backup
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)


def backup_failed(problems):
    return "backup failed: %s" % "; ".join(problems)


def main():
    module = ConsolidationModule(
        argument_spec(
            run_files=("backup_root", "set_id"),
            databases=dict(type="list", elements="str", required=True),
            label=dict(type="str"),
            compress=dict(type="str", default="1"),
            pg_dump_path=dict(type="path"),
            space_factor=dict(type="float", default=1.0),
            verification_report=dict(type="path"),
        ),
        needs=("source",),
    )
    # A server or file-system error says "backup failed"; the backup's own refusals speak for themselves.
    with module.failures(message=backup_failed):
        try:
            result = run_backup(module.params, module.journal)
        except ConsolidationError as exc:
            module.fail(exc.problems, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
