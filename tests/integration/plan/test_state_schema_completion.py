"""A completed run's state schema: recorded in the run directory, then dropped with the lease, on a real server.

The state is made by the modules and the DDL that make it in a run (the lease by ``run_lease``, the copy's
records and the quarantine by ``copy_state`` and ``null_policy``), in a database with a hostile name.
"""

from __future__ import annotations

import json

import pytest
from conftest import drop_database, endpoint, execute, run_sql
from constants import HOSTILE
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_state import STATE_TABLES_DDL
from ansible_collections.classifiedads.consolidation.plugins.module_utils.null_policy import QUARANTINE_DDL

DATABASE = 'State "Target"; --'
RUN_ID = "20261205T010000Z"


@pytest.fixture
def target_db(target_cluster):
    drop_database(target_cluster, DATABASE)
    execute(target_cluster, 'CREATE DATABASE "State ""Target""; --"')
    yield DATABASE
    drop_database(target_cluster, DATABASE)


def make_state(target_cluster, schema="_consolidation", quarantined=2):
    """The copy's records of one table and ``quarantined`` rows a NULL policy kept out, as a run leaves them."""
    conn_sql = [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))]
    conn_sql += [sql.SQL(ddl).format(schema=sql.Identifier(schema)) for ddl in STATE_TABLES_DDL]
    conn_sql.append(sql.SQL(QUARANTINE_DDL).format(schema=sql.Identifier(schema), table=sql.Identifier(
        "quarantined_rows")))
    for statement in conn_sql:
        run_sql(target_cluster, DATABASE, statement)
    run_sql(target_cluster, DATABASE, sql.SQL(
        "INSERT INTO {}.copied_tables (run_id, source_database, source_table, target_schema, target_table, rows, "
        "bytes, seconds) VALUES (%s, 'Legacy_Identity', 'UserClaims', 'identity', 'UserClaims', 40, 8192, 0.5)")
        .format(sql.Identifier(schema)), (RUN_ID,))
    for number in range(quarantined):
        run_sql(target_cluster, DATABASE, sql.SQL(
            "INSERT INTO {}.quarantined_rows (source_database, source_schema, source_table, target_schema, "
            "target_table, key, reason, \"row\", run_id) VALUES ('Legacy_Identity', 'public', 'UserClaims', "
            "'identity', 'UserClaims', %s, 'UserId is NULL', %s, %s)").format(sql.Identifier(schema)),
            (json.dumps({"Id": number}), json.dumps({"Id": number, "UserId": None, "Type": HOSTILE}), RUN_ID))


def lease_args(target_cluster, run_dir=None, **extra):
    args = dict(target=endpoint(target_cluster), target_database=DATABASE, run_id=RUN_ID, **extra)
    if run_dir is not None:
        args["run_dir"] = str(run_dir)
    return args


def schemas(target_cluster):
    return [row[0] for row in run_sql(target_cluster, DATABASE, "SELECT nspname FROM pg_namespace WHERE nspname "
                                                                "NOT LIKE 'pg\\_%%' AND nspname <> "
                                                                "'information_schema' ORDER BY 1")]


def test_completion_records_the_state_and_drops_it_with_the_lease(run_module, target_cluster, target_db, tmp_path):
    assert not run_module("run_lease", lease_args(target_cluster))["failed"]
    make_state(target_cluster)
    planned = run_module("run_lease", lease_args(target_cluster, tmp_path, state="absent", complete=True), check=True)
    assert planned["lease"]["action"] == "would_release"
    assert planned["state"]["dropped"] == ["_consolidation"] and planned["state"]["quarantined_rows"] == 2
    assert "_consolidation" in schemas(target_cluster) and list(tmp_path.iterdir()) == []  # check mode: nothing

    done = run_module("run_lease", lease_args(target_cluster, tmp_path, state="absent", complete=True))
    assert not done["failed"], done.get("msg")
    assert done["changed"] and done["lease"]["action"] == "released"
    assert done["state"]["dropped"] == ["_consolidation"] and done["state"]["kept"] is None
    assert schemas(target_cluster) == ["public"]
    for name in ("state.json", "quarantined_rows.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    record = json.loads((tmp_path / "state.json").read_text())
    assert [(row["source_table"], row["rows"]) for row in record["copied_tables"]] == [("UserClaims", 40)]
    assert record["quarantined_rows"] == {"count": 2, "file": str(tmp_path / "quarantined_rows.json")}
    kept = json.loads((tmp_path / "quarantined_rows.json").read_text())
    assert [row["row"] for row in kept["rows"]] == [{"Id": 0, "UserId": None, "Type": HOSTILE},
                                                    {"Id": 1, "UserId": None, "Type": HOSTILE}]

    # The completed run's rerun takes the lease again and leaves nothing behind, its record untouched.
    assert not run_module("run_lease", lease_args(target_cluster))["failed"]
    assert "_consolidation" in schemas(target_cluster)
    again = run_module("run_lease", lease_args(target_cluster, tmp_path, state="absent", complete=True))
    assert not again["changed"] and again["state"]["dropped"] == ["_consolidation"]
    assert schemas(target_cluster) == ["public"]
    assert json.loads((tmp_path / "state.json").read_text()) == record


def test_foreign_keys_still_deferred_keep_the_whole_state(run_module, target_cluster, target_db, tmp_path):
    assert not run_module("run_lease", lease_args(target_cluster))["failed"]
    make_state(target_cluster, quarantined=0)
    run_sql(target_cluster, DATABASE, "INSERT INTO _consolidation.deferred_ddl (target_schema, target_table, "
                                      "constraint_name, definition, run_id) VALUES ('identity', 'UserClaims', "
                                      "'FK_UserClaims_Users_UserId', 'FOREIGN KEY ...', %s)", (RUN_ID,))
    done = run_module("run_lease", lease_args(target_cluster, tmp_path, state="absent", complete=True))
    assert not done["changed"] and done["state"]["dropped"] == []
    assert 'identity."UserClaims"."FK_UserClaims_Users_UserId"' in done["state"]["kept"]
    assert "_consolidation" in schemas(target_cluster) and not (tmp_path / "state.json").exists()
    assert run_sql(target_cluster, DATABASE, "SELECT count(*) FROM _consolidation.copied_tables") == [(1,)]


def test_a_state_schema_shared_with_the_application_keeps_what_is_not_ours(run_module, target_cluster, target_db,
                                                                           tmp_path):
    assert not run_module("run_lease", lease_args(target_cluster))["failed"]
    make_state(target_cluster, schema="app", quarantined=1)
    run_sql(target_cluster, DATABASE, "CREATE TABLE app.settings (name text)")
    done = run_module("run_lease", lease_args(target_cluster, tmp_path, state="absent", complete=True,
                                              state_schema="app"))
    assert done["changed"] and done["state"]["dropped"] == ["_consolidation"]
    assert schemas(target_cluster) == ["app", "public"]
    assert run_sql(target_cluster, DATABASE, "SELECT relname FROM pg_class WHERE relnamespace = 'app'::regnamespace "
                                             "AND relkind = 'r'") == [("settings",)]
    assert json.loads((tmp_path / "state.json").read_text())["schemas"] == ["_consolidation", "app"]


def test_a_rollback_release_drops_only_a_lease_schema_left_empty(run_module, target_cluster, target_db, tmp_path):
    assert not run_module("run_lease", lease_args(target_cluster))["failed"]
    make_state(target_cluster)
    kept = run_module("run_lease", lease_args(target_cluster, tmp_path, state="absent"))
    assert not kept["changed"] and kept["state"]["dropped"] == [] and list(tmp_path.iterdir()) == []
    assert run_sql(target_cluster, DATABASE, "SELECT count(*) FROM _consolidation.quarantined_rows") == [(2,)]
