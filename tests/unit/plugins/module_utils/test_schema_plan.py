"""source_ddl's pure decisions: scratch names, the archive's entries, the comparison, extensions, search paths."""

from __future__ import annotations

import pytest
from constants import HOSTILE
from sqlrender import render

from ansible_collections.classifiedads.consolidation.plugins.module_utils import schema_plan as sp

# pg_restore --list of pg_dump 15 with -n public (it does print CREATE SCHEMA public) and a hostile name.
TOC = """;
; Archive created at 2026-12-05 02:05:46 UTC
;     dbname: leg
;
5; 2615 2200 SCHEMA - public pg_database_owner
3445; 0 0 COMMENT - SCHEMA public pg_database_owner
3449; 0 0 ACL - SCHEMA public pg_database_owner
263; 1255 16504 FUNCTION public f() postgres
216; 1259 16491 TABLE public t postgres
3446; 0 0 COMMENT public TABLE t postgres
215; 1259 16490 SEQUENCE public t_id_seq postgres
3448; 0 0 SEQUENCE OWNED BY public t_id_seq postgres
217; 1259 16499 MATERIALIZED VIEW public mv postgres
3295; 2606 16498 CONSTRAINT public t t_pkey postgres
3296; 2606 16499 FK CONSTRAINT public t t_fk postgres
9; 2615 16600 SCHEMA - publicity postgres
"""


def test_the_scratch_database_is_named_after_target_and_module():
    assert sp.scratch_database_name("ClassifiedAds", "Product") == "ClassifiedAds__ddl_Product"


def test_a_long_scratch_name_is_shortened_to_63_bytes_and_stays_distinct():
    first = sp.scratch_database_name("T" * 60, "Product")
    second = sp.scratch_database_name("T" * 60, "Identity")
    assert len(first.encode()) <= 63 and len(second.encode()) <= 63
    assert first != second and first.startswith("T" * 40)
    multibyte = sp.scratch_database_name("ü" * 40, "Module")
    assert len(multibyte.encode()) <= 63
    multibyte.encode().decode("utf-8")  # not cut inside a character


def test_a_name_pattern_matches_the_name_literally():
    assert sp.name_pattern("public") == '"public"'
    assert sp.name_pattern(HOSTILE) == '"a""; DROP TABLE x; --"'
    assert sp.name_pattern("Mod*Schema") == '"Mod*Schema"'


def test_toc_entries_carry_their_kind_even_when_it_has_several_words():
    kinds = [entry["kind"] for entry in sp.parse_toc(TOC)]
    assert kinds == ["SCHEMA", "COMMENT", "ACL", "FUNCTION", "TABLE", "COMMENT", "SEQUENCE", "SEQUENCE OWNED BY",
                     "MATERIALIZED VIEW", "CONSTRAINT", "FK CONSTRAINT", "SCHEMA"]


def test_the_schema_and_its_comment_are_left_out_of_the_restore_and_nothing_else():
    listed = sp.restore_list(sp.parse_toc(TOC), ["public"])
    assert "SCHEMA - public " not in listed and "COMMENT - SCHEMA public" not in listed
    assert "ACL - SCHEMA public" in listed  # its grants travel with it
    assert "SCHEMA - publicity postgres" in listed  # a schema whose name merely starts alike stays
    assert "COMMENT public TABLE t postgres" in listed and "FUNCTION public f()" in listed


def test_objects_are_counted_per_kind_without_the_schema_entries():
    assert sp.count_kinds(sp.parse_toc(TOC), ["public", "publicity"]) == {
        "FUNCTION": 1, "TABLE": 1, "COMMENT": 1, "SEQUENCE": 1, "SEQUENCE OWNED BY": 1, "MATERIALIZED VIEW": 1,
        "CONSTRAINT": 1, "FK CONSTRAINT": 1, "ACL": 1}


SCRIPT = """\\restrict abc
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
--
-- Name: t; Type: TABLE; Schema: product; Owner: -
--

CREATE TABLE product.t (
    id integer NOT NULL
);

--
-- Name: TABLE t; Type: COMMENT; Schema: product; Owner: -
--

COMMENT ON TABLE product.t IS 'hi';

\\unrestrict abc
"""


def test_a_script_splits_into_definitions_without_comments_settings_or_restrict_lines():
    assert sp.split_script(SCRIPT) == {
        ("TABLE", "product", "t"): "CREATE TABLE product.t (\n    id integer NOT NULL\n);",
        ("COMMENT", "product", "TABLE t"): "COMMENT ON TABLE product.t IS 'hi';",
    }


def test_a_setting_or_comment_line_inside_an_entry_is_part_of_its_definition():
    moved = SCRIPT.replace("CREATE TABLE product.t (", "SET default_tablespace = fast;\n\nCREATE TABLE product.t (")
    commented = SCRIPT.replace("    id integer NOT NULL", "    -- note\n    id integer NOT NULL")
    for other in (moved, commented):
        assert sp.split_script(other)[("TABLE", "product", "t")] != sp.split_script(SCRIPT)[("TABLE", "product", "t")]


def test_a_restore_key_differing_only_by_restrict_key_compares_equal():
    other = SCRIPT.replace("abc", "xyz")
    assert sp.split_script(other) == sp.split_script(SCRIPT)


WANTED = {("TABLE", "product", "t"): "CREATE TABLE product.t (id int);",
          ("TABLE", "public", "journal"): "CREATE TABLE public.journal (id int);"}


def test_an_empty_target_is_restored():
    assert sp.compare_definitions(WANTED, {}, "product") == ("restore", [])


def test_shared_schemas_may_hold_other_objects():
    existing = {("TABLE", "public", "other"): "CREATE TABLE public.other (x int);"}
    assert sp.compare_definitions(WANTED, existing, "product") == ("restore", [])


def test_the_same_definitions_are_existing():
    existing = dict(WANTED)
    existing[("TABLE", "public", "other")] = "x"
    assert sp.compare_definitions(WANTED, existing, "product") == ("existing", [])


def test_some_objects_or_other_ones_are_different_and_each_is_named():
    state, differences = sp.compare_definitions(WANTED, {
        ("TABLE", "product", "t"): "CREATE TABLE product.t (id bigint);",
        ("VIEW", "product", "v"): "CREATE VIEW product.v AS SELECT 1;"}, "product")
    assert state == "different"
    assert differences == ["missing in the target: TABLE public.journal",
                           "defined differently in the target: TABLE product.t",
                           "in the target but not in the legacy schema: VIEW product.v"]


def test_an_extra_object_in_the_module_schema_alone_is_different():
    state, differences = sp.compare_definitions(WANTED, {("VIEW", "product", "v"): "x"}, "product")
    assert state == "different" and differences == ["missing in the target: TABLE product.t",
                                                    "missing in the target: TABLE public.journal",
                                                    "in the target but not in the legacy schema: VIEW product.v"]


def test_an_extension_lands_where_the_target_has_it_else_by_its_legacy_schema():
    citext = {"name": "citext", "schema": "public"}
    assert sp.extension_placement(citext, "public", {"citext": "extensions"}, "public") == "extensions"
    assert sp.extension_placement(citext, "public", {}, "ext") == "ext"
    assert sp.extension_placement({"name": "citext", "schema": "util"}, "public", {}, "ext") == "util"


def test_an_extension_the_role_cannot_create_is_a_problem_with_its_fix():
    extensions = [{"name": "hstore", "schema": "ext"}, {"name": "file_fdw", "schema": "ext"},
                  {"name": "postgis", "schema": "ext"}]
    problems = sp.extension_problems(extensions, {"hstore": True, "file_fdw": False}, False, "app", "public")
    assert problems == [
        "extension file_fdw is not trusted and app is not a superuser, so it cannot create it in the scratch database "
        "nor in the target: run source_ddl as a superuser, or mark the extension trusted (trusted = true in its "
        "control file) if that is safe",
        "extension postgis of the legacy database is not available on the target server: install its package (e.g. "
        "postgresql-contrib) there"]
    assert sp.extension_problems(extensions[:2], {"hstore": True, "file_fdw": False}, True, "app", "public") == []


def test_a_trusted_extension_in_the_source_schema_still_needs_a_superuser_to_move_out():
    in_source = [{"name": "hstore", "schema": "public"}]
    assert "only a superuser may do" in sp.extension_problems(in_source, {"hstore": True}, False, "app", "public")[0]
    assert sp.extension_problems(in_source, {"hstore": True}, True, "app", "public") == []


def test_search_path_settings_are_split_as_postgresql_prints_them():
    assert sp.search_path_setting(["work_mem=1MB", 'search_path=public, "My ""Schema""", pg_temp']) == [
        "public", 'My "Schema"', "pg_temp"]
    assert sp.search_path_setting(['search_path=""']) == []
    assert sp.search_path_setting(None) is None
    assert sp.search_path_setting(["work_mem=1MB"]) is None


def test_a_body_naming_the_old_schema_is_found_qualified_or_quoted():
    assert sp.names_schema("SELECT count(*) FROM public.t", "public")
    assert sp.names_schema('SELECT count(*) FROM "public" . t', "public")
    assert sp.names_schema('SELECT * FROM PUBLIC.t', "public")
    assert not sp.names_schema("SELECT 'republic'.x, my_public.t", "public")
    assert not sp.names_schema("SELECT 1 -- no schema", "public")
    assert sp.names_schema('SELECT * FROM "Mod Schema".t', "Mod Schema")
    assert not sp.names_schema("SELECT * FROM mod_schema.t", "Mod Schema")


def test_routines_naming_the_old_schema_are_listed_and_rewritten_only_on_request():
    routines = [{"signature": "product.f()", "body": "select 1 from public.t", "proconfig": ["search_path=public"]},
                {"signature": "product.g()", "body": "select 1", "proconfig": ["search_path=pg_catalog"]}]
    findings, rewrites = sp.routine_findings(routines, "public", "product", rewrite=False)
    assert [(f["function"], f["kind"]) for f in findings] == [("product.f()", "body"), ("product.f()", "search_path")]
    assert rewrites == [] and findings[1]["rewritten"] is None
    findings, rewrites = sp.routine_findings(routines, "public", "product", rewrite=True)
    assert rewrites == [("product.f()", ["product"])] and findings[1]["rewritten"] == ["product"]


def test_cascaded_objects_come_from_notice_and_detail_lines():
    notices = ["NOTICE:  drop cascades to 2 other objects\nDETAIL:  drop cascades to view v\n"
               "drop cascades to materialized view mv\n", "NOTICE:  drop cascades to view w\n"]
    assert sp.cascaded_objects(notices) == ["view v", "materialized view mv", "view w"]


def test_a_dump_denied_a_table_names_it_and_the_grant_that_fixes_it():
    err = ('pg_dump: error: query failed: ERROR:  permission denied for table secret\n'
           'pg_dump: detail: Query was: LOCK TABLE public.secret IN ACCESS SHARE MODE')
    assert sp.dump_problem("source", "Legacy", "app", err) == (
        "pg_dump cannot read table secret in source database Legacy (permission denied: pg_dump locks and reads "
        "every object of the schema): GRANT SELECT ON TABLE secret TO app there, or connect as its owner")


def test_a_restore_naming_a_missing_role_says_to_create_it():
    problem = sp.restore_problem("target database T", 'psql:x.sql:40: ERROR:  role "auditor" does not exist')
    assert "role auditor, which does not exist on the target server: create it there" in problem


def test_the_legacy_schema_grants_become_grant_statements_and_an_unknown_privilege_is_refused():
    statements = sp.schema_grant_statements("we\"ird", [(None, "USAGE", False), ("reader", "CREATE", True)])
    assert [render(statement) for statement in statements] == [
        'GRANT USAGE ON SCHEMA "we""ird" TO PUBLIC',
        'GRANT CREATE ON SCHEMA "we""ird" TO "reader" WITH GRANT OPTION']
    with pytest.raises(sp.SchemaPlanError):
        sp.schema_grant_statements("s", [("reader", "DROP TABLE x", False)])


def test_the_schemas_own_grants_never_make_a_target_different():
    wanted = {**WANTED, ("ACL", "-", "SCHEMA product"): "GRANT USAGE ON SCHEMA product TO PUBLIC;"}
    assert sp.compare_definitions(wanted, {("ACL", "-", "SCHEMA product"): "GRANT ALL ON SCHEMA product TO app;"},
                                  "product") == ("restore", [])
    assert sp.compare_definitions(wanted, dict(WANTED), "product") == ("existing", [])
