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

import os
import threading
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    PSYCOPG2_IMPORT_ERROR,
    ConnectionFailure,
    endpoint_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.migrator import (
    log_tail,
    missing_tables,
    npgsql_connection_string,
    table_inventory,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.preflight import write_private_file


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=endpoint_spec(required=False),
            target=endpoint_spec(required=False),
            command=dict(type="list", elements="str", required=True),
            chdir=dict(type="path"),
            timeout=dict(type="int", default=1800),
            connection_string_env=dict(type="str", default="ConnectionStrings__Default"),
            environment=dict(type="dict", default={}),
            target_database=dict(type="str", required=True),
            log_file=dict(type="path", required=True),
            expect_tables=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    if PSYCOPG2_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("psycopg2"), exception=PSYCOPG2_IMPORT_ERROR)
    params = module.params
    target = params["target"]
    if not target:
        module.fail_json(msg="target is required: the server that holds the consolidated database")
    result = dict(command=params["command"], log_file=params["log_file"])
    schemas = list(params["expect_tables"]) or ["public"]
    try:
        before_tables, before = table_inventory(target, params["target_database"], schemas)
    except ConnectionFailure as exc:
        module.fail_json(msg=str(exc), **result)
    if module.check_mode:
        result["missing_tables"] = missing_tables(params["expect_tables"], before_tables or set())
        module.exit_json(changed=bool(result["missing_tables"]) or before is None, **result)

    env = dict((key, str(value)) for key, value in params["environment"].items())
    env[params["connection_string_env"]] = npgsql_connection_string(target, params["target_database"])
    timed_out, timers = [], []

    def arm_timeout(process):
        timer = threading.Timer(params["timeout"], lambda: (timed_out.append(True), process.kill()))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    started = time.monotonic()
    try:
        rc, stdout, stderr = module.run_command(params["command"], cwd=params["chdir"], environ_update=env,
                                                before_communicate_callback=arm_timeout)
    finally:
        for timer in timers:
            timer.cancel()
    result["duration"] = round(time.monotonic() - started, 3)
    text = stdout + stderr
    if target.get("password"):
        text = text.replace(target["password"], "********")
    log_dir = os.path.dirname(params["log_file"])
    if log_dir and not os.path.isdir(log_dir):
        os.makedirs(log_dir, 0o700)
    write_private_file(params["log_file"], text)
    if timed_out:
        module.fail_json(msg="the migrator did not finish within %d s and was killed; last lines of %s:\n%s"
                         % (params["timeout"], params["log_file"], log_tail(text)), **result)
    result["rc"] = rc
    if rc != 0:
        module.fail_json(msg="the migrator failed with exit status %d; last lines of %s:\n%s"
                         % (rc, params["log_file"], log_tail(text)), **result)

    try:
        after_tables, after = table_inventory(target, params["target_database"], schemas)
    except ConnectionFailure as exc:
        module.fail_json(msg=str(exc), **result)
    result["missing_tables"] = missing_tables(params["expect_tables"], after_tables or set())
    if result["missing_tables"]:
        module.fail_json(msg="the migrator succeeded but %d expected table(s) do not exist: %s"
                         % (len(result["missing_tables"]), ", ".join(result["missing_tables"])), **result)
    module.exit_json(changed=after != before, **result)


if __name__ == "__main__":
    main()
