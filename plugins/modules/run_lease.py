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
    or with O(takeover=true) (or, for a holder of this same run, O(run_ended=true)), and otherwise fails naming the
    holder. O(state=absent) deletes it when this C(ansible-playbook) holds it.
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
  complete:
    description:
      - With O(state=absent), the run has completed (the end of C(consolidate.yml)), so in the same transaction that
        deletes the lease the run's state in the target database (the copy's records in O(state_schema), the
        quarantined rows, the lease table) is written to O(run_dir) and dropped, schemas and all. The rows a NULL
        policy quarantined go to C(quarantined_rows.json) (0600), the rest to C(state.json) (0600), which also marks
        the run complete for its reruns. Tables of other owners in a state schema are never touched (the schema then
        stays), and foreign keys the copy has still to put back keep everything in place.
      - Without it only a lease schema left empty by the release is dropped.
    type: bool
    default: false
  run_dir:
    description: The run directory, for O(complete).
    type: path
  state_schema:
    description:
      - Schema of the target database where the data copy recorded the run (C(data_copy_state_schema)).
      - An online run records its replication slots there (C(sync_slots)). While another run's records are there, that
        run streams into the database, and the lease is refused whatever its holder's state, O(takeover) included;
        finish that run (C(cutover.yml)) or roll it back (C(rollback.yml)), which deletes them.
    type: str
    default: _consolidation
  takeover:
    description:
      - Take the lease over from a holder that is still alive or whose liveness cannot be checked from this host (it
        runs on another host). Only for a holder known to be gone for good; a module working right now still refuses.
    type: bool
    default: false
  run_ended:
    description:
      - The earlier jobs of run O(run_id) have ended (failed or cancelled), so a lease this same run holds from a
        holder whose liveness cannot be checked from this host (an C(ansible-playbook) that ran in an AWX execution
        environment, gone with its job) is taken over. What a rollback or a resume of that run needs.
      - Narrower than O(takeover), it keeps one run at a time. A lease of another run id is still refused, and so is
        a holder of this run that is seen alive (on this host); a module working right now still refuses.
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
    complete: true
    run_dir: "{{ consolidation_plan.run_dir }}"
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
state:
  description:
    - With O(state=absent), what became (check mode, would become) of the run's state in the target database.
    - C(dropped) the schemas dropped; C(kept) why the state stays (null when it does not); C(record) the
      C(state.json) written; C(quarantined_rows) how many quarantined rows went to C(quarantine_file).
  returned: O(state=absent)
  type: dict
  sample: {dropped: [_consolidation], kept: null, record: /var/lib/classifiedads-consolidation/runs/R/state.json,
           quarantined_rows: 3, quarantine_file: /var/lib/classifiedads-consolidation/runs/R/quarantined_rows.json}
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils import lease as leases
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.run_state import RunState
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import run_files

DONE = {leases.ACQUIRE: "acquired", leases.KEEP: "kept", leases.TAKE_OVER: "taken_over", None: "pending"}
WOULD = {leases.ACQUIRE: "would_acquire", leases.KEEP: "would_keep", leases.TAKE_OVER: "would_take_over"}


def inspect(module, state_after):
    """Check mode: who holds the lease and what a real run would do, with nothing taken.

    ``state_after`` (:class:`RunState`, in check mode) learns what the release would do with the run's state.
    """
    params = module.params
    target = leases.TargetLease(params["target"], params["target_database"], module.controller.identity(),
                                params["run_id"])
    exists, holder, state, sessions = target.inspect()
    report = dict(holder=leases.public_holder(holder, state),
                  working=[dict(backend_pid=pid, name=name) for pid, name in sessions])
    if params["state"] == "absent":
        mine = holder is not None and leases.same_holder(holder, target.identity)
        if mine:
            # What the release would do with the run's state, read in a transaction that changes nothing.
            target.peek(state_after.finish)
        return dict(report, action="would_release" if mine else "not_held")
    try:
        if sessions:
            raise leases.LeaseHeld(leases.lock_holder_problem(params["target_database"], sessions, holder))
        action = leases.decide(params["target_database"], holder, target.identity, state, params["takeover"],
                               params["run_id"], params["run_ended"])
    except leases.LeaseHeld as exc:
        module.warn("a real run now would be refused: %s" % exc)
        return dict(report, action="would_be_refused")
    return dict(report, action=WOULD[action] if exists else "pending")


def run_state(module):
    params = module.params
    return RunState(params["run_id"], params["target_database"], params["state_schema"],
                    run_files(params["run_dir"]) if params["run_dir"] else None, params["complete"], module.check_mode)


def main():
    module = ConsolidationModule(
        argument_spec(
            target_database=dict(type="str", required=True),
            run_id=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            takeover=dict(type="bool", default=False),
            run_ended=dict(type="bool", default=False),
            complete=dict(type="bool", default=False),
            run_dir=dict(type="path"),
            state_schema=dict(type="str", default="_consolidation"),
        ),
        required_if=[("complete", True, ("run_dir",))],
        needs=("target",),
        check_lease=False,  # deciding about the lease is this module's own work
    )
    params = module.params
    with module.failures():
        state = run_state(module)
        if module.check_mode:
            lease = inspect(module, state)
            if params["state"] == "absent":
                module.exit_json(changed=False, lease=lease, state=state.outcome)
            module.exit_json(changed=False, lease=lease)
        if params["state"] == "absent":
            released, holder = module.lease.release(state.finish)
            # Dropping a schema only the lease made undoes bookkeeping; recording and dropping a run's state changes.
            module.exit_json(changed=bool(state.outcome["record"] and state.outcome["dropped"]), state=state.outcome,
                             lease=dict(action="released" if released else "not_held", holder=holder))
        action, holder = module.lease.acquire(params["takeover"], params["run_ended"], params["state_schema"])
    if action == leases.TAKE_OVER:
        module.warn("took over the lease on %s from %s (%s)" % (
            params["target_database"], leases.describe_holder(holder),
            "its holder is gone" if holder.get("state") == "gone"
            else "takeover was asked for" if params["takeover"] else "this run's earlier job has ended"))
    module.exit_json(changed=False, lease=dict(action=DONE[action], holder=holder))


if __name__ == "__main__":
    main()
