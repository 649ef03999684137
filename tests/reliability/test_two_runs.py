"""Two runs at once on one target database: the second is refused, naming the first, and changes nothing."""

from __future__ import annotations

import json
import socket

import psycopg2
from conftest import run_sql

from reliability.harness import server_fingerprint, wait_for, without_data

LEASE = "_consolidation.lease"


def lease_of(info, database):
    """[(run id, host, pid)] of the lease on ``database`` (empty while the database or its lease does not exist)."""
    try:
        return run_sql(info, database, f"SELECT run_id, host, pid FROM {LEASE}")
    except psycopg2.Error:
        return []


def test_a_second_run_on_the_same_target_refuses_naming_the_first_and_changes_nothing(
        consolidation, source_cluster, target_cluster, tmp_path):
    first_id, second_id = "rel-first-run", "rel-second-run"
    gate = tmp_path / "migrator-gate"
    # The first run's migrator waits for the gate: the first run holds its target, past step 2, for as long as
    # the second one takes (no race on how fast either is).
    held = [*"/bin/sh -c".split(), 'while [ ! -e "$0" ]; do sleep 0.1; done; exec "$@"', str(gate)]
    run = consolidation("TwoRuns", modules=["Product"], consolidation_run_id=first_id)
    first = run.start(migrator_command=held + run.vars["migrator_command"])
    try:
        holder = wait_for(lambda: first.poll() is not None or lease_of(target_cluster, run.target_database),
                          timeout=300, what="the first run's lease on its target")
        assert first.poll() is None, (run.root / "started.out").read_text()[-4000:]
        assert holder == [(first_id, socket.gethostname(), first.pid)]
        before = server_fingerprint(source_cluster), server_fingerprint(target_cluster)

        second = run.play(consolidation_run_id=second_id, expect_rc=2)

        after = server_fingerprint(source_cluster), server_fingerprint(target_cluster)
        assert after[0] == before[0]
        lease_free = [{**fingerprint, run.target_database: without_data(fingerprint[run.target_database], LEASE)}
                      for fingerprint in (before[1], after[1])]
        assert lease_free[0] == lease_free[1]
        assert (f"run {first_id} on host {socket.gethostname()} (ansible-playbook pid {first.pid}, "
                in second.output), second.output[-4000:]
        assert "one run at a time per target database" in second.output
        assert not (run.run_root / second_id).exists() and not (run.backup_root / second_id).exists()
    finally:
        gate.touch()
        rc = first.wait(timeout=600)
    # The first run, never disturbed, finishes and verifies.
    assert rc == 0, (run.root / "started.out").read_text()[-4000:]
    assert json.loads((run.run_root / first_id / "verification.json").read_text())["summary"]["passed"] is True
