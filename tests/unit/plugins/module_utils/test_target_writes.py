"""The rollback's comparison of the consolidated database with its verification (target_writes), case by case."""

from __future__ import annotations

from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import rowdiff
from ansible_collections.classifiedads.consolidation.plugins.module_utils.target_writes import (
    baseline,
    describe_write,
    dropped_tables,
    judge,
    own_rows_marker,
    plan_measurements,
    render,
    same_writes,
    verified_column_plan,
)

PRODUCTS = ("product", "Products")


def report_row(schema, table, rows, checksum=None, kind="copied", only_in_target=(), type_differences=()):
    return {"target_schema": schema, "target_table": table, "target_rows": rows, "target_checksum": checksum,
            "kind": kind, "columns_only_in_target": list(only_in_target),
            "column_type_differences": list(type_differences)}


def entry(rows, checksum=None):
    return {"rows": rows, "checksum": checksum, "only_in_target": [], "type_differences": [], "excluded": False}


def measured(rows, checksum=None):
    return {"rows": rows, "checksum": checksum}


def columns(*names, type_="text", exact=True):
    return [{"name": name, "type": type_, "exact_hash": exact} for name in names]


# -- the baseline -------------------------------------------------------------------------------


def test_the_baseline_is_the_target_side_of_every_listed_table():
    report = {"checksum": True, "tables": [
        report_row("product", "Products", 4003, "123"),
        report_row("product", "__EFMigrationsHistory", None, kind="excluded"),
        report_row("product", "Extra", 0, kind="extra"),
        report_row("product", "Gone", None, kind="copied"),
        {"target_schema": None, "target_table": None, "kind": "excluded"},
    ]}
    base = baseline(report)
    assert base[PRODUCTS]["rows"] == 4003 and base[PRODUCTS]["checksum"] == "123"
    assert base[("product", "__EFMigrationsHistory")]["excluded"] is True
    assert base[("product", "Extra")] == dict(entry(0), excluded=False)
    assert base[("product", "Gone")]["rows"] is None
    assert len(base) == 4


def test_a_report_without_checksums_gives_counts_only():
    base = baseline({"checksum": False, "tables": [report_row("product", "Products", 5, "999")]})
    assert base[PRODUCTS]["checksum"] is None


# -- the column plan ----------------------------------------------------------------------------


def test_the_verifications_column_plan_is_rebuilt_from_the_report():
    target = columns("Id", "Name") + columns("Price", type_="numeric", exact=False) + columns("Extra")
    base = baseline({"checksum": True, "tables": [report_row(
        "product", "Products", 1, "1", only_in_target=["Extra"],
        type_differences=[{"column": "Name", "source_type": "character varying(200)", "target_type": "text"}])]})
    # What the verification computed from both sides: the legacy table had Name as varchar, no Extra.
    legacy = columns("Id") + columns("Name", type_="character varying(200)") + columns("Price", type_="numeric",
                                                                                       exact=False)
    assert verified_column_plan(base[PRODUCTS], target) == rowdiff.column_plan(legacy, target)["columns"]
    assert [(column["name"], column["binary"]) for column in verified_column_plan(base[PRODUCTS], target)] == [
        ("Id", True), ("Name", False), ("Price", False)]


def test_a_column_added_after_verification_enters_the_plan_and_so_changes_the_checksum():
    plan = verified_column_plan(entry(1, "1"), columns("Id", "Added"))
    assert [column["name"] for column in plan] == ["Added", "Id"]


# -- what is measured ---------------------------------------------------------------------------


def test_verified_tables_are_measured_as_verified_and_new_ones_of_module_schemas_are_counted():
    base = {PRODUCTS: entry(3, "7"), ("product", "__EFMigrationsHistory"): dict(entry(None), excluded=True),
            ("public", "schemaversions"): entry(2), ("product", "Failed"): entry(None)}
    now = {PRODUCTS, ("product", "__EFMigrationsHistory"), ("public", "schemaversions"), ("product", "Failed"),
           ("product", "Created"), ("public", "NotOurs")}
    plans = plan_measurements(base, {"product"}, now, {PRODUCTS: columns("Id")})
    assert plans == {PRODUCTS: [{"name": "Id", "binary": True}], ("public", "schemaversions"): None,
                     ("product", "Failed"): None, ("product", "Created"): None}


def test_verified_tables_that_are_gone_are_dropped_ones():
    base = {PRODUCTS: entry(3), ("product", "Kept"): entry(1), ("product", "Never"): entry(None),
            ("product", "Excluded"): dict(entry(None), excluded=True)}
    assert dropped_tables(base, {("product", "Kept")}) == [PRODUCTS]


# -- judging one table --------------------------------------------------------------------------


def test_a_table_as_verified_is_no_finding():
    assert judge(PRODUCTS, entry(3, "7"), measured(3, "7")) is None
    assert judge(PRODUCTS, entry(3), measured(3)) is None


def test_an_insert_is_a_positive_delta_and_a_delete_a_negative_one():
    inserted = judge(PRODUCTS, entry(3, "7"), measured(4, "9"))
    assert (inserted["change"], inserted["delta"], inserted["new_write"]) == ("rows", 1, True)
    deleted = judge(PRODUCTS, entry(3, "7"), measured(2, "5"))
    assert (deleted["change"], deleted["delta"], deleted["verified_rows"], deleted["rows"]) == ("rows", -1, 3, 2)


def test_an_update_keeps_the_count_and_changes_the_content():
    found = judge(PRODUCTS, entry(3, "7"), measured(3, "8"))
    assert (found["change"], found["delta"], found["new_write"]) == ("content", 0, True)
    assert describe_write(found) == 'product."Products": content changed'


def test_without_a_checksum_an_update_cannot_be_seen():
    assert judge(PRODUCTS, entry(3), measured(3, "8")) is None


def test_the_plays_own_smoke_rows_are_accounted_when_they_are_the_whole_difference():
    # Checksums are sums over the rows: 7 verified + 5 of the probe's row.
    found = judge(PRODUCTS, entry(3, "7"), measured(4, "12"), own=measured(1, "5"))
    assert (found["change"], found["new_write"], found["own_rows"], found["delta"]) == ("own", False, 1, 0)


def test_smoke_rows_beside_a_real_write_leave_the_real_write_a_new_one():
    # 7 verified, an update (+3), and the probe's row (+5).
    updated = judge(PRODUCTS, entry(3, "7"), measured(4, "15"), own=measured(1, "5"))
    assert (updated["change"], updated["delta"], updated["own_rows"]) == ("content", 0, 1)
    assert describe_write(updated) == 'product."Products": content changed (besides 1 smoke probe row(s))'
    inserted = judge(PRODUCTS, entry(3, "7"), measured(5, "20"), own=measured(1, "5"))
    assert (inserted["change"], inserted["delta"]) == ("rows", 1)


def test_marker_rows_that_were_not_all_written_by_the_play_are_not_excused_by_counts_alone():
    # Counts only: 3 verified, 1 marked row, yet 5 rows now: one other row is new.
    found = judge(PRODUCTS, entry(3), measured(5), own=measured(1))
    assert (found["change"], found["delta"]) == ("rows", 1)


def test_added_unmeasured_dropped_and_unreadable_tables_are_new_writes():
    added = judge(("product", "Created"), None, measured(2))
    assert (added["change"], added["rows"], added["delta"]) == ("added", 2, 2)
    assert describe_write(added) == 'product."Created": created after verification, 2 row(s)'
    assert judge(("product", "Failed"), entry(None), measured(0))["change"] == "unmeasured"
    dropped = judge(PRODUCTS, entry(3, "7"), None)
    assert (dropped["change"], dropped["delta"]) == ("dropped", -3)
    assert describe_write(dropped) == 'product."Products": dropped after verification, had 3 row(s)'
    error = judge(PRODUCTS, entry(3, "7"), {"error": "permission denied for table Products"})
    assert error["change"] == "error" and error["new_write"]
    assert describe_write(error) == 'product."Products": cannot be measured: permission denied for table Products'


def test_an_empty_table_created_after_verification_still_counts():
    assert judge(("product", "Created"), None, measured(0))["new_write"] is True


# -- comparing and showing ----------------------------------------------------------------------


def test_the_same_writes_are_recognised_whatever_their_order_and_notes():
    first = [judge(PRODUCTS, entry(3, "7"), measured(4, "9")),
             judge(("product", "B"), entry(1, "1"), measured(1, "2"))]
    again = [dict(first[1], note="later"), first[0]]
    assert same_writes(first, again)
    assert not same_writes(first, [first[0]])
    assert not same_writes(first, [judge(PRODUCTS, entry(3, "7"), measured(5, "9")), first[1]])


def test_the_table_names_each_table_with_its_delta_and_a_hostile_name_stays_on_its_line():
    findings = [judge((HOSTILE, "x\ny"), entry(3, "7"), measured(4, "9")),
                judge(PRODUCTS, entry(3, "7"), measured(3, "8"))]
    lines = render(findings).splitlines()
    assert len(lines) == 4
    assert lines[0].split() == ["table", "verified", "rows", "rows", "now", "delta", "change"]
    assert '"a""; DROP TABLE x; --"' in lines[2] and "+1" in lines[2] and "+1 row(s)" in lines[2]
    assert lines[3].startswith('product."Products"') and lines[3].endswith("content changed")


def test_the_marker_is_the_smoke_roles_for_this_run():
    assert own_rows_marker("20261124T040000Z") == "smoke-20261124T040000Z-"
