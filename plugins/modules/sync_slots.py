#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: sync_slots
short_description: Drop the replication slots and publications of an online consolidation run
version_added: 0.3.0
author:
  - ClassifiedAds platform team (@classifiedads)
description:
  - Online mode (M(classifiedads.consolidation.data_copy) with C(sync=online)) gives each legacy database a logical
    replication slot and a publication of the same name. A slot keeps WAL on the source until it is dropped, so a
    finished or rolled-back run must leave none behind. This module drops them.
  - It drops the slots of run O(run_id), or with O(all_runs=true) every slot whose name has the shape this collection
    gives (O(slot_prefix), then digests of a run id and a database), which finds a slot forgotten by any run. Slots of
    other software are never touched.
  - A walsender still streaming from one of these slots (an applier that is running) is ended first with
    C(pg_terminate_backend), then the slot is dropped with C(pg_drop_replication_slot).
  - Publications of the same shape are dropped in each legacy database of O(modules) and in each database a dropped
    slot belonged to.
  - Idempotent; a rerun with nothing left changes nothing.
  - The role needs C(REPLICATION) (or superuser, or the managed service's replication role) to drop slots, the same
    role as the applier's (or C(pg_signal_backend)) to end its walsender, and ownership of the publications.
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.mapping
attributes:
  check_mode:
    description: Drops nothing and lists in RV(dropped) and RV(queries) what it would drop.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  state:
    description: V(absent) drops them. Slots are created by M(classifiedads.consolidation.data_copy).
    type: str
    choices: [absent]
    default: absent
  run_id:
    description: The run whose slots and publications are dropped. Required unless O(all_runs=true).
    type: str
  all_runs:
    description:
      - Drop the slots and publications of every run, for a slot left behind by a run whose id is lost. Only names
        of the collection's shape with O(slot_prefix) are dropped.
    type: bool
    default: false
  slot_prefix:
    description: Start of the names of the slots and publications (M(classifiedads.consolidation.data_copy)'s option).
    type: str
    default: classifiedads
  target_database:
    description:
      - The consolidated database on O(target). When given, the run's records of its slots in
        C(<state_schema>.sync_slots) are deleted with them (every run's with O(all_runs=true)). Those records keep
        every other run out of the database (M(classifiedads.consolidation.run_lease)) while a run streams into it.
    type: str
  state_schema:
    description: Schema of O(target_database) that holds the records (C(data_copy_state_schema)).
    type: str
    default: _consolidation
'''

EXAMPLES = r'''
- name: Drop this run's slots and publications (cutover done, or rolled back)
  classifiedads.consolidation.sync_slots:
    state: absent
    run_id: "{{ consolidation_run_id }}"
    slot_prefix: "{{ consolidation_sync_slot_prefix }}"
    modules: "{{ consolidation_modules }}"

- name: Drop every slot of ours, whatever run left it behind
  classifiedads.consolidation.sync_slots:
    state: absent
    all_runs: true
    modules: "{{ consolidation_modules }}"
'''

RETURN = r'''
dropped:
  description: The slots and publications dropped (in check mode, that would be dropped).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(slot) or V(publication).
      type: str
    name:
      description: Its name.
      type: str
    database:
      description: The database it belonged to.
      type: str
  sample:
    - {kind: slot, name: classifiedads_1b2c3d4e_a1b2c3_classifiedads_product, database: ClassifiedAds_Product}
    - {kind: publication, name: classifiedads_1b2c3d4e_a1b2c3_classifiedads_product, database: ClassifiedAds_Product}
forgotten:
  description: How many records of slots were deleted from C(<state_schema>.sync_slots) (in check mode, would be).
  returned: always
  type: int
  sample: 6
queries:
  description: The statements that changed something (in check mode, that would have).
  returned: always
  type: list
  elements: str
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_slots
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import run_id_problem
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import DEFAULT_PREFIX


def main():
    module = ConsolidationModule(
        argument_spec(
            mapping=True,
            state=dict(type="str", choices=["absent"], default="absent"),
            run_id=dict(type="str"),
            all_runs=dict(type="bool", default=False),
            slot_prefix=dict(type="str", default=DEFAULT_PREFIX),
            target_database=dict(type="str"),
            state_schema=dict(type="str", default="_consolidation"),
        ),
        needs=("source",),
    )
    params = module.params
    if not params["all_runs"]:
        problem = run_id_problem(params["run_id"] or "") if params["run_id"] else (
            "run_id is required unless all_runs is true")
        if problem:
            module.fail([problem])
    with module.failures():
        dropped = sync_slots.drop(params["source"], [entry["source_database"] for entry in params["modules"]],
                                  params["run_id"], params["slot_prefix"], params["all_runs"], module.journal)
        forgotten = 0
        if params["target_database"]:
            if not params.get("target"):
                module.fail(["target_database needs the target connection (target)"])
            forgotten = sync_slots.forget_records(params["target"], params["target_database"], params["state_schema"],
                                                  params["run_id"], params["all_runs"], module.journal)
    module.exit_json(changed=bool(dropped or forgotten), dropped=dropped, forgotten=forgotten,
                     queries=module.journal.queries,
                     msg=("would drop " if module.check_mode else "dropped ") + sync_slots.described(dropped)
                     if dropped else "no slot or publication of ours left")


if __name__ == "__main__":
    main()
