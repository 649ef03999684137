"""data_copy against two real PostgreSQL 15 servers: the legacy databases on ``source_cluster``,
the consolidated database (made by the stand-in migrator) on ``target_cluster``.

The main run goes check mode -> copy -> rerun; the other tests each build their own target
database so that they can break it (non-empty tables, changed columns, a killed copy, a role that
is not superuser).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
from conftest import drop_database, endpoint
from constants import HOSTILE
from constants import MODULE_SCHEMAS as MODULES
from devkit import legacy, migrator
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import run_files

pytestmark = pytest.mark.integration

PREFIX = "DataCopy"
TARGET_DB = "DataCopy_Consolidated"
RUN_ID = "copy-1"
# Tables the migrator seeds (HasData rows, DbUp's journal): the legacy copy replaces their rows.
SEEDED = {"Product": ["Products"], "Identity": ["Users"],
          "Configuration": ["ConfigurationEntries", "LocalizationEntries"]}
APPLICATION = "classifiedads.consolidation"
# The NULL policies the ClassifiedAds defaults ship ({module: {table: override}}): the legacy fixtures hold
# claims whose shadow key is NULL, which the copy quarantines.
SHIPPED_POLICIES = legacy.shipped_null_policies()
# {(module, table): the columns whose NULL keeps a legacy row out of the copy}
QUARANTINED = {(module, table): [column for column, policy in override["columns"].items()
                                 if policy["on_null"] == "quarantine"]
               for module, tables in SHIPPED_POLICIES.items() for table, override in tables.items()}


# -- helpers -----------------------------------------------------------------------------------------

def query(info, dbname, statement, params=None, **connect):
    conn = psycopg2.connect(**dict(info.connect_kwargs(dbname), **connect))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def plan_modules(prefix=PREFIX, seeded_truncate=True):
    modules = []
    for name, schema in MODULES:
        tables = {}
        if name == "AuditLog":
            tables = {"schemaversions": {"schema": "public", "truncate": True}, "CacheEntries": {"schema": "public"}}
        if seeded_truncate:
            tables.update({table: {"truncate": True} for table in SEEDED.get(name, [])})
        tables.update(SHIPPED_POLICIES.get(name, {}))
        modules.append({"name": name, "source_database": f"{prefix}_{name}", "schema": schema, "tables": tables})
    return modules


def destination(module, table):
    if module == "AuditLog" and table in ("schemaversions", "CacheEntries"):
        return "public"
    return dict(MODULES)[module]


def copy_args(source_cluster, target_cluster, target_db, run_id=RUN_ID, prefix=PREFIX, **extra):
    args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=target_db,
                run_id=run_id, modules=plan_modules(prefix), parallel=2)
    args.update(extra)
    return args


def migrated_target(info, name, **login):
    """A fresh consolidated database as the stand-in migrator leaves it."""
    drop_database(info, name)
    kwargs = dict(info.connect_kwargs(name), **login)
    migrator.migrate(kwargs, log=lambda line: None)
    return name


def tables_of(info, dbname, schemas=None):
    rows = query(info, dbname, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                               "c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', "
                               "'information_schema') AND n.nspname !~ '^pg_toast' ORDER BY 1, 2")
    return [(schema, table) for schema, table in rows if schemas is None or schema in schemas]


def digest(info, dbname, schema, table, not_null=()):
    """(count, md5 over every row's text, columns in name order, rows sorted): content equality.

    ``not_null``: only the rows with a value in these columns (what a quarantine policy copies).
    """
    columns = [row[0] for row in query(info, dbname, "SELECT attname FROM pg_attribute WHERE attrelid = "
                                                     "format('%%I.%%I', %s, %s)::regclass AND attnum > 0 "
                                                     "AND NOT attisdropped ORDER BY attname", (schema, table))]
    statement = sql.SQL("SELECT count(*), md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) "
                        "FROM (SELECT {} FROM {}{}) r").format(
        sql.SQL(", ").join(sql.Identifier(column) for column in columns), sql.Identifier(schema, table),
        sql.SQL(" WHERE ") + sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(column))
                                                   for column in not_null) if not_null else sql.SQL(""))
    return query(info, dbname, statement)[0]


def catalog(info, dbname):
    """Relations, constraints (with definitions), indexes (with definitions), triggers and row counts."""
    relations = query(info, dbname, "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
                                    "ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', "
                                    "'information_schema') AND n.nspname !~ '^pg_toast' ORDER BY 1, 2")
    constraints = query(info, dbname, "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), "
                                      "convalidated FROM pg_constraint WHERE connamespace NOT IN "
                                      "('pg_catalog'::regnamespace, 'information_schema'::regnamespace) ORDER BY 1, 2")
    indexes = query(info, dbname, "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisvalid "
                                  "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace NOT IN "
                                  "('pg_catalog'::regnamespace, 'information_schema'::regnamespace, "
                                  "'pg_toast'::regnamespace) ORDER BY 1")
    triggers = query(info, dbname, "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger "
                                   "WHERE NOT tgisinternal ORDER BY 1, 2")
    counts = {}
    for schema, table in tables_of(info, dbname):
        counts[(schema, table)] = query(info, dbname, sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(schema, table)))[0][0]
    return {"relations": relations, "constraints": constraints, "indexes": indexes, "triggers": triggers,
            "counts": counts}


def server_catalog(info):
    databases = [row[0] for row in query(info, "postgres", "SELECT datname FROM pg_database WHERE datallowconn "
                                                           "AND NOT datistemplate ORDER BY 1")]
    return {database: catalog(info, database) for database in databases}


def source_digests(info, prefix=PREFIX):
    return {(name, table): digest(info, f"{prefix}_{name}", "public", table)
            for name, _schema in MODULES for _s, table in tables_of(info, f"{prefix}_{name}", ["public"])}


def assert_copied(source_cluster, target_cluster, target_db, prefix=PREFIX):
    """Every legacy table (but EF's history) has the same rows in its target table, less the quarantined ones."""
    for (module, table), expected in source_digests(source_cluster, prefix).items():
        if table == "__EFMigrationsHistory":
            continue
        if (module, table) in QUARANTINED:
            expected = digest(source_cluster, f"{prefix}_{module}", "public", table, QUARANTINED[(module, table)])
        assert digest(target_cluster, target_db, destination(module, table), table) == expected, (module, table)


def structure(info, dbname):
    """Constraints, indexes and triggers: what a copy must leave exactly as the migrator made it."""
    snapshot = catalog(info, dbname)
    return {key: [row for row in snapshot[key] if not row[0].startswith("_consolidation.")]
            for key in ("constraints", "indexes", "triggers")}


def application_sessions(info):
    return query(info, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                 (APPLICATION,))[0][0]


# -- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def legacy_databases(source_cluster):
    legacy.create(source_cluster, 0.05, prefix=PREFIX, drop_existing=True, out=lambda line: None)
    yield
    legacy.drop(source_cluster, prefix=PREFIX)


@pytest.fixture(scope="module")
def pristine(target_cluster, legacy_databases):
    """A migrator-made database nobody copies into: the reference for keys, indexes and triggers."""
    name = migrated_target(target_cluster, "DataCopy_Pristine")
    yield structure(target_cluster, name)
    drop_database(target_cluster, name)


@pytest.fixture(scope="module")
def copied(run_module, source_cluster, target_cluster, legacy_databases, tmp_path_factory):
    """Check mode, the copy, and a rerun with the same run id, on one target database."""
    migrated_target(target_cluster, TARGET_DB)
    # A user trigger that would rewrite every copied row if it fired during the copy.
    query(target_cluster, TARGET_DB, """
        CREATE FUNCTION configuration.stamp() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN NEW."Description" := 'stamped'; RETURN NEW; END $$;
        CREATE TRIGGER stamp BEFORE INSERT ON configuration."ConfigurationEntries"
        FOR EACH ROW EXECUTE FUNCTION configuration.stamp();""")
    log = tmp_path_factory.mktemp("copy") / "data_copy.log"
    args = copy_args(source_cluster, target_cluster, TARGET_DB, progress_log=str(log))
    source_before, target_before = server_catalog(source_cluster), catalog(target_cluster, TARGET_DB)
    digests_before = source_digests(source_cluster)
    check = run_module("data_copy", args, check=True)
    target_after_check = catalog(target_cluster, TARGET_DB)
    source_after_check = server_catalog(source_cluster)
    log_after_check = log.exists()
    first = run_module("data_copy", args)
    second = run_module("data_copy", args)
    yield dict(check=check, first=first, second=second, log=log, args=args, source_before=source_before,
               target_before=target_before, target_after_check=target_after_check,
               source_after_check=source_after_check, log_after_check=log_after_check, digests_before=digests_before)
    drop_database(target_cluster, TARGET_DB)


# -- check mode --------------------------------------------------------------------------------------

def test_check_mode_changes_nothing_on_either_server(copied):
    assert not copied["check"]["failed"], copied["check"]
    assert copied["source_after_check"] == copied["source_before"]
    assert copied["target_after_check"] == copied["target_before"]
    assert not copied["log_after_check"]


def test_check_mode_reports_exact_rows_sizes_and_statements(copied, source_cluster):
    check = copied["check"]
    assert check["changed"] is True
    counts = {(name, table): count for (name, table), (count, _md5) in copied["digests_before"].items()}
    tables = check["tables"]
    assert {entry["status"] for entry in tables} == {"would_copy"}
    assert len(tables) == len([key for key in counts if key[1] != "__EFMigrationsHistory"])
    quarantined = {}
    for (module, table), columns in QUARANTINED.items():
        (quarantined[table],) = query(source_cluster, f"{PREFIX}_{module}", sql.SQL(
            "SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), sql.SQL(" OR ").join(
                sql.SQL("{} IS NULL").format(sql.Identifier(column)) for column in columns)))[0]
    assert quarantined == {"UserClaims": 3, "RoleClaims": 2}
    for entry in tables:
        module = entry["source_database"].split("_", 1)[1]
        assert entry["rows"] == counts[(module, entry["source_table"])] - quarantined.get(entry["source_table"], 0)
        assert entry["bytes"] == entry["source_size"] > 0
    notes = ['identity."RoleClaims"."RoleId": 2 NULLs -> quarantined (policy)',
             'identity."UserClaims"."UserId": 3 NULLs -> quarantined (policy)']
    assert sorted(check["progress"][:2]) == notes
    assert [line for line in check["progress"][2:] if line.startswith("would copy ")] == check["progress"][2:]
    assert len(check["progress"][2:]) == len(tables)
    assert any(q.startswith('COPY "product"."Products" (') and q.endswith("FROM STDIN (FORMAT binary, FREEZE)")
               for q in check["queries"])
    assert {entry["action"] for entry in check["deferred"]} == {"would_drop", "would_rebuild",
                                                                "would_disable_during_copy"}
    assert {(s["target_table"], s["column"]) for s in check["sequences"]} == {
        ("DataProtectionKeys", "Id"), ("schemaversions", "schemaversionsid")}


def test_the_legacy_data_passes_the_plan_time_checks_at_no_scan(copied):
    """The legacy databases enforce every key and constraint the migration declares: nothing to report, and
    the data checks read no table."""
    for result in (copied["check"], copied["first"]):
        assert result["data_checks"] == {"problems": [], "not_checked": [], "scans": 0, "report": None}


# -- the copy ----------------------------------------------------------------------------------------

def test_copy_reports_every_table_once(copied):
    first = copied["first"]
    assert not first["failed"], first.get("msg")
    assert first["changed"] is True
    assert {entry["status"] for entry in first["tables"]} == {"copied"}
    assert {(e["source_database"], e["source_table"]) for e in first["tables"]} == \
        {(e["source_database"], e["source_table"]) for e in copied["check"]["tables"]}
    assert {"source_database": f"{PREFIX}_Product", "source_table": "__EFMigrationsHistory"} in first["excluded"]
    assert first["totals"]["tables"] == len(first["tables"]) and first["totals"]["rows"] > 0


def test_every_table_matches_its_source(copied, source_cluster, target_cluster):
    assert_copied(source_cluster, target_cluster, TARGET_DB)


def test_keys_indexes_and_triggers_are_back_as_the_migrator_made_them(copied, pristine, target_cluster):
    after = structure(target_cluster, TARGET_DB)
    expected_triggers = pristine["triggers"] + [('configuration."ConfigurationEntries"', "stamp", "O")]
    assert after["constraints"] == pristine["constraints"]
    assert after["indexes"] == pristine["indexes"]
    assert sorted(after["triggers"]) == sorted(expected_triggers)
    assert query(target_cluster, TARGET_DB, "SELECT count(*) FROM _consolidation.deferred_ddl") == [(0,)]
    kinds = {(entry["kind"], entry["action"]) for entry in copied["first"]["deferred"]}
    assert kinds == {("foreign_key", "dropped"), ("foreign_key", "restored"), ("primary_key", "rebuilt"),
                     ("index", "rebuilt"), ("trigger", "disabled_during_copy")}


def test_the_user_trigger_did_not_fire_on_copied_rows(copied, target_cluster):
    stamped = query(target_cluster, TARGET_DB,
                    "SELECT count(*) FROM configuration.\"ConfigurationEntries\" WHERE \"Description\" = 'stamped'")
    assert stamped == [(0,)]
    query(target_cluster, TARGET_DB, "INSERT INTO configuration.\"ConfigurationEntries\" "
                                     "(\"Key\", \"IsSensitive\", \"CreatedDateTime\") VALUES ('new', false, now())")
    assert query(target_cluster, TARGET_DB, "SELECT \"Description\" FROM configuration.\"ConfigurationEntries\" "
                                            "WHERE \"Key\" = 'new'") == [("stamped",)]


def test_progress_is_returned_and_logged_line_by_line(copied):
    first = copied["first"]
    table_lines = [line for line in first["progress"] if " MB in " in line and not line.startswith("total: ")]
    assert len(table_lines) == len(first["tables"])
    assert any(line.startswith('product."Products": ') and " MB in " in line for line in table_lines)
    logged = copied["log"].read_text().splitlines()
    assert logged == first["progress"]
    assert logged[-1].startswith("total: ")


def test_queries_are_the_statements_not_the_data(copied):
    queries = copied["first"]["queries"]
    assert 'TRUNCATE ONLY "identity"."Users"' in queries
    assert any(q.startswith('COPY "public"."Products" (') and "TO STDOUT (FORMAT binary)" in q for q in queries)
    assert any(q.startswith('ALTER TABLE "identity"."UserRoles" ADD CONSTRAINT "FK_UserRoles_Users_UserId" ')
               and q.endswith("NOT VALID") for q in queries)
    assert 'ALTER TABLE "identity"."UserRoles" VALIDATE CONSTRAINT "FK_UserRoles_Users_UserId"' in queries
    assert all(len(q) < 2000 for q in queries)


def test_sequences_continue_after_the_copied_values(copied, source_cluster, target_cluster):
    sequences = {entry["target_table"]: entry for entry in copied["first"]["sequences"]}
    assert set(sequences) == {"DataProtectionKeys", "schemaversions"}
    keys = sequences["DataProtectionKeys"]
    legacy_max = query(source_cluster, f"{PREFIX}_Identity", 'SELECT max("Id") FROM "DataProtectionKeys"')[0][0]
    assert keys["target_column_extreme"] == legacy_max and keys["setval"] == [keys["source_last_value"], True]
    new_id = query(target_cluster, TARGET_DB, 'INSERT INTO identity."DataProtectionKeys" ("FriendlyName", "Xml") '
                                              "VALUES ('after-copy', '<key/>') RETURNING \"Id\"")[0][0]
    assert new_id == keys["source_last_value"] + 1
    journal_max = query(source_cluster, f"{PREFIX}_AuditLog", "SELECT max(schemaversionsid) FROM schemaversions")[0][0]
    new_version = query(target_cluster, TARGET_DB, "INSERT INTO public.schemaversions (scriptname, applied) "
                                                   "VALUES ('after-copy.sql', now()) RETURNING schemaversionsid")[0][0]
    assert new_version > journal_max


def test_legacy_history_rows_stay_out(copied, target_cluster):
    stray = query(target_cluster, TARGET_DB, "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                             "c.relnamespace WHERE c.relname = '__EFMigrationsHistory'")
    assert stray == [("public",)]
    ids = {row[0] for row in query(target_cluster, TARGET_DB,
                                   'SELECT "MigrationId" FROM public."__EFMigrationsHistory"')}
    assert ids == {migration for module in migrator.ddl.MODULES for migration in module.migrations}


def test_source_databases_are_unchanged(copied, source_cluster):
    assert server_catalog(source_cluster) == copied["source_before"]
    assert source_digests(source_cluster) == copied["digests_before"]


def test_completion_is_recorded_per_table(copied, target_cluster):
    recorded = query(target_cluster, TARGET_DB, "SELECT source_database, source_table, target_schema, target_table, "
                                                "rows FROM _consolidation.copied_tables WHERE run_id = %s", (RUN_ID,))
    reported = {(e["source_database"], e["source_table"], e["target_schema"], e["target_table"], e["rows"])
                for e in copied["first"]["tables"]}
    assert set(recorded) == reported


def test_rerun_with_the_same_run_id_changes_nothing(copied, target_cluster):
    second = copied["second"]
    assert not second["failed"], second.get("msg")
    assert second["changed"] is False
    assert {entry["status"] for entry in second["tables"]} == {"skipped_complete"}
    assert second["totals"]["tables"] == 0 and second["totals"]["tables_skipped"] == len(second["tables"])
    assert not any(q.startswith(("TRUNCATE", "COPY", "ALTER")) for q in second["queries"])


# -- refusals ----------------------------------------------------------------------------------------

def test_non_empty_target_tables_are_refused_by_name(run_module, source_cluster, target_cluster, legacy_databases):
    target_db = migrated_target(target_cluster, "DataCopy_Refused")
    try:
        args = copy_args(source_cluster, target_cluster, target_db, modules=plan_modules(seeded_truncate=False))
        before = catalog(target_cluster, target_db)
        for check in (True, False):
            result = run_module("data_copy", args, check=check)
            assert result["failed"] and not result["changed"]
            for table in ('product."Products"', 'identity."Users"', 'configuration."ConfigurationEntries"',
                          'configuration."LocalizationEntries"'):
                assert table in result["msg"], (check, result["msg"])
            assert "public.schemaversions" not in result["msg"]  # its override allows truncation
            assert catalog(target_cluster, target_db) == before
        # The global switch allows them all.
        result = run_module("data_copy", dict(args, truncate=True))
        assert not result["failed"], result.get("msg")
        assert_copied(source_cluster, target_cluster, target_db)
    finally:
        drop_database(target_cluster, target_db)


def test_column_mismatch_stops_the_run_before_any_data_moves(run_module, source_cluster, target_cluster,
                                                             legacy_databases):
    target_db = migrated_target(target_cluster, "DataCopy_Mismatch")
    try:
        query(target_cluster, target_db, 'ALTER TABLE product."Products" DROP COLUMN "Description", '
                                         'ADD COLUMN "Price" numeric; '
                                         'ALTER TABLE storage."FileEntries" ALTER COLUMN "Size" TYPE integer')
        before = catalog(target_cluster, target_db)
        for check in (True, False):
            result = run_module("data_copy", copy_args(source_cluster, target_cluster, target_db), check=check)
            assert result["failed"], result
            message = result["msg"]
            assert 'only in the source: "Description"' in message and 'only in the target: "Price"' in message
            assert 'source columns: "Id" uuid, "Code" text, "Name" text, "Description" text' in message
            assert '"Size" is bigint in the source but integer in the target' in message
            # The plan-time data checks add what the rows say: the "Description" values would be lost (every
            # "Size" fits an integer, so that column adds nothing), then one line sums the data problems up.
            assert len(result["problems"]) == 4
            assert [(problem["subject"], problem["what"]) for problem in result["data_checks"]["problems"]] == [
                ('column "Description"', "hold values with no target column (they would be lost)")]
            assert result["problems"][-1].startswith("1 data problem found before the copy")
            assert catalog(target_cluster, target_db) == before
    finally:
        drop_database(target_cluster, target_db)


def test_missing_connection_is_a_clear_error(run_module, target_cluster):
    result = run_module("data_copy", dict(target=endpoint(target_cluster), target_database="x", run_id="r",
                                          modules=plan_modules()))
    assert result["failed"] and "source is required" in result["msg"]


# -- hostile names -----------------------------------------------------------------------------------

def test_hostile_names_reordered_and_generated_columns_copy(run_module, source_cluster, target_cluster):
    """A table and column named like an injection, columns in another order on the target, a generated
    column there, and a composite type (its binary form holds an OID, so that table travels as text)."""
    source_db, target_db = HOSTILE, HOSTILE + " target"
    for info, name in ((source_cluster, source_db), (target_cluster, target_db)):
        drop_database(info, name)
        query(info, "postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    names = dict(table=sql.Identifier(HOSTILE), index=sql.Identifier(HOSTILE + " ix"),
                 pair=sql.Identifier(HOSTILE + " pair"))
    source_ddl = sql.SQL("CREATE TYPE public.{pair} AS (a int, b text);"
                         "CREATE TABLE public.{table} (id serial PRIMARY KEY, {table} text, note text, "
                         "p public.{pair});"
                         "CREATE INDEX {index} ON public.{table} ({table});").format(**names)
    target_ddl = sql.SQL("CREATE SCHEMA {table}; CREATE TYPE {table}.{pair} AS (a int, b text);"
                         "CREATE TABLE {table}.{table} (note text, p {table}.{pair}, {table} text, "
                         "id serial PRIMARY KEY, note_length int GENERATED ALWAYS AS (length(note)) STORED);"
                         "CREATE INDEX {index} ON {table}.{table} ({table});").format(**names)
    try:
        query(source_cluster, source_db, source_ddl)
        query(source_cluster, source_db, sql.SQL(
            "INSERT INTO public.{table} ({table}, note, p) SELECT md5(i::text), repeat('x', i), "
            "ROW(i, 'b' || i)::public.{pair} FROM generate_series(1, 500) i").format(**names))
        query(target_cluster, target_db, target_ddl)
        args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=target_db,
                    run_id="hostile", state_schema=HOSTILE + " state",
                    modules=[{"name": HOSTILE, "source_database": source_db, "schema": HOSTILE}])
        result = run_module("data_copy", args)
        assert not result["failed"], result.get("msg")
        assert result["progress"][0].startswith('"a""; DROP TABLE x; --"."a""; DROP TABLE x; --": 500 rows')
        assert result["tables"][0]["format"] == "text"
        columns = sql.SQL("SELECT id, {table}, note, p::text FROM {schema}.{table} ORDER BY id")
        assert query(target_cluster, target_db, columns.format(schema=names["table"], **names)) == \
            query(source_cluster, source_db, columns.format(schema=sql.Identifier("public"), **names))
        assert query(target_cluster, target_db, sql.SQL("SELECT count(*) FROM {table}.{table} WHERE note_length = "
                                                        "length(note)").format(**names)) == [(500,)]
        new_id = query(target_cluster, target_db, sql.SQL("INSERT INTO {table}.{table} (note) VALUES ('new') "
                                                          "RETURNING id").format(**names))[0][0]
        assert new_id == 501
        assert query(target_cluster, target_db, "SELECT count(*) FROM pg_indexes WHERE indexname = %s",
                     (HOSTILE + " ix",)) == [(1,)]
        assert run_module("data_copy", args)["changed"] is False
    finally:
        drop_database(source_cluster, source_db)
        drop_database(target_cluster, target_db)


SHARED_SEQUENCE_DDL = """
CREATE SEQUENCE {s}.ticket_seq;
CREATE TABLE {s}.orders (id bigint PRIMARY KEY DEFAULT nextval('{s}.ticket_seq'), note text);
CREATE TABLE {s}.refunds (id bigint PRIMARY KEY DEFAULT nextval('{s}.ticket_seq'), note text);
"""


def test_a_sequence_no_column_owns_shared_by_two_tables_ends_past_both(run_module, source_cluster, target_cluster):
    """Defaults calling nextval() on one sequence that no column owns, the larger table (loaded first) holding an
    explicit id far ahead of it: the smaller table, loaded last, must not move the sequence back to the legacy
    state. The verification checks it for both columns and fails once it is set back."""
    source_db, target_db = "DataCopy_SharedSeq", "DataCopy_SharedSeq_Target"
    for info, name in ((source_cluster, source_db), (target_cluster, target_db)):
        drop_database(info, name)
        query(info, "postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        query(source_cluster, source_db, SHARED_SEQUENCE_DDL.format(s="public"))
        query(source_cluster, source_db, "INSERT INTO orders (note) SELECT 'o' || i FROM generate_series(1, 300) i;"
                                         "INSERT INTO refunds (note) SELECT 'r' || i FROM generate_series(1, 200) i;"
                                         "INSERT INTO orders (id, note) VALUES (10000, 'imported by hand')")
        query(target_cluster, target_db, "CREATE SCHEMA shop;" + SHARED_SEQUENCE_DDL.format(s="shop"))
        modules = [{"name": "Shop", "source_database": source_db, "schema": "shop"}]
        args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=target_db,
                    run_id="shared-seq", modules=modules, parallel=1)
        result = run_module("data_copy", args)
        assert not result["failed"], result.get("msg")
        assert {(entry["target_table"], entry["target_sequence"]) for entry in result["sequences"]} == {
            ("orders", "shop.ticket_seq"), ("refunds", "shop.ticket_seq")}
        insert = "INSERT INTO shop.{} (note) VALUES ('new') RETURNING id"
        new_ids = [query(target_cluster, target_db, insert.format(table))[0][0] for table in ("orders", "refunds")]
        assert min(new_ids) > 10000, new_ids

        verify = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=target_db,
                      modules=modules, fail_on_mismatch=False)
        checked = run_module("row_count_diff", verify)
        states = {(entry["target_table"], entry["column"]): entry["state"] for entry in checked["sequences"]}
        assert states == {("orders", "id"): "ok", ("refunds", "id"): "ok"}, checked["sequences"]
        query(target_cluster, target_db, "SELECT setval('shop.ticket_seq', 1)")
        checked = run_module("row_count_diff", verify)
        states = {(entry["target_table"], entry["column"]): entry["state"] for entry in checked["sequences"]}
        assert states == {("orders", "id"): "behind", ("refunds", "id"): "behind"}, checked["sequences"]
        assert not checked["summary"]["passed"]
    finally:
        drop_database(source_cluster, source_db)
        drop_database(target_cluster, target_db)


def test_nulls_where_the_target_forbids_them_are_all_reported_before_any_row_moves(run_module, source_cluster,
                                                                                   target_cluster):
    """Real legacy Identity databases hold NULLs in nullable shadow keys (UserClaims.UserId, RoleClaims.RoleId)
    that the application's migration makes NOT NULL: every such column is counted in the snapshot and reported
    at once, in check mode too, and nothing is changed on the target (no table loaded, no key dropped)."""
    source_db, target_db = "DataCopy_Nulls", "DataCopy_Nulls_Target"
    for info, name in ((source_cluster, source_db), (target_cluster, target_db)):
        drop_database(info, name)
        query(info, "postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    claims = ('CREATE TABLE {s}."Users" ("Id" int PRIMARY KEY, "Email" text);'
              'CREATE TABLE {s}."UserClaims" ("Id" int PRIMARY KEY, "UserId" int {null} REFERENCES {s}."Users",'
              ' "Type" text);'
              'CREATE TABLE {s}."RoleClaims" ("Id" int PRIMARY KEY, "RoleId" int {null}, "Type" text);')
    try:
        query(source_cluster, source_db, claims.format(s="public", null="NULL"))
        query(source_cluster, source_db, """INSERT INTO "Users" VALUES (1, 'alice@example.com');
            INSERT INTO "UserClaims" VALUES (1, 1, 'a'), (2, NULL, 'secret-claim'), (3, NULL, 'b');
            INSERT INTO "RoleClaims" VALUES (1, NULL, 'r')""")
        query(target_cluster, target_db, "CREATE SCHEMA identity;" + claims.format(s="identity", null="NOT NULL"))
        args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=target_db,
                    run_id="nulls", modules=[{"name": "Identity", "source_database": source_db, "schema": "identity"}])
        before = structure(target_cluster, target_db)
        for check in (True, False):
            result = run_module("data_copy", args, check=check)
            assert result["failed"], result
            fix = ("which are NOT NULL in the target; nothing was copied. Fix the legacy rows, or set a policy in the "
                   "module mapping: tables: {<table>: {columns: {<column>: {on_null: default|quarantine}}}}")
            assert sorted(result["problems"]) == [
                f'{source_db}:public."RoleClaims" -> identity."RoleClaims": NULL in column(s) "RoleId" '
                f"(1 NULL, e.g. Id=1), {fix}",
                f'{source_db}:public."UserClaims" -> identity."UserClaims": NULL in column(s) "UserId" '
                f"(2 NULLs, e.g. Id=2; Id=3), {fix}"]
            assert "secret-claim" not in json.dumps(result)
        assert structure(target_cluster, target_db) == before
        assert query(target_cluster, target_db, 'SELECT count(*) FROM identity."Users"') == [(0,)]
    finally:
        drop_database(source_cluster, source_db)
        drop_database(target_cluster, target_db)


# -- killed mid-table, then resumed -------------------------------------------------------------------

KILL_PREFIX = "DataCopyKill"


@pytest.fixture(scope="module")
def kill_legacy(source_cluster):
    # Big enough that each of the largest tables streams for a good fraction of a second.
    legacy.create(source_cluster, 2, prefix=KILL_PREFIX, drop_existing=True, out=lambda line: None)
    yield
    legacy.drop(source_cluster, prefix=KILL_PREFIX)


def start_module(args, workdir):
    path = workdir / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_remote_tmp=str(workdir))}))
    return subprocess.Popen(
        [sys.executable, "-m", "ansible_collections.classifiedads.consolidation.plugins.modules.data_copy", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(workdir),
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))


def streaming_copy(target_cluster):
    rows = query(target_cluster, "postgres", "SELECT query FROM pg_stat_activity WHERE application_name = %s "
                                             "AND state = 'active' AND query LIKE 'COPY %%FROM STDIN%%'",
                 (APPLICATION,))
    return rows[0][0] if rows else None


def test_killed_mid_table_the_rerun_completes_without_duplicates(run_module, source_cluster, target_cluster,
                                                                 kill_legacy, pristine, tmp_path):
    target_db = migrated_target(target_cluster, "DataCopy_Killed")
    log = tmp_path / "data_copy.log"
    args = copy_args(source_cluster, target_cluster, target_db, run_id="killed", prefix=KILL_PREFIX, parallel=1,
                     progress_log=str(log))
    try:
        process = start_module(args, tmp_path)
        streaming, deadline = None, time.monotonic() + 120
        while streaming is None and process.poll() is None and time.monotonic() < deadline:
            # Kill once a table is complete and the next one is streaming.
            if log.exists() and " MB in " in log.read_text():
                streaming = streaming_copy(target_cluster)
            if streaming is None:
                time.sleep(0.01)
        assert streaming is not None, "the copy finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        while application_sessions(target_cluster) or application_sessions(source_cluster):
            time.sleep(0.05)

        done = {row[0] for row in query(target_cluster, target_db, "SELECT target_schema || '.' || target_table "
                                                                   "FROM _consolidation.copied_tables")}
        assert 1 <= len(done) < 28
        # The interrupted table rolled back to what the migrator left (empty): nothing half-copied.
        interrupted = streaming.split(" (", 1)[0][len("COPY "):].replace('"', "")
        assert interrupted not in done
        schema, table = interrupted.split(".", 1)
        assert query(target_cluster, target_db, sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(schema, table))) == [(0,)]
        # The foreign keys were dropped and are recorded for the next run.
        recorded = query(target_cluster, target_db, "SELECT count(*) FROM _consolidation.deferred_ddl")[0][0]
        assert recorded == 7
        assert query(target_cluster, target_db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(0,)]

        result = run_module("data_copy", dict(args, parallel=2))
        assert not result["failed"], result.get("msg")
        statuses = {e["target_schema"] + "." + e["target_table"]: e["status"] for e in result["tables"]}
        assert {name for name, status in statuses.items() if status == "skipped_complete"} == done
        assert statuses[interrupted] == "copied"
        assert_copied(source_cluster, target_cluster, target_db, prefix=KILL_PREFIX)
        after = structure(target_cluster, target_db)
        assert after["constraints"] == pristine["constraints"]
        assert after["indexes"] == pristine["indexes"]
        assert query(target_cluster, target_db, "SELECT count(*) FROM _consolidation.deferred_ddl") == [(0,)]
        assert run_module("data_copy", args)["changed"] is False
    finally:
        drop_database(target_cluster, target_db)


def test_a_table_failing_mid_stream_stops_the_run_and_a_rerun_resumes(
        run_module, source_cluster, target_cluster, kill_legacy, pristine, tmp_path):
    target_db = migrated_target(target_cluster, "DataCopy_Failing")
    # Every row breaks this check: the COPY fails on its first row while the source still has megabytes to send.
    # It calls a function of the target's own, which the plan-time data checks cannot evaluate on the source.
    query(target_cluster, target_db, "CREATE FUNCTION product.no_rows(uuid) RETURNS boolean LANGUAGE sql "
                                     "IMMUTABLE AS 'SELECT false'; "
                                     'ALTER TABLE product."ArchivedOutboxMessages" '
                                     'ADD CONSTRAINT "no rows" CHECK (product.no_rows("Id"))')
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    args = copy_args(source_cluster, target_cluster, target_db, run_id="failing", prefix=KILL_PREFIX,
                     progress_log=str(run_dir / "data_copy.log"))
    try:
        result = run_module("data_copy", args)
        assert result["failed"]
        assert 'product."ArchivedOutboxMessages"' in result["msg"] and '"no rows"' in result["msg"]
        assert "rerun with the same run_id" in result["msg"]
        # The violation names the constraint and the COPY line, never the row (it may hold personal data).
        assert "Failing row contains" not in json.dumps(result)
        assert "COPY ArchivedOutboxMessages, line 1" in result["msg"]
        # A short result: the error, the side, the failing statement; every statement is in the failure record.
        assert len(json.dumps(result)) < 4096, json.dumps(result)[:6000]
        assert result["side"] == "target"
        assert result["failed_statement"].startswith('COPY "product"."ArchivedOutboxMessages"')
        assert "queries" not in result and "tables" not in result
        record = Path(result["failure_record"])
        assert record.parent == run_dir and stat.S_IMODE(record.stat().st_mode) == 0o600
        saved = json.loads(record.read_text())
        assert len(saved["queries"]) == result["queries_total"] > 10
        assert result["failed_statement"] in saved["queries"] and len(saved["tables"]) > 10
        assert "Failing row contains" not in record.read_text()
        assert query(target_cluster, target_db, 'SELECT count(*) FROM product."ArchivedOutboxMessages"') == [(0,)]
        while application_sessions(target_cluster) or application_sessions(source_cluster):
            time.sleep(0.05)
        assert query(target_cluster, target_db, "SELECT count(*) FROM _consolidation.deferred_ddl") == [(7,)]

        query(target_cluster, target_db, 'ALTER TABLE product."ArchivedOutboxMessages" DROP CONSTRAINT "no rows"; '
                                         "DROP FUNCTION product.no_rows(uuid)")
        result = run_module("data_copy", args)
        assert not result["failed"], result.get("msg")
        assert_copied(source_cluster, target_cluster, target_db, prefix=KILL_PREFIX)
        assert structure(target_cluster, target_db) == pristine
    finally:
        drop_database(target_cluster, target_db)


# -- a role that owns the target schemas, nothing more (a managed service) ----------------------------

OWNER = "data_copy_owner"


@pytest.fixture
def owner_role(source_cluster, target_cluster, legacy_databases):
    password = secrets.token_urlsafe(16)
    for info in (source_cluster, target_cluster):
        query(info, "postgres", sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(OWNER)))
        query(info, "postgres", sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s")
              .format(sql.Identifier(OWNER)), (password,))
    # Source: what the module documents (CONNECT and USAGE are PUBLIC's by default).
    for name, _schema in MODULES:
        query(source_cluster, f"{PREFIX}_{name}", sql.SQL(
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {0}; GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {0}")
            .format(sql.Identifier(OWNER)))
    # Target: the database belongs to the role, which runs the migrator and so owns every schema and table.
    target_db = "DataCopy_Owned"
    drop_database(target_cluster, target_db)
    query(target_cluster, "postgres", sql.SQL("CREATE DATABASE {} OWNER {}").format(
        sql.Identifier(target_db), sql.Identifier(OWNER)))
    login = dict(target_cluster.connect_kwargs(target_db), user=OWNER, password=password)
    del login["passfile"]
    migrator.migrate(login, log=lambda line: None)
    yield target_db, password
    drop_database(target_cluster, target_db)
    for name, _schema in MODULES:
        query(source_cluster, f"{PREFIX}_{name}", sql.SQL("DROP OWNED BY {}").format(sql.Identifier(OWNER)))
    for info in (source_cluster, target_cluster):
        query(info, "postgres", sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(OWNER)))


def test_a_role_that_only_owns_the_target_can_copy(run_module, source_cluster, target_cluster, owner_role, pristine):
    target_db, password = owner_role
    source, target = (dict(endpoint(info), user=OWNER, password=password) for info in (source_cluster, target_cluster))
    del source["passfile"], target["passfile"]
    args = dict(copy_args(source_cluster, target_cluster, target_db), source=source, target=target)
    assert not run_module("data_copy", args, check=True)["failed"]
    result = run_module("data_copy", args)
    assert not result["failed"], result.get("msg")
    assert password not in json.dumps(result)
    assert_copied(source_cluster, target_cluster, target_db)
    after = structure(target_cluster, target_db)
    assert after["constraints"] == pristine["constraints"]
    assert query(target_cluster, target_db, "SELECT nspowner::regrole::text FROM pg_namespace "
                                            "WHERE nspname = '_consolidation'") == [(OWNER,)]


# -- the role, with connection options from module_defaults -------------------------------------------

def test_role_prints_progress_and_writes_the_log(source_cluster, target_cluster, legacy_databases, tmp_path,
                                                 run_playbook):
    target_db = migrated_target(target_cluster, "DataCopy_Role")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    playbook = tmp_path / "copy.yml"
    playbook.write_text(json.dumps([{
        "name": "Copy through the role", "hosts": "localhost", "gather_facts": False, "connection": "local",
        "vars": {"ansible_python_interpreter": sys.executable},
        "module_defaults": {"group/classifiedads.consolidation.all": {
            "source": endpoint(source_cluster), "target": endpoint(target_cluster)}},
        "tasks": [{"name": "Copy", "ansible.builtin.import_role": {"name": "classifiedads.consolidation.data_copy"},
                   "vars": {"data_copy_plan": {"run_id": "role-1", "run_dir": str(run_dir),
                                               "files": run_files(str(run_dir)),
                                               "target_database": target_db, "modules": plan_modules(),
                                               "exclude_tables": ["__EFMigrationsHistory"]}}}],
    }]))
    try:
        runs = [run_playbook(playbook, *extra, inventory="localhost,", cwd=tmp_path) for extra in (["--check"], [], [])]
        assert "would copy product.\\\"Products\\\"" in runs[0].stdout
        assert 'product.\\"Products\\": ' in runs[1].stdout and "changed=1" in runs[1].stdout
        assert "nothing left to copy" in runs[2].stdout and "changed=0" in runs[2].stdout
        lines = (run_dir / "data_copy.log").read_text().splitlines()
        assert stat.S_IMODE((run_dir / "data_copy.log").stat().st_mode) == 0o600  # like the rest of the run directory
        assert len([line for line in lines if line.endswith("-> quarantined (policy)")]) == 2
        assert len([line for line in lines if not line.startswith(("total: ", "restored "))
                    and not line.endswith("(policy)")]) == 28
        assert lines[-1].startswith("total: ")
        assert_copied(source_cluster, target_cluster, target_db)
    finally:
        drop_database(target_cluster, target_db)


def test_check_mode_without_the_target_database_plans_from_the_source(run_module, source_cluster, target_cluster,
                                                                      legacy_databases):
    # In a whole play run in check mode, the step that creates the database has not run.
    drop_database(target_cluster, "DataCopy_NotYet")
    result = run_module("data_copy", copy_args(source_cluster, target_cluster, "DataCopy_NotYet"), check=True)
    assert not result["failed"], result.get("msg")
    assert result["changed"] and {entry["status"] for entry in result["tables"]} == {"would_copy"}
    assert "does not exist yet" in json.dumps(result["warnings"])
    assert query(target_cluster, "postgres", "SELECT count(*) FROM pg_database WHERE datname = 'DataCopy_NotYet'") \
        == [(0,)]
