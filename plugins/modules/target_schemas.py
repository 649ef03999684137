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

from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.schemas import name_problems, prepare_target


def main():
    module = ConsolidationModule(
        argument_spec(
            target_database=dict(type="str", required=True),
            owner=dict(type="str"),
            encoding=dict(type="str", default="UTF8"),
            schemas=dict(type="list", elements="str", required=True),
        ),
        needs=("target",),
    )
    params = module.params
    problems = name_problems(params["target_database"], params["schemas"])
    if problems:
        module.fail(problems)
    with module.failures():
        result = prepare_target(params["target"], params["target_database"], params["schemas"], params["owner"],
                                params["encoding"], module.journal)
    changed = result["database_created"] or any(item["action"] == "created" for item in result["schemas"])
    module.exit_json(changed=changed, queries=module.journal.queries, **result)


if __name__ == "__main__":
    main()
