#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: migrator_run
short_description: Run an application's schema migrator against the consolidated database
version_added: 0.1.0
description:
  - Runs the application's own migrator (for ClassifiedAds, C(ClassifiedAds.Migrator)) as a command, with the shared
    connection string of the consolidated database injected through an environment variable; never through argv.
  - Keeps the migrator's output in O(log_file); on failure or timeout fails with the tail of that log.
  - Afterwards checks that every table of O(expect_tables) exists.
  - Reports C(changed) only when the migrator changed the catalog (schemas, tables, columns, constraints or indexes),
    so rerunning an idempotent migrator reports no change. Migrations that only change data are not detected.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
attributes:
  check_mode:
    description: Does not run the migrator; reports which expected tables are missing, that is whether it would change.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  command:
    description:
      - The migrator command as an argument list, for example C([dotnet, run, --project, ClassifiedAds.Migrator]) or
        C([docker, compose, run, --rm, -e, ConnectionStrings__Default, migrator]) (C(-e NAME) without a value makes
        Compose forward the variable from this environment, so the secret stays off the command line).
    type: list
    elements: str
    required: true
  chdir:
    description: Directory to run the command in (the application's checkout for C(dotnet run)).
    type: path
  timeout:
    description: Seconds after which the migrator is killed and the task fails.
    type: int
    default: 1800
  connection_string_env:
    description: Environment variable that carries the shared connection string.
    type: str
    default: ConnectionStrings__Default
  environment:
    description: Further environment variables for the command (for example C(DOTNET_ENVIRONMENT)).
    type: dict
    default: {}
  target_database:
    description: The consolidated database the connection string points at.
    type: str
    required: true
  log_file:
    description:
      - File (mode 0600) that receives the migrator's output, standard output then standard error.
      - The password is masked in it.
    type: path
    required: true
  expect_tables:
    description: Tables that must exist after the run, as a mapping of schema name to a list of table names.
    type: dict
    default: {}
'''

EXAMPLES = r'''
- name: Run ClassifiedAds.Migrator from a checkout
  classifiedads.consolidation.migrator_run:
    command: [dotnet, run, --project, ClassifiedAds.Migrator]
    chdir: /srv/classifiedads/src
    target_database: ClassifiedAds
    log_file: /var/lib/classifiedads-consolidation/runs/20261124T040000Z/migrator.log
    expect_tables:
      product: [Products, OutboxMessages, ArchivedOutboxMessages, AuditLogEntries]
'''

RETURN = r'''
command:
  description: The argument list that was (or, in check mode, would be) run. Holds no secret.
  returned: always
  type: list
  elements: str
rc:
  description: Exit status of the migrator; absent in check mode.
  returned: when the migrator ran
  type: int
duration:
  description: Seconds the migrator ran.
  returned: when the migrator ran
  type: float
log_file:
  description: Where the output was kept.
  returned: always
  type: str
missing_tables:
  description: Expected tables that do not exist (after the run; before it in check mode), as C(schema.table).
  returned: always
  type: list
  elements: str
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.migrator import MigratorRun
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)


def main():
    module = ConsolidationModule(
        argument_spec(
            command=dict(type="list", elements="str", required=True),
            chdir=dict(type="path"),
            timeout=dict(type="int", default=1800),
            connection_string_env=dict(type="str", default="ConnectionStrings__Default"),
            environment=dict(type="dict", default={}),
            target_database=dict(type="str", required=True),
            log_file=dict(type="path", required=True),
            expect_tables=dict(type="dict", default={}),
        ),
        needs=("target",),
    )
    params = module.params
    run = MigratorRun(module.run_command, params["target"], params["target_database"], params["command"],
                      params["log_file"], expect_tables=params["expect_tables"], chdir=params["chdir"],
                      timeout=params["timeout"], connection_string_env=params["connection_string_env"],
                      environment=params["environment"])
    with module.failures(result=lambda: run.result):
        changed = run.inspect() if module.check_mode else run.run()
    module.exit_json(changed=changed, **run.result)


if __name__ == "__main__":
    main()
