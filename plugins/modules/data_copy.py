#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: data_copy
short_description: Copy every table of the legacy per-module databases into their schemas of the consolidated database
version_added: 0.1.0
author:
  - ClassifiedAds platform team (@classifiedads)
description:
  - Copies each table of every legacy database named in O(modules) into its target schema of O(target_database)
    (for example C(ClassifiedAds_Product.public."Products") into C(ClassifiedAds.product."Products")). The target
    tables must exist already; the application's migrator creates them.
  - All tables of one legacy database are read from one consistent snapshot. A coordinator connection opens a
    C(REPEATABLE READ READ ONLY) transaction and exports its snapshot with the function C(pg_export_snapshot);
    every worker imports it with C(SET TRANSACTION SNAPSHOT).
  - Rows stream in COPY's binary format from C(COPY ... TO STDOUT) on the source straight into
    C(COPY ... FROM STDIN) on the target, without temporary files. Columns are matched by name, so
    their order may differ. A stored generated column of the target is computed there and not copied. A table
    whose columns do not match (a column on one side only, or a different type) stops the run before any data
    moves; the error lists the columns of both sides. A type whose binary form holds a database-local OID
    (a composite, an array of a user-defined type) travels in text format instead.
  - Each table is loaded in its own target transaction, which commits all of the following at once. It locks and
    empties the table (C(TRUNCATE)), drops its indexes (primary key and unique constraints included, with
    O(defer_indexes)) and disables its enabled user triggers. It then runs C(COPY ... FREEZE) and rebuilds every
    index with one sorted build each, so that a duplicate row fails the transaction. Finally it re-enables the
    triggers, runs C(setval) on the column sequences and inserts a row into C(<state_schema>.copied_tables).
  - Before a legacy database's snapshot is taken, the source's write counters of its tables are read
    (C(pg_stat_user_tables) C(n_tup_ins), C(n_tup_upd), C(n_tup_del); one catalog query per database), and each
    table's record in C(<state_schema>.copied_tables) keeps them with the snapshot id. Read in that order, any
    write the copy did not see moves them later. C(classifiedads.consolidation.row_count_diff) and
    C(classifiedads.consolidation.database_retire) read them again and demand a content match of every table
    whose source was written after it was copied.
  - No committed state ever lacks a key or an index, and a table that was cut off mid-copy (killed process, lost
    connection) is rolled back to what it was. A rerun with the same O(run_id) skips the tables recorded as
    copied and copies the rest, so no row is duplicated.
  - A target table that holds rows and is not recorded as copied by this run is refused (the error names it)
    unless O(truncate) or its per-table override allows emptying it.
  - Foreign keys span tables, so they cannot come back inside one table's transaction. Before loading, every
    foreign key from or to a table about to be loaded is recorded in C(<state_schema>.deferred_ddl) and dropped in
    the same transaction. Tables then load in parallel in any order, and C(TRUNCATE) is allowed.
  - After the load each recorded foreign key is added C(NOT VALID) and then validated, in parallel, and its
    record is deleted in the transaction that validates it. After a crash the records remain, and the next run
    restores them once it has loaded what it still has to load.
  - A column that is nullable in the source and NOT NULL in the target is checked in the snapshot before any row
    moves (also in check mode). Its NULLs stop the run, with their count and a few primary key values, unless the
    table's override sets an C(on_null) policy for the column (see O(modules)). With C(default) the table is read
    through a C(SELECT) that writes the target column's default, evaluated once on the target; with C(quarantine)
    the other rows are copied and these go, as jsonb with key and reason, into C(<state_schema>.quarantined_rows),
    in the table's transaction. Tables without a policy keep the plain binary C(COPY). One line of RV(progress)
    per column says what the policy did.
  - Every sequence owned by a copied target column (C(serial) or identity) continues after the copied values. It
    is set to the source sequence's state, or past the highest value of the column if that is higher. So does a
    sequence a column default calls C(nextval) on without owning it. A sequence of the legacy schema that no
    column uses (the application calls C(nextval) itself) is set to its source state in the module's schema after
    the copy, never moved back.
  - Each partition of a partitioned table is a table of its own; it is copied from the source partition into the
    target partition of the same name (C(COPY FREEZE), its partition constraint checked there) and reported with
    RV(tables[].partition_of). A partitioned table holds no rows itself and has no entry. A partition goes where
    its partition hierarchy's root goes (its schema, its exclusion) unless the mapping names the partition itself.
    An inheritance parent and its children are tables of their own too, each read and loaded C(ONLY) itself.
    Foreign keys of or to a partitioned table come off with it and back valid in one step (PostgreSQL 15 cannot
    add one C(NOT VALID) there).
  - Triggers a partition has from its partitioned table are disabled on the partition for its load like its own.
  - Every session sets C(row_security=off), so a row-level security policy can never hide rows from the copy
    (PostgreSQL raises an error instead). Before anything changes, also in check mode, every table with row-level
    security enabled is checked on both sides. The role must be superuser or C(BYPASSRLS), or own the table when
    RLS is not C(FORCE)d; otherwise the problem names the table, the role and the fix.
  - After the copy, every materialized view of the module's schema that is populated in the legacy database is
    refreshed, each after the views it reads (directly or through a view); see RV(materialized_views). One left
    C(WITH NO DATA) in the source stays so. A rerun that copies nothing leaves populated ones alone.
  - No superuser shortcut is used, so the privileges below are all it needs, on a managed service as well.
  - With O(sync=online) (the application keeps writing), each legacy database first gets a publication of its
    copied tables and a logical replication slot (C(pgoutput)) created with C(EXPORT_SNAPSHOT) over a replication
    connection; the coordinator imports that snapshot instead of taking its own. The copied tables hold exactly the
    state at the slot's consistent point, and the slot streams every later transaction to
    M(classifiedads.consolidation.sync_applier). Each slot is recorded in C(<state_schema>.sync_slots), see RV(slots).
  - With O(sync=online) a rerun leaves a database whose online copy completed and whose slot exists alone. One whose
    copy did not complete (or whose slot is gone) cannot resume from its snapshot, which ended with the attempt, so its
    slot and publication are dropped, the tables this run copied from it are emptied and copied again under a new
    slot, and RV(progress) says so.
    C(session_replication_role=replica) would not help, because the foreign keys must be dropped anyway for
    C(TRUNCATE).
  - On the source the role needs C(CONNECT) on each legacy database, C(USAGE) on the source schema, C(SELECT) on
    every table copied and on the sequences those tables own. It calls the function C(pg_export_snapshot), which
    every role may. On the target the role must own the target tables (C(ALTER TABLE), C(TRUNCATE), C(COPY FREEZE))
    and the materialized views it refreshes, and have C(USAGE) on their schemas. Tables under row-level security
    need the bypass described above. It also needs C(CREATE) on the target database the first time, when the
    O(state_schema) does not exist yet.
  - With O(sync=online) the source role also needs C(REPLICATION) (or the managed service's replication role),
    ownership of the copied tables and C(CREATE) on each legacy database, for the publication.
options:
  target_database:
    description: The consolidated database on O(target).
    type: str
    required: true
  run_id:
    description:
      - Identifies this consolidation run. Tables recorded as copied for this run id are skipped on a rerun.
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, up to 64 characters.
    type: str
    required: true
  parallel:
    description:
      - Number of tables copied at the same time, and of deferred foreign keys restored at the same time.
      - Each worker holds one target connection and up to one connection per legacy database. On top of that, a
        coordinator connection per legacy database holds the snapshot.
    type: int
    default: 2
  truncate:
    description:
      - Allow emptying target tables that already hold rows and are not recorded as copied by this run. Without
        it, such tables are refused, unless their C(tables) override says C(truncate=true).
    type: bool
    default: false
  defer_indexes:
    description:
      - Drop each table's indexes (primary key, unique and exclusion constraints included) for its COPY and rebuild
        them before the table's transaction commits. One sorted build per index costs a fraction of maintaining it
        row by row.
      - Indexes with a property the rebuild would lose are left in place. These are indexes with a comment,
        C(CLUSTER ON), C(REPLICA IDENTITY), their own tablespace, invalid ones and those another object depends on.
      - With V(false) every index is maintained row by row during the COPY.
    type: bool
    default: true
  state_schema:
    description:
      - Schema of O(target_database) that holds the run state, C(copied_tables) and C(deferred_ddl). It is created
        on first use, and never in check mode.
    type: str
    default: _consolidation
  progress_log:
    description:
      - A file to which one line is appended per table as it completes (then one per restored foreign key and
        the total), so that operators can follow a long copy with C(tail -f). Not written in check mode.
    type: path
  data_checks_report:
    description:
      - A file (written 0600, not in check mode) that receives every problem the plan-time data checks find, each
        with its count and up to five primary-key values of the offending rows, and what could not be checked.
      - The checks run on the source, in the copy's snapshots, before any row moves. They look for source columns
        holding values that have no target column, required target columns the source lacks, type changes that
        would reject or change values, duplicates of the target's unique keys, rows whose foreign key finds no
        referenced row, and rows failing the target's check constraints. A constraint the source enforces
        already costs nothing; any other costs one scan of its table.
    type: path
  maintenance_work_mem:
    description:
      - C(maintenance_work_mem) of the target sessions, which rebuild indexes and validate foreign keys. At most
        O(parallel) of them run at a time.
    type: str
    default: 256MB
  sync:
    description:
      - V(offline) copies from a snapshot of the copy's own; the legacy databases are expected to be fenced.
      - V(online) copies from each legacy database's new replication slot, so that the change applier continues
        exactly where the copy ends. The source needs C(wal_level=logical), room for a slot and a WAL sender per
        legacy database, a role with C(REPLICATION) that owns the copied tables and has C(CREATE) on each legacy
        database. M(classifiedads.consolidation.preflight) with its option C(sync=online) checks all of them.
    type: str
    choices: [offline, online]
    default: offline
  slot_prefix:
    description:
      - Start of the names of the slots and publications of O(sync=online), followed by digests of the run id and
        the database. Lower-case letters, digits and C(_), starting with a letter, at most 20 characters.
    type: str
    default: classifiedads
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.mapping
  - classifiedads.consolidation.progress
attributes:
  check_mode:
    description: Can run in check mode and return the changed status prediction without modifying the target.
    support: full
    details:
      - Changes nothing on either server and creates no state schema. It reads the source inside the same
        snapshots and reports the tables that would be copied, with exact row counts (a C(count) in the snapshot)
        and source sizes, the tables already recorded as complete, the keys, indexes and triggers that would be
        dropped and rebuilt, the materialized views that would be refreshed, and the statements that would run.
      - Fails on every problem a real run would fail on before moving data, such as missing target tables,
        mismatched columns or non-empty target tables.
      - When O(target_database) does not exist yet, because an earlier step of the same play would create it, the
        plan comes from the source alone and a warning says so.
  diff_mode:
    description: Returns no diff; RV(tables), RV(deferred) and RV(queries) describe the change instead.
    support: none
notes:
  - C(COPY FREEZE) writes rows already frozen and all-visible, so that no later VACUUM rewrites them. Other
    sessions with older snapshots could see those rows early, which does not matter for a target that is not in
    use yet.
  - User triggers are disabled, not left to fire, because the copied rows are history to keep as it is. A trigger
    that stamps or audits rows would rewrite or duplicate it.
  - Byte figures count the COPY stream; C(MB) is 1024 x 1024 bytes.
seealso:
  - name: COPY
    description: PostgreSQL's COPY command, including FREEZE and the binary format.
    link: https://www.postgresql.org/docs/current/sql-copy.html
  - name: Snapshot synchronisation
    description: pg_export_snapshot and SET TRANSACTION SNAPSHOT.
    link: https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-SNAPSHOT-SYNCHRONIZATION
'''

EXAMPLES = r'''
- name: Copy the legacy data into the consolidated database
  classifiedads.consolidation.data_copy:
    source: {host: legacy-db.internal, user: consolidation, passfile: /etc/consolidation/pgpass}
    target: {host: new-db.internal, user: classifiedads_owner, passfile: /etc/consolidation/pgpass}
    target_database: ClassifiedAds
    run_id: "2026-11-20"
    parallel: 4
    progress_log: /var/log/consolidation/2026-11-20/data_copy.log
    modules:
      - {name: Product, source_database: ClassifiedAds_Product, schema: product}
      - {name: Identity, source_database: ClassifiedAds_Identity, schema: identity}
      - {name: Storage, source_database: ClassifiedAds_Storage, schema: storage}
      - {name: Notification, source_database: ClassifiedAds_Notification, schema: notification}
      - name: AuditLog
        source_database: ClassifiedAds_AuditLog
        schema: auditlog
        tables:
          # DbUp's objects live in the default schema of the consolidated database; the migrator has
          # already journaled the same script there, so its journal may be replaced.
          schemaversions: {schema: public, truncate: true}
          CacheEntries: {schema: public}
      - {name: Configuration, source_database: ClassifiedAds_Configuration, schema: configuration}
  register: copy

- name: Show what was copied
  ansible.builtin.debug:
    msg: "{{ copy.progress }}"

- name: Connection options set once for the whole collection
  module_defaults:
    group/classifiedads.consolidation.all:
      source: {host: legacy-db.internal, user: consolidation}
      target: {host: new-db.internal, user: classifiedads_owner}
  block:
    - name: Preview the copy (check mode changes nothing)
      classifiedads.consolidation.data_copy:
        target_database: ClassifiedAds
        run_id: "2026-11-20"
        modules: "{{ consolidation_modules }}"
      check_mode: true
      register: copy_plan
'''

RETURN = r'''
tables:
  description: One entry per source table that is not excluded, biggest first in the copy order.
  returned: always
  type: list
  elements: dict
  contains:
    module:
      description: Module name.
      type: str
      sample: Product
    source_database:
      description: Legacy database.
      type: str
      sample: ClassifiedAds_Product
    source_table:
      description: Table name in the legacy database.
      type: str
      sample: Products
    target_schema:
      description: Schema in the target database.
      type: str
      sample: product
    target_table:
      description: Table name in the target database.
      type: str
      sample: Products
    partition_of:
      description: The table this one is a partition of (its parent, in the source); null for a table of its own.
      type: str
      sample: Events_2025
    rows:
      description: Rows copied (C(copied)), recorded (C(skipped_complete)) or counted in the snapshot (C(would_copy)).
      type: int
      sample: 12345
    bytes:
      description:
        - Bytes of COPY data streamed (C(copied)), as recorded (C(skipped_complete)), or the source table size
          (C(would_copy)).
      type: int
      sample: 3355443
    source_size:
      description: C(pg_table_size) of the source table (heap and TOAST, no indexes) in bytes.
      type: int
      sample: 4202496
    seconds:
      description: Seconds the table's copy took (null for C(would_copy)).
      type: float
      sample: 0.41
    status:
      description: What happened to the table.
      type: str
      choices: [copied, skipped_complete, would_copy]
      sample: copied
    format:
      description: COPY format used, C(binary) or C(text); null for tables skipped as complete.
      type: str
      sample: binary
    null_policy:
      description: The columns whose NULLs an C(on_null) policy handled, with the policy and the count of NULLs.
      type: dict
      sample: {UserId: {on_null: quarantine, nulls: 3}}
    quarantined:
      description: Rows kept in C(<state_schema>.quarantined_rows) instead of the table; null without a quarantine.
      type: int
      sample: 3
    source_snapshot:
      description: Id of the source snapshot the table was (or would be) read from, as recorded for C(skipped_complete).
      type: str
      sample: 00000004-0000002A-1
    write_counters:
      description:
        - The source table's write counters read just before that snapshot was taken, as recorded in
          C(<state_schema>.copied_tables). Null when the source server does not count (C(track_counts) off), or
          for a table recorded by a release that did not record them.
      type: dict
      sample: {inserted: 4003, updated: 12, deleted: 0}
slots:
  description:
    - With O(sync=online), per legacy database the slot (and publication, same name) the copy was read from.
    - C(action) is V(created), V(recreated) (an incomplete earlier attempt's slot was dropped first), V(kept) (the
      copy was complete already), or in check mode V(would_create), V(would_recreate). Empty with O(sync=offline).
  returned: always
  type: list
  elements: dict
  sample:
    - source_database: ClassifiedAds_Product
      slot_name: classifiedads_1b2c3d4e_a1b2c3_classifiedads_product
      publication_name: classifiedads_1b2c3d4e_a1b2c3_classifiedads_product
      consistent_point: 0/1A2B3C8
      action: created
excluded:
  description: Source tables left out by O(exclude_tables).
  returned: always
  type: list
  elements: dict
  sample: [{source_database: ClassifiedAds_Product, source_table: __EFMigrationsHistory}]
sequences:
  description:
    - Sequences owned by copied target columns and where they continue; in check mode, the ones that would be set
      (C(setval) still null because the copied values are not known yet).
    - Sequences no column uses have no table and no column (C(source_table), C(target_table), C(column) null);
      C(setval) is null when the target sequence stood there already.
  returned: always
  type: list
  elements: dict
  sample:
    - source_database: ClassifiedAds_Identity
      source_table: DataProtectionKeys
      target_schema: identity
      target_table: DataProtectionKeys
      column: Id
      source_sequence: public."DataProtectionKeys_Id_seq"
      source_last_value: 12
      source_is_called: true
      target_sequence: identity."DataProtectionKeys_Id_seq"
      target_column_extreme: 12
      setval: [12, true]
materialized_views:
  description:
    - The materialized views populated in the legacy databases, in the order they are refreshed after the copy.
    - C(action) is C(refreshed) (C(would_refresh) in check mode), or C(unchanged) when this run copied no table and
      the view is populated already.
  returned: always
  type: list
  elements: dict
  sample:
    - {target_schema: product, name: ProductCounts, source_database: ClassifiedAds_Product, action: refreshed,
       seconds: 0.2}
deferred:
  description:
    - Keys, indexes and triggers taken away for the load and brought back.
    - C(kind) is C(foreign_key), C(primary_key), C(unique), C(exclusion), C(index) or C(trigger). C(definition) is
      C(pg_get_constraintdef), C(pg_get_indexdef) or, for a trigger, the clause that re-enables it.
    - C(action) for a foreign key is C(dropped) or C(restored), or C(would_drop) in check mode. An interrupted run
      leaves records behind, and check mode reports these as C(would_restore).
    - C(action) for an index or constraint of a loaded table is C(rebuilt) (C(would_rebuild) in check mode). For a
      trigger it is C(disabled_during_copy) (C(would_disable_during_copy) in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - {kind: foreign_key, target_schema: identity, target_table: UserRoles, name: FK_UserRoles_Users_UserId,
       definition: 'FOREIGN KEY ("UserId") REFERENCES identity."Users"("Id") ON DELETE CASCADE', action: restored}
    - {kind: primary_key, target_schema: identity, target_table: UserRoles, name: PK_UserRoles,
       definition: 'PRIMARY KEY ("Id")', action: rebuilt}
queries:
  description:
    - SQL statements the run issued that change something or move data (the COPY commands, not the data), in
      order of issue; in check mode, the statements a run would issue first. Catalog look-ups are left out.
    - A failed run returns instead the failing statement (C(failed_statement)), the side that failed (C(side)) and
      C(failure_record), a 0600 file in the run directory with every statement and the partial results.
  returned: always
  type: list
  elements: str
  sample:
    - TRUNCATE "product"."Products"
    - COPY "product"."Products" ("Id", "Code") FROM STDIN (FORMAT binary, FREEZE)
progress:
  description:
    - One line per copied table (also appended to O(progress_log)), then one per restored foreign key and the total.
    - In check mode, one line per table that would be copied, with its exact row count and source size.
  returned: always
  type: list
  elements: str
  sample: ['product."Products": 12,345 rows, 3.2 MB in 0.4 s (8.0 MB/s)']
totals:
  description: Figures over the tables copied by this run.
  returned: always
  type: dict
  contains:
    tables:
      description: Tables copied now.
      type: int
    tables_skipped:
      description: Tables skipped because this run id had copied them already.
      type: int
    rows:
      description: Rows copied.
      type: int
    bytes:
      description: Bytes of COPY data streamed.
      type: int
    seconds:
      description: Wall-clock seconds of the whole run, restoring the deferred objects included.
      type: float
    mb_per_second:
      description: RV(totals.bytes) over RV(totals.seconds), in MB (1024 x 1024 bytes) per second.
      type: float
  sample: {tables: 28, tables_skipped: 0, rows: 1234567, bytes: 840000000, seconds: 14.2, mb_per_second: 56.4}
data_checks:
  description:
    - What the plan-time data checks found, in check mode and when they stop the run (see O(data_checks_report)).
    - C(problems) has one entry per problem with C(source), C(target), C(kind) (C(column), C(unique),
      C(foreign_key) or C(check)), C(subject), C(what), C(count) (offending rows), C(key_columns) and C(keys) (at
      most five key values, never a whole row). C(not_checked) says what could not be checked before the copy
      and why (the copy still enforces it). C(scans) counts the statements that read a whole source table.
      C(report) is the file written, or null.
  returned: always
  type: dict
  sample:
    problems:
      - source: ClassifiedAds_Product:public."Products"
        target: product."Products"
        kind: column
        subject: column "Code"
        what: values longer than 20 characters (character varying(20))
        count: 3
        key_columns: [Id]
        keys: [0a1b2c3d-0000-4000-8000-000000000001]
    not_checked: []
    scans: 1
    report: /var/lib/consolidation/runs/2026-11-20/data_checks.json
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_engine import CopyEngine
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import CopyFailed
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan, run_option_problems
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import DEFAULT_PREFIX

RESUME = "%s. Tables copied so far are recorded; rerun with the same run_id to resume."


def option_problems(params):
    problems = run_option_problems(params["run_id"], params["state_schema"], params["slot_prefix"])
    if params["parallel"] < 1:
        problems.append("parallel must be at least 1, got %d" % params["parallel"])
    return problems


def failure_details(engine):
    """What the copy did before it failed: for the failure record (too long for the task line)."""
    details = engine.partial_result()
    for key in ("warnings", "changed", "queries"):
        details.pop(key)
    return details


def main():
    module = ConsolidationModule(
        argument_spec(
            mapping=True,
            target_database=dict(type="str", required=True),
            run_id=dict(type="str", required=True),
            parallel=dict(type="int", default=2),
            truncate=dict(type="bool", default=False),
            defer_indexes=dict(type="bool", default=True),
            state_schema=dict(type="str", default="_consolidation"),
            progress_log=dict(type="path"),
            data_checks_report=dict(type="path"),
            maintenance_work_mem=dict(type="str", default="256MB"),
            sync=dict(type="str", choices=["offline", "online"], default="offline"),
            slot_prefix=dict(type="str", default=DEFAULT_PREFIX),
        ),
        needs=("source", "target"),
    )
    params = module.params
    problems = option_problems(params)
    if problems:
        module.fail(problems)
    with module.failures():
        modules = build_plan(params["modules"], params["target_database"], params["source"], params["target"],
                             params["exclude_tables"])

    engine = CopyEngine(
        source=params["source"], target=params["target"], modules=modules,
        target_database=params["target_database"], run_id=params["run_id"], parallel=params["parallel"],
        truncate=params["truncate"], defer_indexes=params["defer_indexes"], state_schema=params["state_schema"],
        progress_log=params["progress_log"], maintenance_work_mem=params["maintenance_work_mem"],
        data_checks_report=params["data_checks_report"],
        journal=module.journal, checkpoint=module.checkpoint, sync=params["sync"], slot_prefix=params["slot_prefix"])
    module.on_controller_gone(engine.stop)

    # The data checks' findings stay in a failed result; everything else the copy did goes to the failure record.
    with module.failures(result=lambda: dict(changed=engine.changed, data_checks=engine.data_checks_result()),
                         to_record=lambda: failure_details(engine)):
        try:
            result = engine.run()
        except CopyFailed as exc:
            module.fail(exc.problems, message=RESUME % exc, to_record=failure_details(engine), changed=engine.changed)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
