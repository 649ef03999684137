"""--check is the plan: both servers' catalogs and data, and the disk, stay exactly as they were."""

from __future__ import annotations

from reliability.harness import files_under, server_fingerprint


def test_check_mode_leaves_both_servers_catalogs_and_data_unchanged(consolidation, source_cluster, target_cluster):
    run = consolidation("Check")
    before = server_fingerprint(source_cluster), server_fingerprint(target_cluster)
    done = run.play("--check")
    assert (server_fingerprint(source_cluster), server_fingerprint(target_cluster)) == before
    assert files_under(run.root) == [] and not run.run_root.exists() and not run.backup_root.exists()
    # It did plan: the legacy databases it would back up and copy are named.
    assert "Rel_Notification" in done.output and "EmailMessages" in done.output
