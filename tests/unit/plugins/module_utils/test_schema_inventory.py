"""Schema fidelity's pure parts: how two inventories compare, how exclusions apply, how the report shows it."""

from __future__ import annotations

import os
import re

from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import verify_report
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    WARNINGS_LOG,
    append_warnings,
    run_files,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.schema_inventory import (
    KINDS,
    column_text,
    compare,
    describe_change,
    difference_lines,
    normalize_config,
    search_path_value,
)


def entry(definition, table=None, verbatim=None):
    found = {"table": table, "definition": definition}
    if verbatim is not None:
        found["verbatim"] = verbatim
    return found


def inventory(**kinds):
    return dict((kind, kinds.get(kind, {})) for kind in KINDS)


def kind_of(comparison, kind):
    (found,) = [result for result in comparison["kinds"] if result["kind"] == kind]
    return found


ORDERS = {"partitioned": False, "columns": [["id", "bigint NOT NULL"], ["note", "text"]]}
SOURCE = inventory(
    table={"Orders": entry(ORDERS, "Orders"), "Log": entry(ORDERS, "Log")},
    index={"Orders.Orders_pkey": entry("CREATE UNIQUE INDEX ...", "Orders"),
           "Log.Log_pkey": entry("CREATE UNIQUE INDEX ...", "Log")},
    policy={"Orders.own": entry({"command": "SELECT", "using": "owner = CURRENT_USER"}, "Orders")},
    grant={"table Orders reader": entry("SELECT", "Orders")},
)


def test_identical_inventories_have_no_difference_and_every_kind_is_listed():
    result = compare(SOURCE, SOURCE)
    assert [found["kind"] for found in result["kinds"]] == list(KINDS)
    assert result["differences"] == 0 and result["stale_exclusions"] == []
    assert kind_of(result, "table")["source"] == kind_of(result, "table")["target"] == 2


def test_missing_extra_and_changed_are_named_per_kind():
    target = inventory(
        table={"Orders": entry(dict(ORDERS, columns=[["id", "integer NOT NULL"], ["note", "text"]]), "Orders"),
               "Log": entry(ORDERS, "Log")},
        index={"Orders.Orders_pkey": entry("CREATE UNIQUE INDEX ...", "Orders"),
               "Log.Log_pkey": entry("CREATE UNIQUE INDEX ...", "Log"),
               "Orders.Orders_note": entry("CREATE INDEX ...", "Orders")},
        grant={"table Orders reader": entry("SELECT", "Orders")},
    )
    result = compare(SOURCE, target)
    assert result["differences"] == 3
    assert kind_of(result, "policy")["missing"] == ["Orders.own"]
    assert kind_of(result, "policy")["source"] == 1 and kind_of(result, "policy")["target"] == 0
    assert kind_of(result, "index")["extra"] == ["Orders.Orders_note"]
    assert kind_of(result, "table")["changed"] == [
        {"name": "Orders", "differences": ["column id: bigint NOT NULL -> integer NOT NULL"]}]
    assert difference_lines(result) == [
        "table Orders: differs (column id: bigint NOT NULL -> integer NOT NULL)",
        "index Orders.Orders_note: only in the target",
        "policy Orders.own: missing in the target",
    ]


def test_an_exclusion_sets_a_difference_apart_with_its_reason():
    target = dict(SOURCE, policy={})
    exclusions = [{"kind": "policy", "name": "Orders.own", "reason": "the new app filters rows"}]
    result = compare(SOURCE, target, exclusions)
    assert result["differences"] == 0 and result["stale_exclusions"] == []
    assert kind_of(result, "policy")["excluded"] == [
        {"name": "Orders.own", "reason": "the new app filters rows", "difference": "missing"}]
    assert kind_of(result, "policy")["missing"] == []


def test_an_exclusion_of_an_equal_object_is_used_and_one_matching_nothing_is_stale():
    exclusions = [{"kind": "grant", "name": "table Orders reader", "reason": "kept by hand"},
                  {"kind": "view", "name": "Gone", "reason": "dropped last year"},
                  {"kind": "index", "name": "Orders.own", "reason": "wrong kind for a policy's name"}]
    result = compare(SOURCE, SOURCE, exclusions)
    assert kind_of(result, "grant")["excluded"] == [
        {"name": "table Orders reader", "reason": "kept by hand", "difference": "same"}]
    assert result["stale_exclusions"] == exclusions[1:]


def test_the_objects_of_an_excluded_table_and_its_partitions_are_excluded_for_that_reason():
    source = dict(SOURCE, partition={"Log_2025": entry({"parent": "Log", "bound": "..."}, "Log_2025"),
                                     "Log_2025_a": entry({"parent": "Log_2025", "bound": "..."}, "Log_2025_a")},
                  index=dict(SOURCE["index"], **{"Log_2025_a.Log_2025_a_pkey": entry("CREATE ...", "Log_2025_a")}))
    target = dict(SOURCE, table={"Orders": entry(ORDERS, "Orders")}, index={
        "Orders.Orders_pkey": entry("CREATE UNIQUE INDEX ...", "Orders")})
    result = compare(source, target, exclude_tables=["Log"])
    assert result["differences"] == 0
    assert [(item["name"], item["reason"]) for item in kind_of(result, "index")["excluded"]] == [
        ("Log.Log_pkey", "exclude_tables"), ("Log_2025_a.Log_2025_a_pkey", "exclude_tables")]
    assert [item["name"] for item in kind_of(result, "partition")["excluded"]] == ["Log_2025", "Log_2025_a"]
    # Without the exclusion the same inventories differ.
    assert compare(source, target)["differences"] == 5


def test_an_extension_placed_in_another_schema_of_the_target_is_present():
    source = inventory(extension={"citext": entry({"extension": "citext"})})
    moved = dict(inventory(), extensions_elsewhere=["citext", "plpgsql"])
    assert compare(source, moved)["differences"] == 0
    assert kind_of(compare(source, inventory()), "extension")["missing"] == ["citext"]


def test_equal_verbatim_text_is_the_same_object_even_when_the_normalised_one_differs():
    # A function moved as it was keeps SET search_path = public: the move did not change it.
    source = inventory(function={"f()": entry({"config": ["search_path=<schema>"]},
                                              verbatim={"config": ["search_path=public"]})})
    kept = inventory(function={"f()": entry({"config": ["search_path=public"]})})
    rewritten = inventory(function={"f()": entry({"config": ["search_path=<schema>"]},
                                                 verbatim={"config": ["search_path=product"]})})
    other = inventory(function={"f()": entry({"config": ["search_path=audit"]})})
    assert compare(source, kept)["differences"] == 0
    assert compare(source, rewritten)["differences"] == 0
    assert compare(source, other)["differences"] == 1


def test_search_path_settings_name_the_schema_by_a_placeholder():
    assert normalize_config(["search_path=public, pg_temp", "work_mem=4MB"], "public") == [
        "search_path=<schema>, pg_temp", "work_mem=4MB"]
    assert normalize_config(['search_path="My Schema"'], "My Schema") == ["search_path=<schema>"]
    assert normalize_config(["search_path=publicity"], "public") == ["search_path=publicity"]


def test_a_search_path_value_quotes_every_name():
    quoted = HOSTILE.replace('"', '""')
    assert search_path_value([HOSTILE, "pg_catalog"]) == f'"{quoted}", "pg_catalog"'


def test_a_column_reads_as_its_ddl():
    assert column_text("bigint", True, None, "d", "", None, -1, None) == (
        "bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY")
    assert column_text("text", False, "'x'::text", "", "", "C", 500, "m") == (
        "text COLLATE C DEFAULT 'x'::text STATISTICS 500 STORAGE MAIN")
    assert column_text("integer", False, "a + 1", "", "s", None, -1, None) == (
        "integer GENERATED ALWAYS AS (a + 1) STORED")


def test_changes_are_described_by_key_and_by_column():
    assert describe_change("CREATE INDEX a", "CREATE INDEX b") == ["source: CREATE INDEX a; target: CREATE INDEX b"]
    assert describe_change({"enabled": True, "forced": False}, {"enabled": True, "forced": True}) == [
        "forced: False -> True"]
    assert describe_change({"columns": [["a", "int"], ["b", "int"]]}, {"columns": [["b", "int"], ["a", "int"]]}) == [
        "columns in another order"]
    assert describe_change({"columns": [["a", "int"]]}, {"columns": [["b", "int"]]}) == [
        "column a: missing in the target", "column b: only in the target"]
    assert describe_change("x" * 500, "y")[0].endswith("...; target: y")


# -- the report ---------------------------------------------------------------------------------

def module_comparison(target, mode, exclusions=()):
    found = dict(module="Shop", source="legacy.public", target="Shop.product", **compare(SOURCE, target, exclusions))
    return verify_report.fidelity_section(mode, [found])


def test_enforce_fails_on_a_difference_report_does_not():
    target = dict(SOURCE, policy={})
    enforced = module_comparison(target, "enforce")
    assert not enforced["passed"] and enforced["differences"] == 1
    assert module_comparison(target, "report")["passed"]
    assert module_comparison(SOURCE, "enforce")["passed"]
    excused = module_comparison(target, "enforce", [{"kind": "policy", "name": "Orders.own", "reason": "r"}])
    assert excused["passed"] and excused["differences"] == 0


def test_an_unreadable_schema_fails_enforce():
    unreadable = {"module": "Shop", "source": "s", "target": "t", "error": "permission denied"}
    section = verify_report.fidelity_section("enforce", [unreadable])
    assert not section["passed"] and section["errors"] == 1
    assert verify_report.fidelity_lines(section) == ["module Shop: schema not compared: permission denied"]


def test_the_verdict_says_failed_and_why():
    summary = {"tables": 1, "match": 1, "mismatch": 0, "missing": 0, "extra": 0, "excluded": 0, "present": 0,
               "error": 0, "sequences": 0, "sequences_behind": 0, "sequences_failed": 0,
               "schema_fidelity": "enforce", "schema_differences": 2, "schema_errors": 0, "passed": False}
    assert verify_report.verdict_line(summary) == "1 table(s): 1 match; schema: 2 difference(s) (enforced) - FAILED"
    del summary["schema_fidelity"]
    assert "schema" not in verify_report.verdict_line(summary)


def test_warnings_are_the_reported_differences_and_the_stale_exclusions():
    target = dict(SOURCE, policy={})
    stale = [{"kind": "view", "name": "Gone", "reason": "old"}]
    reported = module_comparison(target, "report", stale)
    assert verify_report.fidelity_warnings(reported) == [
        "schema fidelity, module Shop: policy Orders.own: missing in the target",
        "schema fidelity, module Shop: stale schema exclusion view Gone (reason given: old): matches no object on "
        "either side"]
    enforced = module_comparison(target, "enforce", stale)
    assert [line for line in verify_report.fidelity_warnings(enforced) if "policy" in line] == []


def test_the_markdown_section_has_the_table_and_names_each_difference():
    target = dict(SOURCE, policy={}, grant={})
    section = module_comparison(target, "enforce", [{"kind": "grant", "name": "table Orders reader",
                                                     "reason": "reader | retired"}])
    lines = verify_report.fidelity_markdown(section)
    assert "| kind | source | target | missing | extra | changed | excluded |" in lines
    assert "| policy | 1 | 0 | 1 | 0 | 0 | 0 |" in lines
    assert "| grant | 1 | 0 | 0 | 0 | 0 | 1 |" in lines
    assert "- `policy Orders.own: missing in the target`" in lines
    assert "- `grant table Orders reader (missing): reader | retired`" in lines


def test_warnings_are_appended_one_line_each_with_time_and_origin(tmp_path):
    assert run_files(str(tmp_path))["warnings_log"] == str(tmp_path / WARNINGS_LOG)
    append_warnings(str(tmp_path), "row_count_diff", ["first", "second\nline"])
    path = append_warnings(str(tmp_path), "data_copy", ["third"])
    lines = (tmp_path / WARNINGS_LOG).read_text().splitlines()
    assert [re.sub(r"^\S+Z ", "", line) for line in lines] == [
        "row_count_diff: first", "row_count_diff: second\u240aline", "data_copy: third"]
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ", line) for line in lines)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
