"""legacy_fence against a real server: a fenced database refuses writes from every new session and keeps serving
reads, a session from before the fence is ended (or waited for), check mode changes nothing, a rerun changes
nothing, and lifting brings writes back (under the database's own or its retired name).

The preflight refusal of ``consolidation_fence: none`` without a reason is checked through consolidate.yml,
as an operator meets it.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
from conftest import consolidation_vars, drop_database, endpoint, execute
from conftest import run_sql as query
from constants import HOSTILE
from devkit import legacy
from psycopg2 import sql

pytestmark = pytest.mark.integration

DATABASES = ["Fence_Product", HOSTILE]
RUN_ID = "fence-run"


def settings(info, database):
    """The database's own settings as pg_db_role_setting holds them (the catalog the fence writes)."""
    rows = query(info, "postgres", "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d "
                                   "ON d.oid = s.setdatabase WHERE d.datname = %s AND s.setrole = 0", (database,))
    return rows[0][0] if rows else None


def connect(info, database, **kwargs):
    conn = psycopg2.connect(**info.connect_kwargs(database), **kwargs)
    conn.autocommit = True
    return conn


@pytest.fixture
def run(source_cluster, tmp_path):
    """Two legacy databases (one with a hostile name) with a table, and a run directory whose plan maps them."""
    for database in DATABASES:
        drop_database(source_cluster, database)
        execute(source_cluster, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        execute(source_cluster, "CREATE TABLE items (id int PRIMARY KEY, note text); "
                                "INSERT INTO items VALUES (1, 'one'), (2, 'two')", database)
    run_dir = tmp_path / RUN_ID
    run_dir.mkdir(mode=0o700)
    (run_dir / "plan.json").write_text(json.dumps({
        "run_id": RUN_ID, "mode": "existing", "target_database": "Fence_Target", "run_dir": str(run_dir),
        "modules": [{"name": f"M{index}", "source_database": name, "schema": f"m{index}"}
                    for index, name in enumerate(DATABASES)]}))
    yield dict(source=endpoint(source_cluster), databases=list(DATABASES), run_dir=str(run_dir))
    for database in DATABASES:
        drop_database(source_cluster, database)


def assert_refuses_writes(info, database):
    conn = connect(info, database)
    try:
        with conn.cursor() as cur:
            for statement, verb in (("INSERT INTO items VALUES (3, 'three')", "INSERT"),
                                    ("UPDATE items SET note = 'changed'", "UPDATE"),
                                    ("DELETE FROM items", "DELETE")):
                with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction,
                                   match=f"cannot execute {verb} in a read-only transaction"):
                    cur.execute(statement)
            cur.execute("SELECT id, note FROM items ORDER BY id")
            assert cur.fetchall() == [(1, "one"), (2, "two")]
    finally:
        conn.close()


def test_check_mode_names_what_would_be_fenced_and_ended_and_changes_nothing(run, run_module, source_cluster):
    before = connect(source_cluster, DATABASES[0], application_name="pytest-before-fence")
    try:
        result = run_module("legacy_fence", run, check=True)
        assert not result["failed"], result["msg"]
        assert result["changed"]
        assert [entry["action"] for entry in result["databases"]] == ["fence", "fence"]
        pids = [session["pid"] for session in result["databases"][0]["sessions_to_end"]]
        assert pids == [before.get_backend_pid()]
        assert result["msg"].startswith("would be fenced: Fence_Product, " + HOSTILE)
        assert "1 session(s) connected before the fence would be ended" in result["msg"]
        assert 'ALTER DATABASE "a""; DROP TABLE x; --" SET "default_transaction_read_only" = on' in result["queries"]
        assert any("pg_terminate_backend" in statement for statement in result["queries"])
        # Nothing changed: the catalog, the session, the run directory.
        assert [settings(source_cluster, database) for database in DATABASES] == [None, None]
        with before.cursor() as cur:
            cur.execute("INSERT INTO items VALUES (10, 'still writable')")
        assert sorted(path.name for path in Path(run["run_dir"]).iterdir()) == ["plan.json"]
    finally:
        before.close()


def test_fence_refuses_writes_keeps_reads_ends_older_sessions_and_reruns_unchanged(run, run_module, source_cluster):
    before = connect(source_cluster, DATABASES[1], application_name="pytest-writer")
    try:
        result = run_module("legacy_fence", run)
        assert not result["failed"], result["msg"]
        assert result["changed"]
        ended = result["databases"][1]["sessions_ended"]
        assert [(s["pid"], s["application"]) for s in ended] == [(before.get_backend_pid(), "pytest-writer")]
        with pytest.raises(psycopg2.OperationalError):
            with before.cursor() as cur:
                cur.execute("INSERT INTO items VALUES (3, 'three')")
    finally:
        before.close()
    for database in DATABASES:
        assert settings(source_cluster, database) == ["default_transaction_read_only=on"]
        assert_refuses_writes(source_cluster, database)

    record_path = f"{run['run_dir']}/fence.json"
    assert stat.S_IMODE(os.stat(record_path).st_mode) == 0o600
    record = json.loads(open(record_path).read())
    assert record["kind"] == "classifiedads.consolidation.fence" and record["run_id"] == RUN_ID
    entries = {entry["database"]: entry for entry in record["databases"]}
    assert set(entries) == set(DATABASES)
    assert all(entry["state"] == "fenced" and entry["fenced_at"] for entry in entries.values())
    assert [s["pid"] for s in entries[HOSTILE]["sessions_ended"]] == [ended[0]["pid"]]

    # A session that connected after the fence is read-only already: a rerun leaves it and changes nothing.
    after = connect(source_cluster, DATABASES[0])
    try:
        again = run_module("legacy_fence", run)
        assert not again["failed"], again["msg"]
        assert not again["changed"], again["msg"]
        assert [entry["action"] for entry in again["databases"]] == ["already_fenced", "already_fenced"]
        assert [entry["fenced_at"] for entry in again["databases"]] == [
            entries[database]["fenced_at"] for database in DATABASES]
        with after.cursor() as cur:
            cur.execute("SELECT count(*) FROM items")
            assert cur.fetchone() == (2,)
    finally:
        after.close()
    assert json.loads(open(record_path).read()) == record


def test_a_writer_that_bypasses_the_fence_on_purpose_still_can(run, run_module, source_cluster):
    """The fence stops accidents, not a deliberate writer; proof by content (the verification) catches that one."""
    assert not run_module("legacy_fence", run)["failed"]
    conn = connect(source_cluster, DATABASES[0])
    try:
        with conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = off")
            cur.execute("INSERT INTO items VALUES (3, 'deliberate')")
    finally:
        conn.close()
    assert query(source_cluster, DATABASES[0], "SELECT count(*) FROM items") == [(3,)]


def test_with_a_wait_the_closing_application_is_waited_for_not_terminated(run, run_module, source_cluster):
    closing = connect(source_cluster, DATABASES[0], application_name="pytest-closing-app")
    pid = closing.get_backend_pid()
    timer = threading.Timer(2.0, closing.close)
    timer.start()
    try:
        started = time.monotonic()
        result = run_module("legacy_fence", dict(run, wait_timeout=30))
        assert not result["failed"], result["msg"]
        assert 1.5 < time.monotonic() - started < 25
    finally:
        timer.join()
    entry = result["databases"][0]
    assert [s["pid"] for s in entry["sessions_closed"]] == [pid] and entry["sessions_ended"] == []
    assert not any("pg_terminate_backend" in statement for statement in result["queries"])


def test_with_a_wait_a_session_that_stays_is_ended_when_the_wait_is_over(run, run_module, source_cluster):
    stays = connect(source_cluster, DATABASES[0], application_name="pytest-cron-job")
    try:
        result = run_module("legacy_fence", dict(run, wait_timeout=1))
        assert not result["failed"], result["msg"]
        assert [s["application"] for s in result["databases"][0]["sessions_ended"]] == ["pytest-cron-job"]
        with pytest.raises(psycopg2.OperationalError):
            with stays.cursor() as cur:
                cur.execute("SELECT 1")
    finally:
        stays.close()


def test_lift_brings_writes_back_and_a_second_lift_changes_nothing(run, run_module, source_cluster):
    assert not run_module("legacy_fence", run)["failed"]
    during = connect(source_cluster, DATABASES[0], application_name="pytest-read-only-site")
    try:
        check = run_module("legacy_fence", dict(run, state="lifted"), check=True)
        assert check["changed"] and [entry["action"] for entry in check["databases"]] == ["lift", "lift"]
        assert settings(source_cluster, DATABASES[0]) == ["default_transaction_read_only=on"]

        lifted = run_module("legacy_fence", dict(run, state="lifted"))
        assert not lifted["failed"], lifted["msg"]
        assert lifted["changed"]
        assert 'ALTER DATABASE "a""; DROP TABLE x; --" RESET "default_transaction_read_only"' in lifted["queries"]
        # The session opened during the fence keeps its read-only setting until it reconnects: said, not ended.
        still = lifted["databases"][0]["sessions_still_read_only"]
        assert [s["application"] for s in still] == ["pytest-read-only-site"]
        assert "1 session(s) connected to Fence_Product while it was fenced stay read-only until they reconnect" \
            in json.dumps(lifted["warnings"])
        with during.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        during.close()
    for database in DATABASES:
        assert settings(source_cluster, database) is None
        query(source_cluster, database, "INSERT INTO items VALUES (3, 'after the lift')")
    record = json.loads(open(f"{run['run_dir']}/fence.json").read())
    assert {entry["state"] for entry in record["databases"]} == {"lifted"}

    again = run_module("legacy_fence", dict(run, state="lifted"))
    assert not again["failed"] and not again["changed"], again["msg"]
    assert [entry["action"] for entry in again["databases"]] == ["not_fenced", "not_fenced"]


def test_lift_finds_a_retired_database_by_the_name_the_decommission_recorded(run, run_module, source_cluster):
    assert not run_module("legacy_fence", run)["failed"]
    retired = "Fence_Product_retired_20261124"
    drop_database(source_cluster, retired)
    execute(source_cluster, f'ALTER DATABASE "Fence_Product" RENAME TO "{retired}"')
    try:
        with open(f"{run['run_dir']}/decommission.json", "w") as handle:
            json.dump({"format": 1, "kind": "classifiedads.consolidation.decommission", "run_id": RUN_ID,
                       "backup_set": RUN_ID, "databases": [
                           {"database": "Fence_Product", "state": "retired", "mode": "rename",
                            "retired_name": retired}]}, handle)
        lifted = run_module("legacy_fence", dict(run, state="lifted"))
        assert not lifted["failed"], lifted["msg"]
        entry = lifted["databases"][0]
        assert (entry["action"], entry["name"]) == ("lift", retired)
        assert settings(source_cluster, retired) is None
    finally:
        drop_database(source_cluster, retired)


def test_a_database_outside_the_runs_mapping_is_never_fenced(run, run_module, source_cluster):
    result = run_module("legacy_fence", dict(run, databases=["postgres"]))
    assert result["failed"]
    assert result["msg"].startswith("write fence refused: ")
    assert "not a legacy database of run fence-run" in result["msg"]
    assert settings(source_cluster, "postgres") is None


def test_a_missing_database_is_refused_before_anything_changes(run, run_module, source_cluster):
    drop_database(source_cluster, HOSTILE)
    result = run_module("legacy_fence", run)
    assert result["failed"]
    assert f"not on the source server, so it cannot be fenced: {HOSTILE}" in result["msg"]
    assert settings(source_cluster, DATABASES[0]) is None


def test_consolidate_refuses_fence_none_without_a_reason_at_preflight(run_playbook, source_cluster, target_cluster,
                                                                      tmp_path):
    variables = dict(consolidation_vars(source_cluster, target_cluster, tmp_path, "Fence_Consolidated", "Fence"),
                     consolidation_fence="none")
    done = run_playbook("classifiedads.consolidation.consolidate", variables=variables, expect_rc=2)
    assert ("the consolidation plan is invalid: consolidation_fence none leaves the legacy databases writable "
            "during the window: give consolidation_fence_reason") in done.output
    assert not (tmp_path / "runs").exists()


def test_the_verification_report_names_a_waived_fence_and_its_reason(
        run, run_module, source_cluster, target_cluster, tmp_path):
    """consolidation_fence none: the operator's reason reaches verification.json and verification.md."""
    drop_database(target_cluster, "Fence_Target")
    execute(target_cluster, 'CREATE DATABASE "Fence_Target"')
    try:
        execute(target_cluster, "CREATE SCHEMA m0; CREATE TABLE m0.items (id int PRIMARY KEY, note text); "
                                "INSERT INTO m0.items VALUES (1, 'one'), (2, 'two')", "Fence_Target")
        reason = "replica promoted for the window | see CHG-42"
        result = run_module("row_count_diff", dict(
            source=run["source"], target=endpoint(target_cluster), target_database="Fence_Target",
            modules=[{"name": "M0", "source_database": DATABASES[0], "schema": "m0"}], checksum=True,
            report_dir=str(tmp_path / "report"), run_id=RUN_ID, backup_set=RUN_ID,
            fence={"mode": "none", "reason": reason}))
        assert not result["failed"], result["msg"]
        report = json.loads((tmp_path / "report" / "verification.json").read_text())
        assert report["passed"] is True and report["fence"] == {"mode": "none", "reason": reason}
        markdown = (tmp_path / "report" / "verification.md").read_text()
        assert ("- write fence: **none**, the legacy databases stayed writable; reason given: "
                "`replica promoted for the window | see CHG-42`") in markdown
    finally:
        drop_database(target_cluster, "Fence_Target")


def test_consolidate_with_fence_none_leaves_the_legacy_databases_writable_and_reports_why(
        run_playbook, source_cluster, target_cluster, tmp_path):
    reason = "the source is a replica promoted for the window"
    legacy.create(source_cluster, 0.01, prefix="Waived", out=lambda line: None)
    try:
        variables = dict(consolidation_vars(source_cluster, target_cluster, tmp_path, "Waived_Consolidated",
                                            "Waived"), consolidation_fence="none", consolidation_fence_reason=reason)
        done = run_playbook("classifiedads.consolidation.consolidate", variables=variables)
        # Ansible wraps warnings to the terminal's width.
        assert ("[WARNING]: consolidation_fence is none: the legacy databases accept writes during the window "
                f"(reason given: {reason})") in " ".join(done.output.split())
        run_dir = next((tmp_path / "runs").glob("2*"))
        assert json.loads((run_dir / "plan.json").read_text())["fence"] == {"mode": "none", "reason": reason}
        report = json.loads((run_dir / "verification.json").read_text())
        assert report["passed"] is True and report["fence"] == {"mode": "none", "reason": reason}
        assert f"reason given: `{reason}`" in (run_dir / "verification.md").read_text()
        assert not (run_dir / "fence.json").exists()
        assert settings(source_cluster, "Waived_Product") is None
        query(source_cluster, "Waived_Product", 'DELETE FROM "Products" WHERE false')
    finally:
        legacy.drop(source_cluster, prefix="Waived")
        drop_database(target_cluster, "Waived_Consolidated")


def test_a_database_read_only_before_the_run_stays_read_only_after_the_lift(run, run_module, source_cluster):
    archive = DATABASES[0]
    execute(source_cluster, sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
        sql.Identifier(archive)))
    fenced = run_module("legacy_fence", run)
    assert not fenced["failed"], fenced["msg"]
    lifted = run_module("legacy_fence", dict(run, state="lifted"))
    assert not lifted["failed"], lifted["msg"]
    assert [entry["action"] for entry in lifted["databases"]] == ["not_ours", "lift"]
    warned = json.dumps(lifted["warnings"])
    assert "Fence_Product" in warned and "was read-only before this run fenced it" in warned
    assert settings(source_cluster, archive) == ["default_transaction_read_only=on"]
    assert settings(source_cluster, DATABASES[1]) is None
