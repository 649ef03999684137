"""rollback.yml against real servers: after a rename decommission the databases are renamed back, after a
drop they are restored from the backup set (checksums first, row counts before they go in place), a
tampered archive refuses before anything changes, and a second run changes nothing.

Every row the legacy databases held before the consolidation must be there afterwards: compared table
by table as (count, md5 of every row) with what the databases held before anything ran.
"""

from __future__ import annotations

import datetime
import json
import re
import stat
from pathlib import Path

import pytest
from conftest import drop_database, endpoint, last_task
from conftest import run_sql as query
from constants import HOSTILE
from devkit import legacy
from psycopg2 import sql
from test_decommission import Workspace

pytestmark = pytest.mark.integration

PREFIX = "Rollback"
RENAME_RUN, RENAME_TARGET = "rollback-rename", "Rollback_Consolidated_1"
DROP_RUN, DROP_TARGET = "rollback-drop", "Rollback_Consolidated_2"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, source_cluster, target_cluster, run_playbook):
    root = tmp_path_factory.mktemp("rollback")
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)
    space = Workspace(root, source_cluster, target_cluster, PREFIX, run_playbook)
    space.before = legacy.digests(source_cluster, prefix=PREFIX)
    yield space
    for name in space.catalog():
        drop_database(source_cluster, name)
    for (name,) in query(target_cluster, "postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'Rollback%'"):
        drop_database(target_cluster, name)


@pytest.fixture(scope="module")
def renamed(workspace):
    """A consolidation whose legacy databases were then retired by renaming."""
    workspace.consolidate(RENAME_RUN, RENAME_TARGET)
    workspace.decommission(RENAME_RUN)
    assert not set(workspace.databases) & set(workspace.catalog())
    return workspace


def legacy_back(workspace):
    """The legacy databases are in place, open, unfenced, and hold exactly what they held before anything ran."""
    catalog = workspace.catalog()
    assert all(catalog.get(name) is True for name in workspace.databases), catalog
    assert legacy.digests(workspace.source, prefix=PREFIX) == workspace.before
    # The write fence was lifted: a restored database got its recorded settings back, the fence among them.
    fenced = query(workspace.source, "postgres", "SELECT d.datname FROM pg_db_role_setting s JOIN pg_database d "
                                                 "ON d.oid = s.setdatabase WHERE s.setrole = 0 AND d.datname = ANY(%s) "
                                                 "AND s.setconfig::text LIKE '%%default_transaction_read_only%%'",
                   (workspace.databases,))
    assert fenced == []


# -- after a rename ---------------------------------------------------------------------------------


def test_check_mode_shows_the_plan_and_changes_nothing(renamed):
    before = (renamed.catalog(), (renamed.run_dir(RENAME_RUN) / "decommission.json").read_text())
    output, _changed = renamed.rollback(RENAME_RUN, "--check")
    assert "Check mode, would be renamed back: Rollback_Product, Rollback_Identity" in output
    assert "Next: run without --check to roll back" in last_task(output)
    assert (renamed.catalog(), (renamed.run_dir(RENAME_RUN) / "decommission.json").read_text()) == before
    assert not (renamed.run_dir(RENAME_RUN) / "rollback.json").exists()


def test_an_unknown_run_is_refused(renamed):
    output, _changed = renamed.rollback("no-such-run", expect_rc=2)
    assert "Run no-such-run does not exist: there is no" in output
    # Last, where it failed and what comes next (the failed task's own error stays above).
    summary = last_task(output)
    assert 'Rollback of run no-such-run FAILED at task "' in summary, summary
    assert "Reports: none, the run was not loaded" in summary
    assert ("Next: fix the cause named above and run rollback.yml again with -e consolidation_run_id=no-such-run"
            in summary)


def test_rollback_renames_the_databases_back_with_every_row(renamed):
    output, changed = renamed.rollback(RENAME_RUN)
    assert changed > 0
    legacy_back(renamed)
    assert "undone (renamed back)" in output and "verified" in output
    summary = last_task(output)
    assert f"Rollback of run {RENAME_RUN}: " in summary and "undone (renamed back)" in summary
    assert f"Record: {renamed.run_dir(RENAME_RUN) / 'rollback.json'}" in summary
    assert "Next: check that the application serves from the legacy databases again" in summary
    record = renamed.record(RENAME_RUN)
    assert {entry["state"] for entry in record["databases"]} == {"rolled_back"}
    assert {entry["rollback_action"] for entry in record["databases"]} == {"undo"}
    rollback = json.loads((renamed.run_dir(RENAME_RUN) / "rollback.json").read_text())
    assert {entry["database"] for entry in rollback["databases"]} == set(renamed.databases)
    assert all(entry["verified"] for entry in rollback["databases"])
    assert stat.S_IMODE((renamed.run_dir(RENAME_RUN) / "rollback.json").stat().st_mode) == 0o600
    # The consolidated database is kept unless asked otherwise.
    assert query(renamed.target, "postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (RENAME_TARGET,))


def test_second_rollback_changes_nothing(renamed):
    output, changed = renamed.rollback(RENAME_RUN)
    assert changed == 0, output[-6000:]
    assert "already present" in output
    legacy_back(renamed)


def test_a_rolled_back_run_is_never_decommissioned_again(renamed):
    output, _changed = renamed.decommission(RENAME_RUN, expect_rc=2)
    assert "decommission refused by guard databases" in output and f"run {RENAME_RUN} was rolled back" in output
    legacy_back(renamed)


# -- after a drop -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dropped(renamed):
    """A new consolidation of the same (rolled back) legacy databases, whose decommission dropped them."""
    renamed.consolidate(DROP_RUN, DROP_TARGET)
    renamed.decommission(DROP_RUN, decommission_mode="drop")
    assert not set(renamed.databases) & set(renamed.catalog())
    return renamed


def test_a_tampered_archive_refuses_naming_it_and_nothing_changes(dropped):
    archive = dropped.set_dir(DROP_RUN) / "Rollback_Notification.final.dump"
    original = archive.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    archive.write_bytes(bytes(tampered))
    try:
        before = (dropped.catalog(), dropped.record(DROP_RUN))
        output, _changed = dropped.rollback(DROP_RUN, expect_rc=2)
        assert f"archive {archive} does not match the manifest: sha256" in output
        assert (dropped.catalog(), dropped.record(DROP_RUN)) == before
        assert not (dropped.run_dir(DROP_RUN) / "rollback.json").exists()
    finally:
        archive.write_bytes(original)


def test_check_mode_after_a_drop_plans_the_restores_and_changes_nothing(dropped):
    before = (dropped.catalog(), dropped.record(DROP_RUN), dropped.target_databases())
    output, _changed = dropped.rollback(DROP_RUN, "--check", rollback_retire_target=True)
    assert "Check mode, would be restored: Rollback_Product, Rollback_Identity" in output
    assert f"Consolidated database {DROP_TARGET}: would be closed and renamed to {DROP_TARGET}_rolledback_" in output
    assert (dropped.catalog(), dropped.record(DROP_RUN), dropped.target_databases()) == before


def test_rollback_restores_dropped_databases_from_the_archives(dropped):
    output, changed = dropped.rollback(DROP_RUN, rollback_retire_target=True)
    assert changed > 0
    legacy_back(dropped)
    rollback = json.loads((dropped.run_dir(DROP_RUN) / "rollback.json").read_text())
    for entry in rollback["databases"]:
        assert entry["action"] == "restore" and entry["verified"] is True
        assert entry["archive"]["label"] == "final"
    assert not any(name.endswith("_restoring") for name in dropped.catalog())
    # Database-level facts the archive does not hold came back from the decommission record.
    comment = query(dropped.source, "postgres", "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                                "WHERE datname = 'Rollback_Product'")[0][0]
    assert comment == legacy.marker(0.01)
    day = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    targets = dropped.target_databases()
    assert targets[f"{DROP_TARGET}_rolledback_{day}"] is False and DROP_TARGET not in targets
    assert re.search(r"restored\s+verified\s+Rollback_Product\.final\.dump", output)
    assert re.search(r'^\s*"Rollback_Product\s+restored\s+verified\s+Rollback_Product\.final\.dump",?$', output, re.M)


def test_second_rollback_after_a_restore_changes_nothing(dropped):
    output, changed = dropped.rollback(DROP_RUN, rollback_retire_target=True)
    assert changed == 0, output[-6000:]
    legacy_back(dropped)


# -- a hostile database name, module by module ------------------------------------------------------


CONTENT = 'SELECT count(*), md5(string_agg(note, \'\' ORDER BY id)) FROM "x y"'


def hostile_run(run_module, source_cluster, root):
    """A run of one legacy database with a hostile name: its plan, a passing report, both archives."""
    drop_database(source_cluster, HOSTILE)
    query(source_cluster, "postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(HOSTILE)))
    query(source_cluster, HOSTILE, """CREATE TABLE "x y" (id serial PRIMARY KEY, note text);
                                      INSERT INTO "x y" (note) SELECT md5(i::text) FROM generate_series(1, 40) i""")
    run_id = "hostile-run"
    run_dir, backups = root / "runs" / run_id, root / "backups"
    run_dir.mkdir(parents=True)
    modules = [{"name": "Hostile", "source_database": HOSTILE, "schema": "hostile"}]
    (run_dir / "plan.json").write_text(json.dumps({
        "run_id": run_id, "mode": "existing", "target_database": "Hostile_Target", "modules": modules,
        "run_dir": str(run_dir), "backup_root": str(backups), "backup_dir": str(backups / run_id)}))
    earlier = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    (run_dir / "verification.json").write_text(json.dumps({
        "kind": "classifiedads.consolidation.verification", "run_id": run_id, "backup_set": run_id,
        "passed": True, "generated_at": earlier.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tables": [{"source_database": HOSTILE, "source_table": "x y", "state": "match"}]}))
    source = endpoint(source_cluster)
    for label in (None, "final"):
        backup = run_module("backup_set", dict(source=source, databases=[HOSTILE], backup_root=str(backups),
                                               set_id=run_id, label=label))
        assert not backup["failed"], backup["msg"]
    return dict(source=source, databases=[HOSTILE], run_dir=str(run_dir), backup_root=str(backups), set_id=run_id)


def test_a_hostile_database_name_is_retired_and_brought_back(run_module, source_cluster, tmp_path):
    """Rename, undo, then restore from the archive: every statement and program quotes the name."""
    args = hostile_run(run_module, source_cluster, tmp_path)
    before = query(source_cluster, HOSTILE, CONTENT)
    try:
        retired = run_module("database_retire", dict(args, confirm=[HOSTILE]))
        assert not retired["failed"], retired["msg"]
        retired_name = retired["databases"][0]["retired_name"]
        assert retired_name.startswith(HOSTILE + "_retired_")
        closed = query(source_cluster, "postgres", "SELECT datallowconn FROM pg_database WHERE datname = %s",
                       (retired_name,))
        assert closed == [(False,)]

        undone = run_module("database_restore", args)
        assert not undone["failed"], undone["msg"]
        assert (undone["databases"][0]["action"], undone["databases"][0]["verified"]) == ("undo", True)
        assert query(source_cluster, HOSTILE, CONTENT) == before

        # Lost without a trace (no decommission record): restored from the final archive.
        drop_database(source_cluster, HOSTILE)
        (Path(args["run_dir"]) / "decommission.json").unlink()
        (Path(args["run_dir"]) / "rollback.json").unlink()
        restored = run_module("database_restore", args)
        assert not restored["failed"], restored["msg"]
        assert (restored["databases"][0]["action"], restored["databases"][0]["verified"]) == ("restore", True)
        assert query(source_cluster, HOSTILE, CONTENT) == before
        assert not any(HOSTILE in argument for command in restored["commands"] for argument in command)
        again = run_module("database_restore", args)
        assert not again["failed"] and not again["changed"], again["msg"]
    finally:
        leftovers = query(source_cluster, "postgres", "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                          (HOSTILE,))
        for (name,) in leftovers:
            drop_database(source_cluster, name)
