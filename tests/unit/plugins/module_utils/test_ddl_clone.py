"""source_ddl's pure planning: statements, order, search paths, problems and differences."""

from __future__ import annotations

import copy

import pytest
from constants import HOSTILE
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils import ddl_clone as d
from ansible_collections.classifiedads.consolidation.plugins.module_utils import display
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import normalize_module


def render(composable) -> str:
    """psycopg2.sql without a connection: identifiers and literals quoted as PostgreSQL does."""
    if isinstance(composable, sql.Composed):
        return "".join(render(part) for part in composable.seq)
    if isinstance(composable, sql.Identifier):
        return ".".join('"' + part.replace('"', '""') + '"' for part in composable.strings)
    if isinstance(composable, sql.Literal):
        value = composable.wrapped
        return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"
    if isinstance(composable, sql.SQL):
        return composable.string
    raise TypeError(composable)


# -- catalog fixtures -----------------------------------------------------------------------

INT4, TEXT, UUID = 23, 25, 2950
MOOD, MOOD_ARRAY, POSITIVE, PAIR = 90001, 90002, 90003, 90004


def col(name, type_="text", type_oid=TEXT, not_null=False, default=None, identity="", generated="",
        collation=None, identity_sequence=None):
    return {"name": name, "type": type_, "type_oid": type_oid, "not_null": not_null, "default": default,
            "identity": identity, "generated": generated, "collation": collation,
            "identity_sequence": identity_sequence}


def seq(name, type_="integer", owned_by=None, start=1, maximum=2147483647):
    return {"name": name, "type": type_, "start": start, "increment": 1, "min": 1, "max": maximum, "cache": 1,
            "cycle": False, "owned_by": owned_by}


def table(name, columns, constraints=(), foreign_keys=(), indexes=(), default_sequences=(), **extra):
    entry = {"name": name, "persistence": "p", "columns": list(columns), "constraints": list(constraints),
             "foreign_keys": list(foreign_keys), "indexes": list(indexes),
             "default_sequences": list(default_sequences), "triggers": 0, "unsupported": []}
    entry.update(extra)
    return entry


def pk(name, column="Id"):
    return {"name": name, "type": "p", "definition": f'PRIMARY KEY ("{column}")'}


def fk(name, column, ref_table, ref_schema="public", on_delete="c"):
    return {"name": name, "columns": [column], "ref_schema": ref_schema, "ref_table": ref_table,
            "ref_columns": ["Id"], "match": "s", "on_update": "a", "on_delete": on_delete,
            "delete_set_columns": None, "deferrable": False, "deferred": False, "validated": True}


def ix(name, definition, unique=False):
    return {"name": name, "unique": unique, "definition": definition}


def source_catalog():
    """A small legacy schema: FKs, an identity, a serial, an enum, a domain, a hostile table and index."""
    identity_seq = seq("DataProtectionKeys_Id_seq")
    tables = {
        "Users": table("Users", [col("Id", "uuid", UUID, True, "gen_random_uuid()"), col("Email")],
                       constraints=[pk("PK_Users")]),
        "UserRoles": table("UserRoles", [col("Id", "uuid", UUID, True), col("UserId", "uuid", UUID, True)],
                           constraints=[pk("PK_UserRoles")],
                           foreign_keys=[fk("FK_UserRoles_Users_UserId", "UserId", "Users")],
                           indexes=[ix("IX_UserRoles_UserId", 'USING btree ("UserId")')]),
        "DataProtectionKeys": table("DataProtectionKeys", [
            col("Id", "integer", INT4, True, identity="d", identity_sequence=identity_seq), col("Xml")],
            constraints=[pk("PK_DataProtectionKeys")]),
        "schemaversions": table("schemaversions", [
            col("schemaversionsid", "integer", INT4, True, "nextval('schemaversions_schemaversionsid_seq'::regclass)"),
            col("scriptname", "character varying(255)", 1043, True)],
            constraints=[pk("PK_schemaversions_Id", "schemaversionsid")],
            default_sequences=[("public", "schemaversions_schemaversionsid_seq")]),
        HOSTILE: table(HOSTILE, [col("Id", "integer", INT4, True), col("mood", '"Mood"[]', MOOD_ARRAY),
                                 col("p", '"Positive"', POSITIVE)],
                       constraints=[{"name": 'ck"p', "type": "c", "definition": "CHECK (((p)::integer < 10))"}],
                       indexes=[ix(HOSTILE + "_idx", 'USING btree ("Id") INCLUDE (p) WHERE ("Id" > 0)', True)]),
        "__EFMigrationsHistory": table("__EFMigrationsHistory", [col("MigrationId", "character varying(150)", 1043,
                                                                     True)]),
    }
    types = {
        MOOD: {"oid": MOOD, "name": "Mood", "kind": "enum", "labels": ["happy", "it's sad"], "element": 0,
               "base": 0, "extension": None},
        MOOD_ARRAY: {"oid": MOOD_ARRAY, "name": "_Mood", "kind": "array", "element": MOOD, "base": 0,
                     "extension": None},
        POSITIVE: {"oid": POSITIVE, "name": "Positive", "kind": "domain", "element": 0, "base": INT4,
                   "extension": None, "base_type": "integer", "not_null": False, "default": None, "collation": None,
                   "constraints": [{"name": "Positive_check", "definition": "CHECK ((VALUE > 0))"}]},
    }
    sequences = {"schemaversions_schemaversionsid_seq": seq(
        "schemaversions_schemaversionsid_seq",
        owned_by={"schema": "public", "table": "schemaversions", "column": "schemaversionsid", "deptype": "a"})}
    return {"schema": "public", "tables": tables, "sequences": sequences,
            "types": dict((t["name"], t) for t in types.values()), "types_by_oid": types,
            "other_relations": [], "dependencies": []}


def module(**extra):
    raw = {"name": "AuditLog", "source_database": "ClassifiedAds_AuditLog", "schema": "auditlog"}
    raw.update(extra)
    return normalize_module(raw, ["__EFMigrationsHistory"])


def empty_target():
    return {"tables": {}, "sequences": {}, "types": {}}


def rendered_plan(mapping, source, target=None):
    plan = d.plan_module(mapping, source, target or empty_target())
    return plan, [render(statement) for statement in d.flatten_steps(plan["steps"])]


# -- statements -----------------------------------------------------------------------------


def test_search_path_puts_pg_catalog_last():
    assert render(d.search_path_statement(("public", "Mod Schema"))) == \
        'SET LOCAL search_path TO "public", "Mod Schema", pg_catalog'


def test_create_table_quotes_every_identifier_and_keeps_server_text():
    statement = d.create_table("Mod Schema", table(HOSTILE, [
        col("Mixed Case", "text", collation='pg_catalog."C"', not_null=True, default="'x'::text"),
        col("g", "integer", generated="s", default="(p * 2)"),
    ]))
    assert render(statement) == (
        'CREATE TABLE "Mod Schema"."a""; DROP TABLE x; --" ("Mixed Case" text COLLATE pg_catalog."C" '
        "DEFAULT 'x'::text NOT NULL, \"g\" integer GENERATED ALWAYS AS ((p * 2)) STORED)")


def test_identity_column_keeps_its_sequence_name_and_options():
    identity = seq("DataProtectionKeys_Id_seq", start=100)
    statement = d.create_table("identity", table("DataProtectionKeys", [
        col("Id", "integer", INT4, True, identity="d", identity_sequence=identity)]))
    assert render(statement) == (
        'CREATE TABLE "identity"."DataProtectionKeys" ("Id" integer GENERATED BY DEFAULT AS IDENTITY '
        '(SEQUENCE NAME "identity"."DataProtectionKeys_Id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 '
        'START WITH 100 CACHE 1 NO CYCLE) NOT NULL)')


def test_unlogged_tables_stay_unlogged():
    assert render(d.create_table("s", table("t", [], persistence="u"))) == 'CREATE UNLOGGED TABLE "s"."t" ()'


def test_sequence_statements():
    sequence = seq("s", "bigint", maximum=9223372036854775807)
    assert render(d.create_sequence("auditlog", sequence)) == (
        'CREATE SEQUENCE "auditlog"."s" AS bigint INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 '
        "START WITH 1 CACHE 1 NO CYCLE")
    assert render(d.sequence_owned_by("public", "s", "public", "schemaversions", "schemaversionsid")) == \
        'ALTER SEQUENCE "public"."s" OWNED BY "public"."schemaversions"."schemaversionsid"'


def test_enum_labels_are_literals():
    statement = d.create_enum("x", {"name": "Mood", "labels": ["happy", "it's sad"]})
    assert render(statement) == "CREATE TYPE \"x\".\"Mood\" AS ENUM ('happy', 'it''s sad')"


def test_domain_and_its_checks():
    statements = d.create_domain("x", {"name": "Positive", "base_type": "integer", "not_null": True,
                                       "default": "1", "collation": None,
                                       "constraints": [{"name": "c1", "definition": "CHECK ((VALUE > 0)) NOT VALID"}]})
    assert [render(s) for s in statements] == [
        'CREATE DOMAIN "x"."Positive" AS integer DEFAULT 1 NOT NULL',
        'ALTER DOMAIN "x"."Positive" ADD CONSTRAINT "c1" CHECK ((VALUE > 0)) NOT VALID',
    ]


def test_foreign_key_is_built_from_parts():
    key = dict(fk("FK hostile", "HostileId", HOSTILE, ref_schema="other", on_delete="n"),
               delete_set_columns=["HostileId"], match="f", deferrable=True, deferred=True, validated=False)
    assert render(d.add_foreign_key("Mod Schema", "UserRoles", key)) == (
        'ALTER TABLE "Mod Schema"."UserRoles" ADD CONSTRAINT "FK hostile" FOREIGN KEY ("HostileId") '
        'REFERENCES "other"."a""; DROP TABLE x; --" ("Id") MATCH FULL ON UPDATE NO ACTION ON DELETE SET NULL '
        '("HostileId") DEFERRABLE INITIALLY DEFERRED NOT VALID')


def test_index_tail_takes_only_what_follows_the_checked_head():
    definition = ('CREATE UNIQUE INDEX "a""; DROP TABLE x; --_idx" ON public."a""; DROP TABLE x; --" '
                  'USING btree ("Id") INCLUDE (p) WHERE ("Id" > 0)')
    tail = d.index_tail(definition, True, '"a""; DROP TABLE x; --_idx"', 'public."a""; DROP TABLE x; --"')
    assert tail == 'USING btree ("Id") INCLUDE (p) WHERE ("Id" > 0)'
    index = {"name": HOSTILE + "_idx", "unique": True, "definition": tail}
    assert render(d.create_index("auditlog", HOSTILE, index)) == (
        'CREATE UNIQUE INDEX "a""; DROP TABLE x; --_idx" ON "auditlog"."a""; DROP TABLE x; --" '
        'USING btree ("Id") INCLUDE (p) WHERE ("Id" > 0)')


@pytest.mark.parametrize("definition", [
    'CREATE INDEX "i" ON public."t" USING btree (x)',  # not unique, but the catalog says unique
    'CREATE UNIQUE INDEX "i" ON "t" USING btree (x)',  # unqualified table
    'CREATE UNIQUE INDEX "i" ON ONLY public."t" USING btree (x)',
])
def test_index_tail_refuses_an_unexpected_head(definition):
    with pytest.raises(d.DdlError, match="cannot take index definition apart"):
        d.index_tail(definition, True, '"i"', 'public."t"')


def test_partitioned_index_head_has_only():
    assert d.index_tail('CREATE INDEX i ON ONLY public.t USING btree (x)', False, "i", "public.t", True) == \
        "USING btree (x)"


# -- destinations and types -----------------------------------------------------------------


def test_destination_follows_overrides_and_excludes():
    mapping = module(tables={"schemaversions": {"schema": "public"}, "CacheEntries": {"table": "Cache"}})
    assert d.destination(mapping, "Users") == ("auditlog", "Users")
    assert d.destination(mapping, "schemaversions") == ("public", "schemaversions")
    assert d.destination(mapping, "CacheEntries") == ("auditlog", "Cache")
    assert d.destination(mapping, "__EFMigrationsHistory") is None


def test_types_come_before_the_domains_that_use_them():
    types = {
        1: {"oid": 1, "name": "E", "kind": "enum", "extension": None},
        2: {"oid": 2, "name": "D2", "kind": "domain", "base": 3, "extension": None},
        3: {"oid": 3, "name": "D1", "kind": "domain", "base": 1, "extension": None},
        4: {"oid": 4, "name": "_D2", "kind": "array", "element": 2, "extension": None},
    }
    ordered, problems = d.needed_types([(4, "column t.c"), (1, "column t.e")], types)
    assert [t["name"] for t in ordered] == ["E", "D1", "D2"] and problems == []


def test_types_not_copied_are_problems():
    types = {
        5: {"oid": 5, "name": "pair", "kind": "composite", "extension": None},
        6: {"oid": 6, "name": "citext", "kind": "base", "extension": "citext"},
    }
    ordered, problems = d.needed_types([(5, "column t.p"), (6, "column t.e"), (TEXT, "column t.x")], types)
    assert ordered == []
    assert problems == [
        "column t.p uses composite type pair of the source schema, which source_ddl does not copy",
        "column t.e uses type citext of extension citext, installed in the source schema; source_ddl does not "
        "create extension objects",
    ]


def dep(ref_type, ref_schema, identity, table="t", extension=None, oid=1):
    return {"table": table, "domain_oid": None, "dependent": f"default value for column c of table {table}",
            "ref_type": ref_type, "ref_schema": ref_schema, "ref_identity": identity, "ref_oid": oid,
            "ref_extension": extension}


def test_dependencies_on_copied_or_system_objects_are_fine():
    deps = [dep("function", "pg_catalog", "pg_catalog.gen_random_uuid()"),
            dep("sequence", "public", "public.t_id_seq"),
            dep("type", "public", 'public."Mood"'),
            dep("table", "public", "public.users"),
            dep("index", "public", 'public."PK_users"'),
            dep("function", "extensions", "extensions.uuid_generate_v4()", extension="uuid-ossp"),
            dep("function", "util", "util.f()", table="excluded")]
    assert d.dependency_problems(deps, "public", {"t"}, set()) == []


def test_dependencies_on_objects_nothing_copies_are_problems():
    deps = [dep("function", "public", "public.is_ok(integer)"),
            dep("function", "util", "util.next_code()"),
            dep("function", "public", "public.citext_eq(citext,citext)", extension="citext")]
    problems = d.dependency_problems(deps, "public", {"t"}, set())
    assert problems == [
        "default value for column c of table t uses function public.is_ok(integer), which source_ddl does not copy",
        "default value for column c of table t uses function util.next_code() from schema util, which source_ddl "
        "does not copy",
        "default value for column c of table t uses function public.citext_eq(citext,citext) of extension citext, "
        "installed in the source schema; source_ddl does not create extension objects",
    ]


# -- whole plans ----------------------------------------------------------------------------


def test_plan_order_and_search_paths():
    mapping = module(tables={"schemaversions": {"schema": "public"}})
    plan, statements = rendered_plan(mapping, source_catalog())
    assert statements == [
        'SET LOCAL search_path TO "auditlog", pg_catalog',
        "CREATE TYPE \"auditlog\".\"Mood\" AS ENUM ('happy', 'it''s sad')",
        'CREATE DOMAIN "auditlog"."Positive" AS integer',
        'ALTER DOMAIN "auditlog"."Positive" ADD CONSTRAINT "Positive_check" CHECK ((VALUE > 0))',
        'SET LOCAL search_path TO "public", pg_catalog',
        'CREATE SEQUENCE "public"."schemaversions_schemaversionsid_seq" AS integer INCREMENT BY 1 MINVALUE 1 '
        "MAXVALUE 2147483647 START WITH 1 CACHE 1 NO CYCLE",
        'SET LOCAL search_path TO "auditlog", pg_catalog',
        'CREATE TABLE "auditlog"."DataProtectionKeys" ("Id" integer GENERATED BY DEFAULT AS IDENTITY (SEQUENCE NAME '
        '"auditlog"."DataProtectionKeys_Id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1 '
        'NO CYCLE) NOT NULL, "Xml" text)',
        'CREATE TABLE "auditlog"."UserRoles" ("Id" uuid NOT NULL, "UserId" uuid NOT NULL)',
        'CREATE TABLE "auditlog"."Users" ("Id" uuid DEFAULT gen_random_uuid() NOT NULL, "Email" text)',
        'CREATE TABLE "auditlog"."a""; DROP TABLE x; --" ("Id" integer NOT NULL, "mood" "Mood"[], "p" "Positive")',
        'SET LOCAL search_path TO "public", "auditlog", pg_catalog',
        'CREATE TABLE "public"."schemaversions" ("schemaversionsid" integer DEFAULT '
        "nextval('schemaversions_schemaversionsid_seq'::regclass) NOT NULL, \"scriptname\" character varying(255) "
        "NOT NULL)",
        'SET LOCAL search_path TO "auditlog", pg_catalog',
        'ALTER TABLE "auditlog"."DataProtectionKeys" ADD CONSTRAINT "PK_DataProtectionKeys" PRIMARY KEY ("Id")',
        'ALTER TABLE "auditlog"."UserRoles" ADD CONSTRAINT "PK_UserRoles" PRIMARY KEY ("Id")',
        'ALTER TABLE "auditlog"."Users" ADD CONSTRAINT "PK_Users" PRIMARY KEY ("Id")',
        'ALTER TABLE "auditlog"."a""; DROP TABLE x; --" ADD CONSTRAINT "ck""p" CHECK (((p)::integer < 10))',
        'SET LOCAL search_path TO "public", "auditlog", pg_catalog',
        'ALTER TABLE "public"."schemaversions" ADD CONSTRAINT "PK_schemaversions_Id" PRIMARY KEY '
        '("schemaversionsid")',
        'SET LOCAL search_path TO "auditlog", pg_catalog',
        'CREATE INDEX "IX_UserRoles_UserId" ON "auditlog"."UserRoles" USING btree ("UserId")',
        'CREATE UNIQUE INDEX "a""; DROP TABLE x; --_idx" ON "auditlog"."a""; DROP TABLE x; --" USING btree ("Id") '
        'INCLUDE (p) WHERE ("Id" > 0)',
        'ALTER TABLE "auditlog"."UserRoles" ADD CONSTRAINT "FK_UserRoles_Users_UserId" FOREIGN KEY ("UserId") '
        'REFERENCES "auditlog"."Users" ("Id") ON UPDATE NO ACTION ON DELETE CASCADE',
        'SET LOCAL search_path TO "public", pg_catalog',
        'ALTER SEQUENCE "public"."schemaversions_schemaversionsid_seq" OWNED BY '
        '"public"."schemaversions"."schemaversionsid"',
    ]
    assert [(t["source_table"], t["schema"], t["state"]) for t in plan["tables"]] == [
        ("DataProtectionKeys", "auditlog", "created"), ("UserRoles", "auditlog", "created"),
        ("Users", "auditlog", "created"), (HOSTILE, "auditlog", "created"), ("schemaversions", "public", "created")]
    assert plan["warnings"] == []


def expected_target(mapping, source):
    """The target as a successful run leaves it, read back as the catalog reader would."""
    target = empty_target()
    for name, entry in source["tables"].items():
        place = d.destination(mapping, name)
        if place is None:
            continue
        schema, expected = d.expected_table(entry, mapping, "public", source["tables"])[:2]
        target["tables"][(schema, expected["name"])] = copy.deepcopy(expected)
    target["types"] = {"Mood": source["types"]["Mood"], "Positive": source["types"]["Positive"]}
    target["sequences"][("auditlog", "schemaversions_schemaversionsid_seq")] = \
        source["sequences"]["schemaversions_schemaversionsid_seq"]
    return target


def test_identical_existing_tables_need_nothing():
    mapping, source = module(), source_catalog()
    plan = d.plan_module(mapping, source, expected_target(mapping, source))
    assert plan["steps"] == []
    assert set(t["state"] for t in plan["tables"]) == {"existing"}


def test_existing_table_with_another_definition_is_an_error_naming_every_difference():
    mapping, source = module(), source_catalog()
    target = expected_target(mapping, source)
    users = target["tables"][("auditlog", "Users")]
    users["columns"][1]["type"] = "character varying(20)"
    users["columns"].append(col("Extra"))
    roles = target["tables"][("auditlog", "UserRoles")]
    roles["indexes"] = []
    roles["foreign_keys"][0]["on_delete"] = "a"
    target["types"]["Mood"] = dict(target["types"]["Mood"], labels=["happy"])
    with pytest.raises(d.DdlError) as caught:
        d.plan_module(mapping, source, target)
    assert caught.value.problems == [
        "type auditlog.\"Mood\": labels ['happy'], expected ['happy', \"it's sad\"]",
        'auditlog."UserRoles": foreign key "FK_UserRoles_Users_UserId": on_delete \'a\', expected \'c\'',
        'auditlog."UserRoles": index "IX_UserRoles_UserId" is missing',
        "auditlog.\"Users\": columns are ['Id', 'Email', 'Extra'], expected ['Id', 'Email']",
        'auditlog."Users" column "Email": type \'character varying(20)\', expected \'text\'',
    ]


def test_foreign_key_to_an_excluded_table_is_left_out_with_a_warning():
    mapping = module(exclude_tables=["Users"])
    plan, statements = rendered_plan(mapping, source_catalog())
    assert not any("FOREIGN KEY" in statement for statement in statements)
    assert plan["warnings"] == ['foreign key "FK_UserRoles_Users_UserId" of auditlog."UserRoles" is not created: '
                                'it references public."Users", which is not copied']


def test_foreign_key_follows_a_table_moved_and_renamed_by_an_override():
    mapping = module(tables={"Users": {"schema": "shared", "table": "AppUsers"}})
    statements = rendered_plan(mapping, source_catalog())[1]
    assert ('ALTER TABLE "auditlog"."UserRoles" ADD CONSTRAINT "FK_UserRoles_Users_UserId" FOREIGN KEY ("UserId") '
            'REFERENCES "shared"."AppUsers" ("Id") ON UPDATE NO ACTION ON DELETE CASCADE') in statements
    assert 'CREATE TABLE "shared"."AppUsers" ("Id" uuid DEFAULT gen_random_uuid() NOT NULL, "Email" text)' \
        in statements


def test_serial_sequence_lands_beside_its_table_and_an_unowned_one_in_the_module_schema():
    source = source_catalog()
    source["sequences"]["shared_seq"] = seq("shared_seq", "bigint")
    source["tables"]["journal"] = table("journal", [col("id", "bigint", 20, True, "nextval('shared_seq'::regclass)")],
                                        default_sequences=[("public", "shared_seq")])
    statements = rendered_plan(module(tables={"schemaversions": {"schema": "public"},
                                              "journal": {"schema": "public"}}), source)[1]
    creates = [s for s in statements if s.startswith("CREATE SEQUENCE")]
    assert creates[0].startswith('CREATE SEQUENCE "auditlog"."shared_seq" AS bigint')
    assert creates[1].startswith('CREATE SEQUENCE "public"."schemaversions_schemaversionsid_seq"')
    assert sum("OWNED BY" in s for s in statements) == 1


def test_unsupported_tables_and_references_fail_before_any_statement():
    source = source_catalog()
    source["tables"]["parent"] = table("parent", [col("id", "integer", INT4)],
                                       unsupported=["partitioned tables are not supported"])
    source["types_by_oid"][PAIR] = {"oid": PAIR, "name": "pair", "kind": "composite", "extension": None}
    source["tables"]["Users"]["columns"].append(col("p", "pair", PAIR))
    source["dependencies"] = [dep("function", "public", "public.is_ok(integer)", table="Users")]
    with pytest.raises(d.DdlError) as caught:
        d.plan_module(module(), source, empty_target())
    assert caught.value.problems == [
        "public.parent: partitioned tables are not supported",
        'column "Users".p uses composite type pair of the source schema, which source_ddl does not copy',
        "default value for column c of table Users uses function public.is_ok(integer), which source_ddl does not "
        "copy",
    ]


def test_excluded_tables_are_not_checked():
    source = source_catalog()
    source["tables"]["__EFMigrationsHistory"]["unsupported"] = ["partitioned tables are not supported"]
    plan = d.plan_module(module(), source, empty_target())
    assert "__EFMigrationsHistory" not in [t["source_table"] for t in plan["tables"]]


def test_triggers_views_and_unused_overrides_are_warnings():
    source = source_catalog()
    source["tables"]["Users"]["triggers"] = 2
    source["other_relations"] = ["v_users"]
    plan = d.plan_module(module(tables={"CacheEntries": {"schema": "public"}}), source, empty_target())
    assert plan["warnings"] == [
        'public."Users" has 2 trigger(s), which source_ddl does not copy',
        "public.v_users is not a table; source_ddl does not copy it",
        'module AuditLog: no table CacheEntries in "ClassifiedAds_AuditLog".public; its override is unused',
    ]


def test_existing_sequence_with_other_options_is_an_error():
    mapping, source = module(tables={"schemaversions": {"schema": "public"}}), source_catalog()
    target = empty_target()
    target["sequences"][("public", "schemaversions_schemaversionsid_seq")] = seq(
        "schemaversions_schemaversionsid_seq", start=5)
    with pytest.raises(d.DdlError, match=r"sequence public.schemaversions_schemaversionsid_seq: start 5, expected 1"):
        d.plan_module(mapping, source, target)


def test_flatten_sets_the_path_only_when_it_changes():
    a, b = sql.SQL("a"), sql.SQL("b")
    statements = d.flatten_steps([(("x",), a), (("x",), b), (("y", "x"), a)])
    assert [render(s) for s in statements] == [
        'SET LOCAL search_path TO "x", pg_catalog', "a", "b", 'SET LOCAL search_path TO "y", "x", pg_catalog', "a"]


def test_names_in_ddl_messages_are_quoted_by_the_display_quoter():
    assert display.qualified("public", "Users") == 'public."Users"'
    assert display.quote_ident(HOSTILE) == '"a""; DROP TABLE x; --"'
    assert display.quote_ident("users_1") == "users_1"
