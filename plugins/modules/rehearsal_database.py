#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: rehearsal_database
short_description: Create or drop the scratch database of a consolidation rehearsal
version_added: 0.1.0
description:
  - A rehearsal (C(consolidation_rehearsal=true)) runs schemas, migrator, copy and verification into a scratch
    database beside the target database while the application keeps running.
  - O(state=present) creates the scratch database, empty, and marks it with a comment naming the collection and
    the run. A scratch database an earlier rehearsal left (kept on request) is dropped and created afresh.
  - O(state=absent) drops the scratch database.
  - A database of that name without the rehearsal mark is never dropped; both states refuse it.
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
attributes:
  check_mode:
    description: Reads the target server and returns the statements it would run.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  database:
    description: Name of the scratch database.
    type: str
    required: true
  run_id:
    description: The rehearsal's run id, written into the mark.
    type: str
    required: true
  state:
    description: C(present) for an empty scratch database, C(absent) for none.
    type: str
    default: present
    choices: [present, absent]
  encoding:
    description: Encoding of a created scratch database (that of the real target).
    type: str
    default: UTF8
'''

EXAMPLES = r'''
- name: Start the rehearsal from an empty scratch database
  classifiedads.consolidation.rehearsal_database:
    target: "{{ consolidation_target }}"
    database: ClassifiedAds_rehearsal
    run_id: 20261204T230000Z-rehearsal

- name: Drop it afterwards
  classifiedads.consolidation.rehearsal_database:
    target: "{{ consolidation_target }}"
    database: ClassifiedAds_rehearsal
    run_id: 20261204T230000Z-rehearsal
    state: absent
'''

RETURN = r'''
action:
  description: C(create), C(replace) (an earlier scratch database of ours was dropped first), C(drop) or C(none).
  returned: success
  type: str
  sample: create
queries:
  description: The statements run (in check mode, that would run).
  returned: always
  type: list
  elements: str
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.rehearsal import manage_scratch


def main():
    module = ConsolidationModule(
        argument_spec(
            database=dict(type="str", required=True),
            run_id=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            encoding=dict(type="str", default="UTF8"),
        ),
        needs=("target",),
    )
    params = module.params
    with module.failures():
        action = manage_scratch(params["target"], params["database"], params["run_id"], params["state"],
                                module.journal, params["encoding"])
    module.exit_json(changed=action != "none", action=action, queries=module.journal.queries)


if __name__ == "__main__":
    main()
