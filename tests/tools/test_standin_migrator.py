"""The stand-in ClassifiedAds.Migrator (tools/bin/classifiedads-migrator) against real PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from conftest import drop_database
from devkit import catalog, ddl, reference_catalog
from psycopg2 import sql

pytestmark = pytest.mark.integration

MIGRATOR = Path(__file__).resolve().parents[2] / "tools" / "bin" / "classifiedads-migrator"
ALL_MIGRATIONS = [migration for module in ddl.MODULES for migration in module.migrations]
GUID_EMPTY = "'00000000-0000-0000-0000-000000000000'::uuid"


def _password(info) -> str:
    return Path(info.passfile).read_text().strip().split(":", 4)[4]


def _connection_string(info, database, password=None):
    password = _password(info) if password is None else password
    return f"Host={info.host};Port={info.port};Database={database};Username={info.user};Password={password}"


def _run(args=(), connection_string=None, cwd=None):
    env = {name: value for name, value in os.environ.items()
           if name.replace("__", ":").lower() != "connectionstrings:default" and not name.startswith("PG")}
    if connection_string is not None:
        env["ConnectionStrings__Default"] = connection_string
    return subprocess.run([sys.executable, str(MIGRATOR), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, check=False, timeout=120)


@pytest.fixture
def database(target_cluster):
    """A fresh database name on the target cluster; the migrator creates it, the fixture drops it."""
    name = f"ClassifiedAds_{uuid.uuid4().hex[:8]}"
    yield name
    drop_database(target_cluster, name)


def _database_exists(info, name) -> bool:
    conn = psycopg2.connect(**info.connect_kwargs())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone()[0] == 1
    finally:
        conn.close()


def _snapshot(info, name) -> dict:
    """Catalog of the module schemas and public, plus every row of the bookkeeping tables."""
    conn = psycopg2.connect(**info.connect_kwargs(name))
    try:
        snapshot = {schema: catalog.read_schema(conn, schema) for schema in ["public", *ddl.MODULES_BY_SCHEMA]}
        with conn.cursor() as cur:
            cur.execute('SELECT "MigrationId", "ProductVersion" FROM public."__EFMigrationsHistory" ORDER BY 1')
            snapshot["history"] = cur.fetchall()
            cur.execute("SELECT schemaversionsid, scriptname, applied FROM public.schemaversions ORDER BY 1")
            snapshot["journal"] = cur.fetchall()
            cur.execute("SELECT nspname::text FROM pg_namespace"
                        " WHERE nspname !~ '^(pg_|information_schema)' ORDER BY 1")
            snapshot["schemas"] = cur.fetchall()
            counts = {}
            for module in ddl.MODULES:
                for table in reference_catalog.module_tables(module.schema):
                    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(module.schema, table)))
                    counts[f"{module.schema}.{table}"] = cur.fetchone()[0]
            snapshot["counts"] = counts
    finally:
        conn.close()
    return snapshot


def test_first_run_migrates_and_second_run_changes_nothing(target_cluster, database):
    connection_string = _connection_string(target_cluster, database)
    first = _run(connection_string=connection_string)
    assert first.returncode == 0, first.stderr
    assert f'Creating database "{database}"' in first.stdout
    applying = [line.split("Applying migration ")[1] for line in first.stdout.splitlines()
                if "Applying migration " in line]
    assert applying == ALL_MIGRATIONS  # the Migrator's order: AuditLog, Configuration, Identity, ...
    assert "Executing Database Server script 'ClassifiedAds.Migrator.DbUp.PostgresqlDistributedCache." \
           "0001-CreateTables.sql'" in first.stdout
    after_first = _snapshot(target_cluster, database)

    second = _run(connection_string=connection_string)
    assert second.returncode == 0, second.stderr
    assert "Applying migration" not in second.stdout and "Executing" not in second.stdout
    assert second.stdout.count("No migrations were applied. The database is already up to date.") == 6
    assert "the database is already up to date" in second.stdout.splitlines()[-1]
    assert _snapshot(target_cluster, database) == after_first

    assert after_first["history"] == sorted((migration, "10.0.0") for migration in ALL_MIGRATIONS)
    assert [row[:2] for row in after_first["journal"]] == [(1, ddl.DBUP_SCRIPT_NAME)]
    assert after_first["schemas"] == [("auditlog",), ("configuration",), ("identity",), ("notification",),
                                      ("product",), ("public",), ("storage",)]
    # HasData rows are part of the initial migrations; nothing else is inserted.
    seeded = {"product.Products": 2, "identity.Users": 1, "configuration.ConfigurationEntries": 1,
              "configuration.LocalizationEntries": 2}
    assert {table: count for table, count in after_first["counts"].items() if count} == seeded
    for output in (first, second):
        assert _password(target_cluster) not in output.stdout + output.stderr


def test_schemas_match_the_reference(target_cluster, database):
    result = _run(connection_string=_connection_string(target_cluster, database))
    assert result.returncode == 0, result.stderr
    snapshot = _snapshot(target_cluster, database)
    for module in ddl.MODULES:
        expected = reference_catalog.module_tables(module.schema)
        if module.schema == "identity":
            # 20260201100837_InitialIdentity: the two shadow foreign keys become NOT NULL, and Npgsql's
            # AlterColumn leaves defaultValue Guid.Empty on them as a column default.
            for table, column in (("UserClaims", "UserId"), ("RoleClaims", "RoleId")):
                shape = next(c for c in expected[table]["columns"] if c["name"] == column)
                shape.update(not_null=True, default=GUID_EMPTY)
        assert catalog.diff(expected, snapshot[module.schema], module.schema) == []
    shared = {**reference_catalog.ef_history_table(), **reference_catalog.dbup_tables()}
    assert catalog.diff(shared, snapshot["public"], "public") == []


def test_history_lock_is_taken_in_access_exclusive_mode(target_cluster, database):
    """A second migrator waits while another session holds the history table lock."""
    connection_string = _connection_string(target_cluster, database)
    assert _run(connection_string=connection_string).returncode == 0
    conn = psycopg2.connect(**target_cluster.connect_kwargs(database))
    try:
        with conn.cursor() as cur:
            cur.execute('LOCK TABLE public."__EFMigrationsHistory" IN ACCESS EXCLUSIVE MODE')
            waiting = subprocess.Popen(
                [sys.executable, str(MIGRATOR)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "ConnectionStrings__Default": connection_string})
            try:
                waiting.wait(timeout=2)
                pytest.fail("the migrator did not wait for the lock on __EFMigrationsHistory")
            except subprocess.TimeoutExpired:
                pass
        conn.rollback()
        stdout, stderr = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, stderr
        assert "already up to date" in stdout
    finally:
        conn.close()


def test_wrong_password_fails_without_leaking_it(target_cluster, database):
    secret = "Wr0ng-secret-value"
    result = _run(connection_string=_connection_string(target_cluster, database, password=secret))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "password authentication failed" in result.stderr
    assert secret not in result.stdout + result.stderr
    assert not _database_exists(target_cluster, database)


@pytest.mark.parametrize("connection_string, message", [
    ("Host=127.0.0.1;Port=notaport;Database=x;Username=u;Password=Secret-1", "Port must be a number"),
    ("Host=127.0.0.1;Database=x;Usrname=u;Password=Secret-1", "Keyword not supported: 'Usrname'"),
    ("Database=x;Username=u;Password=Secret-1", "Host is missing"),
    ("Host=127.0.0.1;Password='Secret-1", "quoted value of 'Password' is not closed"),
    ("   ", "is empty"),
])
def test_bad_connection_string_fails_with_a_clear_message(connection_string, message):
    result = _run(connection_string=connection_string)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "Secret-1" not in result.stdout + result.stderr


def test_missing_connection_string_fails():
    result = _run()
    assert result.returncode == 2
    assert "ConnectionStrings__Default" in result.stderr


def test_unreachable_server_fails():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    result = _run(connection_string=f"Host=127.0.0.1;Port={port};Database=x;Username=u;Password=Secret-2;Timeout=5")
    assert result.returncode == 1
    assert "cannot connect to 127.0.0.1:" in result.stderr and result.stderr.count("\n") == 1
    assert "Secret-2" not in result.stdout + result.stderr


def test_environment_overrides_appsettings(target_cluster, database, tmp_path):
    other = f"{database}_json"
    settings = tmp_path / "appsettings.json"
    settings.write_text(json.dumps({
        "Logging": {"LogLevel": {"Default": "Information"}},
        "ConnectionStrings": {"Default": _connection_string(target_cluster, other)},
    }))
    try:
        result = _run(["--appsettings", str(settings)], connection_string=_connection_string(target_cluster, database))
        assert result.returncode == 0, result.stderr
        assert "environment variable ConnectionStrings__Default" in result.stdout
        assert _database_exists(target_cluster, database)
        assert not _database_exists(target_cluster, other)

        from_file = _run(["--appsettings", str(settings)])
        assert from_file.returncode == 0, from_file.stderr
        assert f"ConnectionStrings:Default in {settings}" in from_file.stdout
        assert _database_exists(target_cluster, other)
    finally:
        conn = psycopg2.connect(**target_cluster.connect_kwargs())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(other)))
        conn.close()
