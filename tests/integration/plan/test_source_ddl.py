"""source_ddl against real PostgreSQL 15 servers: the six legacy databases and hostile definitions."""

from __future__ import annotations

import psycopg2
import pytest
from conftest import drop_database, endpoint, execute
from constants import HOSTILE
from devkit import catalog, legacy, reference_catalog
from psycopg2 import sql

pytestmark = pytest.mark.integration

PREFIX = "DdlCase"
TARGET = "DdlCase"
SCHEMAS = ("product", "identity", "storage", "notification", "auditlog", "configuration")
OVERRIDDEN = ("schemaversions", "CacheEntries")  # DbUp's tables land in public, as in the consolidation defaults


def read_schema(info, dbname, schema):
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    try:
        return catalog.read_schema(conn, schema)
    finally:
        conn.close()


def fresh_database(info, name, schemas=()):
    drop_database(info, name)
    execute(info, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    for schema in schemas:
        execute(info, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)), name)


def classifiedads_modules():
    modules = []
    for schema in SCHEMAS:
        name = {"auditlog": "AuditLog"}.get(schema, schema.capitalize())
        module = {"name": name, "source_database": f"{PREFIX}_{name}", "schema": schema}
        if schema == "auditlog":
            module["tables"] = {table: {"schema": "public"} for table in OVERRIDDEN}
        modules.append(module)
    return modules


def ddl_args(source_cluster, target_cluster, modules, target_database=TARGET, **extra):
    args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), modules=modules,
                target_database=target_database)
    args.update(extra)
    return args


def target_tables(info, dbname):
    return execute(info, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                         "ORDER BY 1, 2", dbname)


@pytest.fixture(scope="module")
def classifiedads(source_cluster, target_cluster):
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)
    fresh_database(target_cluster, TARGET, SCHEMAS)
    yield classifiedads_modules()
    drop_database(target_cluster, TARGET)
    legacy.drop(source_cluster, prefix=PREFIX)


@pytest.fixture(scope="module")
def applied(classifiedads, run_module, source_cluster, target_cluster):
    check = run_module("source_ddl", ddl_args(source_cluster, target_cluster, classifiedads), check=True)
    assert not check["failed"], check
    assert target_tables(target_cluster, TARGET) == []  # check mode changed nothing
    result = run_module("source_ddl", ddl_args(source_cluster, target_cluster, classifiedads))
    assert not result["failed"], result
    return check, result


def test_check_mode_reports_the_statements_it_would_run(applied):
    check, result = applied
    assert check["changed"] and check["queries"] == result["queries"]
    assert check["tables"] == result["tables"]


def test_six_legacy_databases_are_recreated_exactly(applied, classifiedads, source_cluster, target_cluster):
    result = applied[1]
    assert result["changed"]
    public = read_schema(target_cluster, TARGET, "public")
    assert sorted(public) == sorted(OVERRIDDEN)
    for module in classifiedads:
        source = read_schema(source_cluster, module["source_database"], "public")
        del source["__EFMigrationsHistory"]
        moved = {table: source.pop(table) for table in OVERRIDDEN if table in source}
        if "schemaversions" in moved:
            # The legacy journal's sequence is owned by no column (devkit.legacy_data.QUIRKS): such a sequence
            # lands in the module's schema, and the moved table's default names it there.
            for column in moved["schemaversions"]["columns"]:
                if column["name"] == "schemaversionsid":
                    column["default"] = f"nextval('{module['schema']}.schemaversions_schemaversionsid_seq'::regclass)"
        target = read_schema(target_cluster, TARGET, module["schema"])
        assert catalog.diff(source, target, module["schema"]) == []
        assert catalog.diff(moved, {table: public[table] for table in moved}, "public") == []
    states = {(t["schema"], t["table"]): t["state"] for t in result["tables"]}
    assert states[("identity", "DataProtectionKeys")] == "created"
    assert states[("public", "schemaversions")] == "created"
    assert not any(t["source_table"] == "__EFMigrationsHistory" for t in result["tables"])
    expected_count = sum(len(reference_catalog.module_tables(name)) for name in reference_catalog.MODULE_NAMES)
    assert len(result["tables"]) == expected_count + len(reference_catalog.dbup_tables())


def test_rerun_changes_nothing(applied, classifiedads, run_module, source_cluster, target_cluster):
    again = run_module("source_ddl", ddl_args(source_cluster, target_cluster, classifiedads))
    assert not again["failed"], again
    assert not again["changed"] and again["queries"] == []
    assert {t["state"] for t in again["tables"]} == {"existing"}


def test_serial_and_identity_columns_use_their_own_target_sequences(applied, source_cluster, target_cluster):
    # The legacy journal's sequence is owned by no column (devkit.legacy_data.QUIRKS), and stays so.
    assert execute(target_cluster, "SELECT pg_get_serial_sequence('public.schemaversions', 'schemaversionsid'), "
                                   "pg_get_serial_sequence('identity.\"DataProtectionKeys\"', 'Id')", TARGET) == [
        (None, 'identity."DataProtectionKeys_Id_seq"')]
    ids = [execute(target_cluster, "INSERT INTO public.schemaversions (scriptname, applied) VALUES (%s, now()) "
                                   "RETURNING schemaversionsid", TARGET, (f"script-{i}",))[0][0] for i in range(3)]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    keys = [execute(target_cluster, 'INSERT INTO identity."DataProtectionKeys" ("FriendlyName") VALUES (%s) '
                                    'RETURNING "Id"', TARGET, (f"key-{i}",))[0][0] for i in range(2)]
    assert keys[1] == keys[0] + 1
    # The legacy sequence was not touched.
    assert execute(source_cluster, "SELECT last_value FROM schemaversions_schemaversionsid_seq",
                   f"{PREFIX}_AuditLog") == [(2,)]


HOSTILE_SOURCE = """
CREATE SCHEMA extensions;
CREATE EXTENSION "uuid-ossp" SCHEMA extensions;
CREATE EXTENSION citext SCHEMA extensions;
CREATE TYPE "Mood" AS ENUM ('happy', 'sad', 'it''s complicated');
CREATE DOMAIN "Positive" AS integer DEFAULT 1 NOT NULL CONSTRAINT "Positive""check" CHECK (VALUE > 0);
CREATE DOMAIN "MoodNN" AS "Mood" NOT NULL;
CREATE TABLE "a""; DROP TABLE x; --" (
    "Id" serial CONSTRAINT "pk ""hostile"" key" PRIMARY KEY,
    "Mixed Case" text COLLATE "C" DEFAULT 'x' NOT NULL,
    moods "Mood"[] DEFAULT ARRAY['happy'::"Mood"],
    m "MoodNN",
    p "Positive",
    doubled integer GENERATED ALWAYS AS (p * 2) STORED,
    area box,
    CONSTRAINT "ck""odd" CHECK (p < 1000 AND m::"Mood" <> 'sad'::"Mood"),
    CONSTRAINT "no overlap" EXCLUDE USING gist (area WITH &&)
);
CREATE TABLE "Users" (
    "Id" uuid NOT NULL DEFAULT extensions.uuid_generate_v4(),
    "Email" extensions.citext,
    "Number" bigint GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 5),
    CONSTRAINT "PK_Users" PRIMARY KEY ("Id"),
    CONSTRAINT "UQ_Users_Number" UNIQUE ("Number") DEFERRABLE INITIALLY DEFERRED
);
CREATE UNIQUE INDEX "IX_Users_Email" ON "Users" (lower("Email"::text)) INCLUDE ("Id") WHERE "Email" IS NOT NULL;
CREATE TABLE "UserRoles" (
    "Id" uuid PRIMARY KEY,
    "UserId" uuid,
    "HostileId" integer,
    CONSTRAINT "FK_UserRoles_Users_UserId" FOREIGN KEY ("UserId") REFERENCES "Users" ("Id") ON DELETE CASCADE,
    CONSTRAINT "FK hostile" FOREIGN KEY ("HostileId") REFERENCES "a""; DROP TABLE x; --" ("Id")
        ON DELETE SET NULL ("HostileId") DEFERRABLE
);
CREATE INDEX "IX_UserRoles_UserId" ON "UserRoles" ("UserId" DESC NULLS LAST);
CREATE SEQUENCE shared_seq AS bigint START 7;
CREATE TABLE journal (id bigint DEFAULT nextval('shared_seq') PRIMARY KEY, at timestamp NOT NULL);
CREATE TABLE "__EFMigrationsHistory" ("MigrationId" varchar(150) PRIMARY KEY);
"""


@pytest.fixture
def hostile(source_cluster, target_cluster):
    fresh_database(source_cluster, "Ddl_Hostile")
    execute(source_cluster, HOSTILE_SOURCE, "Ddl_Hostile")
    fresh_database(target_cluster, "Ddl_Hostile_Target", ["Mod Schema", HOSTILE, "extensions"])
    execute(target_cluster, 'CREATE EXTENSION "uuid-ossp" SCHEMA extensions; '
                            "CREATE EXTENSION citext SCHEMA extensions", "Ddl_Hostile_Target")
    yield [{"name": "Hostile", "source_database": "Ddl_Hostile", "schema": "Mod Schema",
            "tables": {"journal": {"schema": HOSTILE, "table": "Journal Renamed"}}}]
    drop_database(target_cluster, "Ddl_Hostile_Target")
    drop_database(source_cluster, "Ddl_Hostile")


def test_hostile_names_types_and_other_schemas(hostile, run_module, source_cluster, target_cluster):
    args = ddl_args(source_cluster, target_cluster, hostile, target_database="Ddl_Hostile_Target")
    result = run_module("source_ddl", args)
    assert not result["failed"], result
    source = read_schema(source_cluster, "Ddl_Hostile", "public")
    del source["__EFMigrationsHistory"]
    journal = source.pop("journal")
    assert catalog.diff(source, read_schema(target_cluster, "Ddl_Hostile_Target", "Mod Schema"), "Mod Schema") == []
    moved = read_schema(target_cluster, "Ddl_Hostile_Target", HOSTILE)
    # The unowned sequence went to the module schema; from the journal's own schema it reads qualified.
    journal["columns"][0]["default"] = "nextval('\"Mod Schema\".shared_seq'::regclass)"
    assert catalog.diff({"Journal Renamed": journal}, moved, HOSTILE) == []
    # Types and functions of other schemas keep pointing there; the source schema's types were copied.
    columns = execute(target_cluster, "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
                                      "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a LEFT JOIN pg_attrdef d "
                                      "ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum) "
                                      "WHERE a.attrelid = '\"Mod Schema\".\"Users\"'::regclass AND a.attnum > 0 "
                                      "ORDER BY a.attnum", "Ddl_Hostile_Target")
    assert columns[:2] == [("Id", "uuid", "extensions.uuid_generate_v4()"), ("Email", "extensions.citext", None)]
    assert execute(target_cluster, "SELECT t.typname, n.nspname FROM pg_type t JOIN pg_namespace n "
                                   "ON n.oid = t.typnamespace WHERE t.typname IN ('Mood', 'MoodNN', 'Positive') "
                                   "ORDER BY 1", "Ddl_Hostile_Target") == [
        ("Mood", "Mod Schema"), ("MoodNN", "Mod Schema"), ("Positive", "Mod Schema")]
    # The table works as the legacy one does: defaults, identity, domain checks, the serial sequence.
    rows = execute(target_cluster, 'INSERT INTO "Mod Schema"."a""; DROP TABLE x; --" (m, p) VALUES '
                                   "('happy', 3), ('happy', 4) RETURNING \"Id\", doubled, \"Mixed Case\"",
                   "Ddl_Hostile_Target")
    assert rows == [(1, 6, "x"), (2, 8, "x")]
    with pytest.raises(psycopg2.errors.CheckViolation):
        execute(target_cluster, 'INSERT INTO "Mod Schema"."a""; DROP TABLE x; --" (m, p) VALUES (\'happy\', -1)',
                "Ddl_Hostile_Target")
    assert execute(target_cluster, 'INSERT INTO "Mod Schema"."Users" DEFAULT VALUES RETURNING "Number"',
                   "Ddl_Hostile_Target") == [(100,)]

    again = run_module("source_ddl", args)
    assert not again["failed"], again
    assert not again["changed"] and again["queries"] == []


def test_existing_table_with_another_definition_is_refused_and_nothing_runs(hostile, run_module, source_cluster,
                                                                            target_cluster):
    execute(target_cluster, 'CREATE TABLE "Mod Schema"."Users" ("Id" uuid PRIMARY KEY, "Email" text)',
            "Ddl_Hostile_Target")
    result = run_module("source_ddl", ddl_args(source_cluster, target_cluster, hostile,
                                               target_database="Ddl_Hostile_Target"))
    assert result["failed"]
    assert 'module Hostile: "Mod Schema"."Users": columns are [\'Id\', \'Email\'], expected ' \
           "['Id', 'Email', 'Number']" in result["problems"]
    assert 'module Hostile: "Mod Schema"."Users" column "Email": type \'text\', expected \'extensions.citext\'' \
        in result["problems"]
    assert target_tables(target_cluster, "Ddl_Hostile_Target") == [("Mod Schema", "Users")]


def test_objects_nothing_copies_are_refused_up_front(hostile, run_module, source_cluster, target_cluster):
    execute(source_cluster, "CREATE SCHEMA util; "
                            "CREATE FUNCTION util.next_code() RETURNS text LANGUAGE sql AS $$ SELECT 'c' $$; "
                            "CREATE FUNCTION public.is_ok(int) RETURNS boolean LANGUAGE sql IMMUTABLE "
                            "AS $$ SELECT $1 > 0 $$; "
                            "CREATE TYPE pair AS (a int, b int); "
                            "CREATE TABLE odd (id int CHECK (is_ok(id)), code text DEFAULT util.next_code(), "
                            "p pair); "
                            "CREATE TABLE parted (id int) PARTITION BY RANGE (id)", "Ddl_Hostile")
    result = run_module("source_ddl", ddl_args(source_cluster, target_cluster, hostile,
                                               target_database="Ddl_Hostile_Target"))
    assert result["failed"]
    assert sorted(result["problems"]) == sorted([
        "module Hostile: public.parted: partitioned tables are not supported",
        "module Hostile: column odd.p uses composite type pair of the source schema, which source_ddl does not copy",
        "module Hostile: constraint odd_id_check on table odd uses function public.is_ok(integer), which source_ddl "
        "does not copy",
        "module Hostile: default value for column code of table odd uses function util.next_code() from schema "
        "util, which source_ddl does not copy",
    ])
    assert target_tables(target_cluster, "Ddl_Hostile_Target") == []


def test_missing_target_schema_is_named(hostile, run_module, source_cluster, target_cluster):
    modules = [dict(hostile[0], schema="nowhere")]
    result = run_module("source_ddl", ddl_args(source_cluster, target_cluster, modules,
                                               target_database="Ddl_Hostile_Target"))
    assert result["failed"] and "schema(s) nowhere do not exist in the target database" in result["msg"]


def test_missing_target_database_is_named_and_check_mode_plans_everything(hostile, run_module, source_cluster,
                                                                          target_cluster):
    args = ddl_args(source_cluster, target_cluster, hostile, target_database="Ddl_Not_Yet")
    check = run_module("source_ddl", args, check=True)
    assert not check["failed"], check
    assert check["changed"] and {t["state"] for t in check["tables"]} == {"created"}
    assert any(query.startswith('CREATE TABLE "Mod Schema"."Users"') for query in check["queries"])
    assert "Ddl_Not_Yet does not exist yet" in str(check["warnings"])  # ansible-core 2.19+ nests the message
    result = run_module("source_ddl", args)
    assert result["failed"] and "target database Ddl_Not_Yet does not exist" in result["msg"]
