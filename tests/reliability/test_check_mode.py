"""--check is the plan, a rehearsal a trial run beside the target: both servers' catalogs and data, and the
disk where runs and backups go, stay exactly as they were."""

from __future__ import annotations

import threading

from conftest import execute

from reliability.harness import files_under, server_fingerprint


def test_check_mode_leaves_both_servers_catalogs_and_data_unchanged(consolidation, source_cluster, target_cluster):
    run = consolidation("Check")
    before = server_fingerprint(source_cluster), server_fingerprint(target_cluster)
    done = run.play("--check")
    assert (server_fingerprint(source_cluster), server_fingerprint(target_cluster)) == before
    assert files_under(run.root) == [] and not run.run_root.exists() and not run.backup_root.exists()
    # It did plan: the legacy databases it would back up and copy are named.
    assert "Rel_Notification" in done.output and "EmailMessages" in done.output


def _database_names(info):
    return {row[0] for row in execute(info, "SELECT datname FROM pg_database")}


def test_a_rehearsal_leaves_only_its_scratch_database_while_it_runs_then_nothing(consolidation, source_cluster,
                                                                                 target_cluster):
    run = consolidation("Rehearsal")
    before = server_fingerprint(source_cluster), server_fingerprint(target_cluster)
    names_before = _database_names(source_cluster), _database_names(target_cluster)
    seen_source, seen_target, stop = set(), set(), threading.Event()

    def watch():  # every database either server holds while the rehearsal runs
        while not stop.wait(0.2):
            seen_source.update(_database_names(source_cluster))
            seen_target.update(_database_names(target_cluster))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        done = run.play(consolidation_rehearsal=True)
    finally:
        stop.set()
        watcher.join()
    scratch = f"{run.target_database}_rehearsal"
    assert f"Rehearsal of {run.target_database} into {scratch} (dropped)" in done.output, done.output[-4000:]
    assert "PASSED" in done.output
    # While it ran: its scratch database and nothing else, on the target only; the real target never made.
    assert (seen_source - names_before[0], seen_target - names_before[1]) == (set(), {scratch})
    # Afterwards: both servers exactly as before (the legacy databases neither fenced nor written to).
    assert (server_fingerprint(source_cluster), server_fingerprint(target_cluster)) == before
    assert not run.backup_root.exists() or files_under(run.backup_root) == []
