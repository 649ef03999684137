#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: legacy_fence
short_description: Make the legacy databases of a run refuse writes for the window, or lift that again
version_added: 0.1.0
description:
  - The write fence of a consolidation. From the start of the window until decommission or rollback the legacy
    databases refuse writes, so that nothing written to them during the backup, the copy and the verification (or
    after the cutover, by a writer left behind) is lost. Reads keep working.
  - O(state=fenced) runs C(ALTER DATABASE <database> SET default_transaction_read_only = on) for each of
    O(databases) (from the maintenance database), so that every session that connects afterwards is read-only.
    A session that connected before keeps its old setting and could still write. With O(wait_timeout), the module
    first waits that long for those sessions to close (the application has just been stopped), then ends the rest
    with C(pg_terminate_backend). It fails unless every session left on those databases connected after the fence.
  - O(state=lifted) runs C(ALTER DATABASE <database> RESET default_transaction_read_only) for each database still
    on the server, under its own name or the C(<database>_retired_<YYYYMMDD>) name that C(decommission.json) records.
    A dropped database is left alone; C(database_restore) recreates it with the settings the decommission recorded,
    so lift after restoring. Sessions that connected while the fence was up stay read-only until they reconnect;
    they are listed in a warning.
  - Idempotent. A database that is already fenced is not fenced again, and its fence time is taken from the
    record. Without a record entry, every session connected now counts as older than the fence.
  - Records what it did in C(fence.json) in O(run_dir) (mode 0600). That is the time of each fence (the server's
    clock right after the C(ALTER DATABASE)), the sessions ended or waited for, and the time of the lift.
  - A session can still run C(SET default_transaction_read_only = off) and write. The fence stops writers that do
    not mean to write here; the verification catches the others.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
attributes:
  check_mode:
    description:
      - Reads the catalog and the sessions and reports which databases would be fenced or lifted, which sessions would
        be ended and the statements that would run; changes nothing on the server or in the run directory.
      - Before the run directory exists (the first C(--check) of a run), the databases are taken as given.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  databases:
    description:
      - The legacy databases of the run (the C(source_database) of every module of its mapping). They must all belong
        to the mapping in C(plan.json) in O(run_dir); the consolidated, maintenance and template databases never do.
    type: list
    elements: str
    required: true
  state:
    description:
      - C(fenced) sets the fence and ends the sessions that connected before it.
      - C(lifted) removes the fence.
    type: str
    default: fenced
    choices: [fenced, lifted]
  run_dir:
    description:
      - The run directory, C(<run_root>/<run id>). It holds C(plan.json), and C(decommission.json) when the
        decommission ran; C(fence.json) is written there.
    type: path
    required: true
  wait_timeout:
    description:
      - O(state=fenced) only. Seconds to wait for the sessions that connected before the fence to close on their own
        before ending them. Use it when the application has just been stopped and is closing its connections. C(0)
        ends them at once.
    type: int
    default: 0
notes:
  - O(target) is accepted and ignored so that a play can set both connections once with C(module_defaults).
  - C(ALTER DATABASE ... SET) needs the owner of the database (or a superuser). Ending the sessions of other roles
    needs C(pg_signal_backend). Seeing when they connected needs C(pg_read_all_stats); without it such a session
    counts as older than the fence.
seealso:
  - module: classifiedads.consolidation.database_retire
  - module: classifiedads.consolidation.database_restore
'''

EXAMPLES = r'''
- name: Fence the legacy databases of the run (waiting up to a minute for the stopped application's sessions)
  classifiedads.consolidation.legacy_fence:
    databases: "{{ consolidation_plan.modules | map(attribute='source_database') | list }}"
    run_dir: "{{ consolidation_plan.run_dir }}"
    wait_timeout: 60

- name: Lift the fence again (rollback.yml does this after the databases are back)
  classifiedads.consolidation.legacy_fence:
    databases: "{{ restore_run_plan.modules | map(attribute='source_database') | list }}"
    run_dir: "{{ restore_run_plan.run_dir }}"
    state: lifted
'''

RETURN = r'''
databases:
  description:
    - One entry per database, with its C(action). With O(state=fenced) that is C(fence) or C(already_fenced); with
      O(state=lifted) it is C(lift), C(not_fenced), C(absent) or C(not_ours) (read-only before this run fenced it, or
      without this run's record of a fence; left read-only, with a warning).
    - With O(state=fenced), C(fenced_at) is the fence time (UTC). C(sessions_to_end) lists the sessions found
      connected from before it (in check mode, those that would be ended). C(sessions_closed) lists those that
      closed while the module waited, and C(sessions_ended) those it terminated.
    - With O(state=lifted), C(name) is the database's name on the server (its retired name after a decommission) and
      C(lifted_at) is the time of the lift. C(sessions_still_read_only) lists the sessions that stay read-only until
      they reconnect.
    - A session is its C(pid), C(database), C(user), C(application), C(client_addr), C(state) and C(backend_start).
  returned: always
  type: list
  elements: dict
  sample: [{"database": "ClassifiedAds_Product", "action": "fence", "fenced_at": "2026-11-24T04:00:00.123456Z",
            "sessions_to_end": [], "sessions_closed": [], "sessions_ended": []}]
record:
  description: Path of the fence record.
  returned: always
  type: str
  sample: /var/lib/classifiedads-consolidation/runs/20261124T040000Z/fence.json
table_text:
  description: RV(databases) as a fixed-width plain-text table, one line per database.
  returned: always
  type: str
queries:
  description: SQL statements run against the source server (in check mode, the changes are those that would run).
  returned: always
  type: list
  elements: str
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.dbops import run_lock
from ansible_collections.classifiedads.consolidation.plugins.module_utils.fence import Fence
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)


def main():
    module = ConsolidationModule(
        argument_spec(
            run_files=("run_dir",),
            databases=dict(type="list", elements="str", required=True),
            state=dict(type="str", default="fenced", choices=["fenced", "lifted"]),
            wait_timeout=dict(type="int", default=0),
        ),
        needs=("source",),
    )
    if module.params["wait_timeout"] < 0:
        module.fail(["wait_timeout must be 0 or more seconds"])
    fence = Fence(module.params, module.journal)
    with module.failures(message=fence.failure_message, result=fence.result):
        with run_lock(module.params["run_dir"], module.check_mode):
            if module.params["state"] == "fenced":
                fence.fence()
            else:
                fence.lift()
    for warning in fence.warnings:
        module.warn(warning)
    module.exit_json(msg=fence.summary(), **fence.result())


if __name__ == "__main__":
    main()
