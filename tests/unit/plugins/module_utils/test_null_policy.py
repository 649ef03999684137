"""NULL policies: the mapping, the plan-time judgement, the SQL the copy and the verification read with, and
the verification's judgement (null_policy, null_verification)."""

from __future__ import annotations

import pytest
from constants import HOSTILE
from sqlrender import render

from ansible_collections.classifiedads.consolidation.plugins.module_utils import null_policy as n
from ansible_collections.classifiedads.consolidation.plugins.module_utils import null_verification as v
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import Column
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import PlanError, normalize_module
from ansible_collections.classifiedads.consolidation.plugins.module_utils.table_stats import (
    checksum_query,
    count_query,
)

RAW = {"name": "Identity", "source_database": "ClassifiedAds_Identity", "schema": "identity"}
TARGET = ("identity", "UserClaims")


def module_with(tables):
    return normalize_module(dict(RAW, tables=tables), [])


def column(name, type_display="uuid", not_null=False):
    return Column(name, type_display, type_display, False, True, not_null)


# -- the mapping ------------------------------------------------------------------------------------

def test_a_column_policy_is_kept_in_the_table_override_and_read_back():
    module = module_with({"UserClaims": {"columns": {"UserId": {"on_null": "quarantine"}, "Type": {}}}})
    assert module["tables"]["UserClaims"] == {"schema": "identity", "table": "UserClaims", "truncate": False,
                                              "columns": {"Type": {"on_null": "fail"},
                                                          "UserId": {"on_null": "quarantine"}}}
    assert n.table_policies(module, "UserClaims") == {"Type": "fail", "UserId": "quarantine"}
    assert n.acting(n.table_policies(module, "UserClaims")) == {"UserId": "quarantine"}
    assert n.table_policies(module, "Users") == {}


def test_an_override_without_columns_stays_as_it_was():
    assert "columns" not in module_with({"Users": {"truncate": True}})["tables"]["Users"]


def test_every_bad_column_setting_is_reported_at_once():
    with pytest.raises(PlanError) as caught:
        module_with({"UserClaims": {"columns": {"UserId": {"on_null": "ignore"}, "Type": {"on_null": "fail",
                                                                                          "when": "always"},
                                                "": {"on_null": "fail"}, "x" * 64: {}, "Value": "quarantine"}},
                     "RoleClaims": {"columns": ["RoleId"]}})
    problems = caught.value.problems
    assert "module 'Identity': table 'UserClaims': column 'UserId': on_null must be one of fail, default, " \
           "quarantine, got 'ignore'" in problems
    assert "module 'Identity': table 'UserClaims': column 'Type' has unknown keys when (known: on_null)" in problems
    assert any("column name must be a non-empty string" in problem for problem in problems)
    assert any("is longer than 63 bytes" in problem for problem in problems)
    assert any("column 'Value' must map to settings such as {on_null: quarantine}" in problem for problem in problems)
    assert "module 'Identity': table 'RoleClaims': columns must map column names to settings, got ['RoleId']" \
        in problems


# -- plan time --------------------------------------------------------------------------------------

SOURCE = [column("Id", not_null=True), column("UserId"), column("Type", "text"), column("Value", "text")]
MIGRATED = [column("Id", not_null=True), column("UserId", not_null=True), column("Type", "text"),
            column("Value", "text", not_null=True)]
GUID_EMPTY = n.TargetDefault("'00000000-0000-0000-0000-000000000000'::uuid", False)


def test_a_policy_where_it_can_act_is_no_problem():
    assert n.policy_problems("t", {"UserId": "default", "Value": "quarantine"}, SOURCE, MIGRATED,
                             {"UserId": GUID_EMPTY}) == []


def test_a_policy_that_could_never_act_is_refused_naming_why():
    problems = n.policy_problems("t", {"Id": "quarantine", "Type": "quarantine", "Gone": "fail"}, SOURCE, MIGRATED,
                                 {})
    assert problems == [
        't: on_null policy for column "Gone": no such column in the source and the target table',
        't: on_null policy for column "Id": the column is NOT NULL in the source, so it holds no NULL to handle; '
        "remove the policy",
        't: on_null policy for column "Type": the column is nullable in the target, so NULLs copy as they are; '
        "remove the policy"]


def test_default_needs_a_target_default_that_is_the_same_for_every_row():
    missing = n.policy_problems("t", {"UserId": "default"}, SOURCE, MIGRATED, {})
    assert missing == ['t: on_null policy for column "UserId": on_null: default, but the target column has no '
                       "default; give it one in the application's migration (ALTER TABLE ... ALTER COLUMN "
                       '"UserId" SET DEFAULT ...) or choose on_null: quarantine']
    volatile = n.policy_problems("t", {"UserId": "default"}, SOURCE, MIGRATED,
                                 {"UserId": n.TargetDefault("gen_random_uuid()", True)})
    assert volatile == ['t: on_null policy for column "UserId": on_null: default, but the target column\'s default '
                        "gen_random_uuid() calls a volatile function and would differ per row; choose on_null: "
                        "quarantine"]


def test_without_the_target_only_the_source_side_is_checked():
    assert n.policy_problems("t", {"UserId": "default", "Id": "quarantine"}, SOURCE, None, {}) == [
        't: on_null policy for column "Id": the column is NOT NULL in the source, so it holds no NULL to handle; '
        "remove the policy"]


def test_nulls_without_a_policy_stop_the_copy_with_counts_and_a_few_keys():
    problems, notes, handled = n.resolve("db:public.\"UserClaims\"", TARGET, {"Value": "fail"},
                                         {"UserId": 7, "Value": 1, "Type": 0},
                                         {"UserId": ["Id=1", "Id=2"], "Value": ["Id=9"]}, ["Id"])
    assert (notes, handled) == ([], {})
    assert problems == ['db:public."UserClaims" -> identity."UserClaims": NULL in column(s) "UserId" (7 NULLs, e.g. '
                        'Id=1; Id=2 ...), "Value" (1 NULL, e.g. Id=9), which are NOT NULL in the target; nothing was '
                        "copied. Fix the legacy rows, or set a policy in the module mapping: tables: {<table>: "
                        "{columns: {<column>: {on_null: default|quarantine}}}}"]


def test_a_table_without_a_primary_key_says_so_instead_of_keys():
    problems, _notes, _handled = n.resolve("s", TARGET, {}, {"UserId": 2}, {}, [])
    assert '"UserId" (2 NULLs, the table has no primary key to name them by)' in problems[0]


def test_handled_nulls_become_notes_and_columns_without_nulls_nothing():
    problems, notes, handled = n.resolve("s", TARGET, {"UserId": "quarantine", "Value": "default", "Type": "default"},
                                         {"UserId": 3, "Value": 1, "Type": 0}, {}, ["Id"])
    assert problems == []
    assert notes == ['identity."UserClaims"."UserId": 3 NULLs -> quarantined (policy)',
                     'identity."UserClaims"."Value": 1 NULL -> set to the target column\'s default (policy)']
    assert handled == {"UserId": "quarantine", "Value": "default"}


def test_the_plan_carries_the_evaluated_default_and_the_source_type():
    plan = n.build_plan({"UserId": "default", "Value": "quarantine"},
                        {"UserId": "00000000-0000-0000-0000-000000000000"}, SOURCE, ["Id"])
    assert plan == n.NullPlan({"UserId": ("00000000-0000-0000-0000-000000000000", "uuid")}, ["Value"], ["Id"])
    assert n.build_plan({}, {}, SOURCE, ["Id"]) is None


# -- SQL --------------------------------------------------------------------------------------------

PLAN = n.NullPlan({HOSTILE: ("x'); DROP TABLE y; --", "text")}, ["UserId"], ["Id", HOSTILE])
HOSTILE_SQL = '"a""; DROP TABLE x; --"'


def test_the_copy_reads_through_coalesce_and_a_filter_with_every_name_quoted_and_the_value_a_literal():
    table = n.sql.SQL("{}.{}").format(n.sql.Identifier("public"), n.sql.Identifier(HOSTILE))
    assert render(n.select_statement(PLAN, ["Id", HOSTILE, "UserId"], table, only=True)) == (
        f'SELECT "Id", COALESCE({HOSTILE_SQL}, CAST(\'x\'\'); DROP TABLE y; --\' AS text)), "UserId" '
        f'FROM ONLY "public".{HOSTILE_SQL} WHERE "UserId" IS NOT NULL')
    assert render(n.select_statement(None, ["Id"], table)) == f'SELECT "Id" FROM "public".{HOSTILE_SQL}'


def test_the_rejected_rows_are_read_as_key_and_row_jsonb():
    table = n.sql.SQL("{}").format(n.sql.Identifier("UserClaims"))
    assert render(n.rejected_rows_query(PLAN, table)) == (
        f"SELECT jsonb_build_object('Id', \"Id\", '{HOSTILE.replace(chr(39), chr(39) * 2)}', {HOSTILE_SQL})::text, "
        'to_jsonb(t)::text FROM "UserClaims" AS t WHERE "UserId" IS NULL')
    assert render(n.key_object([])) == "NULL::jsonb"


def test_the_verification_counts_and_checksums_the_source_as_the_copy_read_it():
    columns = [{"name": "Id", "binary": True}, {"name": HOSTILE, "binary": False}, {"name": "UserId", "binary": True}]
    assert render(checksum_query("public", "UserClaims", columns, PLAN)) == (
        "SELECT count(*), sum(h) FROM (SELECT hash_record_extended(ROW(\"Id\", (COALESCE("
        f"{HOSTILE_SQL}, CAST('x''); DROP TABLE y; --' AS text)))::text COLLATE \"C\", \"UserId\"), 0) AS h "
        'FROM ONLY "public"."UserClaims" WHERE "UserId" IS NOT NULL) AS t')
    assert render(count_query("public", "UserClaims", PLAN)) == (
        'SELECT count(*) FROM ONLY "public"."UserClaims" WHERE "UserId" IS NOT NULL')
    assert render(count_query("public", "UserClaims")) == 'SELECT count(*) FROM ONLY "public"."UserClaims"'


# -- the verification's judgement -------------------------------------------------------------------

def classified(source_rows=2, target_rows=2, reasons=(), state="match"):
    return {"source_rows": source_rows, "target_rows": target_rows, "reasons": list(reasons), "state": state,
            "ok": state == "match"}


QUARANTINE = n.NullPlan({}, ["UserId"], ["Id"])
KEPT_OUT = {'{"Id": 3}': [11], '{"Id": 5}': [12]}


def test_source_equals_target_plus_quarantine_and_every_key_is_listed():
    row = v.judge(classified(), QUARANTINE, {"UserId": "quarantine"}, [],
                  {"source": KEPT_OUT, "quarantined": dict(KEPT_OUT), "defaulted": []})
    assert row["state"] == "match" and row["ok"] and row["reasons"] == []
    assert row["source_rows"] == 4
    assert row["null_policy"] == {"columns": {"UserId": "quarantine"}, "defaulted_keys": [],
                                  "quarantined_keys": ["Id=3", "Id=5"], "quarantined_rows": 2}


@pytest.mark.parametrize("quarantined, expected", [
    ({'{"Id": 3}': [11]}, "row counts differ: source 4 (2 kept by the NULL policy, 2 kept out), target 2, "
                          "quarantined 1"),
    ({'{"Id": 3}': [11], '{"Id": 5}': [99]}, "the quarantined rows are not the source rows the policy keeps out: "
                                             "0 missing or extra (-), 1 changed since"),
    ({'{"Id": 3}': [11], '{"Id": 6}': [12]}, "the quarantined rows are not the source rows the policy keeps out: "
                                             "2 missing or extra (Id=5, Id=6), 0 changed since"),
    (None, "the quarantine table does not exist, yet the source holds 2 row(s) the policy keeps out"),
])
def test_a_quarantine_that_is_not_exactly_what_the_source_keeps_out_fails(quarantined, expected):
    row = v.judge(classified(), QUARANTINE, {"UserId": "quarantine"}, [],
                  {"source": KEPT_OUT, "quarantined": quarantined, "defaulted": []})
    assert (row["state"], row["ok"]) == ("mismatch", False)
    assert expected in row["reasons"]


def test_a_checksum_difference_of_the_kept_rows_still_fails():
    row = v.judge(classified(reasons=["content checksums differ"], state="mismatch"), QUARANTINE,
                  {"UserId": "quarantine"}, [], {"source": {}, "quarantined": {}, "defaulted": []})
    assert (row["state"], row["ok"], row["reasons"]) == ("mismatch", False, ["content checksums differ"])


def test_a_policy_problem_fails_the_table_and_defaulted_keys_are_listed():
    row = v.judge(classified(), n.NullPlan({}, [], ["Id"]), {"UserId": "default"},
                  ['on_null: default for column "UserId", but the target column has no default'],
                  {"source": {}, "quarantined": {}, "defaulted": ['{"Id": 1}']})
    assert not row["ok"] and row["null_policy"]["defaulted_keys"] == ["Id=1"]
