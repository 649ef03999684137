#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: sync_status
short_description: Report how far each legacy database's online synchronisation has got
version_added: 0.3.0
author:
  - ClassifiedAds platform team (@classifiedads)
description:
  - Reads, never changes. Per legacy database of O(modules), the run's replication slot on the source, whether it
    exists and a walsender streams from it, the WAL it retains (C(pg_current_wal_lsn() - restart_lsn)), and the lag
    in bytes (C(pg_current_wal_lsn() - confirmed_flush_lsn)).
  - From the target's C(<state_schema>.sync_progress), the LSN, commit time, rows and transactions the applier has
    applied. The lag in seconds is how long ago the last applied source transaction committed, and 0 when no byte
    is left to apply.
  - From the run directory, the applier's state, pid and error from its status file, and whether it is alive (its
    pid runs and started when its pid file says).
  - Warns about every slot of ours of another run (any slot retains WAL until dropped) and about a slot of this run
    that no applier reads.
  - The role needs no special right on the source (C(pg_replication_slots) is readable by all) and C(SELECT) on
    C(sync_progress) on the target.
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.mapping
attributes:
  check_mode:
    description: Runs the same in check mode; it never changes anything.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  target_database:
    description: The consolidated database on O(target).
    type: str
    required: true
  run_id:
    description: The online run whose slots and appliers are reported.
    type: str
    required: true
  run_dir:
    description: The run directory, C(<run_root>/<run id>); the appliers' files are under its C(sync/).
    type: path
    required: true
  state_schema:
    description: Schema of O(target_database) that holds C(sync_progress).
    type: str
    default: _consolidation
  slot_prefix:
    description: Start of the names of the slots (M(classifiedads.consolidation.data_copy)'s option).
    type: str
    default: classifiedads
'''

EXAMPLES = r'''
- name: How far is the sync?
  classifiedads.consolidation.sync_status:
    target_database: ClassifiedAds
    run_id: "{{ consolidation_run_id }}"
    run_dir: "/var/lib/classifiedads-consolidation/runs/{{ consolidation_run_id }}"
    modules: "{{ consolidation_modules }}"
  register: sync

- name: Show the lag per legacy database
  ansible.builtin.debug:
    msg: "{{ sync.lines }}"
'''

RETURN = r'''
lines:
  description: One line per legacy database, where its sync stands, for the operator.
  returned: always
  type: list
  elements: str
  sample:
    - "ClassifiedAds_Product: lag 0.0 MB / 0.0 s, 1,234 transactions and 5,678 rows applied, 1.0 MB of WAL retained,
      applier streaming (pid 4242)"
databases:
  description: One entry per legacy database, in the order of O(modules).
  returned: always
  type: list
  elements: dict
  contains:
    source_database:
      description: The legacy database.
      type: str
    slot_name:
      description: The run's slot (and publication) of it.
      type: str
    slot_exists:
      description: Whether the slot exists on the source.
      type: bool
    slot_active:
      description: Whether a walsender streams from it now.
      type: bool
    wal_retained_bytes:
      description: WAL the slot keeps on the source, in bytes; null without a slot.
      type: int
    wal_retained:
      description: The same, as PostgreSQL's C(pg_size_pretty) writes it.
      type: str
    confirmed_lsn:
      description: The slot's C(confirmed_flush_lsn), what the applier has confirmed.
      type: str
    current_lsn:
      description: The source's C(pg_current_wal_lsn()) when read.
      type: str
    lag_bytes:
      description: C(current_lsn - confirmed_lsn); null without a slot.
      type: int
    lag_seconds:
      description: Seconds since the last applied source transaction committed, 0 when nothing is left to apply.
      type: float
    applied_lsn:
      description: The end LSN of the last source transaction applied (C(sync_progress)).
      type: str
    applied_commit_time:
      description: That transaction's commit time on the source (ISO 8601).
      type: str
    transactions:
      description: Source transactions applied so far.
      type: int
    rows:
      description: Rows inserted, updated or deleted so far (a truncate counts 1).
      type: int
    applier:
      description: C(state), C(pid), C(alive), C(error), C(restarts) and C(updated_at) of its applier.
      type: dict
  sample:
    - source_database: ClassifiedAds_Product
      slot_name: classifiedads_1b2c3d4e_a1b2c3_classifiedads_product
      slot_exists: true
      slot_active: true
      wal_retained_bytes: 1048576
      wal_retained: 1024 kB
      confirmed_lsn: 0/3000148
      current_lsn: 0/3000148
      lag_bytes: 0
      lag_seconds: 0.0
      applied_lsn: 0/3000148
      applied_commit_time: "2026-12-05T09:12:00.123456+00:00"
      transactions: 1234
      rows: 5678
      applier: {state: streaming, pid: 4242, alive: true, error: null, restarts: 0, updated_at: "2026-12-05T09:12:01Z"}
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_state
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import run_option_problems
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import DEFAULT_PREFIX


def main():
    module = ConsolidationModule(
        argument_spec(
            mapping=True,
            target_database=dict(type="str", required=True),
            run_id=dict(type="str", required=True),
            run_dir=dict(type="path", required=True),
            state_schema=dict(type="str", default="_consolidation"),
            slot_prefix=dict(type="str", default=DEFAULT_PREFIX),
        ),
        needs=("source", "target"),
        reads_target_only=True,
    )
    params = module.params
    problems = run_option_problems(params["run_id"], params["state_schema"], params["slot_prefix"])
    if problems:
        module.fail(problems)
    with module.failures():
        entries, warnings = sync_state.collect(
            params["source"], params["target"], params["target_database"], params["state_schema"], params["run_id"],
            params["run_dir"], params["slot_prefix"], [entry["source_database"] for entry in params["modules"]])
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, databases=entries, lines=[sync_state.status_line(entry) for entry in entries])


if __name__ == "__main__":
    main()
