"""Rollback after a decommission that dropped the legacy databases: a damaged archive is refused, by name."""

from __future__ import annotations

import pytest
from conftest import consolidation_vars, drop_database, execute
from devkit import legacy as legacy_fixture

from reliability.conftest import only_modules
from reliability.harness import flip_bytes

PREFIX = "RelRb"


def _databases_like(info, prefix):
    return sorted(row[0] for row in execute(info, "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                                            params=(prefix + "_",)))


@pytest.fixture(scope="module")
def decommissioned(source_cluster, target_cluster, run_playbook, tmp_path_factory):
    """Its own legacy databases (two of them consolidated), then dropped by decommission_mode: drop."""
    legacy_fixture.create(source_cluster, 0.01, prefix=PREFIX, drop_existing=True, out=lambda line: None)
    root = tmp_path_factory.mktemp("corrupt-archive")
    variables = only_modules(consolidation_vars(source_cluster, target_cluster, root, f"{PREFIX}_Consolidated", PREFIX),
                             ["Product", "Identity"])
    variables.update(decommission_confirm=[module["source_database"] for module in variables["consolidation_modules"]],
                     decommission_mode="drop")
    try:
        run_playbook("classifiedads.consolidation.consolidate", variables=variables)
        yield root, variables
    finally:
        for info in (source_cluster, target_cluster):
            for name in _databases_like(info, PREFIX):
                drop_database(info, name)


def test_rollback_refuses_a_corrupt_archive_and_names_it(decommissioned, source_cluster, target_cluster,
                                                         run_playbook):
    root, variables = decommissioned
    retired = variables["decommission_confirm"]
    # Dropped: only the archives can bring them back.
    assert not set(_databases_like(source_cluster, PREFIX)) & set(retired)
    run_id = (root / "runs" / "latest").read_text().strip()
    archives = sorted((root / "backups" / run_id).glob(f"{PREFIX}_Product*.dump"))
    assert archives
    for archive in archives:
        flip_bytes(archive)
    source_before, target_before = _databases_like(source_cluster, PREFIX), _databases_like(target_cluster, PREFIX)

    done = run_playbook("classifiedads.consolidation.rollback", "-e", f"consolidation_run_id={run_id}",
                        variables=variables, expect_rc=2)
    assert any(archive.name in done.output for archive in archives), done.output[-4000:]
    assert "sha256" in done.output
    # Refused before anything was restored, renamed or retired.
    assert _databases_like(source_cluster, PREFIX) == source_before
    assert _databases_like(target_cluster, PREFIX) == target_before
