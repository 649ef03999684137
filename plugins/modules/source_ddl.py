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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    PSYCOPG2_IMPORT_ERROR,
    ConnectionFailure,
    connect,
    endpoint_spec,
    psycopg2,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.ddl_catalog import (
    read_source,
    read_target,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.ddl_clone import (
    DdlError,
    destination,
    flatten_steps,
    plan_module,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import describe
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import (
    PlanError,
    build_plan,
    find_collisions,
    mapping_argument_spec,
)


def plan_all(source, target_conn, modules, check_mode, warnings):
    """Read every module's catalogs and plan it; raises DdlError listing the problems of all modules.

    ``target_conn`` is None when the target database does not exist yet (check
    mode only): then everything would be created. In check mode a missing
    target schema is a warning (the schemas role, checked too, would create it).
    """
    plans, problems, table_map = [], [], []
    for module in modules:
        conn = connect(source, module["source_database"])
        try:
            catalog = read_source(conn, module)
        finally:
            conn.close()
        if catalog is None:
            problems.append("module %s: schema %s does not exist in database %s"
                            % (module["name"], module["source_schema"], module["source_database"]))
            continue
        for name in catalog["tables"]:
            place = destination(module, name)
            if place is not None:
                table_map.append((module["source_database"], name) + place)
        existing, missing = {"tables": {}, "sequences": {}, "types": {}}, []
        if target_conn is not None:
            existing, missing = read_target(target_conn, module, catalog["tables"])
        if missing:
            message = "module %s: schema(s) %s do not exist in the target database (the schemas role creates them)" % (
                module["name"], ", ".join(missing))
            if not check_mode:
                problems.append(message)
                continue
            warnings.append(message)
        try:
            plans.append((module, plan_module(module, catalog, existing)))
        except DdlError as exc:
            problems += ["module %s: %s" % (module["name"], problem) for problem in exc.problems]
    problems += find_collisions(table_map)
    if problems:
        raise DdlError(problems)
    return plans


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=endpoint_spec(required=False),
            target=endpoint_spec(required=False),
            **mapping_argument_spec(),
            target_database=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    if PSYCOPG2_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
    params = module.params
    for side in ("source", "target"):
        if not params[side]:
            module.fail_json(msg="%s is required: source_ddl reads the legacy databases and writes the target" % side)
    try:
        modules = build_plan(params["modules"], params["target_database"], params["source"], params["target"],
                             params["exclude_tables"])
    except PlanError as exc:
        module.fail_json(msg="the module mapping is invalid: " + "; ".join(exc.problems), problems=exc.problems)

    queries, tables, done, warnings = [], [], [], []
    changed = False
    conn = admin = None
    target, database = params["target"], params["target_database"]
    try:
        admin = connect(target, target["maintenance_db"], autocommit=True)
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (database,))
            database_exists = cur.fetchone() is not None
        if database_exists:
            conn = connect(target, database)
        elif module.check_mode:
            warnings.append("target database %s does not exist yet (the schemas role creates it): every table "
                            "would be created" % database)
        else:
            raise DdlError(["target database %s does not exist on %s: the schemas role creates it"
                            % (database, describe(target))])
        plans = plan_all(params["source"], conn, modules, module.check_mode, warnings)
        render = conn or admin
        for mapping, plan in plans:
            warnings += ["module %s: %s" % (mapping["name"], warning) for warning in plan["warnings"]]
            tables += plan["tables"]
            changed = changed or bool(plan["steps"])
            statements = flatten_steps(plan["steps"]) if plan["steps"] else []
            texts = [statement.as_string(render) for statement in statements]
            queries += texts
            if not statements or module.check_mode:
                continue
            with conn.cursor() as cur:
                for statement, text in zip(statements, texts):
                    try:
                        cur.execute(statement)
                    except psycopg2.Error as exc:
                        conn.rollback()
                        raise DdlError(["module %s: %s failed: %s (modules completed before it: %s)" % (
                            mapping["name"], text, str(exc).strip(), ", ".join(done) or "none")]) from None
            conn.commit()
            done.append(mapping["name"])
    except DdlError as exc:
        module.fail_json(msg="; ".join(exc.problems), problems=exc.problems, queries=queries, tables=tables)
    except ConnectionFailure as exc:
        module.fail_json(msg=str(exc), problems=[str(exc)], queries=queries, tables=tables)
    except psycopg2.Error as exc:
        message = "reading the catalogs failed: %s" % str(exc).strip()
        module.fail_json(msg=message, problems=[message], queries=queries, tables=tables)
    finally:
        for connection in (conn, admin):
            if connection is not None:
                connection.close()
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=changed, tables=tables, queries=queries)


if __name__ == "__main__":
    main()
