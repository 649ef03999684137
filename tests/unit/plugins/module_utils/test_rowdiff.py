"""The verification's decisions (rowdiff) and its report (verify_report), case by case, without a server."""

from __future__ import annotations

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import (
    display,
    rowdiff,
    sequences,
    verify_report,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import PlanError, build_plan

SERVER = {"host": "db1", "port": 5432}
OTHER = {"host": "db2", "port": 5432}


def modules(*raw, excludes=("__EFMigrationsHistory",)):
    return build_plan(list(raw) or [{"name": "Product", "source_database": "ClassifiedAds_Product",
                                     "schema": "product"}], "ClassifiedAds", SERVER, OTHER, list(excludes))


def counted(rows, checksum=None):
    return {"rows": rows, "checksum": checksum}


def only_pair(source_tables, target_tables, plan=None):
    plan = plan or modules()
    (pair,) = [pair for pair in rowdiff.pair_tables(plan, {"Product": source_tables}, target_tables)
               if pair["kind"] != "excluded"]
    return pair


def columns(*names, type_="text", exact=True):
    return [{"name": name, "type": type_, "exact_hash": exact} for name in names]


# -- pairing ------------------------------------------------------------------------------------

def test_pairs_follow_the_mapping_in_report_order():
    plan = modules({"name": "AuditLog", "source_database": "ClassifiedAds_AuditLog", "schema": "auditlog",
                    "tables": {"schemaversions": {"schema": "public"}}})
    pairs = rowdiff.pair_tables(plan, {"AuditLog": ["schemaversions", "AuditLogEntries", "__EFMigrationsHistory"]},
                                {("auditlog", "AuditLogEntries"), ("public", "schemaversions")})
    assert [(p["source_table"], p["target_schema"], p["target_table"], p["kind"]) for p in pairs] == [
        ("AuditLogEntries", "auditlog", "AuditLogEntries", "copied"),
        ("__EFMigrationsHistory", None, None, "excluded"),
        ("schemaversions", "public", "schemaversions", "copied"),
    ]
    assert all(p["target_exists"] for p in pairs if p["kind"] == "copied")
    assert pairs[0]["source_database"] == "ClassifiedAds_AuditLog" and pairs[0]["source_schema"] == "public"


def test_equal_counts_match():
    row = rowdiff.classify(only_pair(["Products"], {("product", "Products")}), counted(22), counted(22))
    assert (row["state"], row["ok"], row["reasons"]) == ("match", True, [])
    assert (row["source_rows"], row["target_rows"]) == (22, 22)
    assert set(row) == set(rowdiff.ROW_KEYS)


def test_empty_tables_on_both_sides_match():
    row = rowdiff.classify(only_pair(["Products"], {("product", "Products")}), counted(0, "0"), counted(0, "0"),
                           rowdiff.column_plan(columns("Id"), columns("Id")))
    assert row["state"] == "match" and row["ok"]


def test_a_count_difference_is_a_mismatch():
    row = rowdiff.classify(only_pair(["Products"], {("product", "Products")}), counted(22), counted(21))
    assert row["state"] == "mismatch" and not row["ok"]
    assert row["reasons"] == ["row counts differ: source 22, target 21"]


def test_a_checksum_difference_with_equal_counts_is_a_mismatch():
    plan = rowdiff.column_plan(columns("Id", "Name"), columns("Name", "Id"))
    row = rowdiff.classify(only_pair(["Products"], {("product", "Products")}), counted(5, "123"), counted(5, "124"),
                           plan)
    assert row["state"] == "mismatch" and row["reasons"] == ["content checksums differ"]
    assert (row["source_checksum"], row["target_checksum"]) == ("123", "124")


def test_columns_on_one_side_only_are_a_mismatch_even_with_equal_checksums():
    plan = rowdiff.column_plan(columns("Id", "Legacy"), columns("Id", "New"))
    row = rowdiff.classify(only_pair(["Products"], {("product", "Products")}), counted(5, "9"), counted(5, "9"), plan)
    assert row["state"] == "mismatch"
    assert row["reasons"] == ["columns only in the source: Legacy", "columns only in the target: New"]
    assert (row["columns_only_in_source"], row["columns_only_in_target"]) == (["Legacy"], ["New"])


def test_a_missing_target_table_is_missing_and_still_shows_the_source_count():
    pair = only_pair(["Products"], set())
    assert not pair["target_exists"]
    row = rowdiff.classify(pair, counted(22))
    assert (row["state"], row["ok"], row["source_rows"], row["target_rows"]) == ("missing", False, 22, None)


def test_an_extra_table_is_fine_while_empty_and_fails_with_rows():
    pairs = rowdiff.pair_tables(modules(), {"Product": ["Products"]},
                                {("product", "Products"), ("product", "UserProfiles")})
    (extra,) = [pair for pair in pairs if pair["kind"] == "extra"]
    assert (extra["module"], extra["source_table"], extra["target_table"]) == ("Product", None, "UserProfiles")
    empty = rowdiff.classify(extra, target=counted(0))
    assert (empty["state"], empty["ok"]) == ("extra", True)
    filled = rowdiff.classify(extra, target=counted(3))
    assert (filled["state"], filled["ok"]) == ("extra", False)
    assert "3 row(s) that were neither copied nor compared" in filled["reasons"][0]


def test_a_table_claimed_by_another_modules_override_is_not_extra():
    plan = modules({"name": "Product", "source_database": "P", "schema": "product"},
                   {"name": "Storage", "source_database": "S", "schema": "storage",
                    "tables": {"Files": {"schema": "product"}}})
    pairs = rowdiff.pair_tables(plan, {"Product": [], "Storage": ["Files"]}, {("product", "Files")})
    assert [(pair["module"], pair["kind"]) for pair in pairs] == [("Storage", "copied")]


def test_excluded_tables_are_listed_on_both_sides_and_never_fail():
    pairs = rowdiff.pair_tables(modules(), {"Product": ["Products", "__EFMigrationsHistory"]},
                                {("product", "Products"), ("product", "__EFMigrationsHistory")})
    excluded = [pair for pair in pairs if pair["kind"] == "excluded"]
    assert [(pair["source_table"], pair["target_table"]) for pair in excluded] == [
        ("__EFMigrationsHistory", None), (None, "__EFMigrationsHistory")]
    rows = [rowdiff.classify(pair) for pair in excluded]
    assert all(row["state"] == "excluded" and row["ok"] and row["source_rows"] is None for row in rows)


def test_an_unreadable_side_is_an_error():
    row = rowdiff.classify(only_pair(["Products"], {("product", "Products")}), counted(2),
                           {"error": "permission denied for table Products"})
    assert row["state"] == "error" and not row["ok"] and row["source_rows"] == 2 and row["target_rows"] is None
    assert row["reasons"] == ["target: permission denied for table Products"]


# -- measurements -------------------------------------------------------------------------------

def listed(checksum_columns=True):
    """What read_sources/read_target list for the Product module: sizes and columns by (schema, table)."""
    source = {"sizes": {"ClassifiedAds_Product": {("public", "Products"): 100, ("public", "Gone"): 5,
                                                  ("public", "__EFMigrationsHistory"): 1}},
              "columns": {"ClassifiedAds_Product": {("public", "Products"): columns("Id", "Name")}}}
    target = {"tables": {("product", "Products"): 90, ("product", "Extra"): 10},
              "columns": {("product", "Products"): columns("Name", "Id")} if checksum_columns else {}}
    return source, target


def product_pairs():
    return rowdiff.pair_tables(modules(), {"Product": ["Products", "Gone", "__EFMigrationsHistory"]},
                               {("product", "Products"), ("product", "Extra")})


def test_each_side_that_exists_is_measured_once_and_excluded_tables_never():
    pairs = product_pairs()
    source, target = listed(checksum_columns=False)
    plans, jobs, job_index = rowdiff.plan_jobs(pairs, modules(), source, target, "ClassifiedAds", checksum=False)
    assert plans == [None] * len(pairs)
    measured = dict(((pair["source_table"], pair["target_table"]), [jobs[i] if i is not None else None for i in index])
                    for pair, index in zip(pairs, job_index, strict=True))
    products_source, products_target = measured[("Products", "Products")]
    assert products_source == dict(side="source", dbname="ClassifiedAds_Product", schema="public", table="Products",
                                   columns=None, bytes=100)
    assert products_target == dict(side="target", dbname="ClassifiedAds", schema="product", table="Products",
                                   columns=None, bytes=90)
    assert measured[("Gone", "Gone")][0]["table"] == "Gone" and measured[("Gone", "Gone")][1] is None
    assert measured[(None, "Extra")] == [None, dict(side="target", dbname="ClassifiedAds", schema="product",
                                                    table="Extra", columns=None, bytes=10)]
    assert measured[("__EFMigrationsHistory", None)] == [None, None]
    assert sorted(i for index in job_index for i in index if i is not None) == list(range(len(jobs)))


def test_with_checksums_both_sides_of_a_copied_table_hash_the_same_columns():
    pairs = product_pairs()
    source, target = listed()
    plans, jobs, job_index = rowdiff.plan_jobs(pairs, modules(), source, target, "ClassifiedAds", checksum=True)
    (products,) = [i for i, pair in enumerate(pairs) if pair["source_table"] == "Products"]
    source_job, target_job = (jobs[i] for i in job_index[products])
    assert source_job["columns"] == target_job["columns"] == [{"name": "Id", "binary": True},
                                                              {"name": "Name", "binary": True}]
    assert plans[products] == rowdiff.column_plan(columns("Id", "Name"), columns("Name", "Id"))
    (gone,) = [i for i, pair in enumerate(pairs) if pair["source_table"] == "Gone"]
    assert plans[gone] is None and jobs[job_index[gone][0]]["columns"] is None


def test_expected_tables_are_counted_on_the_target_only_and_a_bare_schema_not_at_all():
    pairs = rowdiff.expected_pairs({"product": ["Products"], "identity": []}, {"product", "identity"},
                                   {("product", "Products")})
    plans, jobs, job_index = rowdiff.plan_jobs(pairs, [], {}, {"tables": {("product", "Products"): 7}}, "T",
                                               checksum=True)
    assert plans == [None, None]
    assert jobs == [dict(side="target", dbname="T", schema="product", table="Products", columns=None, bytes=7)]
    assert job_index == [[None, None], [None, 0]]


# -- checksum columns ---------------------------------------------------------------------------

def test_checksum_columns_are_sorted_by_name_and_hashed_binary_only_when_both_sides_agree():
    source = [{"name": "b", "type": "integer", "exact_hash": True}, {"name": "a", "type": "text", "exact_hash": True},
              {"name": "c", "type": "numeric", "exact_hash": False}, {"name": "d", "type": "uuid", "exact_hash": True}]
    target = [{"name": "d", "type": "uuid", "exact_hash": True}, {"name": "c", "type": "numeric", "exact_hash": False},
              {"name": "b", "type": "bigint", "exact_hash": True}, {"name": "a", "type": "text", "exact_hash": True}]
    plan = rowdiff.column_plan(source, target)
    assert plan["columns"] == [{"name": "a", "binary": True}, {"name": "b", "binary": False},
                               {"name": "c", "binary": False}, {"name": "d", "binary": True}]
    assert plan["type_differences"] == [{"column": "b", "source_type": "integer", "target_type": "bigint"}]
    assert plan["only_in_source"] == plan["only_in_target"] == []


# -- expectations (fresh deployment) ------------------------------------------------------------

def test_expectations_are_checked_and_sorted():
    assert rowdiff.normalize_expectations({"product": ["b", "a", "a"], "identity": None}) == {
        "identity": [], "product": ["a", "b"]}
    with pytest.raises(PlanError) as caught:
        rowdiff.normalize_expectations({"pg_bad": [], "ok": "Products", "x": ["", "y" * 64]})
    assert len(caught.value.problems) == 4


def test_expected_tables_and_schemas_present_or_missing():
    expected = rowdiff.normalize_expectations({"product": ["Products", "Nope"], "identity": [], "ghost": [],
                                               "gone": ["T"]})
    pairs = rowdiff.expected_pairs(expected, {"product", "identity"}, {("product", "Products")})
    rows = [rowdiff.classify(pair, target=counted(4) if pair["target_exists"] and pair["target_table"] else None)
            for pair in pairs]
    assert [(row["target_schema"], row["target_table"], row["state"], row["reasons"]) for row in rows] == [
        ("ghost", None, "missing", ["schema does not exist"]),
        ("gone", "T", "missing", ["schema does not exist"]),
        ("identity", None, "present", []),
        ("product", "Nope", "missing", ["table does not exist"]),
        ("product", "Products", "present", []),
    ]
    assert rows[-1]["target_rows"] == 4 and rows[-1]["module"] is None


# -- sequences ----------------------------------------------------------------------------------

@pytest.mark.parametrize("last_value, is_called, increment, expected", [
    (8, True, 1, 9), (1, False, 1, 1), (10, True, 5, 15), (-3, True, -1, -4)])
def test_next_value(last_value, is_called, increment, expected):
    assert sequences.next_value(last_value, is_called, increment) == expected


def sequence(**values):
    entry = dict(module="Identity", target_schema="identity", target_table="DataProtectionKeys", column="Id",
                 sequence_schema="identity", sequence="DataProtectionKeys_Id_seq", increment=1, next_value=9,
                 column_max=8, source_sequence='public."DataProtectionKeys_Id_seq"', source_next_value=9)
    entry.update(values)
    return entry


def test_a_sequence_past_the_data_and_the_legacy_sequence_is_ok():
    assert rowdiff.check_sequence(sequence())["state"] == "ok"
    assert rowdiff.check_sequence(sequence(column_max=None, source_next_value=None))["state"] == "ok"


def test_a_sequence_that_would_reuse_an_id_is_behind():
    checked = rowdiff.check_sequence(sequence(next_value=1))
    assert checked["state"] == "behind"
    assert checked["reasons"] == ["next value 1 would collide with existing value 8",
                                  "next value 1 is behind the legacy sequence (next 9)"]
    behind_legacy_only = rowdiff.check_sequence(sequence(next_value=9, column_max=8, source_next_value=20))
    assert behind_legacy_only["state"] == "behind" and len(behind_legacy_only["reasons"]) == 1


def test_a_descending_sequence_is_judged_the_other_way():
    assert rowdiff.check_sequence(sequence(increment=-1, next_value=-9, column_max=-8, source_next_value=-9))[
        "state"] == "ok"
    assert rowdiff.check_sequence(sequence(increment=-1, next_value=-1, column_max=-8, source_next_value=None))[
        "state"] == "behind"


def test_an_unreadable_sequence_is_an_error():
    checked = rowdiff.check_sequence(sequence(error="permission denied for sequence x"))
    assert checked["state"] == "error" and "error" not in checked
    summary = rowdiff.summarize([], [checked])
    assert summary["sequences_failed"] == 1 and summary["sequences_behind"] == 0 and not summary["passed"]


def test_sequences_are_checked_on_copied_and_extra_tables_against_the_same_legacy_column():
    pairs = product_pairs()
    serial = {"column": "Id", "sequence_schema": "product", "sequence": "Products_Id_seq", "increment": 1}
    target_sequences = {("product", "Products"): [serial, dict(serial, column="No", sequence="Products_No_seq")],
                        ("product", "Extra"): [dict(serial, sequence="Extra_Id_seq")],
                        ("product", "Gone"): [dict(serial, sequence="Gone_Id_seq")]}
    legacy = dict(serial, sequence_schema="public", increment=2)
    source_sequences = {"ClassifiedAds_Product": {("public", "Products"): [legacy],
                                                  ("public", "Extra"): [dict(legacy, sequence="Extra_Id_seq")]}}
    checks = rowdiff.sequence_checks(pairs, target_sequences, source_sequences)
    assert [(entry["target_table"], entry["column"], found) for _pair, entry, found in checks] == [
        ("Products", "Id", legacy), ("Products", "No", None), ("Extra", "Id", None)]
    _pair, entry, _legacy = checks[0]
    assert entry == dict(module="Product", target_schema="product", target_table="Products", column="Id",
                         sequence_schema="product", sequence="Products_Id_seq", increment=1, next_value=None,
                         column_max=None, source_sequence=None, source_next_value=None)


# -- summary ------------------------------------------------------------------------------------

def sample_rows():
    pairs = rowdiff.pair_tables(modules(), {"Product": ["Products", "Outbox", "Gone", "__EFMigrationsHistory"]},
                                {("product", "Products"), ("product", "Outbox"), ("product", "Extra")})
    measured = {"Products": (counted(2), counted(2)), "Outbox": (counted(3), counted(1)), "Gone": (counted(1), None)}
    return [rowdiff.classify(pair, *measured.get(pair["source_table"], (None, counted(0)))) for pair in pairs]


def test_summary_counts_every_state_and_decides():
    rows = sample_rows()
    summary = rowdiff.summarize(rows, [rowdiff.check_sequence(sequence())])
    assert {key: summary[key] for key in ("tables", "match", "mismatch", "missing", "extra", "excluded", "failed")} == {
        "tables": 5, "match": 1, "mismatch": 1, "missing": 1, "extra": 1, "excluded": 1, "failed": 2}
    assert summary["sequences"] == 1 and not summary["passed"]
    passing = [row for row in rows if row["ok"]]
    assert rowdiff.summarize(passing, [])["passed"]
    assert not rowdiff.summarize(passing, [rowdiff.check_sequence(sequence(next_value=2))])["passed"]


def test_verdict_and_problems_name_what_failed():
    rows = sample_rows()
    summary = rowdiff.summarize(rows, [])
    assert verify_report.verdict_line(summary) == (
        "5 table(s): 1 match, 1 mismatch, 1 missing, 1 extra, 1 excluded - FAILED")
    assert verify_report.problems(rows, []) == [
        '"ClassifiedAds_Product".public."Gone" -> product."Gone" [missing]: target table does not exist',
        '"ClassifiedAds_Product".public."Outbox" -> product."Outbox" [mismatch]: row counts differ: source 3, target 1',
    ]


# -- rendering ----------------------------------------------------------------------------------

def test_names_are_shown_as_sql_would_spell_them():
    assert display.quote_ident("products") == "products"
    assert display.quote_ident("Products") == '"Products"'
    assert display.quote_ident(HOSTILE) == '"a""; DROP TABLE x; --"'
    assert display.quote_ident("1st") == '"1st"'
    assert display.qualified("product", "Products", None) == 'product."Products"'
    assert display.visible("a\nb\tc\x7f") == "a\u240ab\u2409c\u2421"


def test_text_table_is_fixed_width_with_numbers_right_aligned():
    rows = sample_rows()
    text = verify_report.render_text(rows, [rowdiff.check_sequence(sequence())], rowdiff.summarize(rows, []), False)
    lines = text.splitlines()
    assert lines[0].split() == ["module", "source", "table", "target", "source", "rows", "target", "rows", "state"]
    assert lines[1].startswith("-------  ")
    outbox = next(line for line in lines if '"Outbox"' in line)
    assert outbox.split()[-3:] == ["3", "1", "mismatch"]
    assert lines[0].index("source rows") + len("source rows") == outbox.index(" 3 ") + 2
    assert 'extra' in next(line for line in lines if '"Extra"' in line)
    assert "problems:" in text and text.rstrip().endswith("FAILED")
    assert 'identity."DataProtectionKeys"."Id"' in text


def gfm_cells(line):
    """Cells of a table row as GitHub's parser splits it: a backslash escapes the next character."""
    cells, cell, chars = [], "", iter(line.strip().strip("|"))
    for char in chars:
        if char == "\\":
            cell += char + next(chars, "")
        elif char == "|":
            cells.append(cell)
            cell = ""
        else:
            cell += char
    return cells + [cell]


def test_hostile_names_cannot_break_the_markdown_table():
    plan = modules({"name": "Pipe|Module", "source_database": "db|`x`", "schema": "s|1"})
    names = [HOSTILE, "t|\n|x", "``", "back\\| match |", "end\\"]
    pairs = rowdiff.pair_tables(plan, {"Pipe|Module": names}, set(("s|1", name) for name in names))
    rows = [rowdiff.classify(pair, counted(1, "5"), counted(1, "5"),
                             rowdiff.column_plan(columns("a"), columns("a"))) for pair in pairs]
    report = verify_report.build_report(dict(run_id="r|1", backup_set=None, generated_at="2026-01-01T00:00:00Z",
                                             target_database="T|db", checksum=True, check_sequences=False,
                                             servers={"source": {"address": "db1:5432", "version": "16.4"},
                                                      "target": None}), rows, [], rowdiff.summarize(rows, []))
    markdown = verify_report.render_markdown(report)
    table = [line for line in markdown.splitlines() if line.startswith("| `Pipe")]
    assert len(table) == len(names)
    for line in table:
        assert len(gfm_cells(line)) == 7 and gfm_cells(line)[-2:] == [" match ", " same "]
    assert '| \\"db\\|\\`x\\`\\"\\.public\\.\\"back\\\\\\| match \\|\\" |' in markdown
    assert '| `"s\\|1"."a""; DROP TABLE x; --"` |' in markdown
    assert '| ```"s\\|1"."``"``` |' in markdown
    assert '| `"s\\|1"."t\\|\u240a\\|x"` |' in markdown
    assert "- run: `r|1`" in markdown and "- backup set: -" in markdown


@pytest.mark.parametrize("text, rendered", [
    ("plain", "`plain`"),
    ("a|b", "`a|b`"),
    ("x`y", "``x`y``"),
    ("`edge", "`` `edge ``"),
    ("a``b`", "``` a``b` ```"),
])
def test_markdown_code_spans(text, rendered):
    assert verify_report.md_code(text) == rendered


def test_a_pipe_is_escaped_only_in_a_table_cell():
    assert verify_report.md_code("a|b", table_cell=True) == "`a\\|b`"


def test_markdown_report_lists_what_was_compared():
    rows = sample_rows()
    summary = rowdiff.summarize(rows, [])
    report = verify_report.build_report(dict(run_id="run-1", backup_set="run-1", generated_at="2026-01-01T00:00:00Z",
                                             target_database="ClassifiedAds", checksum=False, check_sequences=True,
                                             servers={"source": {"address": "db1:5432", "version": "16.4"},
                                                      "target": {"address": "db2:5432", "version": "16.4"}}),
                                        rows, [], summary)
    assert report["passed"] is False and report["checksum_method"] is None and report["format"] == 1
    markdown = verify_report.render_markdown(report)
    assert "- result: **FAILED**" in markdown
    assert "| module | source table | target | source rows | target rows | state |" in markdown
    assert '| `Product` | `"ClassifiedAds_Product".public."Outbox"` | `product."Outbox"` | 3 | 1 | mismatch |' \
        in markdown
    assert "## Problems" in markdown and "- target server: `db2:5432`, PostgreSQL `16.4`" in markdown


def test_a_report_with_the_same_result_is_the_same_whenever_made():
    rows = sample_rows()
    meta = dict(run_id="run-1", backup_set=None, generated_at="2026-01-01T00:00:00Z", target_database="T",
                checksum=False, check_sequences=True, servers={})
    first = verify_report.build_report(meta, rows, [], rowdiff.summarize(rows, []))
    later = verify_report.build_report(dict(meta, generated_at="2026-01-02T00:00:00Z"), rows, [],
                                       rowdiff.summarize(rows, []))
    assert verify_report.same_result(first, later)
    assert not verify_report.same_result(
        first, verify_report.build_report(meta, rows[:1], [], rowdiff.summarize(rows[:1], [])))
    assert not verify_report.same_result(None, later)


@pytest.mark.parametrize("setval, current, increment, expected", [
    ((100, True), (1, False), 1, (100, True)),     # a fresh sequence moves on
    ((100, True), (100, True), 1, (100, True)),    # already there: set again, harmlessly
    ((50, True), (100, True), 1, None),            # another table sharing it went further: never back
    ((-50, True), (-100, True), -1, None),         # descending: further is lower
    ((-100, True), (-1, False), -1, (-100, True)),
])
def test_a_shared_sequence_is_never_moved_back(setval, current, increment, expected):
    assert sequences.forward_setval(setval, *current, increment=increment) == expected


def _row(table, state, ok, written):
    return {"target_schema": "s", "target_table": table, "state": state, "ok": ok, "reasons": ["r"],
            "written_after_copy": written}


def test_a_rehearsal_sets_apart_only_differing_tables_the_application_wrote():
    rows = [_row("written", "mismatch", False, True), _row("broken", "mismatch", False, False),
            _row("untouched", "match", True, True), _row("missing", "missing", False, True)]
    sequences = [{"target_schema": "s", "target_table": "written", "state": "behind", "reasons": []},
                 {"target_schema": "s", "target_table": "broken", "state": "behind", "reasons": []}]
    excused, seqs = rowdiff.excuse_rehearsal_writes(rows, sequences)
    assert [row.get("rehearsal_write", False) for row in excused] == [True, False, False, False]
    assert [row["ok"] for row in excused] == [True, False, True, False]
    assert [entry["state"] for entry in seqs] == ["rehearsal_write", "behind"]
    summary = rowdiff.summarize(excused, seqs)
    assert summary["rehearsal_writes"] == 1 and summary["sequences_failed"] == 1 and not summary["passed"]
    assert rows[0]["ok"] is False  # the input is left as it was


# -- partitions and sequences no column uses -----------------------------------------------------

def test_each_partition_is_a_pair_of_its_own_beside_its_root_and_named_with_its_parent():
    plan = modules({"name": "Product", "source_database": "ClassifiedAds_Product", "schema": "product",
                    "tables": {"Events": {"schema": "history"}}})
    partitions = {"Product": {"Events": {"root": None, "parent": None, "partitioned": True},
                              "Events_2025": {"root": "Events", "parent": "Events", "partitioned": True},
                              "Events_2025_low": {"root": "Events", "parent": "Events_2025", "partitioned": False}}}
    tables = ["Events", "Events_2025", "Events_2025_low", "Products"]
    target = {("history", "Events"), ("history", "Events_2025"), ("product", "Products")}
    pairs = rowdiff.pair_tables(plan, {"Product": tables}, target, partitions)
    assert [(p["source_table"], p["target_schema"], p["target_exists"], p.get("partition_of"), p.get("partitioned"))
            for p in pairs] == [
        ("Events", "history", True, None, True),
        ("Events_2025", "history", True, "Events", True),
        ("Events_2025_low", "history", False, "Events_2025", False),  # a missing partition is a missing table
        ("Products", "product", True, None, None),
    ]
    rows = rowdiff.mark_partitions([rowdiff.classify(pair, counted(0), counted(0)) for pair in pairs[:2]], pairs)
    assert [(row["partition_of"], row["partitioned"]) for row in rows] == [(None, True), ("Events", True)]
    assert rowdiff.classify(pairs[2], counted(4))["state"] == "missing"


def test_a_sequence_no_column_uses_is_checked_against_its_legacy_one():
    plan = modules()
    checks = rowdiff.standalone_sequence_checks(
        plan, {"ClassifiedAds_Product": {"public": [{"sequence": "invoices", "increment": 1},
                                                    {"sequence": "gone", "increment": 1}]}},
        {"product": [{"sequence": "invoices", "increment": 1}]})
    assert [(entry["sequence_schema"], entry["sequence"], entry.get("error"), legacy["sequence_schema"])
            for entry, legacy in checks] == [
        ("product", "invoices", None, "public"),
        ("product", "gone", "the sequence does not exist in the target schema", "public")]
    entry = dict(checks[0][0], next_value=10, source_next_value=4322)
    assert rowdiff.check_sequence(entry)["state"] == "behind"
    assert rowdiff.check_sequence(dict(entry, next_value=4322))["state"] == "ok"
    assert rowdiff.check_sequence(checks[1][0])["state"] == "error"
