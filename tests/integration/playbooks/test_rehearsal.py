"""consolidate.yml -e consolidation_rehearsal=true on two real servers: a scratch database, then nothing.

The rehearsal runs schemas, migrator, copy and verification into a scratch
database beside the target while the legacy databases stay writable, reports
the time of each phase, and leaves both servers as it found them (its scratch
database dropped, the real target never created, no run made "latest").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import consolidation_vars, drop_database, execute
from conftest import run_sql as query
from devkit import legacy
from test_consolidate_playbook import server_snapshot

PREFIX = "Rehearse"
TARGET_DB = "Rehearse_Consolidated"
SCRATCH_DB = TARGET_DB + "_rehearsal"


@pytest.fixture(scope="module")
def legacy_rehearse(source_cluster):
    legacy.create(source_cluster, 0.02, prefix=PREFIX, out=lambda line: None)
    yield
    legacy.drop(source_cluster, prefix=PREFIX)


@pytest.fixture()
def rehearse(run_playbook, tmp_path, source_cluster, target_cluster, legacy_rehearse):
    variables = dict(consolidation_vars(source_cluster, target_cluster, tmp_path, TARGET_DB, PREFIX),
                     consolidation_rehearsal=True)

    def run(*args, expect_rc=0, **extra):
        return run_playbook("classifiedads.consolidation.consolidate", *args, variables=dict(variables, **extra),
                            expect_rc=expect_rc)

    yield run
    for name in (SCRATCH_DB, TARGET_DB, "Rehearse_elsewhere"):
        drop_database(target_cluster, name)


def databases(info):
    return sorted(row[0] for row in execute(info, "SELECT datname FROM pg_database"))


def rehearsal_report(root):
    reports = list((Path(root) / "runs").glob("*-rehearsal/rehearsal.json"))
    assert len(reports) == 1, reports
    assert oct(reports[0].stat().st_mode & 0o777) == "0o600"
    return json.loads(reports[0].read_text())


def test_a_rehearsal_copies_and_verifies_into_a_scratch_database_then_leaves_both_servers_as_they_were(
        rehearse, tmp_path, source_cluster, target_cluster):
    source_before, target_before = server_snapshot(source_cluster), databases(target_cluster)

    done = rehearse()

    assert "PASSED" in done.output
    assert f"Rehearsal of {TARGET_DB} into {SCRATCH_DB} (dropped)" in done.output
    report = rehearsal_report(tmp_path)
    assert report["completed"] is True and report["scratch_database_kept"] is False
    assert [phase["phase"] for phase in report["timing"]["phases"]] == ["schemas", "migrator", "copy", "verify"]
    assert report["timing"]["total_seconds"] > 0
    assert server_snapshot(source_cluster) == source_before
    assert databases(target_cluster) == target_before  # scratch dropped, the real target never created
    # A rehearsal is never the run a later consolidate.yml resumes.
    assert not (tmp_path / "runs" / "latest").exists()
    # Nothing of the real run's steps: no backup, no fence, no cutover.
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())


def test_a_kept_scratch_database_holds_the_copy_and_the_next_rehearsal_replaces_it(rehearse, target_cluster):
    rehearse(rehearsal_keep=True)
    comment = execute(target_cluster, "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                      "WHERE datname = %s", params=(SCRATCH_DB,))
    assert comment and comment[0][0].startswith("classifiedads.consolidation rehearsal scratch database")
    users = query(target_cluster, SCRATCH_DB, 'SELECT count(*) FROM identity."Users"')[0][0]
    assert users > 0
    query(target_cluster, SCRATCH_DB, 'CREATE TABLE public.leftover (id int)')

    rehearse()

    assert SCRATCH_DB not in databases(target_cluster)


def test_a_database_of_that_name_the_rehearsal_did_not_make_is_refused_and_left_alone(rehearse, target_cluster):
    execute(target_cluster, 'CREATE DATABASE "Rehearse_elsewhere"')
    query(target_cluster, "Rehearse_elsewhere", "CREATE TABLE precious (id int)")

    done = rehearse(consolidation_rehearsal_database="Rehearse_elsewhere", expect_rc=2)

    assert "was not made by a rehearsal" in done.output
    assert query(target_cluster, "Rehearse_elsewhere", "SELECT count(*) FROM precious") == [(0,)]


def test_check_mode_rehearsal_creates_nothing(rehearse, tmp_path, target_cluster):
    before = databases(target_cluster)

    rehearse("--check")

    assert databases(target_cluster) == before
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*/rehearsal.json"))


def test_a_rehearsal_of_a_fresh_deployment_is_refused_at_preflight(
        run_playbook, tmp_path, source_cluster, target_cluster):
    variables = dict(consolidation_vars(source_cluster, target_cluster, tmp_path, TARGET_DB, "NoSuchPrefix"),
                     consolidation_rehearsal=True)

    done = run_playbook("classifiedads.consolidation.consolidate", variables=variables, expect_rc=2)

    assert "a rehearsal copies the legacy databases, and this run has none to copy" in done.output
    assert SCRATCH_DB not in databases(target_cluster)


def test_a_real_run_passes_over_the_rehearsal_play_without_a_word(rehearse):
    done = rehearse("--check", consolidation_rehearsal=False)

    assert "Rehearse a consolidation into a scratch database" in done.output  # the imported play, no host
    assert "template error" not in done.output and "consolidation_plan' is undefined" not in done.output
    assert "Rehearsal of" not in done.output
