"""source_ddl (pg_dump, scratch database, ALTER SCHEMA RENAME, one-transaction restore) against real PostgreSQL 15:
the six legacy databases, a schema with every object kind, hostile names and the bad inputs preflight refuses."""

from __future__ import annotations

import json

import psycopg2
import pytest
from conftest import consolidation_vars, drop_database, endpoint, execute
from constants import HOSTILE
from devkit import catalog, legacy, reference_catalog
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils import schema_plan

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


def test_a_scratch_database_another_run_holds_is_neither_dropped_nor_reused(applied, classifiedads, run_module,
                                                                            source_cluster, target_cluster):
    # Another run's preflight or step 3 holds the lock of the Product module's scratch database name.
    name = schema_plan.scratch_database_name(TARGET, "Product")
    holder = psycopg2.connect(**target_cluster.connect_kwargs("postgres"))
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (schema_plan.SCRATCH_LOCK_CLASS, name))
        result = run_module("source_ddl", ddl_args(source_cluster, target_cluster, classifiedads), check=True)
        assert result["failed"]
        assert f"the scratch database \"{name}\" is in use by another consolidation run" in result["msg"]
    finally:
        holder.close()
    again = run_module("source_ddl", ddl_args(source_cluster, target_cluster, classifiedads), check=True)
    assert not again["failed"] and set(states(again).values()) == {"existing"}, again


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
    # A rehearsal's preflight plans for its scratch target as it will be: recreated empty.
    rehearsal = run_module("source_ddl", ddl_args(source_cluster, target_cluster, hostile, assume_empty_target=True,
                                                  target_database="Ddl_Hostile_Target"), check=True)
    assert not rehearsal["failed"], rehearsal
    assert states(rehearsal) == {"Hostile": "created"} and rehearsal.get("warnings") is None


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


# -- every object kind pg_dump carries ------------------------------------------------------------

FEATURES_SOURCE = """
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('ok', 'bad');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a integer, b text);
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE SEQUENCE loose_seq START 50;
CREATE FUNCTION next_code() RETURNS text LANGUAGE sql SET search_path = public
    AS $$ SELECT 'C' || nextval('loose_seq') $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated := now(); RETURN NEW; END $$;
CREATE AGGREGATE concat_all(text) (SFUNC = textcat, STYPE = text, INITCOND = '');
CREATE TABLE items (
    id serial PRIMARY KEY, code text DEFAULT next_code(), name citext, m mood, qty posint, p pair, r floatrange,
    updated timestamptz, owner_name text DEFAULT current_user
) WITH (fillfactor = 80);
ALTER TABLE items ALTER COLUMN name SET STATISTICS 500;
ALTER TABLE items REPLICA IDENTITY FULL;
CREATE TRIGGER items_touch BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
ALTER TABLE items FORCE ROW LEVEL SECURITY;
CREATE POLICY items_owner ON items USING (owner_name = current_user);
CREATE POLICY items_reader ON items FOR SELECT TO sd_reader USING (true);
GRANT SELECT ON items TO sd_reader;
COMMENT ON TABLE items IS 'the items';
COMMENT ON COLUMN items.code IS 'generated code';
CREATE STATISTICS items_stats (dependencies) ON m, qty FROM items;
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY, at date NOT NULL, item_id integer REFERENCES items (id))
    PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE logs (id integer, msg text);
CREATE TABLE logs_old () INHERITS (logs);
CREATE RULE logs_keep AS ON DELETE TO logs DO INSTEAD NOTHING;
CREATE VIEW item_names AS SELECT id, name FROM items;
CREATE MATERIALIZED VIEW item_counts AS SELECT m, count(*) AS n FROM items GROUP BY m;
CREATE FUNCTION item_total() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM public.items $$;
CREATE TABLE audit_trail (id integer);
CREATE VIEW audit_view AS SELECT id FROM audit_trail;
"""
FEATURES = "Ddl_Features"
FEATURES_TARGET = "Ddl_Features_Target"
FEATURES_MODULE = {"name": "Features", "source_database": FEATURES, "schema": "feat", "exclude_tables": ["audit_trail"]}


def ensure_role(info, role):
    if not execute(info, "SELECT 1 FROM pg_roles WHERE rolname = %s", params=(role,)):
        execute(info, sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))


def drop_role(info, role):
    execute(info, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def features(source_cluster, target_cluster):
    ensure_role(source_cluster, "sd_reader")
    drop_role(target_cluster, "sd_reader")
    fresh_database(source_cluster, FEATURES)
    execute(source_cluster, FEATURES_SOURCE, FEATURES)
    fresh_database(target_cluster, FEATURES_TARGET, ["feat"])
    yield ddl_args(source_cluster, target_cluster, [FEATURES_MODULE], target_database=FEATURES_TARGET)
    drop_database(target_cluster, FEATURES_TARGET)
    drop_database(source_cluster, FEATURES)
    drop_role(target_cluster, "sd_reader")
    drop_role(source_cluster, "sd_reader")


@pytest.fixture(scope="module")
def features_moved(features, run_module, target_cluster, tmp_path_factory):
    refused = run_module("source_ddl", features, check=True)
    ensure_role(target_cluster, "sd_reader")
    check = run_module("source_ddl", features, check=True)
    assert not check["failed"], check
    untouched = features_query(target_cluster, "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = "
                                               "'feat'::regnamespace), (SELECT count(*) FROM pg_extension WHERE "
                                               "extname = 'citext'), (SELECT count(*) FROM pg_database "
                                               "WHERE datname LIKE '%\\_\\_ddl\\_%')")
    plan_file = tmp_path_factory.mktemp("features-run") / "schema_plan.json"
    result = run_module("source_ddl", dict(features, rewrite_search_path=True, plan_file=str(plan_file)))
    assert not result["failed"], result
    return refused, check, result, plan_file, untouched


def features_query(info, statement, params=None):
    return execute(info, statement, FEATURES_TARGET, params)


def test_a_grantee_missing_on_the_target_server_is_named_before_anything_changes(features_moved, target_cluster):
    refused = features_moved[0]
    assert refused["failed"]
    assert "grants privileges to (or has policies for) role(s) sd_reader, which do not exist on the target " \
           "server" in refused["msg"]
    assert refused["modules"][0]["scratch_database"] is None  # refused before any scratch database


def test_check_mode_lists_what_does_not_follow_the_rename_and_changes_nothing(features_moved, target_cluster):
    check = features_moved[1]
    plan = check["modules"][0]
    assert check["changed"] and plan["state"] == "created"
    assert {(f["function"], f["kind"]) for f in plan["findings"]} == {
        ("feat.next_code()", "search_path"), ("feat.item_total()", "body")}
    assert next(f for f in plan["findings"] if f["kind"] == "search_path")["rewritten"] is None
    assert plan["extensions"] == [{"name": "citext", "legacy_schema": "public", "schema": "public",
                                   "action": "create"}]
    assert plan["excluded_tables"] == [{"table": "audit_trail", "dropped_with_it": ["view feat.audit_view"]}]
    assert plan["objects"]["POLICY"] == 2 and plan["objects"]["MATERIALIZED VIEW"] == 1
    assert features_moved[4] == [(0, 0, 0)]  # after check mode: no relation, no extension, no scratch database


def test_every_object_kind_lands_in_the_module_schema(features_moved, target_cluster):
    result = features_moved[2]
    assert result["changed"] and states(result) == {"Features": "created"}
    relkinds = dict(features_query(target_cluster, "SELECT relname, relkind::text FROM pg_class "
                                                   "WHERE relnamespace = 'feat'::regnamespace AND relkind <> 'i'"))
    assert relkinds == {"items": "r", "items_id_seq": "S", "loose_seq": "S", "events": "p", "events_id_seq": "S",
                        "events_2025": "r", "events_2026": "r", "logs": "r", "logs_old": "r", "item_names": "v",
                        "item_counts": "m", "pair": "c"}  # a composite type has its pg_class row
    assert features_query(target_cluster, "SELECT inhrelid::regclass::text, inhparent::regclass::text FROM pg_inherits "
                                          "ORDER BY 1") == [("feat.events_2025", "feat.events"),
                                                            ("feat.events_2026", "feat.events"),
                                                            ("feat.logs_old", "feat.logs")]
    assert features_query(target_cluster, "SELECT typname, typtype::text FROM pg_type WHERE typnamespace = "
                                          "'feat'::regnamespace AND typname IN ('mood', 'posint', 'pair', "
                                          "'floatrange') ORDER BY 1") == [
        ("floatrange", "r"), ("mood", "e"), ("pair", "c"), ("posint", "d")]
    assert features_query(target_cluster, "SELECT proname, prokind::text FROM pg_proc WHERE pronamespace = "
                                          "'feat'::regnamespace AND proname !~ '^float(multi)?range' ORDER BY 1") == [
        ("concat_all", "a"), ("item_total", "f"), ("next_code", "f"), ("touch", "f")]
    assert features_query(target_cluster, "SELECT tgname, tgrelid::regclass::text, tgfoid::regproc::text "
                                          "FROM pg_trigger WHERE NOT tgisinternal") == [
        ("items_touch", "feat.items", "feat.touch")]
    assert features_query(target_cluster, "SELECT relrowsecurity, relforcerowsecurity, relreplident::text, reloptions "
                                          "FROM pg_class WHERE oid = 'feat.items'::regclass") == [
        (True, True, "f", ["fillfactor=80"])]
    assert features_query(target_cluster, "SELECT polname, polroles::regrole[]::text FROM pg_policy "
                                          "WHERE polrelid = 'feat.items'::regclass ORDER BY 1") == [
        ("items_owner", "{-}"), ("items_reader", "{sd_reader}")]  # {-}: PUBLIC
    assert features_query(target_cluster, "SELECT has_table_privilege('sd_reader', 'feat.items', 'SELECT'), "
                                          "has_table_privilege('sd_reader', 'feat.logs', 'SELECT')") == [(True, False)]
    assert features_query(target_cluster, "SELECT obj_description('feat.items'::regclass, 'pg_class'), "
                                          "col_description('feat.items'::regclass, 2)") == [
        ("the items", "generated code")]
    assert features_query(target_cluster, "SELECT rulename FROM pg_rules WHERE schemaname = 'feat'") == [
        ("logs_keep",)]
    assert features_query(target_cluster, "SELECT stxname FROM pg_statistic_ext "
                                          "WHERE stxnamespace = 'feat'::regnamespace") == [("items_stats",)]
    assert features_query(target_cluster, "SELECT attstattarget FROM pg_attribute "
                                          "WHERE attrelid = 'feat.items'::regclass AND attname = 'name'") == [(500,)]
    # The extension of the legacy source schema lands in public (migrator_extension_schema), the column follows.
    assert features_query(target_cluster, "SELECT extnamespace::regnamespace::text FROM pg_extension "
                                          "WHERE extname = 'citext'") == [("public",)]
    assert features_query(target_cluster, "SELECT t.typnamespace::regnamespace::text, t.typname FROM pg_attribute a "
                                          "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = "
                                          "'feat.items'::regclass AND a.attname = 'name'") == [("public", "citext")]
    # The excluded table and the view on it are gone, and said so.
    assert features_query(target_cluster, "SELECT to_regclass('feat.audit_trail'), to_regclass('feat.audit_view')") \
        == [(None, None)]


def test_defaults_point_at_the_module_schema_and_an_insert_without_values_works(features_moved, target_cluster):
    defaults = dict(features_query(target_cluster, "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM "
                                                   "pg_attrdef d JOIN pg_attribute a ON (a.attrelid, a.attnum) = "
                                                   "(d.adrelid, d.adnum) WHERE d.adrelid = 'feat.items'::regclass"))
    assert defaults["id"] == "nextval('feat.items_id_seq'::regclass)"
    assert defaults["code"] == "feat.next_code()"
    # rewrite_search_path: next_code() finds the unowned sequence in the module schema.
    assert features_query(target_cluster, "SELECT proconfig FROM pg_proc WHERE oid = 'feat.next_code'::regproc") == [
        (["search_path=feat"],)]
    assert features_query(target_cluster, "INSERT INTO feat.items (m, qty) VALUES ('ok', 2) RETURNING id, code") == [
        (1, "C50")]
    assert features_query(target_cluster, "INSERT INTO feat.events (at) VALUES ('2026-03-01') "
                                          "RETURNING tableoid::regclass::text") == [("feat.events_2026",)]


def test_the_schema_plan_is_written_and_a_rerun_is_existing(features_moved, features, run_module):
    result, plan_file = features_moved[2], features_moved[3]
    written = json.loads(plan_file.read_text())
    assert oct(plan_file.stat().st_mode & 0o777) == "0o600"
    assert written == {"target_database": FEATURES_TARGET, "modules": result["modules"]}
    findings = written["modules"][0]["findings"]
    assert next(f for f in findings if f["kind"] == "search_path")["rewritten"] == ["feat"]
    again = run_module("source_ddl", dict(features, rewrite_search_path=True))
    assert not again["failed"], again
    assert not again["changed"] and states(again) == {"Features": "existing"}


# -- a source schema other than public ------------------------------------------------------------

OWN_SCHEMA_SOURCE = """
CREATE SCHEMA app;
CREATE EXTENSION citext SCHEMA app;
CREATE TABLE app.notes (id serial PRIMARY KEY, body app.citext NOT NULL);
CREATE VIEW app.recent AS SELECT id, body FROM app.notes ORDER BY id DESC LIMIT 10;
CREATE FUNCTION app.note_count() RETURNS bigint LANGUAGE sql SET search_path = app, pg_temp
    AS $$ SELECT count(*) FROM notes $$;
CREATE TABLE public.unrelated (id int);
"""


@pytest.fixture
def own_schema(source_cluster, target_cluster):
    fresh_database(source_cluster, "Ddl_Own")
    execute(source_cluster, OWN_SCHEMA_SOURCE, "Ddl_Own")
    fresh_database(target_cluster, "Ddl_Own_Target", ["notes", "ext"])
    yield ddl_args(source_cluster, target_cluster, [{"name": "Notes", "source_database": "Ddl_Own",
                                                     "source_schema": "app", "schema": "notes"}],
                   target_database="Ddl_Own_Target", extension_schema="ext", rewrite_search_path=True)
    drop_database(target_cluster, "Ddl_Own_Target")
    drop_database(source_cluster, "Ddl_Own")


def test_a_non_public_source_schema_moves_with_its_extension_placed_and_search_path_rewritten(
        own_schema, run_module, target_cluster):
    result = run_module("source_ddl", own_schema)
    assert not result["failed"], result
    plan = result["modules"][0]
    assert plan["extensions"] == [{"name": "citext", "legacy_schema": "app", "schema": "ext", "action": "create"}]
    assert [(f["function"], f["kind"], f["rewritten"]) for f in plan["findings"]] == [
        ("notes.note_count()", "search_path", ["notes", "pg_temp"])]
    assert execute(target_cluster, "SELECT c.relname, c.relkind::text FROM pg_class c WHERE c.relnamespace = "
                                   "'notes'::regnamespace ORDER BY 1", "Ddl_Own_Target") == [
        ("notes", "r"), ("notes_id_seq", "S"), ("notes_pkey", "i"), ("recent", "v")]
    assert execute(target_cluster, "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = "
                                   "'citext'", "Ddl_Own_Target") == [("ext",)]
    assert execute(target_cluster, "INSERT INTO notes.notes (body) VALUES ('Hello') RETURNING id",
                   "Ddl_Own_Target") == [(1,)]
    assert execute(target_cluster, "SELECT notes.note_count(), (SELECT body FROM notes.recent)",
                   "Ddl_Own_Target") == [(1, "Hello")]
    assert execute(target_cluster, "SELECT to_regclass('public.unrelated')", "Ddl_Own_Target") == [(None,)]


# -- what the login role may not do: named with its fix, before anything changes --------------------

LOW_ROLE, LOW_PASSWORD = "sd_low", "sd-low-pw"


@pytest.fixture
def low_role(source_cluster, target_cluster):
    """An unprivileged login role on both servers (the embedded clusters' own role is a superuser)."""
    for info in (source_cluster, target_cluster):
        execute(info, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(LOW_ROLE)))
        execute(info, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(LOW_ROLE), sql.Literal(LOW_PASSWORD)))
    fresh_database(source_cluster, "Ddl_Low")
    execute(source_cluster, "CREATE TABLE open_data (id int PRIMARY KEY); CREATE TABLE secret (id int); "
                            f"GRANT SELECT ON open_data TO {LOW_ROLE}", "Ddl_Low")
    fresh_database(target_cluster, "Ddl_Low_Target", ["low"])
    execute(target_cluster, f"GRANT ALL ON SCHEMA low TO {LOW_ROLE}", "Ddl_Low_Target")
    low = {side: dict(endpoint(info), user=LOW_ROLE, password=LOW_PASSWORD, passfile=None)
           for side, info in (("source", source_cluster), ("target", target_cluster))}
    yield low
    drop_database(target_cluster, "Ddl_Low_Target")
    drop_database(source_cluster, "Ddl_Low")
    for info in (source_cluster, target_cluster):
        execute(info, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(LOW_ROLE)))


def low_args(source_cluster, target_cluster, **sides):
    args = ddl_args(source_cluster, target_cluster, [{"name": "Low", "source_database": "Ddl_Low", "schema": "low"}],
                    target_database="Ddl_Low_Target")
    args.update(sides)
    return args


def test_a_source_table_the_role_cannot_read_is_named_with_the_grant(low_role, run_module, source_cluster,
                                                                     target_cluster):
    result = run_module("source_ddl", low_args(source_cluster, target_cluster, source=low_role["source"]), check=True)
    assert result["failed"]
    assert ("pg_dump cannot read table secret in source database Ddl_Low (permission denied: pg_dump locks and "
            f"reads every object of the schema): GRANT SELECT ON TABLE secret TO {LOW_ROLE} there") in result["msg"]
    assert LOW_PASSWORD not in json.dumps(result)
    assert scratch_databases(target_cluster) == []


def test_a_role_without_createdb_and_an_untrusted_extension_are_named_with_their_fixes(
        low_role, run_module, source_cluster, target_cluster):
    execute(source_cluster, "CREATE SCHEMA extensions; CREATE EXTENSION pg_stat_statements; "
                            "CREATE EXTENSION hstore SCHEMA extensions; CREATE EXTENSION citext", "Ddl_Low")
    args = low_args(source_cluster, target_cluster, target=low_role["target"])
    result = run_module("source_ddl", args, check=True)
    assert result["failed"]
    assert f"ALTER ROLE {LOW_ROLE} CREATEDB, or run as a role that has it" in result["msg"]
    assert (f"extension pg_stat_statements is not trusted and {LOW_ROLE} is not a superuser, so it cannot create it "
            "in the scratch database nor in the target: run source_ddl as a superuser") in result["msg"]
    assert "hstore" not in result["msg"]  # trusted: a non-superuser may create it
    # Trusted, but in the source schema: the rename carries it along and only a superuser may move it out.
    assert ("extension citext is installed in the legacy source schema public and must be moved out of the renamed "
            "schema, which only a superuser may do") in result["msg"]
    assert scratch_databases(target_cluster) == []

    execute(target_cluster, f"ALTER ROLE {LOW_ROLE} CREATEDB")
    execute(source_cluster, "DROP EXTENSION pg_stat_statements; ALTER EXTENSION citext SET SCHEMA extensions",
            "Ddl_Low")
    execute(target_cluster, f"GRANT CREATE ON DATABASE \"Ddl_Low_Target\" TO {LOW_ROLE}")
    moved = run_module("source_ddl", args)
    assert not moved["failed"], moved
    assert execute(target_cluster, "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c WHERE "
                                   "c.relnamespace = 'low'::regnamespace AND c.relkind = 'r' ORDER BY 1",
                   "Ddl_Low_Target") == [("open_data", LOW_ROLE), ("secret", LOW_ROLE)]
    assert execute(target_cluster, "SELECT extname, extnamespace::regnamespace::text FROM pg_extension "
                                   "WHERE extname IN ('citext', 'hstore') ORDER BY 1", "Ddl_Low_Target") == [
        ("citext", "extensions"), ("hstore", "extensions")]
    assert scratch_databases(target_cluster) == []


# -- consolidate.yml: the schema plan at preflight --------------------------------------------------


def test_consolidate_stops_at_preflight_on_a_schema_problem_and_keeps_the_plan_once_it_runs(
        run_playbook, source_cluster, target_cluster, tmp_path):
    prefix, target = "DdlPre", "DdlPre_Consolidated"
    legacy.create(source_cluster, 0.01, prefix=prefix, out=lambda line: None)
    drop_database(target_cluster, target)
    ensure_role(source_cluster, "sd_ghost")
    drop_role(target_cluster, "sd_ghost")
    execute(source_cluster, 'GRANT SELECT ON "Products" TO sd_ghost', f"{prefix}_Product")
    variables = dict(consolidation_vars(source_cluster, target_cluster, tmp_path, target, prefix),
                     migrator_mode="source_ddl")
    # The shipped mapping's NULL policies answer the migrator's NOT NULL columns; source_ddl keeps the legacy
    # (nullable) definitions, where data_copy refuses a policy that has nothing to do.
    for module in variables["consolidation_modules"]:
        for override in (module.get("tables") or {}).values():
            override.pop("columns", None)
    try:
        refused = run_playbook("classifiedads.consolidation.consolidate", variables=variables, expect_rc=2)
        assert "Plan the schema move of every module (source_ddl)" in refused.output
        assert ("module Product: the legacy schema grants privileges to (or has policies for) role(s) sd_ghost, "
                "which do not exist on the target server: create them there") in refused.output
        # Before anything changed: no run directory, no backup, no target database, no fence, no scratch left.
        assert not (tmp_path / "runs").exists() and not (tmp_path / "backups").exists()
        assert execute(target_cluster, "SELECT count(*) FROM pg_database WHERE datname = %s", params=(target,)) == [
            (0,)]
        assert execute(source_cluster, "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = "
                                       "s.setdatabase WHERE d.datname LIKE %s", params=(prefix + "%",)) == [(0,)]
        assert scratch_databases(target_cluster) == []

        ensure_role(target_cluster, "sd_ghost")
        # The rehearsal plans at its preflight and moves the schemas into its own scratch target.
        run_playbook("classifiedads.consolidation.consolidate", variables=dict(variables, consolidation_rehearsal=True))
        [rehearsed] = (tmp_path / "runs").glob("*-rehearsal/schema_plan.json")
        assert {m["state"] for m in json.loads(rehearsed.read_text())["modules"]} == {"created"}
        assert scratch_databases(target_cluster) == []

        run_playbook("classifiedads.consolidation.consolidate", variables=variables)
        [plan_file] = [path for path in (tmp_path / "runs").glob("*/schema_plan.json") if path != rehearsed]
        plan = json.loads(plan_file.read_text())
        assert plan["target_database"] == target
        assert {m["module"]: m["state"] for m in plan["modules"]} == {
            name: "created" for name in ("Product", "Identity", "Storage", "Notification", "AuditLog",
                                         "Configuration")}
        assert execute(target_cluster, "SELECT has_table_privilege('sd_ghost', 'product.\"Products\"', 'SELECT')",
                       target) == [(True,)]
    finally:
        drop_database(target_cluster, target)
        legacy.drop(source_cluster, prefix=prefix)
        drop_role(target_cluster, "sd_ghost")
        drop_role(source_cluster, "sd_ghost")
