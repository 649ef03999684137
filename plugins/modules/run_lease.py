#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: run_lease
short_description: Take or release a run's lease on the consolidated database (one run at a time)
version_added: 0.1.0
description:
  - The lease is one row of C(_consolidation.lease) in O(target_database) naming the run that holds it, its
    controller host, the pid and start time of its C(ansible-playbook), when it was acquired and its last heartbeat.
  - O(state=present) takes it when it is free, keeps it when this C(ansible-playbook) holds it, takes it over when
    its holder is provably gone (same host and that pid is free or names another process, or the host has restarted)
    or with O(takeover=true), and otherwise fails naming the holder. O(state=absent) deletes it when this
    C(ansible-playbook) holds it.
  - While it works the module holds the target database's advisory lock (as every module that works on it does);
    when another module holds it right now the module fails naming that session, with O(takeover) too.
  - A database that does not exist yet cannot hold a lease; the module then reports C(pending), and the playbook
    takes the lease again once step 2 has created the database.
  - Taking and releasing its own run's lease is bookkeeping every run does and undoes, so it is not reported as
    C(changed); what happened is in RV(lease.action).
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
attributes:
  check_mode:
    description: Takes nothing; reports the holder, the sessions working right now and what a real run would do.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  target_database:
    description: Name of the consolidated database. Used exactly as given (quoted), so case matters.
    type: str
    required: true
  run_id:
    description: The run taking the lease (recorded to name the holder).
    type: str
    required: true
  state:
    description: V(present) takes (or keeps) the lease, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  takeover:
    description:
      - Take the lease over from a holder that is still alive or whose liveness cannot be checked from this host (it
        runs on another host). Only for a holder known to be gone for good; a module working right now still refuses.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Hold the consolidated database for this run
  classifiedads.consolidation.run_lease:
    target_database: ClassifiedAds
    run_id: "{{ consolidation_plan.run_id }}"

- name: Release it at the end of the run
  classifiedads.consolidation.run_lease:
    target_database: ClassifiedAds
    run_id: "{{ consolidation_plan.run_id }}"
    state: absent
'''

RETURN = r'''
lease:
  description: What happened to the lease, and who held it before.
  returned: always
  type: dict
  contains:
    action:
      description:
        - V(acquired), V(kept), V(taken_over), V(pending) (no database yet), V(released), V(not_held) (another holder,
          or none, so nothing released); in check mode V(would_acquire), V(would_keep), V(would_take_over),
          V(would_be_refused), V(pending).
      type: str
    holder:
      description: The recorded holder before the module ran (run_id, host, pid, acquired_at, heartbeat, state).
      type: dict
    working:
      description: Check mode only, the sessions that hold the advisory lock right now (backend pid and name).
      type: list
      elements: dict
  sample: {action: taken_over, holder: {run_id: 20261204T2300Z, host: ops1, pid: 4242, state: gone,
           acquired_at: '2026-12-04T23:00:01Z', heartbeat: '2026-12-04T23:07:45Z'}}
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils import lease as leases
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)

DONE = {leases.ACQUIRE: "acquired", leases.KEEP: "kept", leases.TAKE_OVER: "taken_over", None: "pending"}
WOULD = {leases.ACQUIRE: "would_acquire", leases.KEEP: "would_keep", leases.TAKE_OVER: "would_take_over"}


def inspect(module):
    """Check mode: who holds the lease and what a real run would do, with nothing taken."""
    params = module.params
    target = leases.TargetLease(params["target"], params["target_database"], module.controller.identity(),
                                params["run_id"])
    exists, holder, state, sessions = target.inspect()
    report = dict(holder=leases.public_holder(holder, state),
                  working=[dict(backend_pid=pid, name=name) for pid, name in sessions])
    if params["state"] == "absent":
        mine = holder is not None and leases.same_holder(holder, target.identity)
        return dict(report, action="would_release" if mine else "not_held")
    try:
        if sessions:
            raise leases.LeaseHeld(leases.lock_holder_problem(params["target_database"], sessions, holder))
        action = leases.decide(params["target_database"], holder, target.identity, state, params["takeover"])
    except leases.LeaseHeld as exc:
        module.warn("a real run now would be refused: %s" % exc)
        return dict(report, action="would_be_refused")
    return dict(report, action=WOULD[action] if exists else "pending")


def main():
    module = ConsolidationModule(
        argument_spec(
            target_database=dict(type="str", required=True),
            run_id=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            takeover=dict(type="bool", default=False),
        ),
        needs=("target",),
        check_lease=False,  # deciding about the lease is this module's own work
    )
    params = module.params
    with module.failures():
        if module.check_mode:
            module.exit_json(changed=False, lease=inspect(module))
        if params["state"] == "absent":
            released, holder = module.lease.release()
            module.exit_json(changed=False, lease=dict(action="released" if released else "not_held", holder=holder))
        action, holder = module.lease.acquire(params["takeover"])
    if action == leases.TAKE_OVER:
        module.warn("took over the lease on %s from %s (%s)" % (
            params["target_database"], leases.describe_holder(holder),
            "its holder is gone" if holder.get("state") == "gone" else "takeover was asked for"))
    module.exit_json(changed=False, lease=dict(action=DONE[action], holder=holder))


if __name__ == "__main__":
    main()
