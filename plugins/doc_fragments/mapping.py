# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The module -> database -> schema mapping shared by every module that reads it
    # (plugins/module_utils/plan.py holds the matching argument spec, mapping_argument_spec()).
    DOCUMENTATION = r'''
options:
  modules:
    description:
      - The module mapping, one entry per legacy database, validated and normalised the same way in every module
        of the collection (the C(classifiedads.consolidation.consolidation) role publishes it as
        C(consolidation_plan.modules)).
      - Only M(classifiedads.consolidation.row_count_diff) accepts an empty list (it then checks its
        C(expect_tables) alone).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Module name, for messages and reports (C(Product)).
        type: str
        required: true
      source_database:
        description: The legacy database, exactly as named on the source server (C(ClassifiedAds_Product)).
        type: str
        required: true
      schema:
        description: Schema of the consolidated database that receives the module's tables (C(product)).
        type: str
        required: true
      source_schema:
        description: Schema of the legacy database that holds the tables.
        type: str
        default: public
      exclude_tables:
        description: Tables of this legacy database that are left out, in addition to O(exclude_tables).
        type: list
        elements: str
        default: []
      tables:
        description:
          - Per source table overrides, keyed by table name. Each value may set C(schema) and C(table) (where the
            table lands) and C(truncate) (whether a non-empty target table may be emptied before the copy).
          - C(columns) sets, per column, what becomes of a NULL in a column that is nullable in the legacy table and
            NOT NULL in the target table, by mapping the column name to its C(on_null) policy (for ClassifiedAds,
            C(UserClaims) maps C(UserId) to C(on_null=quarantine)). C(fail) (the default) stops the copy
            before any row moves, with the count and a few primary key values. C(default) copies such rows with the
            target column's default, evaluated once on the target. C(quarantine) copies the other rows and keeps these
            as jsonb, with key and reason, in C(<state_schema>.quarantined_rows) of the target database.
          - A policy on a column that is missing, NOT NULL in the legacy table or nullable in the target table is
            refused before the copy, and so is C(default) for a column without a default (or with a volatile one).
          - M(classifiedads.consolidation.row_count_diff) compares the legacy table with the policy applied.
        type: dict
        default: {}
      schema_exclusions:
        description:
          - Schema-fidelity differences this module accepts, each a dictionary with C(kind), C(name) and C(reason).
            M(classifiedads.consolidation.row_count_diff) lists such an object as excluded with its reason instead
            of counting it as a difference, whether it is missing, extra or changed.
          - C(kind) is one of C(table), C(partition), C(index), C(constraint), C(sequence), C(type), C(function)
            (functions, procedures and aggregates), C(trigger), C(view), C(materialized_view), C(policy), C(rls) (a
            table's row-level security flags), C(grant), C(comment), C(rule), C(statistics) or C(extension).
          - C(name) is the object's name relative to its schema, as the verification report writes it. Examples are
            C(Orders), C(Orders.Orders_pkey) (an index, constraint, trigger, policy, rule or statistics object of a
            table), C(order_total(customer bigint)) (a function), C(table Orders reporting) (a grant, as object kind,
            object name and grantee) and C(column Orders.Note) (a comment, as object kind and object name).
          - C(reason) must say why the difference is acceptable. It is written to the reports.
          - An exclusion that matches no object on either side is reported as stale. The objects of a table left
            out by C(exclude_tables) are excluded without being listed here, with the reason C(exclude_tables).
        type: list
        elements: dict
        default: []
  exclude_tables:
    description:
      - Tables left out of every legacy database. The default leaves out EF Core's migration history, which the
        application's migrator writes anew in the consolidated database.
    type: list
    elements: str
    default: [__EFMigrationsHistory]
'''
