"""preflight and target_schemas against real servers: contract checks, rights, idempotence, check mode."""

from __future__ import annotations

import os

import pytest
from conftest import drop_database, endpoint, execute
from constants import HOSTILE


@pytest.fixture
def legacy_pair(source_cluster):
    """Two small mixed-case legacy databases, one with a hostile table name."""
    names = ["Preflight_Product", "Preflight_Identity"]
    for name in names:
        drop_database(source_cluster, name)
        execute(source_cluster, f'CREATE DATABASE "{name}"')
    execute(source_cluster, 'CREATE TABLE "Products" ("Id" uuid PRIMARY KEY)', names[0])
    execute(source_cluster, 'CREATE TABLE "a""; DROP TABLE x; --" (id int)', names[1])
    yield [{"name": "Product", "source_database": names[0], "schema": "product"},
           {"name": "Identity", "source_database": names[1], "schema": "identity"}]
    for name in names:
        drop_database(source_cluster, name)


def preflight_args(source_cluster, target_cluster, modules, tmp_path, **extra):
    args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), modules=modules,
                target_database="Preflight_Target", run_root=str(tmp_path / "runs"),
                backup_root=str(tmp_path / "backups"))
    args.update(extra)
    return args


def test_preflight_opens_a_private_run_and_resumes_it(run_module, source_cluster, target_cluster, legacy_pair,
                                                      tmp_path):
    args = preflight_args(source_cluster, target_cluster, legacy_pair, tmp_path)
    check = run_module("preflight", args, check=True)
    assert not check["failed"], check
    assert check["changed"] and not (tmp_path / "runs").exists()

    first = run_module("preflight", args)
    plan = first["plan"]
    assert first["changed"] and plan["mode"] == "existing" and not plan["resumed"]
    assert plan["expected_tables"] == {"identity": [HOSTILE], "product": ["Products"]}
    assert oct(os.stat(plan["run_dir"]).st_mode & 0o777) == "0o700"
    assert oct(os.stat(os.path.join(plan["run_dir"], "plan.json")).st_mode & 0o777) == "0o600"
    assert "password" not in open(os.path.join(plan["run_dir"], "plan.json")).read()

    again = run_module("preflight", args)
    assert not again["changed"] and again["plan"]["run_id"] == plan["run_id"] and again["plan"]["resumed"]


def test_preflight_reports_every_problem_before_anything_changes(run_module, source_cluster, target_cluster,
                                                                 legacy_pair, tmp_path):
    modules = legacy_pair + [{"name": "Gone", "source_database": "Preflight_Missing", "schema": "gone"}]
    execute(source_cluster, 'REVOKE ALL ON "Products" FROM PUBLIC', legacy_pair[0]["source_database"])
    execute(source_cluster, "DROP ROLE IF EXISTS preflight_reader")
    execute(source_cluster, "CREATE ROLE preflight_reader LOGIN PASSWORD 'reader-pw'")
    try:
        source = dict(endpoint(source_cluster), user="preflight_reader", password="reader-pw", passfile=None)
        result = run_module("preflight", dict(preflight_args(source_cluster, target_cluster, modules, tmp_path),
                                              source=source))
        assert result["failed"]
        assert "not found on the source server: Preflight_Missing" in result["msg"]
        assert "cannot SELECT from Preflight_Product tables: Products" in result["msg"]
        assert "reader-pw" not in str(result)
        assert not (tmp_path / "runs").exists()
    finally:
        execute(source_cluster, "DROP ROLE preflight_reader")


def test_a_legacy_database_the_role_may_not_connect_to_is_named_with_its_side_and_fix(
        run_module, source_cluster, target_cluster, legacy_pair, tmp_path):
    locked = legacy_pair[0]["source_database"]
    execute(source_cluster, "CREATE ROLE preflight_outsider LOGIN PASSWORD 'outsider-pw'")
    execute(source_cluster, f'REVOKE CONNECT ON DATABASE "{locked}" FROM PUBLIC')
    try:
        source = dict(endpoint(source_cluster), user="preflight_outsider", password="outsider-pw", passfile=None)
        result = run_module("preflight", dict(preflight_args(source_cluster, target_cluster, legacy_pair, tmp_path),
                                              source=source))
        assert result["failed"]
        assert (f"the source role preflight_outsider may not connect to the legacy database {locked}: "
                f'GRANT CONNECT ON DATABASE "{locked}" TO preflight_outsider') in result["msg"]
        assert "outsider-pw" not in str(result) and not (tmp_path / "runs").exists()
    finally:
        execute(source_cluster, f'GRANT CONNECT ON DATABASE "{locked}" TO PUBLIC')
        execute(source_cluster, "DROP ROLE preflight_outsider")


def test_preflight_refuses_same_database_and_unreachable_server(run_module, source_cluster, legacy_pair, tmp_path):
    same = preflight_args(source_cluster, source_cluster, legacy_pair, tmp_path,
                          target_database=legacy_pair[0]["source_database"])
    assert "source and target must differ" in run_module("preflight", same)["msg"]
    unreachable = dict(endpoint(source_cluster), port=1, connect_timeout=2)
    result = run_module("preflight", dict(preflight_args(source_cluster, source_cluster, legacy_pair, tmp_path),
                                          source=unreachable))
    assert result["failed"] and "cannot connect to the source server postgres@127.0.0.1:1/postgres" in result["msg"]
    result = run_module("preflight", dict(preflight_args(source_cluster, source_cluster, legacy_pair, tmp_path),
                                          target=unreachable))
    assert result["failed"] and "cannot connect to the target server postgres@127.0.0.1:1/postgres" in result["msg"]


def test_preflight_detects_a_fresh_deployment(run_module, source_cluster, target_cluster, tmp_path):
    modules = [{"name": "Product", "source_database": "Nowhere_Product", "schema": "product"}]
    result = run_module("preflight", preflight_args(source_cluster, target_cluster, modules, tmp_path))
    assert not result["failed"] and result["plan"]["mode"] == "fresh"
    forced = run_module("preflight", preflight_args(source_cluster, target_cluster, modules, tmp_path,
                                                    mode="existing"))
    assert "not found on the source server: Nowhere_Product" in forced["msg"]


def test_target_schemas_check_mode_then_apply_then_idempotent(run_module, target_cluster):
    database = "Schemas_Target"
    drop_database(target_cluster, database)
    args = dict(target=endpoint(target_cluster), target_database=database, schemas=["product", HOSTILE])
    try:
        check = run_module("target_schemas", args, check=True)
        assert check["changed"] and check["database_created"]
        assert check["queries"][0] == (f'CREATE DATABASE "{database}" OWNER "postgres" ENCODING \'UTF8\' '
                                       f"TEMPLATE template0")
        assert execute(target_cluster, f"SELECT 1 FROM pg_database WHERE datname = '{database}'") == []

        applied = run_module("target_schemas", args)
        assert applied["changed"] and [s["action"] for s in applied["schemas"]] == ["created", "created"]
        schemas = execute(target_cluster, "SELECT nspname FROM pg_namespace WHERE nspname IN "
                                          "('product', 'a\"; DROP TABLE x; --') ORDER BY 1", database)
        assert schemas == [(HOSTILE,), ("product",)]

        again = run_module("target_schemas", args)
        assert not again["changed"] and again["queries"] == []
    finally:
        drop_database(target_cluster, database)
