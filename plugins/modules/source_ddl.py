#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: source_ddl
short_description: Recreate the legacy databases' table definitions in the module schemas
version_added: 0.1.0
description:
  - For applications without a migrator that can build the consolidated schema (C(source_ddl) mode). Reads each
    legacy database's tables from its source schema and creates the same definitions in the module's schema of
    O(target_database) on the O(target) server.
  - "Copied: columns (types, arrays, collations), defaults, NOT NULL, identity columns with their sequence options,
    stored generated columns, serial-style sequences (created beside their table, C(OWNED BY) the column, the
    default pointing at the new sequence), primary key, unique, check and exclusion constraints, indexes (C(INCLUDE)
    columns, predicates, methods and options as the server prints them), foreign keys between tables of the same
    legacy database, and the enum and domain types of the source schema that the tables use (created in the
    module schema)."
  - Not copied, and said so in a warning - triggers, views, comments, privileges, ownership (the login role owns
    what it creates), row data, and a foreign key whose referenced table is excluded.
  - Refused before anything runs, with every reason listed - partitioned, inherited or typed tables, and a
    definition that names a function, operator, collation or non-enum, non-domain type of the source schema, or
    any user object of another schema of the legacy database, since none of those would exist in the target.
  - Idempotent. A table that already exists with the same definition is left alone. A table, type or sequence that
    exists with a different definition is an error naming it and every difference; user tables are never altered.
  - All statements of one module run in one transaction; modules are planned (and checked) before any of them runs.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.mapping
attributes:
  check_mode:
    description:
      - Reads both catalogs and returns the statements it would run in RV(queries); changes nothing.
      - A target database or schema that does not exist yet is a warning in check mode (the schemas role, in the
        same check run, would create it); every table is then reported as created.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  target_database:
    description:
      - The consolidated database. It must exist, with the module schemas (the C(classifiedads.consolidation.schemas)
        role creates them) and any other schema a table override names (C(public) exists by default).
    type: str
    required: true
notes:
  - Expressions (types, defaults, checks, index definitions) are taken as the server prints them with the source
    schema on the search_path, and run with the target schema in its place, so unqualified references bind to the
    copies in the target schema and qualified ones (C(pg_catalog), extension schemas) stay as they are.
  - Extensions are not created; one whose objects a table uses must already be installed in the target database,
    in a schema other than the legacy source schema.
'''

EXAMPLES = r'''
- name: Recreate the six legacy databases' tables in ClassifiedAds
  classifiedads.consolidation.source_ddl:
    source:
      host: db1.example.internal
      user: consolidation
      password: "{{ vault_consolidation_password }}"
    target:
      host: db1.example.internal
      user: consolidation
      password: "{{ vault_consolidation_password }}"
    target_database: ClassifiedAds
    modules:
      - {name: Product, source_database: ClassifiedAds_Product, schema: product}
      - name: AuditLog
        source_database: ClassifiedAds_AuditLog
        schema: auditlog
        tables:
          schemaversions: {schema: public}
    exclude_tables: [__EFMigrationsHistory]
'''

RETURN = r'''
tables:
  description: Every table of the legacy databases that is recreated, with where it lands and its C(state)
    (C(created), or C(existing) when an identical table was already there). In check mode, what would be done.
  returned: always
  type: list
  elements: dict
  sample: [{"module": "Identity", "source_table": "Users", "schema": "identity", "table": "Users",
            "state": "created"}]
queries:
  description: The statements run (in check mode, that would run), in order, per module in one transaction.
  returned: always
  type: list
  elements: str
  sample: ['SET LOCAL search_path TO "identity", pg_catalog',
           'CREATE TABLE "identity"."Roles" ("Id" uuid DEFAULT gen_random_uuid() NOT NULL, "Name" text)']
problems:
  description: On failure, every reason the definitions cannot be recreated.
  returned: failure
  type: list
  elements: str
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.ddl_recreate import SourceDdl
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan


def main():
    module = ConsolidationModule(argument_spec(mapping=True, target_database=dict(type="str", required=True)),
                                 needs=("source", "target"))
    params = module.params
    with module.failures(message=lambda problems: "the module mapping is invalid: " + "; ".join(problems)):
        modules = build_plan(params["modules"], params["target_database"], params["source"], params["target"],
                             params["exclude_tables"])
    recreation = SourceDdl(params["source"], params["target"], params["target_database"], modules, module.journal)
    with module.failures(result=lambda: dict(tables=recreation.tables)):
        recreation.run()
    for warning in recreation.warnings:
        module.warn(warning)
    module.exit_json(changed=recreation.changed, tables=recreation.tables, queries=module.journal.queries)


if __name__ == "__main__":
    main()
