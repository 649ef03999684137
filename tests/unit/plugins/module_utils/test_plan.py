"""The consolidation contract: validation and normalisation, case by case."""

from __future__ import annotations

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import (
    PlanError,
    backup_timing_plan,
    build_plan,
    expected_tables,
    fence_plan,
    find_collisions,
    run_plan,
    table_destination,
    target_schemas,
)

SOURCE = {"host": "db1", "port": 5432}
OTHER = {"host": "db2", "port": 5432}


def module(name="Product", database="ClassifiedAds_Product", schema="product", **extra):
    return dict(name=name, source_database=database, schema=schema, **extra)


def problems_of(*args, **kwargs):
    with pytest.raises(PlanError) as caught:
        build_plan(*args, **kwargs)
    return caught.value.problems


def test_defaults_are_filled_in_and_global_excludes_merged():
    plan = build_plan([module(exclude_tables=["Local"])], "ClassifiedAds", SOURCE, SOURCE, ["__EFMigrationsHistory"])
    assert plan == [{
        "name": "Product", "source_database": "ClassifiedAds_Product", "source_schema": "public",
        "schema": "product", "exclude_tables": ["Local", "__EFMigrationsHistory"], "tables": {},
        "schema_exclusions": [],
    }]


def test_mixed_case_and_hostile_names_are_accepted_as_they_are():
    plan = build_plan([module(database=HOSTILE, schema=HOSTILE)], "ClassifiedAds", SOURCE, OTHER)
    assert plan[0]["source_database"] == HOSTILE and plan[0]["schema"] == HOSTILE


def test_every_problem_is_reported_at_once():
    problems = problems_of([module(schema="pg_temp"), module(name="B", database="", schema="x" * 64)],
                           "ClassifiedAds", SOURCE, OTHER)
    assert any("reserved" in p for p in problems)
    assert any("source_database is required" in p for p in problems)
    assert len(problems) == 2


@pytest.mark.parametrize("field, first, second", [
    ("schema", "product", "Product"),
    ("source_database", "ClassifiedAds_Product", "classifiedads_product"),
    ("name", "Product", "product"),
])
def test_duplicates_are_refused_case_insensitively(field, first, second):
    one, two = module(), module(name="Other", database="ClassifiedAds_Other", schema="other")
    one[field], two[field] = first, second
    problems = problems_of([one, two], "ClassifiedAds", SOURCE, OTHER)
    assert problems == [p for p in problems if "duplicate" in p] and problems


def test_target_must_not_be_a_legacy_database_on_the_same_server():
    problems = problems_of([module()], "ClassifiedAds_Product", SOURCE, dict(SOURCE))
    assert "source and target must differ" in problems[0]
    # The same name on another server is a different database.
    assert build_plan([module()], "ClassifiedAds_Product", SOURCE, OTHER)


def test_empty_mapping_is_refused():
    assert problems_of([], "ClassifiedAds", SOURCE, OTHER) == ["the module mapping is empty: nothing to consolidate"]


def test_overrides_route_tables_and_collisions_are_refused():
    audit = module("AuditLog", "ClassifiedAds_AuditLog", "auditlog",
                   tables={"schemaversions": {"schema": "public", "truncate": True}})
    plan = build_plan([audit], "ClassifiedAds", SOURCE, OTHER)
    assert table_destination(plan[0], "schemaversions") == ("public", "schemaversions", True)
    assert table_destination(plan[0], "AuditLogEntries") == ("auditlog", "AuditLogEntries", False)

    clash = module(tables={"Cache": {"schema": "public", "table": "schemaversions"}})
    problems = problems_of([audit, clash], "ClassifiedAds", SOURCE, OTHER)
    assert problems == ["2 tables ClassifiedAds_AuditLog.schemaversions, ClassifiedAds_Product.Cache would all land "
                        "in public.schemaversions"]


def test_override_keys_and_excluded_overrides_are_checked():
    problems = problems_of([module(exclude_tables=["T"], tables={"T": {"schema": "s", "colour": "red"}})],
                           "ClassifiedAds", SOURCE, OTHER)
    assert "unknown keys colour" in problems[0]
    assert "both excluded and overridden" in problems[1]


def test_schema_exclusions_are_kept_with_their_reasons():
    plan = build_plan([module(schema_exclusions=[
        {"kind": "policy", "name": "Products.own_rows", "reason": "  the application filters rows itself "}])],
        "ClassifiedAds", SOURCE, OTHER)
    assert plan[0]["schema_exclusions"] == [
        {"kind": "policy", "name": "Products.own_rows", "reason": "the application filters rows itself"}]


def test_schema_exclusions_need_a_known_kind_a_name_and_a_reason():
    problems = problems_of([module(schema_exclusions=[
        {"kind": "tables", "name": "Products", "reason": "typo in the kind"},
        {"kind": "view", "name": "", "reason": "no name"},
        {"kind": "grant", "name": "table Products reader", "reason": "   "},
        {"kind": "view", "name": "v", "reason": "r", "why": "unknown key"},
        {"kind": "view", "name": "v", "reason": "twice"},
        "policy Products.own_rows",
    ])], "ClassifiedAds", SOURCE, OTHER)
    assert problems[0] == ("module 'Product': schema_exclusions[0]: kind 'tables' is not one of table, partition, "
                           "index, constraint, sequence, type, function, trigger, view, materialized_view, policy, "
                           "rls, grant, comment, rule, statistics, extension")
    assert "schema_exclusions[1]: name must be a non-empty string" in problems[1]
    assert "schema_exclusions[2]: reason must say why" in problems[2]
    assert "schema_exclusions[3] has unknown keys why" in problems[3]
    assert "schema_exclusions[4]: view v is excluded twice" in problems[4]
    assert "schema_exclusions[5] must be a dictionary" in problems[5]
    assert len(problems) == 6


def test_excluded_tables_have_no_destination_and_are_not_expected():
    plan = build_plan([module()], "ClassifiedAds", SOURCE, OTHER, ["__EFMigrationsHistory"])
    assert table_destination(plan[0], "__EFMigrationsHistory") is None
    assert expected_tables(plan, {"ClassifiedAds_Product": ["Products", "__EFMigrationsHistory"]}) == {
        "product": ["Products"]}


def test_collisions_between_default_and_overridden_destinations():
    assert find_collisions([("A", "T", "public", "T"), ("B", "T", "public", "T"), ("B", "U", "b", "U")]) == [
        "A.T, B.T would all land in public.T"]
    assert find_collisions([("A", "T", "a", "T"), ("B", "T", "b", "T")]) == []


def test_target_schemas_include_override_destinations_once():
    plan = build_plan([module(tables={"schemaversions": {"schema": "public"}, "Cache": {"schema": "public"}}),
                       module("Identity", "ClassifiedAds_Identity", "identity")], "ClassifiedAds", SOURCE, OTHER)
    assert target_schemas(plan) == ["product", "identity", "public"]


def test_the_run_plan_names_every_run_file_and_keeps_no_secret():
    modules = build_plan([{"name": "Product", "source_database": "ClassifiedAds_Product", "schema": "product"}],
                         "ClassifiedAds", SOURCE, OTHER)
    source = dict(SOURCE, user="reader", password="s3cret")
    target = dict(OTHER, user="owner", password="t0psecret", passfile="/etc/pgpass")
    source_facts = {"version": 150000, "databases": {"ClassifiedAds_Product": {"tables": ["Products", "Outbox"]}}}
    plan = run_plan("r1", False, "/runs", "/backups", "existing", "ClassifiedAds", modules, [], source, target,
                    source_facts, {"version": 150000, "database_exists": False})
    assert plan["run_dir"] == "/runs/r1" and plan["backup_dir"] == "/backups/r1"
    assert plan["files"]["plan"] == "/runs/r1/plan.json"
    assert plan["files"]["data_copy_log"] == "/runs/r1/data_copy.log"
    assert plan["backup_files"] == {"manifest": "/backups/r1/manifest.json", "config_dir": "/backups/r1/config",
                                    "config_index": "/backups/r1/config/index.json"}
    assert plan["expected_tables"] == {"product": ["Outbox", "Products"]}
    assert plan["source"]["user"] == "reader" and plan["target"]["host"] == "db2"
    assert "s3cret" not in repr(plan) and "t0psecret" not in repr(plan) and "passfile" not in repr(plan)


def test_a_fresh_run_plan_expects_no_legacy_tables():
    modules = build_plan([{"name": "Product", "source_database": "ClassifiedAds_Product", "schema": "product"}],
                         "ClassifiedAds", SOURCE, OTHER)
    plan = run_plan("r1", True, "/runs", "/backups", "fresh", "ClassifiedAds", modules, [], SOURCE, OTHER,
                    {"databases": {}}, {"database_exists": False})
    assert plan["expected_tables"] == {} and plan["resumed"] is True


def test_the_backup_goes_after_the_start_only_behind_a_fence():
    fenced = fence_plan("read_only", None)
    assert backup_timing_plan("after_start", fenced) == {"timing": "after_start", "reason": None}
    assert backup_timing_plan("before_copy", fenced) == {"timing": "before_copy", "reason": None}
    # Unfenced, the legacy databases may change after the copy: a later backup would not hold what was copied.
    unfenced = backup_timing_plan("after_start", fence_plan("none", "a promoted replica"))
    assert unfenced["timing"] == "before_copy"
    assert "consolidation_fence is none" in unfenced["reason"] and "before the copy" in unfenced["reason"]
    assert backup_timing_plan("before_copy", fence_plan("none", "a promoted replica"))["reason"] is None


def test_an_unknown_backup_timing_is_refused_naming_the_choices():
    with pytest.raises(PlanError) as caught:
        backup_timing_plan("during_copy", fence_plan("read_only", None))
    assert caught.value.problems == ["consolidation_backup_timing must be one of after_start, before_copy, "
                                     "got 'during_copy'"]


def test_the_run_plan_records_the_backup_timing():
    modules = build_plan([module()], "ClassifiedAds", SOURCE, OTHER)
    facts = {"databases": {"ClassifiedAds_Product": {"tables": []}}}
    timing = backup_timing_plan("after_start", fence_plan("read_only", None))
    plan = run_plan("r1", False, "/runs", "/backups", "existing", "ClassifiedAds", modules, [], SOURCE, OTHER,
                    facts, {}, backup_timing=timing)
    assert plan["backup_timing"] == {"timing": "after_start", "reason": None}
