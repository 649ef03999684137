"""source_ddl (pg_dump, scratch database, ALTER SCHEMA RENAME, one-transaction restore) against real PostgreSQL 15:
the six legacy databases, a schema with every object kind, hostile names and the bad inputs preflight refuses."""

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



def states(result):
    return {module["module"]: module["state"] for module in result["modules"]}


def scratch_databases(info):
    return execute(info, "SELECT datname FROM pg_database WHERE datname LIKE '%\\_\\_ddl\\_%'")


@pytest.fixture(scope="module")
def applied(classifiedads, run_module, source_cluster, target_cluster):
    check = run_module("source_ddl", ddl_args(source_cluster, target_cluster, classifiedads), check=True)
    assert not check["failed"], check
    assert target_tables(target_cluster, TARGET) == []  # check mode changed nothing
    assert scratch_databases(target_cluster) == []  # and dropped its scratch databases
    result = run_module("source_ddl", ddl_args(source_cluster, target_cluster, classifiedads))
    assert not result["failed"], result
    return check, result


def test_check_mode_reports_the_whole_plan_it_then_carries_out(applied):
    check, result = applied
    assert check["changed"] and set(states(check).values()) == {"created"}
    assert [(m["module"], m["objects"]) for m in check["modules"]] == [
        (m["module"], m["objects"]) for m in result["modules"]]
    assert all(m["objects"]["TABLE"] > 0 for m in check["modules"])


def test_six_legacy_databases_are_recreated_exactly(applied, classifiedads, source_cluster, target_cluster):
    result = applied[1]
    assert result["changed"] and set(states(result).values()) == {"created"}
    public = read_schema(target_cluster, TARGET, "public")
    assert sorted(public) == sorted(OVERRIDDEN)
    for module in classifiedads:
        source = read_schema(source_cluster, module["source_database"], "public")
        del source["__EFMigrationsHistory"]
        moved = {table: source.pop(table) for table in OVERRIDDEN if table in source}
        if "schemaversions" in moved:
            # The legacy journal's sequence is owned by no column (devkit.legacy_data.QUIRKS): it stays in the
            # module's schema (ALTER TABLE ... SET SCHEMA moves owned sequences only), and the default names it there.
            for column in moved["schemaversions"]["columns"]:
                if column["name"] == "schemaversionsid":
                    column["default"] = f"nextval('{module['schema']}.schemaversions_schemaversionsid_seq'::regclass)"
        target = read_schema(target_cluster, TARGET, module["schema"])
        assert catalog.diff(source, target, module["schema"]) == []
        assert catalog.diff(moved, {table: public[table] for table in moved}, "public") == []
    auditlog = next(m for m in result["modules"] if m["module"] == "AuditLog")
    assert auditlog["table_overrides"] == [{"source_table": table, "schema": "public", "table": table}
                                           for table in sorted(OVERRIDDEN)]
    assert all(m["excluded_tables"] == [{"table": "__EFMigrationsHistory", "dropped_with_it": []}]
               for m in result["modules"])
    expected_count = sum(len(reference_catalog.module_tables(name)) for name in reference_catalog.MODULE_NAMES)
    assert sum(m["objects"]["TABLE"] for m in result["modules"]) == expected_count + len(
        reference_catalog.dbup_tables())


def test_rerun_changes_nothing(applied, classifiedads, run_module, source_cluster, target_cluster):
    again = run_module("source_ddl", ddl_args(source_cluster, target_cluster, classifiedads))
    assert not again["failed"], again
    assert not again["changed"] and set(states(again).values()) == {"existing"}
    # Nothing was restored into the target (the scratch's restore script is the only one that reaches it).
    assert not any(part.endswith("-scratch.dump.restore.sql") for command in again["commands"] for part in command)
    assert scratch_databases(target_cluster) == []


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
    # The unowned sequence stays in the module schema; from the journal's own schema it reads qualified.
    journal["columns"][0]["default"] = "nextval('\"Mod Schema\".shared_seq'::regclass)"
    assert catalog.diff({"Journal Renamed": journal}, moved, HOSTILE) == []
    # Extensions of another schema stay there (the target has them there too).
    assert result["modules"][0]["extensions"] == [
        {"name": "citext", "legacy_schema": "extensions", "schema": "extensions", "action": "existing"},
        {"name": "uuid-ossp", "legacy_schema": "extensions", "schema": "extensions", "action": "existing"}]
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
    assert not again["changed"] and states(again) == {"Hostile": "existing"}


def test_existing_table_with_another_definition_is_refused_and_nothing_runs(hostile, run_module, source_cluster,
                                                                            target_cluster):
    execute(target_cluster, 'CREATE TABLE "Mod Schema"."Users" ("Id" uuid PRIMARY KEY, "Email" text)',
            "Ddl_Hostile_Target")
    result = run_module("source_ddl", ddl_args(source_cluster, target_cluster, hostile,
                                               target_database="Ddl_Hostile_Target"))
    assert result["failed"]
    differences = result["modules"][0]["differences"]
    assert 'defined differently in the target: TABLE "Mod Schema".Users' in differences
    assert 'missing in the target: TABLE "Mod Schema".UserRoles' in differences
    assert "user tables are never altered" in result["msg"]
    assert target_tables(target_cluster, "Ddl_Hostile_Target") == [("Mod Schema", "Users")]
    assert scratch_databases(target_cluster) == []


def test_objects_of_other_legacy_schemas_are_refused_up_front_naming_them(hostile, run_module, source_cluster,
                                                                          target_cluster):
    execute(source_cluster, "CREATE SCHEMA util; "
                            "CREATE FUNCTION util.next_code() RETURNS text LANGUAGE sql AS $$ SELECT 'c' $$; "
                            "CREATE TABLE odd (id int, code text DEFAULT util.next_code())", "Ddl_Hostile")
    args = ddl_args(source_cluster, target_cluster, hostile, target_database="Ddl_Hostile_Target")
    check = run_module("source_ddl", args, check=True)
    assert check["failed"]
    assert "restoring into the scratch database" in check["msg"] and "util.next_code()" in check["msg"]
    assert target_tables(target_cluster, "Ddl_Hostile_Target") == []
    assert scratch_databases(target_cluster) == []


def test_missing_target_schema_is_named(hostile, run_module, source_cluster, target_cluster):
    modules = [dict(hostile[0], schema="nowhere")]
    result = run_module("source_ddl", ddl_args(source_cluster, target_cluster, modules,
                                               target_database="Ddl_Hostile_Target"))
    assert result["failed"] and "schema(s) nowhere do not exist in target database Ddl_Hostile_Target" in result["msg"]


def test_missing_target_database_is_named_and_check_mode_plans_everything(hostile, run_module, source_cluster,
                                                                          target_cluster):
    args = ddl_args(source_cluster, target_cluster, hostile, target_database="Ddl_Not_Yet")
    check = run_module("source_ddl", args, check=True)
    assert not check["failed"], check
    assert check["changed"] and states(check) == {"Hostile": "created"}
    assert check["modules"][0]["objects"]["TABLE"] == 4
    assert "Ddl_Not_Yet does not exist" in str(check["warnings"])  # ansible-core 2.19+ nests the message
    result = run_module("source_ddl", args)
    assert result["failed"] and "target database Ddl_Not_Yet does not exist" in result["msg"]
