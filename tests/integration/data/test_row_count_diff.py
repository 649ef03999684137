"""row_count_diff against real servers: legacy ClassifiedAds databases on one cluster, the consolidated
database on the other, copied faithfully here and then damaged one way per test."""

from __future__ import annotations

import io
import json
import os
import sys
import textwrap

import psycopg2
import pytest
from conftest import drop_database, endpoint
from conftest import run_sql as execute
from constants import HOSTILE
from devkit import legacy, migrator
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import missing_server
from ansible_collections.classifiedads.consolidation.plugins.module_utils.null_policy import QUARANTINE_DDL
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan, table_destination

pytestmark = pytest.mark.integration

PRISTINE = "ClassifiedAds_Verify_pristine"
TARGET = "ClassifiedAds_Verify"
MODULES = [
    {"name": "Product", "source_database": "ClassifiedAds_Product", "schema": "product"},
    # The legacy claims whose shadow key is NULL are kept out, as the shipped defaults say (quarantine).
    {"name": "Identity", "source_database": "ClassifiedAds_Identity", "schema": "identity",
     "tables": legacy.shipped_null_policies()["Identity"]},
    {"name": "Storage", "source_database": "ClassifiedAds_Storage", "schema": "storage"},
    {"name": "Notification", "source_database": "ClassifiedAds_Notification", "schema": "notification"},
    {"name": "AuditLog", "source_database": "ClassifiedAds_AuditLog", "schema": "auditlog",
     "tables": {"schemaversions": {"schema": "public", "truncate": True}, "CacheEntries": {"schema": "public"}}},
    {"name": "Configuration", "source_database": "ClassifiedAds_Configuration", "schema": "configuration"},
]


# -- helpers ------------------------------------------------------------------------------------

def connect(info, dbname):
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    conn.autocommit = True
    return conn


def recreate(info, dbname, template=None):
    drop_database(info, dbname)
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
    if template:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    execute(info, "postgres", statement)


def tables_of(conn, schema):
    with conn.cursor() as cur:
        cur.execute("SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = %s::regnamespace"
                    " AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1", (schema,))
        return [name for (name,) in cur.fetchall()]


def columns_of(conn, schema, table):
    with conn.cursor() as cur:
        cur.execute("SELECT attname::text FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                    " AND NOT attisdropped ORDER BY attnum",
                    (sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table)).as_string(conn),))
        return [name for (name,) in cur.fetchall()]


def copy_rows(source_conn, source, target_conn, target, quarantine=()):
    """COPY every row of source (schema, table) into target (schema, table), matching columns by name.

    Rows with NULL in a ``quarantine`` column go to _consolidation.quarantined_rows instead, keyed by "Id".
    """
    columns = sql.SQL(", ").join(map(sql.Identifier, columns_of(source_conn, *source)))
    kept, rejected = sql.SQL(""), []
    if quarantine:
        nulls = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(column)) for column in quarantine)
        kept = sql.SQL(" WHERE NOT ({})").format(nulls)
        with source_conn.cursor() as cur:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute(sql.SQL("""SELECT jsonb_build_object('Id', "Id")::text, to_jsonb(t)::text FROM {}.{} t """
                                "WHERE {}").format(*map(sql.Identifier, source), nulls))
            rejected = cur.fetchall()
    with target_conn.cursor() as cur:
        for key, row in rejected:
            cur.execute("INSERT INTO _consolidation.quarantined_rows (source_database, source_schema, source_table, "
                        "target_schema, target_table, key, reason, row, run_id) VALUES (current_database(), %s, %s, "
                        "%s, %s, %s, 'NULL', %s, 'faithful')", (*source, *target, key, row))
        cur.execute("UPDATE _consolidation.quarantined_rows SET source_database = %s WHERE run_id = 'faithful' "
                    "AND source_database = current_database()", (source_conn.info.dbname,))
    buffer = io.StringIO()
    with source_conn.cursor() as cur:
        cur.copy_expert(sql.SQL("COPY (SELECT {} FROM {}.{}{}) TO STDOUT").format(
            columns, *map(sql.Identifier, source), kept).as_string(source_conn), buffer)
    buffer.seek(0)
    with target_conn.cursor() as cur:
        cur.copy_expert(sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
            *map(sql.Identifier, target), columns).as_string(target_conn), buffer)


def sequence_state(conn, schema, table, column):
    with conn.cursor() as cur:
        # The owned sequence, or the one a default calls nextval() on (the fixtures' DbUp journal has one no
        # column owns).
        name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table)).as_string(conn)
        cur.execute("SELECT coalesce(pg_get_serial_sequence(%s, %s), (SELECT d.refobjid::regclass::text "
                    "FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum "
                    "JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid "
                    "AND d.refclassid = 'pg_class'::regclass "
                    "JOIN pg_class q ON q.oid = d.refobjid AND q.relkind = 'S' "
                    "WHERE ad.adrelid = %s::regclass AND a.attname = %s))", (name, column, name, column))
        (sequence,) = cur.fetchone()
        if sequence is None:
            return None, None
        cur.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(sequence)))
        return sequence, cur.fetchone()


def copy_database(source_info, target_info, modules, target_db):
    """The faithful copy a consolidation should make: every mapped table's rows, and sequence states."""
    plan = build_plan(modules, target_db, endpoint(source_info), endpoint(target_info), ["__EFMigrationsHistory"])
    target_conn = connect(target_info, target_db)
    with target_conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # tables in any order: no FK checks
        cur.execute("CREATE SCHEMA IF NOT EXISTS _consolidation")
        cur.execute(sql.SQL(QUARANTINE_DDL).format(schema=sql.Identifier("_consolidation"),
                                                   table=sql.Identifier("quarantined_rows")))
    try:
        for module in plan:
            source_conn = connect(source_info, module["source_database"])
            pairs = [(table, table_destination(module, table)) for table in tables_of(source_conn, "public")]
            pairs = [(table, destination[:2]) for table, destination in pairs if destination]
            with target_conn.cursor() as cur:
                cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(
                    sql.SQL("{}.{}").format(*map(sql.Identifier, target)) for _table, target in pairs)))
            for table, target in pairs:
                policies = module["tables"].get(table, {}).get("columns", {})
                copy_rows(source_conn, (module["source_schema"], table), target_conn, target,
                          [column for column, policy in policies.items() if policy["on_null"] == "quarantine"])
                for column in columns_of(target_conn, *target):
                    target_sequence, _state = sequence_state(target_conn, *target, column)
                    _source_sequence, state = sequence_state(source_conn, module["source_schema"], table, column)
                    if target_sequence and state:
                        with target_conn.cursor() as cur:
                            cur.execute("SELECT setval(%s, %s, %s)", (target_sequence,) + tuple(state))
            source_conn.close()
    finally:
        target_conn.close()


# -- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def legacy_databases(source_cluster):
    """The six legacy databases (devkit.legacy, scale 0.01). Only read here, so any complete set will do."""
    try:
        legacy.create(source_cluster, 0.01, out=lambda line: None)
    except legacy.LegacyError as exc:
        if "exists" not in str(exc):
            raise
    return MODULES


@pytest.fixture(scope="module")
def pristine(legacy_databases, source_cluster, target_cluster):
    """A consolidated database built by the stand-in migrator and filled by a faithful copy (a template)."""
    drop_database(target_cluster, PRISTINE)
    migrator.migrate(target_cluster.connect_kwargs(PRISTINE), log=lambda line: None)
    copy_database(source_cluster, target_cluster, legacy_databases, PRISTINE)
    yield PRISTINE
    drop_database(target_cluster, PRISTINE)


@pytest.fixture
def consolidated(pristine, target_cluster):
    """A fresh copy of the pristine consolidated database for one test to damage."""
    recreate(target_cluster, TARGET, template=pristine)
    yield TARGET
    drop_database(target_cluster, TARGET)


@pytest.fixture
def verify(run_module, source_cluster, target_cluster):
    def run(target_db=TARGET, check=False, **extra):
        args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), modules=MODULES,
                    target_database=target_db, run_id="run-1", backup_set="run-1")
        args.update(extra)
        return run_module("row_count_diff", args, check=check)

    return run


def rows_by_target(result):
    return dict(((row["target_schema"], row["target_table"]), row) for row in result["tables"])


def mode_of(path):
    return oct(os.stat(path).st_mode & 0o777)


# -- a faithful copy ----------------------------------------------------------------------------

def test_faithful_copy_matches_by_count_checksum_and_sequences(verify, consolidated, source_cluster, tmp_path):
    report_dir = tmp_path / "run"
    result = verify(checksum=True, report_dir=str(report_dir))
    assert not result["failed"], result["msg"]
    assert result["summary"]["passed"] and result["changed"]

    legacy_counts = legacy.counts(source_cluster)
    copied = [row for row in result["tables"] if row["kind"] == "copied"]
    assert len(copied) == sum(len(tables) - 1 for tables in legacy_counts.values())
    for row in copied:
        assert row["state"] == "match", row
        quarantined = row.get("null_policy", {}).get("quarantined_rows", 0)
        assert row["source_rows"] == legacy_counts[row["source_database"]][row["source_table"]]
        assert row["source_rows"] == row["target_rows"] + quarantined
        assert row["source_checksum"] is not None
        assert row["source_checksum"] == row["target_checksum"]
    rows = rows_by_target(result)
    assert rows[("product", "Products")]["source_rows"] > 0
    assert rows[("public", "schemaversions")]["source_table"] == "schemaversions"
    excluded = [row for row in result["tables"] if row["state"] == "excluded"]
    assert sorted(row["source_database"] for row in excluded) == sorted(m["source_database"] for m in MODULES)
    assert {(entry["target_table"], entry["column"], entry["state"]) for entry in result["sequences"]} == {
        ("DataProtectionKeys", "Id", "ok"), ("schemaversions", "schemaversionsid", "ok")}
    assert result["summary"]["sequences"] == 2
    # The fixtures' claims of deleted users and roles (NULL shadow keys), each named by key.
    assert {table: len(rows[("identity", table)]["null_policy"]["quarantined_keys"])
            for table in ("UserClaims", "RoleClaims")} == {"UserClaims": 1, "RoleClaims": 2}

    report = json.loads((report_dir / "verification.json").read_text())
    assert mode_of(report_dir) == "0o700"
    assert mode_of(report_dir / "verification.json") == mode_of(report_dir / "verification.md") == "0o600"
    assert report["run_id"] == report["backup_set"] == "run-1" and report["passed"] is True
    assert report["summary"] == result["summary"] and report["tables"] == result["tables"]
    assert report["servers"]["source"]["address"] == f"{source_cluster.host}:{source_cluster.port}"
    assert report["generated_at"].endswith("Z")
    assert "passfile" not in json.dumps(report) and "password" not in json.dumps(report)
    markdown = (report_dir / "verification.md").read_text()
    products = legacy_counts["ClassifiedAds_Product"]["Products"]
    assert (f'| `Product` | `"ClassifiedAds_Product".public."Products"` | `product."Products"` | {products} |'
            f' {products} | match | same |') in markdown
    assert "**PASSED**" in markdown
    # The schema is compared and reported (the default), never failing a run whose migrator made the schema.
    assert report["schema_fidelity"]["mode"] == "report" and report["schema_fidelity"]["passed"]
    assert [module["module"] for module in report["schema_fidelity"]["modules"]] == [m["name"] for m in MODULES]
    assert "## Schema fidelity" in markdown
    assert 'product."Products"' in result["table_text"] and "PASSED" in result["table_text"]
    assert any('count(*)' in query and '"product"."Products"' in query for query in result["queries"])
    assert "set_config('default_transaction_read_only', 'on', false)" in result["queries"][0]

    again = verify(checksum=True, report_dir=str(report_dir))
    assert not again["changed"] and not again["report"]["written"]
    assert again["report"]["generated_at"] == report["generated_at"]


def test_check_mode_counts_but_writes_no_report(verify, consolidated, tmp_path):
    report_dir = tmp_path / "run"
    result = verify(check=True, report_dir=str(report_dir))
    assert not result["failed"] and not result["changed"]
    assert result["summary"]["match"] > 20
    assert not result["report"]["written"] and "check mode" in result["report"]["reason"]
    assert not report_dir.exists()


# -- damage, one kind per test ------------------------------------------------------------------

def test_a_deleted_row_fails_with_the_table_and_the_report_paths(verify, consolidated, target_cluster, tmp_path):
    execute(target_cluster, TARGET, 'DELETE FROM product."Products"'
                                    ' WHERE "Id" = (SELECT "Id" FROM product."Products" ORDER BY 1 LIMIT 1)')
    result = verify(report_dir=str(tmp_path))
    assert result["failed"]
    row = rows_by_target(result)[("product", "Products")]
    assert row["state"] == "mismatch" and row["target_rows"] == row["source_rows"] - 1
    assert "row counts differ" in row["reasons"][0]
    assert result["summary"]["mismatch"] == 1 and not result["summary"]["passed"]
    assert result["table_text"] in result["msg"]
    assert str(tmp_path / "verification.json") in result["msg"]
    report = json.loads((tmp_path / "verification.json").read_text())
    assert report["passed"] is False and "FAILED" in (tmp_path / "verification.md").read_text()


def test_an_updated_value_is_caught_by_the_checksum_only(verify, consolidated, target_cluster):
    execute(target_cluster, TARGET, 'UPDATE product."Products" SET "Name" = "Name" || \'!\''
                                    ' WHERE "Id" = (SELECT "Id" FROM product."Products" ORDER BY 1 LIMIT 1)')
    counts = verify(fail_on_mismatch=False)
    assert counts["summary"]["passed"]
    checked = verify(checksum=True, fail_on_mismatch=False)
    row = rows_by_target(checked)[("product", "Products")]
    assert row["state"] == "mismatch" and row["source_rows"] == row["target_rows"]
    assert row["reasons"] == ["content checksums differ"]
    assert not checked["summary"]["passed"] and not checked["failed"]


def test_a_dropped_target_table_is_missing(verify, consolidated, target_cluster, source_cluster):
    execute(target_cluster, TARGET, 'DROP TABLE notification."SmsMessages"')
    result = verify(fail_on_mismatch=False)
    row = rows_by_target(result)[("notification", "SmsMessages")]
    assert row["state"] == "missing" and row["target_rows"] is None
    assert row["source_rows"] == legacy.counts(source_cluster)["ClassifiedAds_Notification"]["SmsMessages"]
    assert result["summary"]["missing"] == 1 and not result["summary"]["passed"]


def test_an_extra_table_is_informational_while_empty(verify, consolidated, target_cluster):
    execute(target_cluster, TARGET, 'CREATE TABLE identity."UserProfiles" ("Id" uuid PRIMARY KEY)')
    empty = verify()
    assert not empty["failed"]
    row = rows_by_target(empty)[("identity", "UserProfiles")]
    assert row["state"] == "extra" and row["ok"] and row["module"] == "Identity" and row["source_table"] is None
    execute(target_cluster, TARGET, 'INSERT INTO identity."UserProfiles" VALUES (gen_random_uuid())')
    filled = verify(fail_on_mismatch=False)
    row = rows_by_target(filled)[("identity", "UserProfiles")]
    assert row["state"] == "extra" and not row["ok"] and row["target_rows"] == 1
    assert filled["summary"]["extra_with_rows"] == 1 and not filled["summary"]["passed"]
    assert "extra (rows)" in filled["table_text"]


def test_reordered_columns_still_checksum_equal(verify, consolidated, target_cluster):
    conn = connect(target_cluster, TARGET)
    columns = columns_of(conn, "product", "Products")
    with conn.cursor() as cur:
        cur.execute(sql.SQL('CREATE TABLE product."Products_reordered" AS SELECT {} FROM product."Products"').format(
            sql.SQL(", ").join(map(sql.Identifier, reversed(columns)))))
        cur.execute('DROP TABLE product."Products"')
        cur.execute('ALTER TABLE product."Products_reordered" RENAME TO "Products"')
    assert columns_of(conn, "product", "Products") == list(reversed(columns))
    conn.close()
    result = verify(checksum=True)
    assert not result["failed"], result["msg"]
    assert rows_by_target(result)[("product", "Products")]["state"] == "match"


def test_session_settings_of_the_target_do_not_matter(verify, consolidated, target_cluster):
    # A domain makes the column's types differ, so it is compared by its text form, which depends on
    # TimeZone and DateStyle: the module pins both, whatever the database says.
    for statement in (
        'CREATE DOMAIN product.moment AS timestamp with time zone',
        'ALTER TABLE product."Products" ALTER "CreatedDateTime" TYPE product.moment',
        sql.SQL("ALTER DATABASE {} SET TimeZone = 'Pacific/Chatham'").format(sql.Identifier(TARGET)),
        sql.SQL("ALTER DATABASE {} SET DateStyle = 'SQL, DMY'").format(sql.Identifier(TARGET)),
        sql.SQL("ALTER DATABASE {} SET extra_float_digits = -3").format(sql.Identifier(TARGET)),
    ):
        execute(target_cluster, TARGET, statement)
    assert execute(target_cluster, TARGET, "SHOW TimeZone") == [("Pacific/Chatham",)]
    result = verify(checksum=True)
    assert not result["failed"], result["msg"]
    row = rows_by_target(result)[("product", "Products")]
    assert row["state"] == "match"
    assert row["column_type_differences"] == [{"column": "CreatedDateTime", "source_type": "timestamp with time zone",
                                               "target_type": "product.moment"}]


def test_a_sequence_behind_is_flagged(verify, consolidated, target_cluster):
    execute(target_cluster, TARGET,
            """SELECT setval(pg_get_serial_sequence('identity."DataProtectionKeys"', 'Id'), 1, false)""")
    result = verify()
    assert result["failed"]
    (entry,) = [entry for entry in result["sequences"] if entry["target_table"] == "DataProtectionKeys"]
    assert entry["state"] == "behind" and entry["next_value"] == 1 and entry["column_max"] == 8
    assert entry["source_next_value"] == 13 and len(entry["reasons"]) == 2  # the legacy sequence is ahead
    assert result["summary"]["sequences_behind"] == 1
    assert "DataProtectionKeys" in result["msg"] and "behind" in result["msg"]


def test_connection_problems_are_reported_clearly(verify, consolidated, run_module, target_cluster):
    missing = verify(modules=MODULES + [{"name": "Gone", "source_database": "ClassifiedAds_Gone", "schema": "gone"}])
    assert missing["failed"] and "ClassifiedAds_Gone" in missing["msg"] and "does not exist" in missing["msg"]
    no_target = run_module("row_count_diff", {"target_database": TARGET, "modules": [],
                                              "expect_tables": {"product": []}})
    assert no_target["failed"] and missing_server("target") in no_target["msg"]
    no_source = run_module("row_count_diff", {"target": endpoint(target_cluster), "target_database": TARGET,
                                              "modules": MODULES})
    assert no_source["failed"] and missing_server("source") in no_source["msg"]


def test_an_unreadable_table_is_an_error_and_the_password_stays_secret(verify, consolidated, target_cluster):
    for statement in ("DROP ROLE IF EXISTS rowdiff_reader", "CREATE ROLE rowdiff_reader LOGIN PASSWORD 'reader-pw'",
                      "GRANT USAGE ON SCHEMA product TO rowdiff_reader",
                      "GRANT SELECT ON ALL TABLES IN SCHEMA product TO rowdiff_reader",
                      'REVOKE SELECT ON product."OutboxMessages" FROM rowdiff_reader'):
        execute(target_cluster, TARGET, statement)
    try:
        reader = dict(endpoint(target_cluster), user="rowdiff_reader", password="reader-pw", passfile=None)
        result = verify(modules=MODULES[:1], target=reader)
        assert result["failed"] and "reader-pw" not in json.dumps(result)
        row = rows_by_target(result)[("product", "OutboxMessages")]
        assert row["state"] == "error" and row["source_rows"] > 0 and row["target_rows"] is None
        assert "permission denied" in row["reasons"][0] and "rowdiff_reader@" in row["reasons"][0]
        assert rows_by_target(result)[("product", "Products")]["state"] == "match"
        assert result["summary"]["error"] == 1
        # It may not read the copy's records either: said, and every table is still compared.
        assert "write counters were not compared" in json.dumps(result.get("warnings"))
    finally:
        execute(target_cluster, TARGET, "DROP OWNED BY rowdiff_reader")
        execute(target_cluster, TARGET, "DROP ROLE rowdiff_reader")


# -- the fresh-deployment check -----------------------------------------------------------------

def test_expected_schemas_and_tables(run_module, consolidated, target_cluster):
    result = run_module("row_count_diff", {
        "target": endpoint(target_cluster), "target_database": TARGET, "fail_on_mismatch": False, "modules": [],
        "expect_tables": {"product": ["Products", "Nope"], "identity": [], "ghost": [], "phantom": ["T"]}})
    assert not result["failed"], result.get("msg")
    states = dict(((row["target_schema"], row["target_table"]), (row["state"], row["reasons"]))
                  for row in result["tables"])
    assert states == {
        ("product", "Products"): ("present", []),
        ("product", "Nope"): ("missing", ["table does not exist"]),
        ("identity", None): ("present", []),
        ("ghost", None): ("missing", ["schema does not exist"]),
        ("phantom", "T"): ("missing", ["schema does not exist"]),
    }
    assert result["summary"]["missing"] == 3 and result["summary"]["present"] == 2
    assert result["servers"]["source"] is None
    assert rows_by_target(result)[("product", "Products")]["target_rows"] > 0


# -- names and types that need care -------------------------------------------------------------

@pytest.fixture
def odd_pair(source_cluster, target_cluster):
    """A legacy database with a hostile table, column and schema names, a partitioned table and a
    case-insensitive column; its faithful copy on the target."""
    source_db, target_db = 'RowDiff "odd" db', "RowDiff_odd|target"
    schema = 'odd"; DROP SCHEMA public; --'
    recreate(source_cluster, source_db)
    recreate(target_cluster, target_db)
    table = sql.Identifier(HOSTILE)
    for info, dbname, where in ((source_cluster, source_db, "public"), (target_cluster, target_db, schema)):
        conn = connect(info, dbname)
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(where)))
            cur.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(where)))
            cur.execute(sql.SQL('CREATE TABLE {} ({} text, "pipe|col" int GENERATED BY DEFAULT AS IDENTITY,'
                                ' "Ci" text COLLATE "und-x-icu")').format(table, table))
            cur.execute('CREATE COLLATION IF NOT EXISTS public.ci (provider = icu, locale = \'und-u-ks-level2\','
                        ' deterministic = false)')
            cur.execute(sql.SQL('ALTER TABLE {} ALTER "Ci" TYPE text COLLATE public.ci').format(table))
            cur.execute('CREATE TABLE "Events" (at date NOT NULL, what text) PARTITION BY RANGE (at)')
            for year in (2025, 2026):
                cur.execute(f'CREATE TABLE "Events_{year}" PARTITION OF "Events"'
                            f" FOR VALUES FROM ('{year}-01-01') TO ('{year + 1}-01-01')")
        conn.close()
    execute(source_cluster, source_db, sql.SQL("INSERT INTO {} ({}, \"Ci\") VALUES ('x; --', 'abc'), (NULL, 'Mixed')")
            .format(table, table))
    execute(source_cluster, source_db, "INSERT INTO \"Events\" VALUES ('2025-05-01', 'a'), ('2026-05-01', 'b'), "
                                       "('2026-06-01', 'c')")
    modules = [{"name": "Odd|module", "source_database": source_db, "schema": schema}]
    copy_database(source_cluster, target_cluster, modules, target_db)
    yield {"modules": modules, "target_database": target_db, "schema": schema}
    drop_database(source_cluster, source_db)
    drop_database(target_cluster, target_db)


def test_hostile_names_partitions_and_collations(verify, odd_pair, target_cluster, tmp_path):
    result = verify(modules=odd_pair["modules"], target_db=odd_pair["target_database"], checksum=True,
                    report_dir=str(tmp_path))
    assert not result["failed"], result["msg"]
    rows = rows_by_target(result)
    assert set(rows) == {(odd_pair["schema"], HOSTILE), (odd_pair["schema"], "Events"),
                         (odd_pair["schema"], "Events_2025"), (odd_pair["schema"], "Events_2026")}
    assert rows[(odd_pair["schema"], HOSTILE)]["state"] == "match"
    # Each partition is compared on its own; the partitioned table holds no rows of its own.
    assert rows[(odd_pair["schema"], "Events")]["target_rows"] == 0 and rows[(odd_pair["schema"], "Events")][
        "partitioned"]
    assert [rows[(odd_pair["schema"], f"Events_{year}")]["target_rows"] for year in (2025, 2026)] == [1, 2]
    assert rows[(odd_pair["schema"], "Events_2025")]["partition_of"] == "Events"
    assert [entry["column"] for entry in result["sequences"]] == ["pipe|col"]
    assert execute(target_cluster, odd_pair["target_database"], "SELECT count(*) FROM pg_namespace"
                   " WHERE nspname = 'public'") == [(1,)]

    markdown = (tmp_path / "verification.md").read_text()
    table_lines = [line for line in markdown.splitlines() if line.startswith("| `Odd\\|module`")]
    assert len(table_lines) == 4
    for line in table_lines:
        assert line.replace("\\|", "").count("|") == 8  # 7 cells: no name added a column
    assert '."a""; DROP TABLE x; --"` | 2 | 2 | match | same |' in markdown

    # A case-insensitive collation must not hide a change of case: that column is hashed as text in "C".
    execute(target_cluster, odd_pair["target_database"], sql.SQL(
        "UPDATE {}.{} SET \"Ci\" = 'ABC' WHERE \"Ci\" = 'abc'").format(
            sql.Identifier(odd_pair["schema"]), sql.Identifier(HOSTILE)))
    changed = verify(modules=odd_pair["modules"], target_db=odd_pair["target_database"], checksum=True,
                     fail_on_mismatch=False)
    assert rows_by_target(changed)[(odd_pair["schema"], HOSTILE)]["reasons"] == ["content checksums differ"]


# -- through Ansible ----------------------------------------------------------------------------

@pytest.fixture
def verify_role(tmp_path, source_cluster, target_cluster, run_playbook):
    """``run(verify_vars, *options)``: the verify role in a play with module_defaults; returns the PlaybookRun."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))

    def run(verify_vars, *options):
        play = tmp_path / "verify.yml"
        play.write_text(textwrap.dedent("""\
            - name: Verify the consolidation
              hosts: localhost
              gather_facts: false
              module_defaults:
                group/classifiedads.consolidation.all:
                  source: {source}
                  target: {target}
              roles:
                - role: classifiedads.consolidation.verify
                  vars: {vars}
            """).format(source=json.dumps(endpoint(source_cluster)), target=json.dumps(endpoint(target_cluster)),
                        vars=json.dumps(verify_vars)))
        return run_playbook(play, *options, inventory=inventory, expect_rc=None,
                            env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_SHOW_CUSTOM_STATS="1"))

    return run


def test_the_role_prints_the_table_and_fails_the_play_on_mismatch(target_cluster, consolidated, tmp_path,
                                                                  verify_role):
    plan = {"run_id": "run-7", "run_dir": str(tmp_path / "run-7"), "target_database": TARGET, "modules": MODULES,
            "exclude_tables": ["__EFMigrationsHistory"], "backup_set_id": "run-7", "mode": "existing"}
    passed = verify_role({"verify_plan": plan})
    assert passed.rc == 0, passed.stdout + passed.stderr
    assert 'product.\\"Products\\"' in passed.stdout and "PASSED" in passed.stdout, passed.stdout
    assert '"run-7"' in passed.stdout and '"passed": true' in passed.stdout  # set_stats summary
    assert json.loads((tmp_path / "run-7" / "verification.json").read_text())["backup_set"] == "run-7"

    execute(target_cluster, TARGET, 'DELETE FROM storage."FileEntries"')
    failed = verify_role({"verify_plan": plan})
    assert failed.rc != 0
    assert "FileEntries" in failed.stdout and "mismatch" in failed.stdout and "FAILED" in failed.stdout
    assert str(tmp_path / "run-7" / "verification.md") in failed.stdout


def test_with_the_role_defaults_an_update_that_keeps_every_count_fails_the_play(target_cluster, consolidated,
                                                                                tmp_path, verify_role):
    """Writes made during the window may be updates: counts alone would say PASSED, so checksums are on by default."""
    plan = {"run_id": "run-8", "run_dir": str(tmp_path / "run-8"), "target_database": TARGET, "modules": MODULES,
            "exclude_tables": ["__EFMigrationsHistory"], "backup_set_id": "run-8", "mode": "existing"}
    execute(target_cluster, TARGET, 'UPDATE product."Products" SET "Name" = "Name" || \'!\''
                                    ' WHERE "Id" = (SELECT "Id" FROM product."Products" ORDER BY 1 LIMIT 1)')
    failed = verify_role({"verify_plan": plan})
    assert failed.rc != 0, failed.stdout
    report = json.loads((tmp_path / "run-8" / "verification.json").read_text())
    assert report["checksum"] is True and report["passed"] is False
    row = next(row for row in report["tables"] if row["target_table"] == "Products")
    assert row["state"] == "mismatch" and row["source_rows"] == row["target_rows"]


def test_the_role_checks_a_fresh_deployment_and_tolerates_check_mode(consolidated, tmp_path, verify_role):
    fresh = {"run_id": "fresh-1", "run_dir": str(tmp_path / "fresh-1"), "target_database": TARGET, "mode": "fresh",
             "modules": MODULES + [{"name": "Ghost", "source_database": "ClassifiedAds_Ghost", "schema": "ghost"}]}
    result = verify_role({"verify_plan": fresh, "verify_expect_tables": {"product": ["Products", "UserProfiles"]}})
    assert result.rc != 0, result.stdout
    report = json.loads((tmp_path / "fresh-1" / "verification.json").read_text())
    states = dict(((row["target_schema"], row["target_table"]), row["state"]) for row in report["tables"])
    assert states[("ghost", None)] == "missing" and states[("product", "UserProfiles")] == "missing"
    assert states[("product", "Products")] == "present" and states[("identity", None)] == "present"
    assert report["servers"]["source"] is None

    not_yet = dict(fresh, target_database="ClassifiedAds_NotCreatedYet", run_dir=str(tmp_path / "fresh-2"))
    checked = verify_role({"verify_plan": not_yet}, "--check")
    assert checked.rc == 0, checked.stdout
    assert "Check mode, nothing verified" in checked.stdout and "does not exist" in checked.stdout
    assert not (tmp_path / "fresh-2").exists()
