"""Per-column NULL policies end to end: data_copy, then row_count_diff, against two real PostgreSQL servers.

The legacy side has the shape of ClassifiedAds' Identity module: claims whose shadow foreign key is
NULL, which the application's migration made NOT NULL. Each test builds its own pair of databases.
"""

from __future__ import annotations

import json

import psycopg2
import pytest
from conftest import drop_database, endpoint
from constants import HOSTILE
from psycopg2 import sql

pytestmark = pytest.mark.integration

GUID_EMPTY = "00000000-0000-0000-0000-000000000000"
# The legacy tables ({null}: NULL) and the migrated ones ({null}: NOT NULL, with the migration's defaults).
SCHEMA = """
CREATE TABLE {s}."Users" ("Id" int PRIMARY KEY, "Email" text);
CREATE TABLE {s}."UserClaims" ("Id" int PRIMARY KEY, "UserId" int {null} REFERENCES {s}."Users" ON DELETE CASCADE,
                               "Type" text, "Value" text);
CREATE TABLE {s}."RoleClaims" ("Id" uuid PRIMARY KEY, "RoleId" uuid {null} {default}, "Type" text,
                               "At" timestamptz);
CREATE TABLE {s}.{hostile} ("Id" bigint PRIMARY KEY, {hostile} int {null} {hostile_default}, "Note" text);
"""
ROWS = """
INSERT INTO "Users" VALUES (1, 'alice@example.com'), (2, 'bob@example.com');
INSERT INTO "UserClaims" VALUES (1, 1, 'name', 'Alice'), (2, NULL, 'name', 'secret-orphan-value'),
                                (3, NULL, 'locale', 'vi-VN'), (4, 2, 'name', 'Bob');
INSERT INTO "RoleClaims" VALUES ('11111111-0000-0000-0000-000000000001', '22222222-0000-0000-0000-000000000002',
                                 'Permission', '2024-01-02 03:04:05+00'),
                                ('11111111-0000-0000-0000-000000000002', NULL, 'Permission',
                                 '2024-02-03 04:05:06+07');
INSERT INTO {hostile} VALUES (1, NULL, 'a'), (2, 5, 'b'), (3, NULL, 'c');
"""
POLICIES = {"UserClaims": {"columns": {"UserId": {"on_null": "quarantine"}}},
            "RoleClaims": {"columns": {"RoleId": {"on_null": "default"}}},
            HOSTILE: {"columns": {HOSTILE: {"on_null": "default"}}}}


def query(info, dbname, statement, params=None):
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def ident(name):
    """A quoted identifier for the DDL templates (sql.Identifier needs a connection to render)."""
    return '"{}"'.format(name.replace('"', '""'))


def schema_sql(schema, null):
    target = null == "NOT NULL"
    return SCHEMA.format(s=ident(schema), null=null, default=f"DEFAULT '{GUID_EMPTY}'" if target else "",
                         hostile=ident(HOSTILE), hostile_default="DEFAULT 7" if target else "")


@pytest.fixture
def pair(source_cluster, target_cluster, request):
    """A legacy database with NULLs and a migrated target database; dropped afterwards."""
    name = "Nulls_" + request.node.name[:40]
    source_db, target_db = name + "_legacy", name + "_target"
    for info, dbname in ((source_cluster, source_db), (target_cluster, target_db)):
        drop_database(info, dbname)
        query(info, "postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    query(source_cluster, source_db, schema_sql("public", "NULL"))
    query(source_cluster, source_db, ROWS.format(hostile=ident(HOSTILE)))
    query(target_cluster, target_db, "CREATE SCHEMA identity;")
    query(target_cluster, target_db, schema_sql("identity", "NOT NULL"))
    yield source_db, target_db
    drop_database(source_cluster, source_db)
    drop_database(target_cluster, target_db)


def modules(source_db, tables=None):
    return [{"name": "Identity", "source_database": source_db, "schema": "identity",
             "tables": POLICIES if tables is None else tables}]


def copy_args(source_cluster, target_cluster, pair, tables=None, run_id="nulls-1"):
    return dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=pair[1],
                run_id=run_id, modules=modules(pair[0], tables), parallel=2)


def verify_args(source_cluster, target_cluster, pair, tables=None, **extra):
    return dict(dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=pair[1],
                     modules=modules(pair[0], tables), checksum=True, fail_on_mismatch=False), **extra)


def target_state(info, dbname):
    """Every table of the target database with its rows, and its constraints: what check mode must not change."""
    tables = query(info, dbname, "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON "
                                 "n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN "
                                 "('pg_catalog', 'information_schema') ORDER BY 1")
    rows = {table: query(info, dbname, f"SELECT t::text FROM {table} t ORDER BY 1") for (table,) in tables}
    constraints = query(info, dbname, "SELECT conrelid::regclass::text, conname FROM pg_constraint "
                                      "WHERE connamespace = 'identity'::regnamespace ORDER BY 1, 2")
    return rows, constraints


def row_of(result, table):
    return next(row for row in result["tables"] if row["source_table"] == table)


# -- fail ----------------------------------------------------------------------------------------------

def test_without_a_policy_the_copy_stops_before_any_row_moves_naming_counts_and_keys(
        run_module, source_cluster, target_cluster, pair):
    args = copy_args(source_cluster, target_cluster, pair, tables={
        "UserClaims": {"columns": {"UserId": {"on_null": "fail"}}}})
    before = target_state(target_cluster, pair[1])
    for check in (True, False):
        result = run_module("data_copy", args, check=check)
        assert result["failed"], result
        problems = dict((problem.split(" -> ")[0].split(":public.")[1], problem) for problem in result["problems"])
        assert len(problems) == 3, problems
        assert problems['"RoleClaims"'].startswith(
            f'{pair[0]}:public."RoleClaims" -> identity."RoleClaims": NULL in column(s) '
            '"RoleId" (1 NULL, e.g. Id=11111111-0000-0000-0000-000000000002)')
        assert problems['"UserClaims"'].startswith(
            f'{pair[0]}:public."UserClaims" -> identity."UserClaims": NULL in column(s) "UserId" (2 NULLs, e.g. '
            "Id=2; Id=3), which are NOT NULL in the target; nothing was copied")
        assert "on_null: default|quarantine" in problems['"UserClaims"']
        assert '(2 NULLs, e.g. Id=1; Id=3)' in problems[ident(HOSTILE)]
        assert "secret-orphan-value" not in json.dumps(result)
    assert target_state(target_cluster, pair[1]) == before


def test_policies_that_cannot_act_are_refused_at_plan_time_all_at_once(
        run_module, source_cluster, target_cluster, pair):
    query(target_cluster, pair[1], 'ALTER TABLE identity."RoleClaims" ALTER COLUMN "RoleId" DROP DEFAULT;'
                                   'ALTER TABLE identity."UserClaims" ALTER COLUMN "UserId" SET DEFAULT '
                                   '(random() * 1000)::int')
    tables = {"Users": {"columns": {"Id": {"on_null": "quarantine"}, "Email": {"on_null": "default"},
                                    "Nope": {"on_null": "quarantine"}}},
              "UserClaims": {"columns": {"UserId": {"on_null": "default"}}},
              "RoleClaims": {"columns": {"RoleId": {"on_null": "default"}}}}
    before = target_state(target_cluster, pair[1])
    result = run_module("data_copy", copy_args(source_cluster, target_cluster, pair, tables=tables))
    assert result["failed"]
    text = "\n".join(result["problems"])
    assert 'column "Id": the column is NOT NULL in the source' in text
    assert 'column "Email": the column is nullable in the target' in text
    assert 'column "Nope": no such column in the source and the target table' in text
    assert 'column "RoleId": on_null: default, but the target column has no default' in text
    assert 'SET DEFAULT' in text and "or choose on_null: quarantine" in text
    assert 'column "UserId": on_null: default, but the target column\'s default' in text
    assert "calls a volatile function" in text
    assert target_state(target_cluster, pair[1]) == before

    invalid = dict(copy_args(source_cluster, target_cluster, pair), modules=modules(pair[0], {
        "UserClaims": {"columns": {"UserId": {"on_null": "ignore", "when": "always"}}}}))
    result = run_module("data_copy", invalid)
    assert result["failed"]
    assert "on_null must be one of fail, default, quarantine, got 'ignore'" in result["msg"]
    assert "unknown keys when" in result["msg"]


# -- default and quarantine ------------------------------------------------------------------------------

def test_check_mode_reports_what_the_policies_would_do_and_changes_nothing(
        run_module, source_cluster, target_cluster, pair):
    before = target_state(target_cluster, pair[1])
    result = run_module("data_copy", copy_args(source_cluster, target_cluster, pair), check=True)
    assert not result["failed"], result.get("msg")
    assert 'identity."UserClaims"."UserId": 2 NULLs -> quarantined (policy)' in result["progress"]
    assert ('identity."RoleClaims"."RoleId": 1 NULL -> set to the target column\'s default (policy)'
            in result["progress"])
    statements = "\n".join(result["queries"])
    assert f"COALESCE(\"RoleId\", CAST('{GUID_EMPTY}' AS uuid))" in statements
    assert 'WHERE "UserId" IS NOT NULL' in statements
    assert "INSERT INTO \"_consolidation\".\"quarantined_rows\"" in statements
    assert "secret-orphan-value" not in json.dumps(result)
    assert target_state(target_cluster, pair[1]) == before

    # Before the migrator has created the target database, the policies alone say where NULLs matter.
    result = run_module("data_copy", dict(copy_args(source_cluster, target_cluster, pair),
                                          target_database=pair[1] + "_not_yet"), check=True)
    assert not result["failed"], result.get("msg")
    assert 'identity."UserClaims"."UserId": 2 NULLs -> quarantined (policy)' in result["progress"]
    assert row_of(result, "UserClaims")["rows"] == 2


def test_default_and_quarantine_copy_verify_and_report_every_key(
        run_module, source_cluster, target_cluster, pair, tmp_path):
    args = copy_args(source_cluster, target_cluster, pair)
    result = run_module("data_copy", args)
    assert not result["failed"], result.get("msg")
    assert 'identity."UserClaims"."UserId": 2 NULLs -> quarantined (policy)' in result["progress"]
    claims = row_of(result, "UserClaims")
    assert (claims["rows"], claims["quarantined"]) == (2, 2)
    assert claims["null_policy"] == {"UserId": {"on_null": "quarantine", "nulls": 2}}
    assert row_of(result, "Users")["null_policy"] == {} and row_of(result, "Users")["quarantined"] is None
    assert "secret-orphan-value" not in json.dumps(result)

    assert query(target_cluster, pair[1], 'SELECT "Id", "UserId" FROM identity."UserClaims" ORDER BY 1') == [
        (1, 1), (4, 2)]
    assert query(target_cluster, pair[1], 'SELECT "Id"::text, "RoleId"::text FROM identity."RoleClaims" '
                                          "ORDER BY 1") == [("11111111-0000-0000-0000-000000000001",
                                                             "22222222-0000-0000-0000-000000000002"),
                                                            ("11111111-0000-0000-0000-000000000002", GUID_EMPTY)]
    hostile = sql.Identifier("identity", HOSTILE)
    assert query(target_cluster, pair[1], sql.SQL("SELECT * FROM {} ORDER BY 1").format(hostile)) == [
        (1, 7, "a"), (2, 5, "b"), (3, 7, "c")]
    kept = query(target_cluster, pair[1], "SELECT source_table, target_schema, target_table, key, reason, "
                                          '"row", run_id FROM _consolidation.quarantined_rows ORDER BY key::text')
    assert [(row[0], row[1], row[2], row[3], row[6]) for row in kept] == [
        ("UserClaims", "identity", "UserClaims", {"Id": 2}, "nulls-1"),
        ("UserClaims", "identity", "UserClaims", {"Id": 3}, "nulls-1")]
    assert kept[0][4] == 'NULL in "UserId", which is NOT NULL in identity."UserClaims" (on_null: quarantine)'
    assert kept[0][5] == {"Id": 2, "UserId": None, "Type": "name", "Value": "secret-orphan-value"}
    # The foreign key came back validated: only claims of existing users were copied.
    assert query(target_cluster, pair[1], "SELECT convalidated FROM pg_constraint WHERE conname = "
                                          "'UserClaims_UserId_fkey'") == [(True,)]

    report_dir = tmp_path / "run"
    verified = run_module("row_count_diff", verify_args(source_cluster, target_cluster, pair,
                                                        report_dir=str(report_dir), fail_on_mismatch=True))
    assert not verified["failed"], verified.get("msg")
    assert verified["summary"]["passed"]
    rows = {row["source_table"]: row for row in verified["tables"]}
    assert (rows["UserClaims"]["source_rows"], rows["UserClaims"]["target_rows"]) == (4, 2)
    assert rows["UserClaims"]["null_policy"] == {"columns": {"UserId": "quarantine"}, "defaulted_keys": [],
                                                 "quarantined_keys": ["Id=2", "Id=3"], "quarantined_rows": 2}
    assert rows["RoleClaims"]["null_policy"]["defaulted_keys"] == ["Id=11111111-0000-0000-0000-000000000002"]
    assert rows["RoleClaims"]["source_checksum"] == rows["RoleClaims"]["target_checksum"]
    assert rows[HOSTILE]["null_policy"]["defaulted_keys"] == ["Id=1", "Id=3"]
    assert "null_policy" not in rows["Users"]
    report = json.loads((report_dir / "verification.json").read_text())
    assert [row["null_policy"]["quarantined_keys"] for row in report["tables"]
            if row["source_table"] == "UserClaims"] == [["Id=2", "Id=3"]]
    markdown = (report_dir / "verification.md").read_text()
    assert "## NULL policies" in markdown
    for key in ("Id=2", "Id=3", "Id=11111111-0000-0000-0000-000000000002"):
        assert key in markdown
    assert "secret-orphan-value" not in markdown + json.dumps(report) + json.dumps(verified)

    # A rerun with the same run id changes nothing and keeps the quarantine as it is.
    again = run_module("data_copy", args)
    assert not again["failed"] and again["changed"] is False
    assert query(target_cluster, pair[1], "SELECT count(*) FROM _consolidation.quarantined_rows") == [(2,)]


@pytest.mark.parametrize("change", [
    # an unrelated row of a policy table
    'UPDATE "UserClaims" SET "Value" = \'Alicia\' WHERE "Id" = 1',
    # another column of a defaulted row
    'UPDATE "RoleClaims" SET "Type" = \'Other\' WHERE "RoleId" IS NULL',
    # a quarantined row's content
    'UPDATE "UserClaims" SET "Value" = \'changed\' WHERE "Id" = 2',
    # a new row the policy would have quarantined
    'INSERT INTO "UserClaims" VALUES (9, NULL, \'name\', \'late\')',
    # a quarantined row given its user after the copy
    'UPDATE "UserClaims" SET "UserId" = 1 WHERE "Id" = 3',
], ids=["unrelated-row", "defaulted-row", "quarantined-row", "new-null-row", "null-filled-later"])
def test_a_policy_never_lets_a_real_difference_pass(run_module, source_cluster, target_cluster, pair, change):
    result = run_module("data_copy", copy_args(source_cluster, target_cluster, pair))
    assert not result["failed"], result.get("msg")
    assert run_module("row_count_diff", verify_args(source_cluster, target_cluster, pair))["summary"]["passed"]
    query(source_cluster, pair[0], change)
    verified = run_module("row_count_diff", verify_args(source_cluster, target_cluster, pair))
    assert not verified["summary"]["passed"], verified["table_text"]
    failing = [row for row in verified["tables"] if not row["ok"]]
    assert [row["source_table"] for row in failing] in (["UserClaims"], ["RoleClaims"])
    assert failing[0]["state"] == "mismatch" and failing[0]["reasons"]


def test_a_table_failing_after_its_quarantine_rolls_back_with_it_and_the_rerun_resumes(
        run_module, source_cluster, target_cluster, pair):
    # Every copied claim breaks this check: the table's transaction fails after its COPY. It calls a
    # function of the target's own, so the plan-time data checks cannot evaluate it on the source.
    query(target_cluster, pair[1], 'CREATE FUNCTION identity.not_yet(integer) RETURNS boolean LANGUAGE sql '
                                   "IMMUTABLE AS 'SELECT false'; "
                                   'ALTER TABLE identity."UserClaims" ADD CONSTRAINT "not yet" '
                                   'CHECK (identity.not_yet("Id"))')
    args = copy_args(source_cluster, target_cluster, pair, run_id="nulls-resume")
    result = run_module("data_copy", args)
    assert result["failed"] and '"not yet"' in result["msg"]
    assert "secret-orphan-value" not in json.dumps(result)
    assert query(target_cluster, pair[1], 'SELECT count(*) FROM identity."UserClaims"') == [(0,)]
    assert query(target_cluster, pair[1], "SELECT count(*) FROM _consolidation.quarantined_rows") == [(0,)]

    query(target_cluster, pair[1], 'ALTER TABLE identity."UserClaims" DROP CONSTRAINT "not yet"')
    resumed = run_module("data_copy", args)
    assert not resumed["failed"], resumed.get("msg")
    statuses = {row["source_table"]: row["status"] for row in resumed["tables"]}
    assert statuses["UserClaims"] == "copied"
    assert query(target_cluster, pair[1], "SELECT key::text FROM _consolidation.quarantined_rows ORDER BY 1") == [
        ('{"Id": 2}',), ('{"Id": 3}',)]
    assert run_module("row_count_diff", verify_args(source_cluster, target_cluster, pair))["summary"]["passed"]


def test_the_progress_log_names_the_policy_outcome_never_row_contents(run_module, source_cluster, target_cluster,
                                                                      pair, tmp_path):
    log = tmp_path / "data_copy.log"
    result = run_module("data_copy", dict(copy_args(source_cluster, target_cluster, pair), progress_log=str(log)))
    assert not result["failed"], result.get("msg")
    text = log.read_text()
    assert "2 NULLs -> quarantined (policy)" in text and "secret-orphan-value" not in text


def test_a_default_its_foreign_key_would_reject_is_refused_before_the_copy(
        run_module, source_cluster, target_cluster, pair):
    """As ClassifiedAds' Guid.Empty default on UserClaims.UserId: no user has that id, so the foreign key, dropped for
    the load and validated after it, would fail the run with every table copied. Once the referenced table's copy
    holds the value, the same policy copies and validates."""
    query(target_cluster, pair[1], 'ALTER TABLE identity."UserClaims" ALTER COLUMN "UserId" SET DEFAULT 0')
    tables = dict(POLICIES, UserClaims={"columns": {"UserId": {"on_null": "default"}}})
    args = copy_args(source_cluster, target_cluster, pair, tables=tables)
    before = target_state(target_cluster, pair[1])
    for check in (True, False):
        result = run_module("data_copy", args, check=check)
        assert result["failed"], result
        assert result["problems"] == [
            f'{pair[0]}:public."UserClaims" -> identity."UserClaims": on_null: default would write 0 into column '
            '"UserId", but the foreign key "UserClaims_UserId_fkey" needs a row of identity."Users" with "Id" = that '
            "value, which the copied data does not hold; the key's validation after the copy would fail. Choose "
            "on_null: quarantine, or see that the referenced table holds that row"]
    assert target_state(target_cluster, pair[1]) == before

    query(source_cluster, pair[0], """INSERT INTO "Users" VALUES (0, 'nobody@example.com')""")
    result = run_module("data_copy", args)
    assert not result["failed"], result.get("msg")
    assert query(target_cluster, pair[1], 'SELECT "Id", "UserId" FROM identity."UserClaims" ORDER BY 1') == [
        (1, 1), (2, 0), (3, 0), (4, 2)]
    assert query(target_cluster, pair[1], "SELECT convalidated FROM pg_constraint WHERE conname = "
                                          "'UserClaims_UserId_fkey'") == [(True,)]
    verified = run_module("row_count_diff", verify_args(source_cluster, target_cluster, pair, tables=tables))
    assert verified["summary"]["passed"], verified["table_text"]
