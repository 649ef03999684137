"""ansible-playbook killed (its whole process group, SIGKILL) in the middle of the copy: within seconds no
module keeps working, the table in flight is rolled back, and the rerun with the same run id resumes.

Ansible's worker runs a module in a session of its own, so the kill does not reach it: the module has to
notice that its ansible-playbook is gone.
"""

from __future__ import annotations

import json
import os
import signal
import time

from conftest import run_sql
from psycopg2 import sql

from reliability.conftest import BIG_SCHEMA, BIG_TABLE, PREFIX, early_tables, mid_copy
from reliability.harness import copied_tables, kill, module_pids, processes_with_environment, wait_for

RUN_ID = "rel-controller-killed"


def test_killing_ansible_playbook_leaves_no_module_working_and_the_rerun_resumes(consolidation, target_cluster):
    run = consolidation("PlaybookKilled", modules=["Notification", "AuditLog", "Product"], consolidation_run_id=RUN_ID)
    moment = mid_copy(target_cluster, run.target_database, early_tables(PREFIX))
    played = run.start()
    try:
        wait_for(lambda: played.poll() is not None or moment(), timeout=300, what=f"the copy of {BIG_TABLE} under way")
        assert played.poll() is None, (run.root / "started.out").read_text()[-4000:]
        assert module_pids("data_copy", run.marker)
        os.killpg(played.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        assert played.wait(timeout=60) == -signal.SIGKILL
        # Nothing that inherited the play's environment keeps working: module, its shell, Ansible's worker.
        wait_for(lambda: not processes_with_environment(run.marker), timeout=30,
                 what="every process of the killed play to end")
        assert time.monotonic() - killed_at < 15
    finally:
        kill(processes_with_environment(run.marker))

    recorded = copied_tables(target_cluster, run.target_database)
    assert early_tables(PREFIX) <= recorded.keys()
    assert (f"{PREFIX}_Notification", BIG_TABLE) not in recorded  # the table in flight was rolled back
    big = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(BIG_SCHEMA), sql.Identifier(BIG_TABLE))
    assert run_sql(target_cluster, run.target_database, big) == [(0,)]
    log = (run.run_dir() / "data_copy.log").read_text()
    assert f"pid {played.pid}, is gone" in log, log[-2000:]

    resumed = run.play()
    assert "took over the lease" in resumed.output or "taken_over" in resumed.output, resumed.output[-4000:]
    after = copied_tables(target_cluster, run.target_database, run.run_dir())  # the completed run's record
    # The tables committed before the kill were kept, not copied again.
    assert {table: after[table] for table in recorded} == recorded
    assert (f"{PREFIX}_Notification", BIG_TABLE) in after
    assert json.loads((run.run_dir() / "verification.json").read_text())["summary"]["passed"] is True
