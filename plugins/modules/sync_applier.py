#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: sync_applier
short_description: Start, stop or drain the change appliers of online mode
version_added: 0.3.0
author:
  - ClassifiedAds platform team (@classifiedads)
description:
  - In online mode each legacy database named in O(modules) has a logical replication slot and a publication of
    its mapped tables (created by C(classifiedads.consolidation.data_copy) with C(sync=online), named by the run
    id). The applier of a legacy database streams that slot (C(pgoutput), protocol version 1) and writes every
    change into the renamed table of O(target_database) that the module mapping places it in.
  - One source transaction becomes one target transaction, in which the row of the legacy database in
    C(<state_schema>.sync_progress) records the transaction's end LSN. The slot is told only after the target
    committed, and a (re)started applier skips every transaction at or before the recorded LSN, so that no change
    is lost or applied twice across crashes and restarts.
  - Inserts, updates (also of the key), deletes and truncates are applied; a TOASTed value the source did not
    change keeps its target value. Rows are found by the replica identity key, or by all old columns with
    C(REPLICA IDENTITY FULL).
  - The applier stops for good, with state C(failed) and an error naming the table, when a change cannot be applied
    faithfully. This happens when the columns of a legacy table no longer match its target table (DDL on the
    legacy database during sync), when an update or delete does not touch exactly one row, or when an insert
    conflicts. The error never shows row contents.
  - Target sessions set C(session_replication_role=replica), so that user triggers and foreign-key checks do not
    fire a second time. A role that may not set it can still apply changes to tables without enabled user
    triggers; a table with one stops the applier, naming the fix.
  - Each applier is a process on the host that runs the module, detached from the Ansible job so that it outlives
    it. A supervisor restarts a crashed worker with a growing pause. The files of the legacy database's applier
    are C(<run_dir>/sync/<database>-<digest>.pid), C(.log) and C(.status.json) (all 0600). Passwords stay in the
    memory of the processes.
options:
  target_database:
    description: The consolidated database on O(target).
    type: str
    required: true
  run_id:
    description:
      - The consolidation run; the slot and publication names derive from it and O(slot_prefix).
    type: str
    required: true
  run_dir:
    description: The run directory; the appliers' pid, log and status files are kept in its C(sync) directory.
    type: path
    required: true
  state_schema:
    description: Schema of O(target_database) that holds the run state, including C(sync_progress).
    type: str
    default: _consolidation
  slot_prefix:
    description: Prefix of the slot and publication names (consolidation_sync_slot_prefix).
    type: str
    default: classifiedads
  state:
    description:
      - V(started) starts the applier of every legacy database that has none running. A running applier is left
        alone (not changed); one that ended is started again and resumes after the last applied transaction.
      - V(stopped) sends SIGTERM to every running applier and waits up to O(stop_timeout) for it to end. An open
        transaction is abandoned, never committed in part.
      - V(drained) is the cutover's step. The caller has fenced the legacy databases. The module reads the current
        WAL position of every legacy database, waits until its slot has confirmed that position (every change
        applied), for at most O(catch_up_timeout). It then stops the appliers and continues every target sequence
        of a mapped table from its source (never moved back), and every sequence of the legacy schema that no
        column uses. An applier that is not running is started first and catches up; one that failed makes the
        drain fail with its error. On a timeout the error names each database that lags and by how many bytes;
        the appliers keep running.
    type: str
    choices: [started, stopped, drained]
    default: started
  stop_timeout:
    description: Seconds to wait for an applier to end after SIGTERM.
    type: int
    default: 30
  catch_up_timeout:
    description: Seconds O(state=drained) waits for the appliers to reach the source's current WAL position.
    type: int
    default: 300
extends_documentation_fragment:
  - classifiedads.consolidation.connection
  - classifiedads.consolidation.mapping
attributes:
  check_mode:
    description: Can run in check mode and return the changed status prediction without modifying anything.
    support: full
    details:
      - Starts and stops nothing and changes no sequence. It reports per legacy database what would be done
        (C(would_start), C(would_stop), C(would_drain)) and, for V(drained), the current lag.
      - A slot that does not exist yet is a warning, not a failure, for V(started) in check mode. In a check run of
        sync.yml the copy before this step creates none.
  diff_mode:
    description: Returns no diff.
    support: none
notes:
  - The slot retains WAL on the source until the applier confirms it. A stopped applier therefore lets WAL grow
    on the source. Roll back (rollback.yml) or cut over to drop the slots.
seealso:
  - name: Logical replication message formats
    description: The pgoutput protocol the applier decodes.
    link: https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
'''

EXAMPLES = r'''
- name: Start streaming the legacy databases into the consolidated database
  classifiedads.consolidation.sync_applier:
    target_database: ClassifiedAds
    run_id: "2026-11-20"
    run_dir: /var/lib/consolidation/runs/2026-11-20
    modules: "{{ consolidation_modules }}"
    state: started

- name: After the fence, wait until every change is applied, stop the appliers, continue the sequences
  classifiedads.consolidation.sync_applier:
    target_database: ClassifiedAds
    run_id: "2026-11-20"
    run_dir: /var/lib/consolidation/runs/2026-11-20
    modules: "{{ consolidation_modules }}"
    state: drained
    catch_up_timeout: 120
'''

RETURN = r'''
appliers:
  description: One entry per legacy database.
  returned: always
  type: list
  elements: dict
  contains:
    source_database:
      description: The legacy database.
      type: str
      sample: ClassifiedAds_Product
    slot_name:
      description: Its replication slot (and publication).
      type: str
      sample: classifiedads_1a2b3c4d_5e6f70_classifiedads_product
    action:
      description:
        - What the module did, C(started), C(running) (left alone), C(stopped), C(not_running), C(drained), or in
          check mode C(would_start), C(would_stop), C(would_drain).
      type: str
      sample: started
    pid:
      description: The applier's supervisor process, null when none runs.
      type: int
      sample: 41234
    state:
      description: The applier's state from its status file (starting, streaming, stopping, stopped, failed), or null.
      type: str
      sample: streaming
    error:
      description: The error that stopped a C(failed) applier, or null.
      type: str
    applied_lsn:
      description: The end LSN of the last source transaction applied (from C(sync_progress)), or null.
      type: str
      sample: 0/1A2B3C8
    lag:
      description: Bytes of source WAL the slot has not confirmed (C(pg_current_wal_lsn() - confirmed_flush_lsn)).
      type: int
      sample: 0
    target_lsn:
      description: For V(drained), the source position that had to be reached.
      type: str
      sample: 0/1A2B3C8
    log:
      description: The applier's log file.
      type: str
      sample: /var/lib/consolidation/runs/2026-11-20/sync/ClassifiedAds_Product-3f2a1b.log
sequences:
  description: For V(drained), the target sequences that were continued (C(setval) null when already ahead).
  returned: always
  type: list
  elements: dict
  sample: [{target_sequence: product."Products_Id_seq", source_sequence: public."Products_Id_seq", setval: [42, true]}]
queries:
  description:
    - The statements that changed something (C(setval) of V(drained)) and the slot look-ups, in order; in check mode
      the statements a run would issue.
  returned: always
  type: list
  elements: str
  sample: ["SELECT pg_catalog.setval('product.\"Products_Id_seq\"', 42, true)"]
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan, run_option_problems
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_control import SyncControl


def option_problems(params):
    problems = run_option_problems(params["run_id"], params["state_schema"], params["slot_prefix"])
    for option in ("stop_timeout", "catch_up_timeout"):
        if params[option] < 1:
            problems.append("%s must be at least 1, got %d" % (option, params[option]))
    return problems


def main():
    module = ConsolidationModule(
        argument_spec(
            mapping=True,
            target_database=dict(type="str", required=True),
            run_id=dict(type="str", required=True),
            run_dir=dict(type="path", required=True),
            state_schema=dict(type="str", default="_consolidation"),
            slot_prefix=dict(type="str", default="classifiedads"),
            state=dict(type="str", choices=["started", "stopped", "drained"], default="started"),
            stop_timeout=dict(type="int", default=30),
            catch_up_timeout=dict(type="int", default=300),
        ),
        needs=("source", "target"),
    )
    params = module.params
    problems = option_problems(params)
    if problems:
        module.fail(problems)
    with module.failures():
        modules = build_plan(params["modules"], params["target_database"], params["source"], params["target"],
                             params["exclude_tables"])
        control = SyncControl(params["source"], params["target"], params["target_database"], modules,
                              params["run_id"], params["run_dir"], params["state_schema"], params["slot_prefix"],
                              module.journal, module.check_mode)
        result = getattr(control, params["state"])(stop_timeout=params["stop_timeout"],
                                                   catch_up_timeout=params["catch_up_timeout"])
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(queries=module.journal.queries, **result)


if __name__ == "__main__":
    main()
