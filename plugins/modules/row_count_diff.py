#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: row_count_diff
short_description: Compare every legacy table with its consolidated copy, by exact row count and optionally by content
version_added: 0.1.0
description:
  - For each module mapping, counts the rows of every ordinary and partitioned table of the legacy database's source
    schema on the O(source) server with an exact C(count(*)), and the rows of the table it maps to in
    O(target_database) on the O(target) server. Table overrides and exclusions are applied as in the rest of the
    collection.
  - Each table is counted C(ONLY) itself. A partition is a table of its own, compared with the same partition of the
    target (RV(tables[].partition_of) names its parent), so a row in the wrong partition or a missing partition
    fails. A partitioned table holds no rows of its own (0 on both sides, RV(tables[].partitioned)). An inheritance
    parent and its children are compared each with its own rows.
  - Every session sets C(row_security=off), so a row-level security policy that would hide rows from the role makes
    the table an C(error), never a smaller count that could match.
  - Each table gets a state. C(match) means equal counts (and checksums). C(mismatch) means counts or checksums differ,
    or checksummed columns exist on one side only. C(missing) means the target table does not exist. C(excluded) means
    left out by name and not counted. C(error) means a side could not be read.
  - C(extra) is a table of a module's target schema that no legacy table maps to, for instance one the new application
    model added. An empty extra table is reported for information only; an extra table with rows fails the
    verification, because those rows were neither copied nor compared.
  - With O(checksum=true), also compares an order-independent content checksum of each copied table, computed the same
    way on both servers in one scan. It covers the columns both sides have, sorted by name, so column order does not
    matter. Columns of the same type are hashed in binary form where the type's hash is exact. Other columns are hashed
    by their text form under pinned session settings (C(DateStyle), C(TimeZone), C(IntervalStyle),
    C(extra_float_digits), C(bytea_output), empty C(search_path)), whatever the server or role defaults are.
  - With O(check_sequences=true), checks every serial or identity column of the compared target tables. Its sequence's
    next value must be greater than the largest value in the column and not behind the legacy sequence of the same
    column. Otherwise the sequence is reported C(behind). A sequence of the legacy schema that no column uses must
    exist in the module's schema and stand at or beyond its legacy state (C(target_table) and C(column) null).
  - With O(expect_tables), checks that schemas and tables exist in the target database. This is the fresh-deployment
    check (I(Verify Schemas Created)), and it needs no legacy database.
  - Proof by content. When the C(classifiedads.consolidation.data_copy) of O(run_id) recorded the sources' write
    counters in C(<state_schema>.copied_tables), they are read again after the tables were measured (one catalog
    query per legacy database, in its own transaction). A table whose counters differ, up or down (a statistics
    reset), was written after it was copied. It is listed in RV(written_after_copy) and the reports with its
    counter deltas, and passes only when its content checksum matches, which is then computed even with
    O(checksum=false). An aborted write moves the counters too; such a table passes because its content still
    matches. PostgreSQL adds a backend's counts to its statistics when the backend goes idle, some seconds after
    the commit at worst; a write closer to the verification than that is caught by O(checksum=true) alone.
  - Tables are measured on both servers at the same time, O(workers) tables at a time on each, largest first, each in
    its own read-only session.
  - Schema fidelity. With O(schema_fidelity) other than V(off), reads for each module the objects of every kind in
    the legacy source schema and in the module's target schema (plus the tables an override placed in another
    schema). The kinds are tables, partitions, indexes, constraints, sequences (their parameters, not their values),
    types, functions, triggers, views, materialized views, policies, RLS flags, grants, comments, rules, extended
    statistics and extensions. Definitions are printed by the server with the schema being read first in
    C(search_path), so a legacy C(public) and a consolidated C(product) print the same text for the same object.
  - Each module then gets per kind the counts on both sides and the objects missing in the target, only in the
    target, or defined differently. A difference named in the module's C(schema_exclusions) (kind, name, reason) or
    belonging to a table of C(exclude_tables) is listed as excluded with its reason. An exclusion that matches no
    object is reported as stale.
  - Writes C(verification.json) and C(verification.md) to O(report_dir), which is kept at mode 0700, with both files
    at mode 0600. Its warnings (schema differences in C(report) mode, stale exclusions, records it could not read)
    are also appended to C(warnings.log) there, once per new report.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.mapping
  - classifiedads.consolidation.progress
attributes:
  check_mode:
    description:
      - Every count, checksum and sequence check runs, because they are read-only. The report files are not written;
        RV(report.written) says so.
    support: full
  diff_mode:
    description: Not supported; RV(tables) and the report files say what differs.
    support: none
options:
  target_database:
    description: Name of the consolidated database. Used exactly as given (quoted), so case matters.
    type: str
    required: true
  expect_tables:
    description:
      - Schemas and tables that must exist in O(target_database), as a schema name mapped to a list of table names. An
        empty list only requires the schema.
      - A missing schema or table is C(missing) and fails the verification. An existing one is C(present), with its row
        count for information.
    type: dict
    default: {}
  checksum:
    description:
      - Also compare an order-independent content checksum of every copied table. It costs one full scan per table
        and side.
      - Needs PostgreSQL 14 or later on both servers (C(hash_record_extended)), and servers with the same byte order.
        A difference in byte order shows as a mismatch, never as a false match.
    type: bool
    default: false
  check_sequences:
    description: Check the sequence of every serial and identity column of the compared target tables.
    type: bool
    default: true
  workers:
    description: How many tables are measured at the same time on each server.
    type: int
    default: 2
  report_dir:
    description:
      - Directory to write C(verification.json) and C(verification.md) into, usually the run directory. It is
        created if needed and kept at mode 0700, and the files are written at mode 0600.
      - Files whose result is unchanged (everything but C(generated_at)) are left as they are. That makes a rerun
        unchanged.
      - Omitted means no report files.
    type: path
  fail_on_mismatch:
    description:
      - Fail when any table is not C(match), C(present), C(excluded) or an empty C(extra), or when a sequence is
        C(behind). The message holds the readable table and the report paths.
      - V(false) returns the same data with RV(summary.passed=false) and leaves the decision to the play.
    type: bool
    default: true
  run_id:
    description: Identifier of the consolidation run, recorded in the report. Letters, digits, C(.), C(_) and C(-).
    type: str
  state_schema:
    description:
      - Schema of O(target_database) where C(classifiedads.consolidation.data_copy) recorded the copy of O(run_id)
        (its C(state_schema)). Without O(run_id), or when it recorded nothing, no write counters are compared.
      - The rows a C(quarantine) NULL policy kept out are compared there (C(<state_schema>.quarantined_rows)) with
        the legacy rows the policy leaves out.
    type: str
    default: _consolidation
  rehearsal:
    description:
      - A rehearsal's verification (the C(rehearsal) role). The legacy databases stay open to the application, so a
        table whose write counters moved after the copy read it (RV(tables[].written_after_copy)) and that differs is
        set apart (C(rehearsal_write)) instead of failing, with its sequences; every other table must still match.
      - Needs O(run_id) and the copy's records (O(state_schema)); without them nothing is set apart.
    type: bool
    default: false
  backup_set:
    description:
      - Identifier of the backup set taken before the copy, recorded in the report. Later steps, such as
        decommissioning, can then check that the report belongs to their backup set.
    type: str
  fence:
    description:
      - The run's write fence, recorded in the report (the C(fence) of the plan the C(consolidation) role publishes).
        It has C(mode) (C(read_only) or C(none)) and C(reason), the operator's reason for C(none).
      - Omitted means no fence is recorded.
    type: dict
  schema_fidelity:
    description:
      - V(enforce) fails the verification on any schema difference that is not excluded, and on a schema that cannot
        be read. Use it where the target schema was made from the legacy one (C(migrator_mode=source_ddl)).
      - V(report) lists the differences in the reports, as warnings and in C(warnings.log) of O(report_dir), without
        failing. Use it where an application's own migrator made the target schema.
      - V(off) compares no schema.
    type: str
    choices: [enforce, report, "off"]
    default: report
notes:
  - Nothing is written to any database. Every session is read-only (C(default_transaction_read_only)).
  - Counts are exact and taken table by table, not from one snapshot. The application must not write to either side
    while the verification runs, or the result reports the writes as mismatches.
  - The login roles need C(CONNECT) on the databases, C(USAGE) on the schemas and C(SELECT) on the tables and their
    sequences. The predefined role C(pg_read_all_data) is enough.
  - Requires PostgreSQL 12 or later (14 for O(checksum)).
  - C(changed) is V(true) only when report files or the report directory's mode were written. No database
    changes.
'''

EXAMPLES = r'''
- name: Verify the consolidation, counts and content
  classifiedads.consolidation.row_count_diff:
    source: "{{ consolidation_source }}"
    target: "{{ consolidation_target }}"
    target_database: ClassifiedAds
    modules:
      - name: Product
        source_database: ClassifiedAds_Product
        schema: product
      - name: AuditLog
        source_database: ClassifiedAds_AuditLog
        schema: auditlog
        tables:
          schemaversions: {schema: public}
          CacheEntries: {schema: public}
    checksum: true
    run_id: "{{ consolidation_plan.run_id }}"
    backup_set: "{{ consolidation_plan.run_id }}"
    report_dir: "{{ consolidation_plan.run_dir }}"
  register: verification

- name: Show the comparison
  ansible.builtin.debug:
    msg: "{{ verification.table_text }}"

- name: Fresh deployment, check that the migrator created the schemas and tables
  classifiedads.consolidation.row_count_diff:
    target_database: ClassifiedAds
    expect_tables:
      product: [Products, OutboxMessages, ArchivedOutboxMessages, AuditLogEntries]
      identity: []
      storage: []
'''

RETURN = r'''
tables:
  description: One entry per compared, excluded, extra or expected table, in report order.
  returned: always
  type: list
  elements: dict
  contains:
    module:
      description: Module name; V(null) for an O(expect_tables) entry.
      type: str
    source_database:
      description: Legacy database, V(null) when there is no source table.
      type: str
    source_schema:
      description: Schema of the legacy table.
      type: str
    source_table:
      description: Legacy table name, V(null) for C(extra) and O(expect_tables) entries.
      type: str
    target_schema:
      description: Schema of the target table; V(null) for an excluded legacy table.
      type: str
    target_table:
      description: Target table name; V(null) for an excluded legacy table or a schema-only expectation.
      type: str
    kind:
      description: C(copied), C(excluded), C(extra) or C(expected).
      type: str
    partition_of:
      description: The legacy table's parent when it is a partition, else V(null).
      type: str
    partitioned:
      description: Whether the legacy table is partitioned (it holds no rows; its partitions are entries of their own).
      type: bool
    state:
      description: C(match), C(mismatch), C(missing), C(extra), C(excluded), C(present) or C(error).
      type: str
    ok:
      description: Whether this entry lets the verification pass.
      type: bool
    source_rows:
      description: Exact row count of the legacy table, V(null) when not counted.
      type: int
    target_rows:
      description: Exact row count of the target table, V(null) when it does not exist or was not counted.
      type: int
    source_checksum:
      description: Content checksum on the source (a decimal number), V(null) without O(checksum).
      type: str
    target_checksum:
      description: Content checksum on the target, V(null) without O(checksum).
      type: str
    columns_only_in_source:
      description: Columns the checksum could not cover because only the legacy table has them.
      type: list
      elements: str
    columns_only_in_target:
      description: Columns the checksum could not cover because only the target table has them.
      type: list
      elements: str
    column_type_differences:
      description: Columns whose types differ. These are compared by their text form, for information.
      type: list
      elements: dict
    reasons:
      description: Why the state is what it is.
      type: list
      elements: str
    null_policy:
      description:
        - Only for a table whose mapping sets an C(on_null) policy of C(default) or C(quarantine). The source was
          counted and checksummed with the policy applied; C(source_rows) is the whole legacy table, which must equal
          C(target_rows) plus C(quarantined_rows).
        - C(columns) maps each column to its policy; C(defaulted_keys) and C(quarantined_keys) are the primary key
          values (C(Id=...)) of the rows copied with the target column's default and of the rows kept in the
          quarantine table.
      type: dict
      returned: for tables with a NULL policy
    source_whole:
      description:
        - Only for a table with a NULL policy (see RV(tables[].null_policy)). The legacy table's C(rows) and C(checksum)
          as they are, without the policy, which is what a backup of it holds; a final backup proves itself
          against these.
      type: dict
      returned: for tables with a NULL policy
    rehearsal_write:
      description: With O(rehearsal), true for a differing table set apart because the application wrote it after the
        copy read it (it does not fail the verification).
      type: bool
      returned: for such tables
    written_after_copy:
      description: Whether the source table's write counters moved since the copy read it; V(null) when the copy
        recorded nothing to compare with, or for entries that are not C(copied).
      type: bool
    copy_snapshot:
      description: Id of the source snapshot the copy read the table from, as recorded.
      type: str
    write_counters:
      description:
        - C(copied) (recorded by the copy before its snapshot), C(verified) (read now) and their C(delta), each with
          C(inserted), C(updated), C(deleted). A side is V(null) when unknown (not recorded, C(track_counts) off);
          the table then counts as written.
      type: dict
    checksum_columns:
      description: The columns the content checksum covered (C(name), and C(binary) when hashed in binary form),
        which a final backup reuses to checksum the same way; V(null) when no checksum was computed.
      type: list
      elements: dict
  sample:
    - module: Product
      source_database: ClassifiedAds_Product
      source_schema: public
      source_table: Products
      target_schema: product
      target_table: Products
      kind: copied
      state: match
      ok: true
      source_rows: 1200
      target_rows: 1200
      source_checksum: "6976022685926353192313"
      target_checksum: "6976022685926353192313"
      columns_only_in_source: []
      columns_only_in_target: []
      column_type_differences: []
      reasons: []
sequences:
  description: One entry per serial or identity column of the compared target tables (empty without O(check_sequences)).
  returned: always
  type: list
  elements: dict
  contains:
    module:
      description: Module name.
      type: str
    target_schema:
      description: Schema of the table.
      type: str
    target_table:
      description: Table name.
      type: str
    column:
      description: The serial or identity column.
      type: str
    sequence_schema:
      description: Schema of the sequence.
      type: str
    sequence:
      description: Sequence name.
      type: str
    increment:
      description: Increment of the sequence.
      type: int
    next_value:
      description: The value the next insert would get.
      type: int
    column_max:
      description: Largest value in the column; V(null) when the table is empty.
      type: int
    source_sequence:
      description: Legacy sequence of the same column, V(null) when there is none.
      type: str
    source_next_value:
      description: Next value of the legacy sequence.
      type: int
    state:
      description: C(ok), C(behind) or C(error).
      type: str
    reasons:
      description: Why the state is not C(ok).
      type: list
      elements: str
  sample:
    - module: Identity
      target_schema: identity
      target_table: DataProtectionKeys
      column: Id
      sequence_schema: identity
      sequence: DataProtectionKeys_Id_seq
      increment: 1
      next_value: 13
      column_max: 12
      source_sequence: public."DataProtectionKeys_Id_seq"
      source_next_value: 13
      state: ok
      reasons: []
written_after_copy:
  description: The tables of RV(tables) whose source was written after it was copied, with their counter C(delta)
    and whether their C(content) C(matches) (then they pass) or C(differs).
  returned: always
  type: list
  elements: dict
  sample: [{source_database: ClassifiedAds_Product, source_schema: public, source_table: Products,
            target_schema: product, target_table: Products, copy_snapshot: 00000004-0000002A-1,
            delta: {inserted: 0, updated: 1, deleted: 0}, content: differs, ok: false}]
summary:
  description: Counts per state and the verdict.
  returned: always
  type: dict
  contains:
    tables:
      description: Number of entries in RV(tables).
      type: int
    match:
      description: Tables whose counts (and checksums) are equal.
      type: int
    mismatch:
      description: Tables whose counts or checksums differ.
      type: int
    missing:
      description: Target tables or schemas that do not exist.
      type: int
    extra:
      description: Target tables that no legacy table maps to.
      type: int
    extra_with_rows:
      description: Extra tables that hold rows. These fail the verification.
      type: int
    excluded:
      description: Tables left out by name.
      type: int
    present:
      description: Expected tables that exist.
      type: int
    error:
      description: Tables that could not be measured.
      type: int
    failed:
      description: Entries of RV(tables) that fail the verification.
      type: int
    sequences:
      description: Sequences checked.
      type: int
    sequences_behind:
      description: Sequences that are C(behind).
      type: int
    sequences_failed:
      description: Sequences that are not C(ok) (C(behind), or C(error) when they could not be read).
      type: int
    written_after_copy:
      description: Tables whose source was written after it was copied.
      type: int
    rehearsal_writes:
      description: With O(rehearsal), the differing tables set apart because the application wrote them after the copy.
      type: int
    schema_fidelity:
      description: The O(schema_fidelity) mode the schema was compared in; absent with V(off).
      type: str
    schema_differences:
      description: Schema differences not excluded, over all modules; absent with O(schema_fidelity=off).
      type: int
    schema_errors:
      description: Modules whose schema could not be read; absent with O(schema_fidelity=off).
      type: int
    passed:
      description: Whether the verification passed.
      type: bool
  sample: {"tables": 34, "match": 31, "mismatch": 0, "missing": 0, "extra": 0, "extra_with_rows": 0, "excluded": 6,
           "present": 0, "error": 0, "failed": 0, "sequences": 2, "sequences_behind": 0,
           "sequences_failed": 0, "passed": true}
schema_fidelity:
  description:
    - The schema comparison, V(null) with O(schema_fidelity=off) or without modules. C(mode), C(passed),
      C(differences) (not excluded, over all modules), C(errors) (modules whose schema could not be read),
      C(stale_exclusions) (their number) and C(modules).
    - Each module has C(module), C(source) and C(target) (database and schema), C(passed), C(differences),
      C(stale_exclusions) (kind, name, reason), C(error) when its schema could not be read, and C(kinds).
    - Each kind has C(kind), C(source) and C(target) (objects found on each side), C(missing) and C(extra) (names),
      C(changed) (C(name) and C(differences), how the definitions differ) and C(excluded) (C(name), C(reason),
      and C(difference), which is C(missing), C(extra), C(changed) or C(same)).
  returned: always
  type: dict
  sample:
    mode: enforce
    passed: false
    differences: 1
    errors: 0
    stale_exclusions: 0
    modules:
      - module: Shop
        source: shop_legacy.public
        target: Shop.product
        passed: false
        differences: 1
        stale_exclusions: []
        kinds:
          - {kind: policy, source: 2, target: 1, missing: [customers.own_rows], extra: [], changed: [], excluded: []}
report:
  description: Where the report files are.
  returned: always
  type: dict
  contains:
    json:
      description: Path of C(verification.json), V(null) without O(report_dir).
      type: str
    markdown:
      description: Path of C(verification.md), V(null) without O(report_dir).
      type: str
    written:
      description: Whether the files were written in this run.
      type: bool
    reason:
      description: Why the files were not written (no O(report_dir), check mode, or the same result is already there).
      type: str
    generated_at:
      description: UTC time of the report. An unchanged report keeps its first time.
      type: str
      sample: "2026-11-24T04:00:00Z"
table_text:
  description: The comparison as a fixed-width plain-text table, followed by sequences, problems and the verdict.
  returned: always
  type: str
servers:
  description: Address (C(host:port)) and PostgreSQL version of each server. Contains no user or password.
  returned: always
  type: dict
  sample: {"source": {"address": "db1:5432", "version": "16.4"}, "target": {"address": "db2:5432", "version": "16.4"}}
queries:
  description: The SQL statements run, each once, in the order first run (session settings, catalog reads, counts).
  returned: always
  type: list
  elements: str
  sample: ['SELECT count(*) FROM "product"."Products"']
elapsed:
  description: Seconds the verification took, report writing excluded.
  returned: always
  type: float
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.verification import Verification


def cannot_verify(problems):
    return "cannot verify: " + "; ".join(problems)


def main():
    module = ConsolidationModule(
        argument_spec(
            mapping=True,
            target_database=dict(type="str", required=True),
            expect_tables=dict(type="dict", default={}),
            checksum=dict(type="bool", default=False),
            check_sequences=dict(type="bool", default=True),
            workers=dict(type="int", default=2),
            report_dir=dict(type="path"),
            fail_on_mismatch=dict(type="bool", default=True),
            run_id=dict(type="str"),
            backup_set=dict(type="str"),
            fence=dict(type="dict"),
            state_schema=dict(type="str", default="_consolidation"),
            rehearsal=dict(type="bool", default=False),
            schema_fidelity=dict(type="str", default="report", choices=["enforce", "report", "off"]),
        ),
        needs=("target",),
        unique_queries=True,
        reads_target_only=True,
    )
    with module.failures(message=cannot_verify):
        result, failure = Verification(module.params, module.journal).run()
    for warning in result.pop("warnings"):
        module.warn(warning)
    if failure:
        result["msg"] = failure
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
