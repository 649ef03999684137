#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: target_schemas
short_description: Ensure the consolidated database and its per-module schemas exist
version_added: 0.1.0
description:
  - Creates the consolidated database on the O(target) server when it is missing, then every missing schema of
    O(schemas) inside it, owned by O(owner).
  - Never alters, drops or renames what exists; existing schemas are reported with their owner.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
attributes:
  check_mode:
    description: Reports the statements it would run without running them.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  target_database:
    description: Name of the consolidated database. Used exactly as given (quoted), so case matters.
    type: str
    required: true
  owner:
    description:
      - Role that owns the database and, unless a schema says otherwise, the schemas.
      - Omitted means the role O(target.user) logs in as.
    type: str
  encoding:
    description: Encoding of a newly created database (from C(template0)); an existing database is not changed.
    type: str
    default: UTF8
  schemas:
    description: Schemas to ensure inside O(target_database), each owned by O(owner). Names are used exactly as given.
    type: list
    elements: str
    required: true
'''

EXAMPLES = r'''
- name: Create ClassifiedAds and the six module schemas
  classifiedads.consolidation.target_schemas:
    target:
      host: db.example.internal
      user: consolidation
      password: "{{ vault_consolidation_password }}"
    target_database: ClassifiedAds
    schemas: [product, identity, storage, notification, auditlog, configuration]
'''

RETURN = r'''
database_created:
  description: Whether the database was created (or would be, in check mode).
  returned: always
  type: bool
  sample: true
schemas:
  description: Per schema, what was done or would be done.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "product", "owner": "consolidation", "action": "created"},
           {"name": "public", "owner": "pg_database_owner", "action": "exists"}]
queries:
  description: The statements run, or in check mode the statements that would run.
  returned: always
  type: list
  elements: str
  sample: ["CREATE DATABASE \"ClassifiedAds\" OWNER \"consolidation\" ENCODING 'UTF8' TEMPLATE template0"]
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    PSYCOPG2_IMPORT_ERROR,
    ConnectionFailure,
    connect,
    endpoint_spec,
    psycopg2,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import (
    identifier_problem,
    schema_problem,
)


def schema_actions(wanted, existing, owner):
    """Pure: what each wanted schema needs, given ``existing`` {name: owner}.

    An existing schema is left as it is, whoever owns it (``public`` belongs to
    pg_database_owner on PostgreSQL 15); preflight has already checked that
    the login role may work in it.
    """
    return [{"name": name, "owner": existing.get(name, owner),
             "action": "exists" if name in existing else "created"} for name in wanted]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=endpoint_spec(required=False),
            target=endpoint_spec(required=False),
            target_database=dict(type="str", required=True),
            owner=dict(type="str"),
            encoding=dict(type="str", default="UTF8"),
            schemas=dict(type="list", elements="str", required=True),
        ),
        supports_check_mode=True,
    )
    if PSYCOPG2_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
    params = module.params
    if not params["target"]:
        module.fail_json(msg="target is required: the server that holds the consolidated database")
    problems = [p for p in [identifier_problem("target database", params["target_database"])] if p]
    problems += [p for p in (schema_problem(name) for name in params["schemas"]) if p]
    if problems:
        module.fail_json(msg="; ".join(problems))

    target, database = params["target"], params["target_database"]
    queries = []
    admin = conn = None
    try:
        # The maintenance connection stays open to render statements for `queries`, check mode included.
        admin = connect(target, target["maintenance_db"], autocommit=True)
        with admin.cursor() as cur:
            cur.execute("SELECT current_user")
            owner = params["owner"] or cur.fetchone()[0]
            cur.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (database,))
            database_created = cur.fetchone() is None
            if database_created:
                create = sql.SQL("CREATE DATABASE {} OWNER {} ENCODING {} TEMPLATE template0").format(
                    sql.Identifier(database), sql.Identifier(owner), sql.Literal(params["encoding"]))
                queries.append(create.as_string(admin))
                if not module.check_mode:
                    cur.execute(create)

        existing = {}
        if not (database_created and module.check_mode):
            conn = connect(target, database)
            with conn.cursor() as cur:
                cur.execute("SELECT nspname, pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace")
                existing = dict(cur.fetchall())
        actions = schema_actions(params["schemas"], existing, owner)
        statements = [sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
            sql.Identifier(action["name"]), sql.Identifier(action["owner"]))
            for action in actions if action["action"] == "created"]
        queries += [statement.as_string(admin) for statement in statements]
        if conn is not None:
            if statements and not module.check_mode:
                with conn.cursor() as cur:
                    for statement in statements:
                        cur.execute(statement)
                conn.commit()
            else:
                conn.rollback()
    except ConnectionFailure as exc:
        module.fail_json(msg=str(exc), queries=queries)
    except psycopg2.Error as exc:
        module.fail_json(msg="preparing %s failed: %s" % (database, str(exc).strip()), queries=queries)
    finally:
        for connection in (conn, admin):
            if connection is not None:
                connection.close()

    module.exit_json(changed=bool(database_created or statements), database_created=database_created,
                     schemas=actions, queries=queries)


if __name__ == "__main__":
    main()
