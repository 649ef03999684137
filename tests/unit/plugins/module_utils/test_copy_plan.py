"""The data copy's decisions, case by case (copy_plan: pure functions, no server)."""

from __future__ import annotations

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import copy_plan, display
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import (
    COPY,
    SKIP_COMPLETE,
    TRUNCATE_AND_COPY,
    Column,
    CopyPlanError,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan

LABEL = "ClassifiedAds_Product:public.\"Products\" -> product.\"Products\""


def col(name, type_name="text", display=None, generated=False, portable=True):
    return Column(name, type_name, display or {"text": "text", "int4": "integer", "uuid": "uuid",
                                               "int8": "bigint", "varchar": "character varying(150)",
                                               "timestamptz": "timestamp with time zone",
                                               "timestamp": "timestamp without time zone"}.get(type_name, type_name),
                  generated, portable)


def problem_of(function, *args):
    with pytest.raises(CopyPlanError) as caught:
        function(*args)
    assert len(caught.value.problems) == 1
    return caught.value.problems[0]


# -- names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, shown", [
    ("product", "product"),
    ("Products", '"Products"'),
    ("schemaversions", "schemaversions"),
    ("__EFMigrationsHistory", '"__EFMigrationsHistory"'),
    ("user", '"user"'),
    ("1st", '"1st"'),
    (HOSTILE, '"a""; DROP TABLE x; --"'),
])
def test_names_are_shown_as_postgresql_quotes_them(name, shown):
    assert display.quote_ident(name) == shown


def test_qualified_names_quote_each_part():
    assert display.qualified("product", "Products") == 'product."Products"'
    assert display.qualified(HOSTILE, HOSTILE) == '"a""; DROP TABLE x; --"."a""; DROP TABLE x; --"'


# -- which tables ------------------------------------------------------------------------------------

def normalised(**extra):
    raw = dict(name="AuditLog", source_database="ClassifiedAds_AuditLog", schema="auditlog", **extra)
    return build_plan([raw], "ClassifiedAds", {"host": "a"}, {"host": "b"}, ["__EFMigrationsHistory"])[0]


def test_tables_land_in_the_module_schema_unless_overridden_or_excluded():
    module = normalised(tables={"schemaversions": {"schema": "public", "truncate": True}})
    mappings, excluded = copy_plan.map_tables(
        module, ["AuditLogEntries", "schemaversions", "__EFMigrationsHistory"])
    assert excluded == ["__EFMigrationsHistory"]
    assert mappings == [
        copy_plan.TableMapping("AuditLogEntries", "auditlog", "AuditLogEntries", False),
        copy_plan.TableMapping("schemaversions", "public", "schemaversions", True),
    ]


def test_an_override_for_a_table_the_source_lacks_is_an_error_naming_it():
    module = normalised(tables={"SchemaVersions": {"schema": "public"}})
    problem = problem_of(copy_plan.map_tables, module, ["schemaversions"])
    assert '"SchemaVersions"' in problem and "ClassifiedAds_AuditLog" in problem


def test_hostile_table_names_map_verbatim():
    mappings, excluded = copy_plan.map_tables(normalised(), [HOSTILE])
    assert mappings == [copy_plan.TableMapping(HOSTILE, "auditlog", HOSTILE, False)] and excluded == []


# -- which columns -----------------------------------------------------------------------------------

def test_identical_columns_copy_in_binary_in_target_order():
    columns = [col("Id", "uuid"), col("Name")]
    assert copy_plan.match_columns(LABEL, columns, columns) == copy_plan.ColumnMatch(["Id", "Name"], "binary")


def test_reordered_columns_are_matched_by_name_in_target_order():
    source = [col("Id", "uuid"), col("Name"), col("Code")]
    target = [col("Code"), col("Id", "uuid"), col("Name")]
    assert copy_plan.match_columns(LABEL, source, target).columns == ["Code", "Id", "Name"]


def test_a_generated_target_column_is_left_to_the_target():
    source = [col("Id", "uuid"), col("Name")]
    target = [col("Id", "uuid"), col("Name"), col("NameUpper", generated=True)]
    assert copy_plan.match_columns(LABEL, source, target).columns == ["Id", "Name"]


def test_a_generated_target_column_is_skipped_even_when_the_source_has_it():
    source = [col("Id", "uuid"), col("Total", "int8")]
    target = [col("Id", "uuid"), col("Total", "int8", generated=True)]
    assert copy_plan.match_columns(LABEL, source, target).columns == ["Id"]


def test_a_generated_source_column_is_read_into_a_plain_target_column():
    source = [col("Id", "uuid"), col("Total", "int8", generated=True)]
    target = [col("Id", "uuid"), col("Total", "int8")]
    assert copy_plan.match_columns(LABEL, source, target).columns == ["Id", "Total"]


def test_missing_and_extra_columns_are_one_error_listing_both_sides():
    source = [col("Id", "uuid"), col("Legacy")]
    target = [col("Id", "uuid"), col("Added")]
    problem = problem_of(copy_plan.match_columns, LABEL, source, target)
    assert problem.startswith(LABEL)
    assert 'only in the source: "Legacy"' in problem
    assert 'only in the target: "Added"' in problem
    assert 'source columns: "Id" uuid, "Legacy" text' in problem
    assert 'target columns: "Id" uuid, "Added" text' in problem


def test_a_type_mismatch_that_binary_copy_cannot_carry_is_an_error():
    problem = problem_of(copy_plan.match_columns, LABEL, [col("Count", "int4")], [col("Count", "int8")])
    assert '"Count" is integer in the source but bigint in the target' in problem


def test_timestamp_and_timestamptz_are_not_interchangeable():
    # Same binary width, different meaning: copying one into the other would shift every value silently.
    problem = problem_of(copy_plan.match_columns, LABEL, [col("At", "timestamp")], [col("At", "timestamptz")])
    assert "timestamp without time zone" in problem and "timestamp with time zone" in problem


@pytest.mark.parametrize("source_type, target_type", [("text", "varchar"), ("varchar", "text"),
                                                      ("_text", "_varchar")])
def test_text_and_varchar_share_their_binary_form(source_type, target_type):
    match = copy_plan.match_columns(LABEL, [col("Name", source_type)], [col("Name", target_type)])
    assert match == copy_plan.ColumnMatch(["Name"], "binary")


def test_typmods_may_differ_the_target_enforces_its_own():
    match = copy_plan.match_columns(LABEL, [col("Id", "varchar", "character varying(150)")],
                                    [col("Id", "varchar", "character varying(449)")])
    assert match.copy_format == "binary"


def test_a_type_whose_binary_form_holds_an_oid_travels_as_text():
    source = [col("Id", "uuid"), col("Address", "address", portable=False)]
    target = [col("Id", "uuid"), col("Address", "address", portable=False)]
    assert copy_plan.match_columns(LABEL, source, target) == copy_plan.ColumnMatch(["Id", "Address"], "text")


def test_a_table_with_nothing_to_copy_is_refused():
    problem = problem_of(copy_plan.match_columns, LABEL, [], [col("Id", "uuid", generated=True)])
    assert "no column to copy" in problem


def test_hostile_column_names_appear_quoted_in_the_error():
    problem = problem_of(copy_plan.match_columns, LABEL, [col(HOSTILE)], [col("x")])
    assert '"a""; DROP TABLE x; --"' in problem


# -- copy, skip or refuse ----------------------------------------------------------------------------

@pytest.mark.parametrize("complete, empty, truncate, action", [
    (True, False, False, SKIP_COMPLETE),
    (True, True, True, SKIP_COMPLETE),
    (False, True, False, COPY),
    (False, True, True, COPY),
    (False, False, True, TRUNCATE_AND_COPY),
    (False, False, False, None),
])
def test_table_action(complete, empty, truncate, action):
    assert copy_plan.table_action(complete, empty, truncate) == action


def test_the_refusal_names_every_table_and_the_way_out():
    problem = copy_plan.refusal_problem(['product."Products"', 'identity."Users"'])
    assert 'product."Products", identity."Users"' in problem
    assert "truncate=true" in problem and "truncate: true" in problem


# -- order -------------------------------------------------------------------------------------------

def test_biggest_first_then_by_database_and_table():
    items = [
        dict(source_database="B", source_table="t", size=10),
        dict(source_database="A", source_table="z", size=10),
        dict(source_database="A", source_table="big", size=1000),
        dict(source_database="A", source_table="a", size=10),
        dict(source_database="A", source_table="none", size=None),
    ]
    ordered = [(item["source_database"], item["source_table"]) for item in copy_plan.order_work(items)]
    assert ordered == [("A", "big"), ("A", "a"), ("A", "z"), ("B", "t"), ("A", "none")]


def test_primary_key_is_rebuilt_first_then_constraints_then_indexes():
    indexes = [dict(kind="index", name="IX_a"), dict(kind="unique", name="UQ"),
               dict(kind="primary_key", name="PK_z"), dict(kind="exclusion", name="EX"),
               dict(kind="index", name="IX_B")]
    assert [index["name"] for index in copy_plan.order_index_rebuilds(indexes)] == ["PK_z", "UQ", "EX", "IX_B", "IX_a"]


# -- sequences ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("last_value, is_called, increment, extreme, expected", [
    # The source's own state continues exactly when the copied rows are below it.
    (12, True, 1, 12, (12, True)),
    (12, True, 1, 10, (12, True)),
    # A never-used source sequence (is_called false) stays unused on an empty table.
    (1, False, 1, None, (1, False)),
    # Rows above the sequence (inserted with explicit ids): continue after max(column).
    (5, True, 1, 40, (40, True)),
    (1, False, 1, 1, (1, True)),
    # No source sequence (the target column has one, the source a plain column).
    (None, None, 1, 7, (7, True)),
    (None, None, 1, None, None),
    # Steps other than 1: the source's next value (15) is still free up to max 14.
    (10, True, 5, 14, (10, True)),
    (10, True, 5, 15, (15, True)),
    # Descending sequences: next value must stay below min(column).
    (-5, True, -1, -3, (-5, True)),
    (-5, True, -1, -9, (-9, True)),
])
def test_sequence_setval(last_value, is_called, increment, extreme, expected):
    assert copy_plan.sequence_setval(last_value, is_called, increment, extreme) == expected


def test_sequence_setval_never_goes_below_the_copied_column():
    for last_value in range(1, 20):
        for extreme in range(1, 20):
            value, is_called = copy_plan.sequence_setval(last_value, True, 1, extreme)
            next_value = value + 1 if is_called else value
            assert next_value > extreme


def test_a_zero_increment_is_refused():
    with pytest.raises(CopyPlanError):
        copy_plan.sequence_setval(1, True, 0, 1)


# -- foreign keys and triggers -----------------------------------------------------------------------

FK = 'FOREIGN KEY ("UserId") REFERENCES identity."Users"("Id") ON DELETE CASCADE'


def test_a_valid_foreign_key_comes_back_not_valid_then_validated():
    assert copy_plan.foreign_key_steps(FK, "dropped") == [("add", FK + " NOT VALID"), ("validate", None)]


def test_a_foreign_key_already_added_is_only_validated():
    assert copy_plan.foreign_key_steps(FK, "added") == [("validate", None)]


def test_a_foreign_key_that_was_not_valid_comes_back_as_it_was():
    assert copy_plan.foreign_key_steps(FK + " NOT VALID", "dropped") == [("add", FK + " NOT VALID")]
    assert copy_plan.foreign_key_steps(FK + " NOT VALID", "added") == []


@pytest.mark.parametrize("mode, clause", [("O", "ENABLE TRIGGER"), ("A", "ENABLE ALWAYS TRIGGER"),
                                          ("R", "ENABLE REPLICA TRIGGER")])
def test_trigger_firing_modes_are_restored(mode, clause):
    assert copy_plan.trigger_enable_clause(mode) == clause


def test_an_unknown_trigger_mode_is_refused():
    with pytest.raises(CopyPlanError):
        copy_plan.trigger_enable_clause("D")


# -- progress ----------------------------------------------------------------------------------------

def test_progress_line():
    line = copy_plan.format_progress("product", "Products", 12345, int(3.2 * 1024 * 1024), 0.4)
    assert line == 'product."Products": 12,345 rows, 3.2 MB in 0.4 s (8.0 MB/s)'


def test_progress_line_for_one_row_in_no_time():
    assert copy_plan.format_progress("public", "schemaversions", 1, 60, 0) == \
        "public.schemaversions: 1 row, 0.0 MB in 0.0 s (0.0 MB/s)"


def test_progress_line_with_a_hostile_name():
    assert copy_plan.format_progress(HOSTILE, HOSTILE, 0, 0, 0.1).startswith(
        '"a""; DROP TABLE x; --"."a""; DROP TABLE x; --": 0 rows')


def test_totals_count_only_tables_copied_now():
    entries = [dict(status="copied", rows=10, bytes=2 * 1024 * 1024), dict(status="copied", rows=5, bytes=1024 * 1024),
               dict(status="skipped_complete", rows=100, bytes=10 ** 9), dict(status="would_copy", rows=7, bytes=9)]
    summary = copy_plan.totals(entries, 1.5)
    assert summary == {"tables": 2, "rows": 15, "bytes": 3 * 1024 * 1024, "seconds": 1.5, "mb_per_second": 2.0}
    assert copy_plan.format_totals(summary) == "total: 2 tables, 15 rows, 3.0 MB in 1.5 s (2.0 MB/s)"


def test_check_mode_plan_line():
    assert copy_plan.format_plan_line("product", "Products", 2, 8192) == 'would copy product."Products": 2 rows, 0.0 MB'


# -- NULLs where the target forbids them ------------------------------------------------------------


def test_only_copied_columns_nullable_in_the_source_and_not_null_in_the_target_are_null_sensitive():
    source = [col("Id", "uuid")._replace(not_null=True), col("UserId", "uuid"), col("Type"), col("Gone")]
    target = [col("Id", "uuid")._replace(not_null=True), col("UserId", "uuid")._replace(not_null=True),
              col("Type"), col("Made", generated=True)._replace(not_null=True)]
    assert copy_plan.null_sensitive_columns(source, target, ["Id", "UserId", "Type"]) == ["UserId"]


# -- partitions, row-level security, materialized views ----------------------------------------------

def test_a_partition_lands_beside_its_root_and_is_excluded_with_it():
    module = normalised(tables={"Events": {"schema": "history"}}, exclude_tables=["Archive"])
    roots = {"Events_2025": "Events", "Events_2025_low": "Events", "Archive_2019": "Archive"}
    mappings, excluded = copy_plan.map_tables(module, ["Events", "Events_2025", "Events_2025_low", "Archive",
                                                       "Archive_2019", "Plain"], roots)
    assert [(m.source_table, m.target_schema, m.target_table) for m in mappings] == [
        ("Events", "history", "Events"), ("Events_2025", "history", "Events_2025"),
        ("Events_2025_low", "history", "Events_2025_low"), ("Plain", "auditlog", "Plain")]
    assert excluded == ["Archive", "Archive_2019"]


def test_a_partition_named_in_the_mapping_goes_where_its_entry_says():
    module = normalised(tables={"Events": {"schema": "history"}, "Events_2025": {"schema": "cold"}})
    assert copy_plan.partition_destination(module, "Events_2025", "Events") == ("cold", "Events_2025", False)
    assert copy_plan.partition_destination(module, "Events_2026", "Events") == ("history", "Events_2026", False)
    assert copy_plan.partition_destination(module, "Events", None) == ("history", "Events", False)


@pytest.mark.parametrize("bypasses, enabled, forced, owned", [
    (False, False, False, False),  # no RLS
    (True, True, True, False),  # superuser or BYPASSRLS
    (False, True, False, True),  # the owner, RLS not forced
])
def test_a_role_that_may_bypass_row_level_security_passes(bypasses, enabled, forced, owned):
    assert copy_plan.rls_problem("source", "db:public.t", "copier", bypasses, enabled, forced, owned) is None


def test_a_role_subject_to_row_level_security_is_named_with_the_fix():
    forced = copy_plan.rls_problem("source", 'db:public."Secrets"', HOSTILE, False, True, True, True)
    assert forced == ('db:public."Secrets": row-level security is enabled and forced on the source table and role '
                      '"a""; DROP TABLE x; --" is subject to its policies, so rows would be hidden from the copy (or '
                      'refused by COPY): ALTER ROLE "a""; DROP TABLE x; --" BYPASSRLS')
    assert copy_plan.rls_problem("target", 'kinds."T"', "copier", False, True, False, False).endswith(
        "ALTER ROLE copier BYPASSRLS, or make it the table's owner")


def test_a_foreign_key_of_a_partitioned_table_comes_back_valid_in_one_step():
    assert copy_plan.foreign_key_steps(FK, "dropped", partitioned=True) == [("add", FK)]
    assert copy_plan.foreign_key_steps(FK, "added", partitioned=True) == []


def matview(populated):
    return {"source_database": "Legacy", "populated": populated}


def test_materialized_views_refresh_after_what_they_read_even_through_a_view():
    source = {("s", "top"): matview(True), ("s", "base"): matview(True), ("s", "empty"): matview(False),
              ("s", "gone"): matview(True)}
    target = dict((key, {"populated": False, "owned": True}) for key in [("s", "top"), ("s", "base"), ("s", "empty")])
    edges = {("s", "top"): {("s", "middle")}, ("s", "middle"): {("s", "base")}}
    order = copy_plan.refresh_order(source, target, edges)
    # Populated in the source only; one missing from the target is left to the schema step.
    assert [entry["name"] for entry in order] == ["base", "top"]
    assert order[0] == {"target_schema": "s", "name": "base", "source_database": "Legacy", "populated": False,
                        "owned": True}


def test_without_the_target_the_source_alone_says_which_would_refresh():
    order = copy_plan.refresh_order({("s", "a"): matview(True), ("s", "b"): matview(False)}, None, {})
    assert [(entry["name"], entry["populated"], entry["owned"]) for entry in order] == [("a", None, True)]
    assert "ALTER MATERIALIZED VIEW s.a OWNER TO" in copy_plan.matview_owner_problem(order[0])
