#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: preflight
short_description: Validate a consolidation plan against both servers and open its run directory
version_added: 0.1.0
description:
  - Validates the whole variable contract (module to database to schema mapping, table overrides and exclusions,
    target database) and reports every problem at once.
  - Checks both servers, read-only, before anything changes. They must be reachable, the legacy databases must exist
    (or none of them, for a fresh deployment), every legacy table must be readable, source and target must differ, and
    the target role must be allowed to create what the consolidation needs.
  - Resolves the run id and creates the run directory (mode 0700) with C(plan.json), the handle that later steps and
    C(rollback.yml) use. In check mode nothing is created.
  - A resumed run (its run directory exists) whose contract differs from the one its C(plan.json) records takes
    each change the run can still take, rewriting C(plan.json) and appending the change to C(contract_changes.json)
    (RV(contract_changes)), and fails, changing nothing, naming every change it can no longer take (a schema renamed
    after step 2 created it, a table excluded after the copy started, any change after completion). The rule per
    field is in the consolidation role's C(defaults/main.yml).
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.mapping
attributes:
  check_mode:
    description: Runs every check; does not create the run directory.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  target_database:
    description: Name of the consolidated database.
    type: str
    required: true
  mode:
    description:
      - C(existing) consolidates existing legacy databases, which must all exist.
      - C(fresh) is the fresh-deployment path; legacy databases are ignored.
      - C(auto) picks C(fresh) when none of the legacy databases exists and C(existing) otherwise, so a partial
        set of legacy databases is an error rather than a silent fresh start.
    type: str
    default: auto
    choices: [auto, existing, fresh]
  run_id:
    description:
      - Identifier of this consolidation run; also the backup set id.
      - Empty means the latest run recorded under O(run_root) for the same target database (so a rerun resumes
        or confirms it), or a new time-based id when there is none.
    type: str
    default: ""
  run_root:
    description: Directory that holds one run directory per run id.
    type: path
    required: true
  backup_root:
    description: Directory that holds one backup set per run id.
    type: path
    required: true
  rehearsal:
    description:
      - Plan a rehearsal instead of the real run. The plan's C(target_database) becomes the scratch database
        O(rehearsal_database) on the target server and C(rehearsal_of) names O(target_database); the legacy
        databases must exist.
      - A rehearsal gets a new run id ending in C(-rehearsal) (unless O(run_id) is given) and does not become the
        latest run, so that the real run after it still resumes the real run before it.
    type: bool
    default: false
  rehearsal_database:
    description: Name of the rehearsal's scratch database; empty means O(target_database) followed by C(_rehearsal).
    type: str
    default: ""
  fence:
    description:
      - The write fence the run puts on the legacy databases for the window (the C(legacy_fence) module sets it).
      - C(read_only) makes every legacy database refuse writes from the start of the window until rollback.
      - C(none) leaves them writable; it needs O(fence_reason), and the module warns when it plans a data
        consolidation without a fence.
    type: str
    default: read_only
    choices: [read_only, none]
  fence_reason:
    description: Why the legacy databases stay writable (O(fence=none)); recorded in the plan and the reports.
    type: str
  backup_timing:
    description:
      - When the run backs the legacy databases up; recorded in the plan as C(backup_timing).
      - C(after_start) takes the backup of the fenced legacy databases once the application runs on the consolidated
        database, outside the window. Without a fence (O(fence=none)) the plan falls back to C(before_copy) and says
        why.
      - C(before_copy) takes it before the copy, inside the window (the migration plan's literal order).
    type: str
    default: after_start
    choices: [after_start, before_copy]
  sync:
    description:
      - C(offline) copies inside the window (consolidate.yml). C(online) copies while the application keeps
        running and streams every later change through a logical replication slot per legacy database (sync.yml,
        then cutover.yml). Recorded in the plan (C(sync.mode)); a resumed run cannot change it once the copy started.
      - V(online) adds what logical replication needs from the source, every problem at once with its fix.
        These are C(wal_level=logical), room in C(max_replication_slots) and C(max_wal_senders) for one more per
        legacy database (those in use counted, this run's own slots not counted twice), and a role with
        C(REPLICATION), superuser or a managed service's replication role (C(rds_replication), C(cloudsqlsuperuser),
        C(azure_pg_admin) and the like). The role must also have C(CREATE) on each legacy database and own every
        copied table (for C(CREATE PUBLICATION ... FOR TABLE)). Every copied table needs a primary key or a
        replica identity (C(FULL) or C(USING INDEX)), and none may be unlogged (no publication can hold it).
      - In every mode each replication slot of ours (named with O(slot_prefix), any run) on the source is reported as
        a warning with the WAL it retains and whether a consumer is attached, since a forgotten slot keeps WAL until
        the disk fills. See RV(slots).
    type: str
    choices: [offline, online]
    default: offline
  slot_prefix:
    description:
      - Start of the names of online mode's slots and publications (see M(classifiedads.consolidation.data_copy)).
      - Recorded in the plan (C(sync.slot_prefix)).
    type: str
    default: classifiedads
  verify_checksum:
    description:
      - Whether the verification will compare content checksums (the verify role's C(verify_checksum)).
        O(sync=online) refuses C(false), because rows updated after the copy keep the counts equal.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Check everything and open the run
  classifiedads.consolidation.preflight:
    source: "{{ consolidation_source }}"
    target: "{{ consolidation_target }}"
    modules: "{{ consolidation_modules }}"
    target_database: ClassifiedAds
    run_root: /var/lib/classifiedads-consolidation/runs
    backup_root: /var/backups/classifiedads
  register: preflight
'''

RETURN = r'''
plan:
  description: The normalised plan that the other roles receive. Contains no secret.
  returned: success
  type: dict
  contains:
    run_id:
      description: Run id, also the backup set id.
      type: str
      sample: 20261124T040000Z
    resumed:
      description: Whether the run id was taken from the latest recorded run.
      type: bool
    run_dir:
      description: Directory of this run (logs, reports, plan.json).
      type: str
    files:
      description:
        - Full path of every file the run directory may hold, by purpose, so that no role spells a file name.
        - C(plan), C(migrator_log), C(data_copy_log), C(verification_report), C(verification_markdown),
          C(decommission_record), C(rollback_record), C(fence_record), C(contract_changes), C(state_record),
          C(quarantined_rows).
      type: dict
      sample: {plan: /var/lib/classifiedads-consolidation/runs/20261124T040000Z/plan.json}
    backup_dir:
      description: Directory of this run's backup set.
      type: str
    backup_files:
      description: Full path of the backup set's C(manifest), the directory of saved configuration originals
        (C(config_dir)) and their index (C(config_index)).
      type: dict
    mode:
      description: C(existing) or C(fresh).
      type: str
    sync:
      description: The change capture, C(mode) (C(offline) or C(online)) and the C(slot_prefix) of its slots.
      type: dict
      sample: {mode: online, slot_prefix: classifiedads}
    fence:
      description: The write fence, C(mode) (C(read_only) or C(none)) and the operator's C(reason) for C(none).
      type: dict
      sample: {mode: read_only, reason: null}
    backup_timing:
      description:
        - When step 1 backs the legacy databases up, C(timing) (C(after_start) or C(before_copy)), and C(reason) when
          the plan chose C(before_copy) although O(backup_timing=after_start) was asked for.
      type: dict
      sample: {timing: after_start, reason: null}
    mode_reason:
      description:
        - Why the run takes that path. With O(mode=auto) and no legacy database found it names every database looked
          for and the server (a mistyped name looks exactly like a fresh deployment); the module also warns then.
      type: str
    rehearsal:
      description: Whether this is a rehearsal's plan (O(rehearsal)).
      type: bool
    rehearsal_of:
      description: In a rehearsal, the real target database; otherwise null.
      type: str
    target_database:
      description: Consolidated database (in a rehearsal, the scratch database).
      type: str
    modules:
      description: Normalised module mappings.
      type: list
      elements: dict
    schemas:
      description: Every target schema, module schemas first, then those only table overrides name (like C(public)).
      type: list
      elements: str
    exclude_tables:
      description: Globally excluded tables.
      type: list
      elements: str
    expected_tables:
      description: Where every copied legacy table must exist in the target, as schema to table names (existing mode).
      type: dict
    completed:
      description:
        - Null while the run is under way; once it has completed (its state schema dropped, see C(run_lease)),
          C(completed_at) and the C(state_record) file that keeps what the schema held.
      type: dict
    source:
      description: Source server facts (address, version, legacy databases with size and tables).
      type: dict
    target:
      description: Target server facts (address, version, whether the database exists, login role rights).
      type: dict
contract_changes:
  description: The changes of a resumed run's contract this call took (check mode, would take), one sentence each.
  returned: success
  type: list
  elements: str
  sample: ["module Product: exclude_tables gained AuditLogEntries"]
slots:
  description: Every logical replication slot of ours on the source (any run), with the WAL it retains.
  returned: success
  type: list
  elements: dict
  sample:
    - slot_name: classifiedads_1b2c3d4e_a1b2c3_classifiedads_product
      database: ClassifiedAds_Product
      active: false
      active_pid: null
      restart_lsn: 0/1A2B3C8
      confirmed_flush_lsn: 0/1A2B400
      retained_bytes: 52428800
      retained: 50 MB
      lag_bytes: 52428000
      current_lsn: 0/4A2B3C8
refused_changes:
  description: On failure, the contract changes the run can no longer take, each with C(text) and C(why).
  returned: failure
  type: list
  elements: dict
'''

import os

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import address
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import (
    backup_timing_plan,
    build_plan,
    contract_changes,
    fence_plan,
    judge_contract_changes,
    refusal_message,
    run_plan,
    sync_plan,
    target_schemas,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.preflight import (
    amend_run,
    completion,
    decide_mode,
    inspect_source,
    inspect_target,
    mode_reason,
    open_run,
    rehearsal_facts,
    rehearsal_run_id,
    resolve_run_id,
    run_stage,
    server_problems,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.rehearsal import scratch_database
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    PLAN,
    read_json,
    run_id_problem,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import DEFAULT_PREFIX
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_preflight import (
    inspect_sync,
    slot_warnings,
    sync_problems,
)


def main():
    module = ConsolidationModule(
        argument_spec(
            mapping=True,
            target_database=dict(type="str", required=True),
            mode=dict(type="str", default="auto", choices=["auto", "existing", "fresh"]),
            run_id=dict(type="str", default=""),
            run_root=dict(type="path", required=True),
            backup_root=dict(type="path", required=True),
            rehearsal=dict(type="bool", default=False),
            rehearsal_database=dict(type="str", default=""),
            fence=dict(type="str", default="read_only", choices=["read_only", "none"]),
            fence_reason=dict(type="str"),
            backup_timing=dict(type="str", default="after_start", choices=["after_start", "before_copy"]),
            sync=dict(type="str", default="offline", choices=["offline", "online"]),
            slot_prefix=dict(type="str", default=DEFAULT_PREFIX),
            verify_checksum=dict(type="bool", default=True),
        ),
        needs=("source", "target"),
    )
    params = module.params
    problem = run_id_problem(params["run_id"]) if params["run_id"] else None
    if problem:
        module.fail([problem])
    with module.failures(message=lambda problems: "the consolidation plan is invalid: " + "; ".join(problems)):
        fence = fence_plan(params["fence"], params["fence_reason"])
        backup_timing = backup_timing_plan(params["backup_timing"], fence)
        sync = sync_plan(params["sync"], params["slot_prefix"], params["verify_checksum"], fence)
        modules = build_plan(params["modules"], params["target_database"], params["source"], params["target"],
                             params["exclude_tables"])
    target_database, rehearsal_of = params["target_database"], None
    if params["rehearsal"]:
        rehearsal_of = target_database
        with module.failures():
            target_database = scratch_database(rehearsal_of, params["rehearsal_database"])
        run_id, resumed = rehearsal_run_id(params["run_id"]), False
    else:
        run_id, resumed = resolve_run_id(params["run_id"], params["run_root"], target_database)
    with module.failures():
        # A resumed run's plan as first opened (or last amended): its contract is compared with this one.
        stored = read_json(os.path.join(params["run_root"], run_id, PLAN))
        source_facts = inspect_source(params["source"], modules)
        # The stored plan's schemas too: a removed module's or a renamed schema may exist already.
        target_facts = inspect_target(params["target"], target_database,
                                      target_schemas(modules) + target_schemas((stored or {}).get("modules") or []))
    if params["rehearsal"]:
        target_facts = rehearsal_facts(target_facts)

    mode = decide_mode(params["mode"], modules, source_facts)
    reason = mode_reason(params["mode"], mode, modules, address(params["source"]))
    if params["mode"] == "auto" and mode == "fresh" and not params["rehearsal"]:
        module.warn(reason)
    if mode == "existing" and fence["mode"] == "none":
        module.warn("consolidation_fence is none: the legacy databases accept writes during the window "
                    "(reason given: %s)" % fence["reason"])
    if mode == "existing" and backup_timing["reason"] and not params["rehearsal"]:
        module.warn(backup_timing["reason"])
    problems = server_problems(modules, mode, source_facts, target_facts)
    with module.failures():
        sync_facts = inspect_sync(params["source"], modules, params["slot_prefix"])
    for warning in slot_warnings(sync_facts["slots"], run_id, params["sync"] == "online", params["slot_prefix"]):
        module.warn(warning)
    if params["sync"] == "online" and mode == "existing":
        problems.extend(sync_problems(sync_facts, run_id, params["slot_prefix"]))
    if params["rehearsal"] and mode != "existing":
        problems.insert(0, "a rehearsal copies the legacy databases, and this run has none to copy (%s)" % reason)
    if problems:
        module.fail(problems, message="preflight found %d problem(s): %s" % (len(problems), "; ".join(problems)))

    plan = run_plan(run_id, resumed, params["run_root"], params["backup_root"], mode, target_database,
                    modules, params["exclude_tables"], params["source"], params["target"], source_facts, target_facts,
                    reason, fence, rehearsal_of, sync, backup_timing)
    with module.failures():
        plan["completed"] = completion(plan)
    applied = []
    if stored:
        applied, refused = judge_contract_changes(contract_changes(stored, plan), run_stage(plan),
                                                  set(target_facts["schemas"]))
        if refused:
            module.fail([refusal_message(refused, run_id)], refused_changes=refused)
    changed = not os.path.isdir(plan["run_dir"]) or bool(applied)
    if applied:
        module.warn("run %s takes a changed contract%s: %s" % (
            run_id, " (check mode: would rewrite its plan.json)" if module.check_mode else ", plan.json rewritten",
            "; ".join(change["text"] for change in applied)))
    if changed and not module.check_mode:
        with module.failures():
            if stored:
                amend_run(plan, applied)
            else:
                open_run(plan, params["run_root"])
    module.exit_json(changed=changed, plan=plan, contract_changes=[change["text"] for change in applied],
                     slots=sync_facts["slots"])


if __name__ == "__main__":
    main()
