"""proof.py's pure decisions: when a table counts as written, how a delta reads, what differs in content."""

from __future__ import annotations

from ansible_collections.classifiedads.consolidation.plugins.module_utils import proof, verify_report

BEFORE = {"inserted": 10, "updated": 2, "deleted": 0}


def counters(inserted=10, updated=2, deleted=0):
    return {"inserted": inserted, "updated": updated, "deleted": deleted}


def test_equal_counters_mean_not_written():
    assert proof.counter_delta(BEFORE, counters()) == counters(0, 0, 0)
    assert not proof.written_between(BEFORE, counters())


def test_any_moved_counter_means_written_an_aborted_update_too():
    assert proof.written_between(BEFORE, counters(updated=3))
    assert proof.describe_delta(proof.counter_delta(BEFORE, counters(updated=3))) == "updated +1"


def test_counters_going_down_are_a_write_and_say_why():
    delta = proof.counter_delta(BEFORE, counters(0, 0, 0))
    assert proof.written_between(BEFORE, counters(0, 0, 0))
    assert proof.describe_delta(delta) == "inserted -10, updated -2 (counters went down: statistics reset or " \
                                          "table recreated)"


def test_unknown_counters_on_either_side_count_as_written():
    for before, after in ((None, BEFORE), (BEFORE, None), (None, None)):
        assert proof.written_between(before, after)
        assert proof.counter_delta(before, after) is None
    assert proof.describe_delta(None) == "write counters unknown"


def test_content_differences_name_the_row_delta_and_the_checksum():
    verified = {"rows": 4003, "checksum": "17"}
    assert proof.content_differences(verified, {"rows": 4003, "checksum": "17"}) == []
    assert proof.content_differences(verified, {"rows": 4004, "checksum": "18"}) == [
        "rows 4003 -> 4004 (+1)", "content checksum differs"]
    assert proof.content_differences(verified, {"rows": 4003, "checksum": "18"}) == ["content checksum differs"]
    # Without a verified checksum only the count can be compared.
    assert proof.content_differences({"rows": 5, "checksum": None}, {"rows": 5, "checksum": None}) == []


def test_a_written_table_passes_only_with_a_matching_checksum():
    verified = {"rows": 5, "checksum": "9"}
    delta = counters(0, 1, 0)
    assert proof.judge_written("t", "the verification", delta, verified, {"rows": 5, "checksum": "9"}) == (
        None, {"table": "t", "since": "the verification", "delta": delta, "content": "matches"})
    problem, entry = proof.judge_written("t", "the final backup", delta, verified, {"rows": 6, "checksum": "8"})
    assert entry["content"] == "differs"
    assert problem == ("t: written after the final backup (updated +1) and no longer what was verified: "
                       "rows 5 -> 6 (+1); content checksum differs")
    problem, entry = proof.judge_written("t", "the verification", delta, {"rows": 5, "checksum": None},
                                         {"rows": 5, "checksum": None})
    assert entry["content"] == "unproven" and "cannot be proven" in problem


def test_verified_tables_drops_a_checksum_it_could_not_compute_again():
    report = {"tables": [
        {"kind": "copied", "source_database": "A", "source_schema": "public", "source_table": "T",
         "source_rows": 3, "source_checksum": "1", "checksum_columns": [{"name": "Id", "binary": True}],
         "write_counters": {"copied": BEFORE, "verified": BEFORE, "delta": counters(0, 0, 0)}},
        {"kind": "copied", "source_database": "A", "source_schema": "public", "source_table": "Old",
         "source_rows": 3, "source_checksum": "1"},
        {"kind": "extra", "source_database": None, "source_schema": None, "source_table": None},
        {"kind": "copied", "source_database": "B", "source_schema": "public", "source_table": "T"},
    ]}
    assert proof.verified_tables(report, "A") == [
        {"schema": "public", "table": "T", "rows": 3, "checksum": "1", "columns": [{"name": "Id", "binary": True}],
         "write_counters": BEFORE},
        {"schema": "public", "table": "Old", "rows": 3, "checksum": None, "columns": None, "write_counters": None},
    ]


def test_the_report_lists_written_tables_with_their_deltas():
    row = {"module": "Product", "kind": "copied", "source_database": "P", "source_schema": "public",
           "source_table": "Products", "target_schema": "product", "target_table": "Products", "state": "mismatch",
           "ok": False, "copy_snapshot": "00000003-1", "written_after_copy": True,
           "write_counters": {"copied": BEFORE, "verified": counters(updated=3), "delta": counters(0, 1, 0)}}
    untouched = dict(row, source_table="Other", target_table="Other", written_after_copy=False, state="match")
    assert verify_report.written_after_copy([row, untouched]) == [{
        "source_database": "P", "source_schema": "public", "source_table": "Products", "target_schema": "product",
        "target_table": "Products", "copy_snapshot": "00000003-1", "delta": counters(0, 1, 0), "content": "differs",
        "ok": False}]
    assert verify_report.written_lines([row, untouched]) == [
        '"P".public."Products" -> product."Products": updated +1; content differs']
