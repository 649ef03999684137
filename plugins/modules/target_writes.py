#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: target_writes
short_description: Find what was written to the consolidated database after a run's verification
version_added: 0.1.0
description:
  - For a rollback, before it stops or changes anything. A rollback puts the application back on the legacy
    databases, and whatever was written to the consolidated database after the cutover stays behind there.
  - Measures every table of the consolidated database O(target_database) on the O(target) server again and compares
    it with the target side of the run's verification report (C(verification.json) in O(run_dir)). Exact row counts
    and, when the report has them, content checksums are taken with the verification's own queries, over the same
    columns. The sessions are read-only.
  - A table is a new write when its row count differs (C(rows)), when only its checksum differs (C(content), an
    update), when it appeared in a module schema after the verification (C(added)), when the verification could not
    measure it (C(unmeasured)), when it was verified and is gone (C(dropped)), or when it cannot be measured
    (C(error)).
  - Rows written by the play's own smoke probes carry the run's marker (C(smoke-<run id>-...)). When they are the
    whole difference of a table (the other rows' count and checksum are what the verification measured), the table
    is listed in RV(accounted) and is not a new write. Rows written and removed again change nothing.
  - Without a verification report the run never reached the cutover; nothing is compared, and RV(skipped) says so.
    The same holds when the consolidated database is gone, closed, or was retired by an earlier rollback.
  - New writes set RV(refused), unless O(discard=true), or unless C(discarded_writes.json) in O(run_dir) already
    lists exactly these writes (an earlier rollback discarded them). With O(discard=true) they are recorded in that
    file (mode 0600) and the module reports C(changed).
author:
  - ClassifiedAds platform team (@classifiedads)
extends_documentation_fragment:
  - classifiedads.consolidation.connection
attributes:
  check_mode:
    description: Compares exactly as in a real run (it only reads); does not write the record.
    support: full
  diff_mode:
    description: Not supported.
    support: none
options:
  run_dir:
    description: The run directory, with the run's C(plan.json) and (once it verified) C(verification.json).
    type: path
    required: true
  target_database:
    description: The consolidated database, on the O(target) server.
    type: str
    required: true
  discard:
    description:
      - Accept losing the new writes. They are still listed, and recorded in C(discarded_writes.json) in O(run_dir).
    type: bool
    default: false
notes:
  - Needs C(CONNECT) on the consolidated database and C(SELECT) on its tables, as the verification does.
  - Checksums need PostgreSQL 14 or later on the target, as the verification's do.
seealso:
  - module: classifiedads.consolidation.row_count_diff
  - module: classifiedads.consolidation.database_restore
'''

EXAMPLES = r'''
- name: Look for writes made to the consolidated database after the verification of run 20261124T040000Z
  classifiedads.consolidation.target_writes:
    run_dir: /var/lib/classifiedads-consolidation/runs/20261124T040000Z
    target_database: ClassifiedAds
  register: writes

- name: Refuse to leave them behind
  ansible.builtin.fail:
    msg: "{{ writes.msg }}"
  when: writes.refused
'''

RETURN = r'''
refused:
  description: New writes were found, O(discard) is false, and no earlier rollback discarded exactly these.
  returned: always
  type: bool
skipped:
  description: Why nothing was compared (no verification report; the consolidated database is gone or closed), or null.
  returned: always
  type: str
writes:
  description:
    - One entry per new write. C(schema), C(table), C(change) (C(rows), C(content), C(added), C(unmeasured),
      C(dropped), C(error)), C(verified_rows) (the verification's count), C(rows) (now), C(delta) (rows added or,
      negative, removed, not counting smoke probe rows), C(own_rows) (smoke probe rows in it) and a C(note).
  returned: always
  type: list
  elements: dict
  sample: [{"schema": "product", "table": "Products", "change": "rows", "verified_rows": 4003, "rows": 4005,
            "delta": 1, "own_rows": 1, "new_write": true, "note": null}]
accounted:
  description: Tables whose only difference is the rows of the play's smoke probes (C(change) C(own)), same keys.
  returned: always
  type: list
  elements: dict
verified_at:
  description: When the verification report the comparison is against was generated, or null.
  returned: always
  type: str
record:
  description: Path of C(discarded_writes.json), written with O(discard=true) when there are new writes.
  returned: always
  type: str
table_text:
  description: RV(writes) and RV(accounted) as a fixed-width plain-text table; empty when there are none.
  returned: always
  type: str
target_database:
  description: The consolidated database compared.
  returned: always
  type: str
queries:
  description: SQL statements run, each once.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    ConsolidationModule,
    argument_spec,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.target_writes import TargetWrites


def main():
    module = ConsolidationModule(
        argument_spec(
            run_dir=dict(type="path", required=True),
            target_database=dict(type="str", required=True),
            discard=dict(type="bool", default=False),
        ),
        needs=("target",),
        unique_queries=True,
        reads_target_only=True,
    )
    writes = TargetWrites(module.params, module.journal)
    with module.failures(result=lambda: writes.result):
        result = writes.run()
    module.exit_json(queries=module.journal.queries, **result)


if __name__ == "__main__":
    main()
