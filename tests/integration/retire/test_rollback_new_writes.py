"""rollback.yml refuses to leave writes behind in the consolidated database, against real servers.

One run is consolidated (configuration cut over, application controlled by commands that log what they do)
and retired by renaming; then rows are inserted, updated and deleted in the consolidated database and a table
is created there. Rollback, in check mode and for real, refuses before anything is stopped or changed,
naming each table with its delta; rows marked as the run's own smoke-probe rows do not count. With
rollback_discard_new_writes it goes on and records the list (with what the application wrote while it was
being stopped), and a second rollback accepts that record. A second run, untouched after its verification,
rolls back as before; a third, written to only while the application stops, refuses once it is stopped.
"""

from __future__ import annotations

import json
import shutil
import stat
import sys
from pathlib import Path

import pytest
from conftest import REPO, drop_database, endpoint
from conftest import run_sql as query
from constants import HOSTILE
from devkit import legacy
from psycopg2 import sql
from test_decommission import Workspace

pytestmark = pytest.mark.integration

PREFIX = "Writes"
RUN, TARGET = "writes-run-1", "Writes_Consolidated_1"
CLEAN_RUN, CLEAN_TARGET = "writes-run-2", "Writes_Consolidated_2"
STOP_RUN, STOP_TARGET = "writes-run-3", "Writes_Consolidated_3"
SMOKE_MARKER = f"smoke-{RUN}-0123abcd"  # as the smoke role marks the records of its write probes

# A write the application makes while it is being stopped (after rollback's first look, before its second).
WHILE_STOPPING = ('INSERT INTO product."AuditLogEntries" ("UserId", "Action", "CreatedDateTime") '
                  "VALUES (gen_random_uuid(), 'WRITTEN_WHILE_STOPPING', now())")

# The application, as app_control_mode command drives it: a state file and a log of every stop and start.
# A stop first runs the statement of on-stop.json, once, if there is one.
APP = """import json, pathlib, sys
import psycopg2
home = pathlib.Path(sys.argv[2])
if sys.argv[1] == "status":
    sys.exit(0 if (home / "state").read_text() == "running" else 3)
if sys.argv[1] == "stop" and (home / "on-stop.json").exists():
    last = json.loads((home / "on-stop.json").read_text())
    with psycopg2.connect(**last["connect"]) as conn, conn.cursor() as cur:
        cur.execute(last["statement"])
    (home / "on-stop.json").unlink()
(home / "state").write_text({"start": "running", "stop": "stopped"}[sys.argv[1]])
with open(home / "log", "a") as log:
    log.write(sys.argv[1] + "\\n")
"""


class App:
    def __init__(self, root: Path):
        self.home = root / "app-state"
        self.home.mkdir()
        (self.home / "state").write_text("running")
        (root / "app.py").write_text(APP)
        self.config_dir = root / "app"
        shutil.copytree(Path(REPO) / "tests" / "fixtures" / "classifiedads_app", self.config_dir)
        command = [sys.executable, str(root / "app.py")]
        self.vars = {
            "app_control_mode": "command",
            "app_control_stop_command": [*command, "stop", str(self.home)],
            "app_control_start_command": [*command, "start", str(self.home)],
            "app_control_status_command": [*command, "status", str(self.home)],
            "cutover_app_dir": str(self.config_dir),
            "consolidation_smoke": False,
            "rollback_smoke": False,
        }

    def write_while_stopping(self, info, database: str, statement: str) -> None:
        (self.home / "on-stop.json").write_text(json.dumps({"connect": info.connect_kwargs(database),
                                                            "statement": statement}))

    def log(self) -> list[str]:
        path = self.home / "log"
        return path.read_text().split() if path.exists() else []

    def state(self) -> str:
        return (self.home / "state").read_text()

    def config(self) -> dict[str, bytes]:
        return {str(path): path.read_bytes() for path in sorted(self.config_dir.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def space(tmp_path_factory, source_cluster, target_cluster, run_playbook):
    root = tmp_path_factory.mktemp("rollback-writes")
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)
    space = Workspace(root, source_cluster, target_cluster, PREFIX, run_playbook)
    space.app = App(root)
    space.original_config = space.app.config()
    space.vars.update(space.app.vars)
    space.before = legacy.digests(source_cluster, prefix=PREFIX)
    space.consolidate(RUN, TARGET)
    space.decommission(RUN)
    assert space.app.log() == ["stop", "start"] and space.app.state() == "running"
    assert space.app.config() != space.original_config  # cut over
    yield space
    for name in space.catalog():
        drop_database(source_cluster, name)
    for (name,) in query(target_cluster, "postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'Writes%'"):
        drop_database(target_cluster, name)


def consolidated(space, statement, params=None):
    return query(space.target, TARGET, statement, params)


def rollback(space, run_id, *args, **extra):
    """rollback.yml; its output with the JSON escapes of quoted names undone."""
    output, changed = space.rollback(run_id, *args, **extra)
    return output.replace('\\"', '"'), changed


def snapshot(space):
    """What a refused rollback must leave as it is: databases, run records, configuration, application."""
    run_dir = space.run_dir(RUN)
    return (space.catalog(), space.target_databases(), sorted(path.name for path in run_dir.iterdir()),
            space.record(RUN), space.app.config(), space.app.log(), space.app.state())


@pytest.fixture(scope="module")
def smoke_rows(space):
    """What the smoke role's default write probe leaves: a product and its audit entry, both marked."""
    consolidated(space, 'INSERT INTO product."Products" ("Code", "Name", "CreatedDateTime") '
                        "VALUES (%s, 'Smoke test', now())", (SMOKE_MARKER,))
    consolidated(space, 'INSERT INTO auditlog."AuditLogEntries" ("UserId", "Action", "Log", "CreatedDateTime") '
                        "VALUES (gen_random_uuid(), 'CREATED_PRODUCT', %s, now())",
                 (json.dumps({"Code": SMOKE_MARKER}),))


@pytest.fixture(scope="module")
def written(space, smoke_rows):
    """An insert, an update and a delete in three tables, and a table created after the verification."""
    consolidated(space, 'INSERT INTO product."Products" ("Code", "Name", "CreatedDateTime") '
                        "VALUES ('AFTER-CUTOVER', 'written after the cutover', now())")
    consolidated(space, 'UPDATE configuration."ConfigurationEntries" SET "Value" = "Value" || \'-changed\' '
                        'WHERE "Id" = (SELECT min("Id"::text)::uuid FROM configuration."ConfigurationEntries")')
    assert consolidated(space, 'SELECT count(*) FROM notification."SmsMessages"')[0][0] > 0
    consolidated(space, 'DELETE FROM notification."SmsMessages" '
                        'WHERE ctid = (SELECT min(ctid) FROM notification."SmsMessages")')
    consolidated(space, 'CREATE TABLE storage."AddedLater" (id int); INSERT INTO storage."AddedLater" VALUES (1)')


WRITES = {
    ("product", "Products"): "+1 row(s) (besides 1 smoke probe row(s))",
    ("configuration", "ConfigurationEntries"): "content changed",
    ("notification", "SmsMessages"): "-1 row(s)",
    ("storage", "AddedLater"): "created after verification, 1 row(s)",
}


def assert_lists_the_writes(output):
    for (schema, table), change in WRITES.items():
        assert f'{schema}."{table}": {change}' in output, output[-6000:]
    assert "4 table(s) of Writes_Consolidated_1 changed after its verification at" in output
    assert "AuditLogEntries" not in output.split("changed after its verification", 1)[1].split("\n", 1)[0]


# -- one run, written to after its verification -------------------------------------------------------------


def test_check_mode_counts_the_plays_own_smoke_rows_apart_and_goes_on(space, smoke_rows):
    before = snapshot(space)
    output, _changed = rollback(space, RUN, "--check")
    assert "Writes_Consolidated_1 holds what its verification at" in output
    assert "besides the rows of the play's smoke probes" in output
    assert 'auditlog."AuditLogEntries": only 1 smoke probe row(s) of this run, not a new write' in output
    assert "Check mode, would be renamed back" in output
    assert snapshot(space) == before


def test_check_mode_lists_each_written_table_and_changes_nothing(space, written):
    before = snapshot(space)
    output, _changed = rollback(space, RUN, "--check", expect_rc=2)
    assert "Rollback refused, nothing was stopped or changed" in output
    assert_lists_the_writes(output)
    assert snapshot(space) == before


def test_rollback_refuses_before_anything_is_stopped_or_changed(space, written):
    before = snapshot(space)
    output, _changed = rollback(space, RUN, expect_rc=2)
    assert_lists_the_writes(output)
    assert "set rollback_discard_new_writes: true" in output
    assert snapshot(space) == before
    # The legacy databases are still retired, the application still runs on the consolidated configuration.
    assert not set(space.databases) & set(space.catalog())
    assert space.app.log() == ["stop", "start"] and space.app.state() == "running"
    assert not (space.run_dir(RUN) / "discarded_writes.json").exists()
    assert not (space.run_dir(RUN) / "rollback.json").exists()


def test_discarding_the_new_writes_rolls_back_and_records_them(space, written):
    space.app.write_while_stopping(space.target, TARGET, WHILE_STOPPING)
    output, changed = rollback(space, RUN, rollback_discard_new_writes=True)
    assert changed > 0
    assert_lists_the_writes(output)
    assert "discarded as asked, recorded in" in output
    assert 'product."AuditLogEntries": +1 row(s)' in output  # seen once the application was stopped
    assert legacy.digests(space.source, prefix=PREFIX) == space.before
    assert space.app.config() == space.original_config
    assert space.app.log() == ["stop", "start", "stop", "start"]
    path = space.run_dir(RUN) / "discarded_writes.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(path.read_text())
    assert record["kind"] == "classifiedads.consolidation.discarded_writes" and record["run_id"] == RUN
    assert {(write["schema"], write["table"]): (write["change"], write["delta"]) for write in record["writes"]} == {
        ("product", "Products"): ("rows", 1), ("configuration", "ConfigurationEntries"): ("content", 0),
        ("notification", "SmsMessages"): ("rows", -1), ("storage", "AddedLater"): ("added", 1),
        ("product", "AuditLogEntries"): ("rows", 1)}
    assert [(entry["schema"], entry["table"], entry["own_rows"]) for entry in record["accounted"]] == [
        ("auditlog", "AuditLogEntries", 1)]


def test_a_second_rollback_accepts_what_the_first_discarded_and_changes_nothing(space, written):
    output, changed = rollback(space, RUN)
    assert changed == 0, output[-6000:]
    assert "already discarded by the rollback at" in output
    assert space.app.log() == ["stop", "start", "stop", "start"]


def test_a_write_after_the_discard_refuses_again(space, written):
    consolidated(space, 'DELETE FROM storage."AddedLater"')
    try:
        output, _changed = rollback(space, RUN, expect_rc=2)
        assert 'storage."AddedLater": created after verification, 0 row(s)' in output
    finally:
        consolidated(space, 'INSERT INTO storage."AddedLater" VALUES (1)')


# -- a run nobody wrote to, and one that never verified ---------------------------------------------------


def test_a_run_without_writes_rolls_back_as_before(space, written):
    space.consolidate(CLEAN_RUN, CLEAN_TARGET)
    output, changed = rollback(space, CLEAN_RUN, rollback_retire_target=True)
    assert changed > 0
    assert "Writes_Consolidated_2 holds what its verification at" in output
    assert not (space.run_dir(CLEAN_RUN) / "discarded_writes.json").exists()
    assert space.app.config() == space.original_config
    assert legacy.digests(space.source, prefix=PREFIX) == space.before
    # Retired by that rollback: a second one says so and changes nothing.
    output, changed = rollback(space, CLEAN_RUN)
    assert changed == 0, output[-6000:]
    assert "not compared: the consolidated database Writes_Consolidated_2 was retired by the rollback at" in output


def test_a_write_made_while_the_application_stops_refuses_after_the_stop(space, written):
    space.consolidate(STOP_RUN, STOP_TARGET)
    cut_over, log = space.app.config(), space.app.log()
    space.app.write_while_stopping(space.target, STOP_TARGET, WHILE_STOPPING)
    output, _changed = rollback(space, STOP_RUN, expect_rc=2)
    assert "Rollback refused, the application was stopped, nothing else changed: 1 table(s) of " \
           "Writes_Consolidated_3 changed after its verification at" in output
    assert 'product."AuditLogEntries": +1 row(s)' in output
    assert space.app.log() == [*log, "stop"] and space.app.config() == cut_over
    assert legacy.digests(space.source, prefix=PREFIX) == space.before
    assert not (space.run_dir(STOP_RUN) / "rollback.json").exists()

    output, changed = rollback(space, STOP_RUN, rollback_discard_new_writes=True)
    assert changed > 0 and "discarded as asked, recorded in" in output
    assert space.app.config() == space.original_config and space.app.state() == "running"


def test_a_run_that_never_verified_is_not_compared_and_says_why(space, written, run_module, tmp_path):
    run_dir = tmp_path / RUN
    shutil.copytree(space.run_dir(RUN), run_dir)
    (run_dir / "verification.json").unlink()
    result = run_module("target_writes", dict(target=endpoint(space.target), run_dir=str(run_dir),
                                              target_database=TARGET))
    assert not result["failed"] and not result["refused"] and not result["changed"], result
    assert result["skipped"].startswith(f"run {RUN} has no verification report ({run_dir}/verification.json): it "
                                        "stopped before verifying, so it never reached the cutover")
    assert result["queries"] == []


# -- hostile names, module by module --------------------------------------------------------------------------

HOSTILE_SOURCE, HOSTILE_TARGET, ODD_TABLE = HOSTILE + " writes", "Writes_Hostile", 'x%s "y"'


def test_hostile_names_are_measured_and_named_as_postgresql_would(run_module, source_cluster, target_cluster,
                                                                  tmp_path):
    """A schema named like an injection and a table holding "%s": a real verification, a write, the finding."""
    run_id, run_dir = "writes-hostile", tmp_path / "writes-hostile"
    run_dir.mkdir()
    table = sql.Identifier(ODD_TABLE)
    create = sql.SQL('CREATE TABLE {} (id int PRIMARY KEY, "a%sb" text); '
                     "INSERT INTO {} SELECT i, md5(i::text) FROM generate_series(1, 20) i")
    try:
        for info, database in ((source_cluster, HOSTILE_SOURCE), (target_cluster, HOSTILE_TARGET)):
            drop_database(info, database)
            query(info, "postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        query(source_cluster, HOSTILE_SOURCE, create.format(table, table))
        query(target_cluster, HOSTILE_TARGET, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(HOSTILE)))
        target_table = sql.Identifier(HOSTILE, ODD_TABLE)
        query(target_cluster, HOSTILE_TARGET, create.format(target_table, target_table))
        modules = [{"name": "Hostile", "source_database": HOSTILE_SOURCE, "schema": HOSTILE}]
        (run_dir / "plan.json").write_text(json.dumps({"run_id": run_id, "modules": modules}))
        verified = run_module("row_count_diff", dict(
            source=endpoint(source_cluster), target=endpoint(target_cluster), modules=modules,
            target_database=HOSTILE_TARGET, checksum=True, report_dir=str(run_dir), run_id=run_id))
        assert not verified["failed"] and verified["summary"]["passed"], verified["msg"]
        args = dict(target=endpoint(target_cluster), run_dir=str(run_dir), target_database=HOSTILE_TARGET)

        untouched = run_module("target_writes", args)
        assert not untouched["failed"] and not untouched["refused"] and untouched["writes"] == [], untouched
        query(target_cluster, HOSTILE_TARGET, sql.SQL('UPDATE {} SET "a%sb" = \'changed\' WHERE id = 7').format(
            target_table))
        written = run_module("target_writes", args, check=True)
        assert not written["failed"] and written["refused"], written
        assert [(write["schema"], write["table"], write["change"]) for write in written["writes"]] == [
            (HOSTILE, ODD_TABLE, "content")]
        assert '"a""; DROP TABLE x; --"."x%s ""y""": content changed' in written["msg"]
    finally:
        drop_database(source_cluster, HOSTILE_SOURCE)
        drop_database(target_cluster, HOSTILE_TARGET)
