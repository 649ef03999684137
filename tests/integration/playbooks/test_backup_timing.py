"""consolidate.yml's backup timing on two real servers: after the start (the default, outside the window) or before
the copy (the plan's order), and the rollback of a run that failed before its backup existed.

The window is what the application waits through: with ``consolidation_backup_timing: after_start`` it holds fence,
copy, verification, cutover and start, and the backup of the fenced legacy databases follows.
"""

from __future__ import annotations

import json
import sys

import psycopg2
import psycopg2.errors
import pytest
from conftest import consolidation_vars, drop_database
from devkit import legacy
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import parse_utc

PREFIX = "Window"
DATABASES = [f"{PREFIX}_{name}" for name in ("Product", "Identity", "Storage", "Notification", "AuditLog",
                                             "Configuration")]
# Landmarks of the play's output: the first line of each, in the order the play printed them.
BACKUP = "TASK [classifiedads.consolidation.backup : Back up the legacy databases into set"
COPY = "TASK [classifiedads.consolidation.data_copy : Copy the legacy tables into"
VERIFY = "TASK [classifiedads.consolidation.verify : Compare the legacy tables with their copies in"
APP_START = "TASK [classifiedads.consolidation.app_control : Say that the application is not managed here]"


@pytest.fixture(scope="module")
def legacy_window(source_cluster):
    legacy.create(source_cluster, 0.01, prefix=PREFIX, drop_existing=True, out=lambda line: None)
    yield
    legacy.drop(source_cluster, prefix=PREFIX)


@pytest.fixture
def window_run(legacy_window, source_cluster, target_cluster, run_playbook, tmp_path):
    """``play(name, playbook="consolidate", expect_rc=0, **vars)``: a playbook on the consolidated database
    ``Window_<name>`` (dropped afterwards) with runs and backups under ``tmp_path/<name>``; the legacy databases'
    fence is lifted afterwards, so that every scenario starts from writable legacy databases."""
    made = []

    def play(name, playbook="consolidate", expect_rc=0, **extra):
        database = f"{PREFIX}_{name}"
        made.append(database)
        variables = {**consolidation_vars(source_cluster, target_cluster, tmp_path / name, database, PREFIX),
                     "consolidation_run_id": f"window-{name.lower()}", **extra}
        return run_playbook(f"classifiedads.consolidation.{playbook}", variables=variables, expect_rc=expect_rc)

    yield play
    for database in made:
        drop_database(target_cluster, database)
    for database in DATABASES:
        reset = sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(sql.Identifier(database))
        legacy.query(source_cluster, "postgres", reset)


def position(output, landmark):
    assert landmark in output, f"{landmark!r} not printed:\n{output[-4000:]}"
    return output.index(landmark)


def manifest(tmp_path, name):
    return json.loads((tmp_path / name / "backups" / f"window-{name.lower()}" / "manifest.json").read_text())


def fenced(source_cluster):
    return sorted(row[0] for row in legacy.query(
        source_cluster, "postgres", "SELECT d.datname FROM pg_db_role_setting s JOIN pg_database d ON d.oid = "
        "s.setdatabase WHERE s.setrole = 0 AND d.datname LIKE %s AND 'default_transaction_read_only=on' = "
        "ANY(s.setconfig)", (PREFIX + "\\_%",)))


def test_after_start_backs_up_the_fenced_databases_once_the_application_is_back(window_run, source_cluster,
                                                                                tmp_path):
    done = window_run("After")
    output = done.output
    # The window (fence -> copy -> verify -> cutover -> start) holds no backup; it follows the start.
    assert position(output, COPY) < position(output, VERIFY) < position(output, APP_START) < position(output, BACKUP)
    plan = json.loads((tmp_path / "After" / "runs" / "window-after" / "plan.json").read_text())
    assert plan["backup_timing"] == {"timing": "after_start", "reason": None}
    # Complete and verified, every legacy database, with exactly the rows the fenced databases hold (= what was
    # copied and verified: the fence kept them from changing in between).
    archives = {entry["database"]: entry for entry in manifest(tmp_path, "After")["archives"]}
    assert sorted(archives) == sorted(DATABASES)
    assert all(entry["verified"] for entry in archives.values())
    counts = legacy.counts(source_cluster, PREFIX)
    for database, entry in archives.items():
        assert {table["table"]: table["rows"] for table in entry["tables"]} == counts[database], database
    verification = json.loads((tmp_path / "After" / "runs" / "window-after" / "verification.json").read_text())
    assert verification["summary"]["passed"] is True
    # generated_at has whole seconds (truncated): a backup that started after the verification is not earlier.
    assert min(parse_utc(entry["started_at"]) for entry in archives.values()) >= parse_utc(
        verification["generated_at"])
    assert fenced(source_cluster) == sorted(DATABASES)
    assert "(taken after the application started, outside the window: the fenced legacy databases as copied)" \
        in output


def test_before_copy_keeps_the_plans_order(window_run, tmp_path):
    done = window_run("Before", consolidation_backup_timing="before_copy")
    assert position(done.output, BACKUP) < position(done.output, COPY) < position(done.output, APP_START)
    assert "(taken before the copy, inside the window)" in done.output
    assert all(entry["verified"] for entry in manifest(tmp_path, "Before")["archives"])


def test_a_run_that_failed_before_its_backup_rolls_back_without_one(window_run, source_cluster, tmp_path):
    failing_migrator = [sys.executable, "-c", "raise SystemExit('the migrator could not reach its database')"]
    failed = window_run("Failed", expect_rc=2, migrator_command=failing_migrator)
    assert "Run window-failed FAILED at task" in failed.output
    assert "not yet, if the run failed before that (rollback.yml does not need it then)" in failed.output
    assert not (tmp_path / "Failed" / "backups" / "window-failed" / "manifest.json").exists()
    assert fenced(source_cluster) == sorted(DATABASES)

    rolled_back = window_run("Failed", playbook="rollback", migrator_command=failing_migrator)
    assert "the run ended before its backup, so there is no manifest to compare it with" in rolled_back.output
    assert fenced(source_cluster) == []
    conn = psycopg2.connect(**source_cluster.connect_kwargs(f"{PREFIX}_Product"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute('DELETE FROM "Products" WHERE false')  # refused while the fence holds
    finally:
        conn.close()
