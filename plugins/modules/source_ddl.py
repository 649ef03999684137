#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: source_ddl
short_description: Recreate the legacy schemas in the module schemas with pg_dump and pg_restore
version_added: 0.1.0
description:
  - For applications without a migrator that can build the consolidated schema (C(source_ddl) mode). Moves each
    legacy database's source schema into the module's schema of O(target_database) with PostgreSQL's own tools.
  - "Per module: C(pg_dump --schema-only) of the legacy source schema; a scratch database on the target server
    (C(<target_database>__ddl_<module>), TEMPLATE template0, the target's encoding and locale) with the legacy
    database's extensions, where the archive is restored and the schema renamed (C(ALTER SCHEMA ... RENAME TO)), so
    that everything PostgreSQL links by OID follows - views, defaults, sequences and their ownership, foreign keys,
    policies, triggers, typed columns; there the excluded tables are dropped (with what depends on them, listed),
    table overrides applied (C(ALTER TABLE ... RENAME) / C(SET SCHEMA)) and extensions placed; then the scratch's
    schema is dumped and restored into the target database in one transaction. The scratch database is dropped
    always, also on failure."
  - "Everything pg_dump carries comes along - tables, declarative and inheritance partitions, indexes, constraints,
    sequences, enum, domain, composite and range types, functions, procedures, aggregates, triggers, views,
    materialized views (without data), rules, policies and row-level security flags, grants and default privileges,
    comments, storage parameters, statistics targets, extended statistics and replica identity. Ownership does not
    (C(--no-owner) - the login role owns what it restores); grants do, so every role they name must exist on the
    target server (roles are server-wide)."
  - "The schema itself, its comment and its grants are the schemas role's: they are not restored."
  - "What cannot follow a rename is listed in the plan - function bodies that name the legacy schema, and
    C(SET search_path) clauses that name it (rewritten to the module schema with O(rewrite_search_path))."
  - "Idempotent. A module whose objects already exist exactly as the restore would create them is C(existing); an
    empty module schema is restored; anything else is an error naming every difference, and user tables are never
    altered. The definitions are compared as pg_dump prints them."
  - All modules are planned (steps above, up to the comparison) before any of them is restored; every problem of
    every module is reported at once.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.mapping
attributes:
  check_mode:
    description:
      - Computes the whole schema plan in the scratch database (created on the target server, then dropped) and
        reports every problem; changes nothing in the target database.
      - A target database or schema that does not exist yet is a warning in check mode (the schemas role, in the
        same check run, would create it); the module is then reported as C(created).
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
  extension_schema:
    description:
      - Where an extension installed in the legacy source schema itself lands (the rename would otherwise carry it
        into the module schema), unless the target database already has it, in which case it stays where it is.
      - Extensions of other schemas land in the schema they have in the legacy database (or where the target has
        them).
    type: str
    default: public
  rewrite_search_path:
    description:
      - Rewrite C(SET search_path) clauses of functions and procedures that name the legacy source schema to name
        the module schema instead. Without it they are only listed.
    type: bool
    default: false
  pg_dump_path:
    description:
      - The pg_dump to use (pg_restore and psql beside it); by default the installed one closest to the servers'
        major version and not older.
    type: str
  assume_empty_target:
    description:
      - In check mode, plan as if O(target_database) did not exist yet - for a rehearsal, whose scratch target is
        dropped and created empty before anything is restored into it, so that what an earlier rehearsal left there
        does not count. Ignored outside check mode.
    type: bool
    default: false
  plan_file:
    description:
      - Where to write the schema plan (C(schema_plan.json) of the run directory), also when the module fails. Not
        written in check mode.
    type: path
notes:
  - "The login role needs, on the source, to read every object of the source schema (pg_dump locks each table);
    on the target server, CREATEDB (or SUPERUSER) for the scratch database, the right to create the legacy
    database's extensions (a superuser, or trusted extensions), and the CREATE privilege on the target database."
  - "Requires the psql, pg_dump and pg_restore client programs of the servers' major version or newer."
'''

EXAMPLES = r'''
- name: Recreate the six legacy databases' schemas in ClassifiedAds
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
    rewrite_search_path: true
'''

RETURN = r'''
modules:
  description:
    - The schema plan, per module - C(state) (C(created), in check mode would be; C(existing); C(different) or
      null when refused), C(objects) (a count per pg_dump object kind), C(extensions) (name, legacy schema, the
      schema it lands in, C(create) or C(existing)), C(excluded_tables) (each with what its drop took with it),
      C(table_overrides), C(findings) (functions whose body or search_path names the legacy schema),
      C(differences) (against what the target holds), C(problems) and C(warnings).
  returned: always
  type: list
  elements: dict
  sample: [{"module": "Identity", "source_database": "ClassifiedAds_Identity", "source_schema": "public",
            "schema": "identity", "state": "created", "objects": {"TABLE": 8, "INDEX": 9}, "extensions": [],
            "excluded_tables": [{"table": "__EFMigrationsHistory", "dropped_with_it": []}], "findings": [],
            "differences": [], "problems": [], "warnings": []}]
queries:
  description: The statements run (in the scratch and the target databases' catalogs), in order.
  returned: always
  type: list
  elements: str
commands:
  description: The client programs run (argv; database names and passwords travel in the environment).
  returned: always
  type: list
  elements: list
problems:
  description: On failure, every reason the schemas cannot be moved.
  returned: failure
  type: list
  elements: str
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import write_private_json
from ansible_collections.classifiedads.consolidation.plugins.module_utils.schema_move import run_schema_move


def main():
    module = ConsolidationModule(argument_spec(mapping=True, target_database=dict(type="str", required=True),
                                               extension_schema=dict(type="str", default="public"),
                                               rewrite_search_path=dict(type="bool", default=False),
                                               pg_dump_path=dict(type="str"),
                                               plan_file=dict(type="path"),
                                               assume_empty_target=dict(type="bool", default=False)),
                                 needs=("source", "target"))
    params = module.params
    with module.failures(message=lambda problems: "the module mapping is invalid: " + "; ".join(problems)):
        modules = build_plan(params["modules"], params["target_database"], params["source"], params["target"],
                             params["exclude_tables"])
    outcomes = []

    def write_plan(modules_plan):
        if params["plan_file"] and not module.check_mode:
            write_private_json(params["plan_file"], {"target_database": params["target_database"],
                                                     "modules": modules_plan})

    def failed_plan():
        write_plan(outcomes)
        return dict(modules=outcomes)

    with module.failures(result=failed_plan):
        try:
            changed, planned = run_schema_move(params, modules, module.journal)
        except Exception as exc:
            outcomes[:] = getattr(exc, "details", {}).get("modules", [])
            raise
    write_plan(planned)
    for outcome in planned:
        for warning in outcome["warnings"]:
            module.warn("module %s: %s" % (outcome["module"], warning))
        # What a rename cannot carry must be seen by whoever reads the plan, not only found in a file.
        for finding in outcome["findings"]:
            module.warn("module %s: function %s: %s" % (outcome["module"], finding["function"], finding["finding"]))
    module.exit_json(changed=changed, modules=planned, queries=module.journal.queries,
                     commands=module.journal.commands)


if __name__ == "__main__":
    main()
