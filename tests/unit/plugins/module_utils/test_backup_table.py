"""The backup set as the operator reads it: one line per database, its action and its archive."""

from __future__ import annotations

from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils.backup import archive_table

PLAN = [{"database": "ClassifiedAds_Product", "size": 8532323, "action": "keep"},
        {"database": HOSTILE, "size": 7000000, "action": "dump"}]
MANIFEST = {"archives": [
    {"database": "ClassifiedAds_Product", "label": None, "size": 1234, "verified": True, "sha256": "ab" * 32,
     "tables": [{"schema": "public", "table": "Products", "rows": 10}, {"schema": "public", "table": "x", "rows": 5}]},
    {"database": "ClassifiedAds_Product", "label": "final", "size": 99, "verified": True, "sha256": "cd" * 32,
     "tables": []},
]}


def test_each_database_shows_its_archive_of_the_generation_and_sums_its_rows():
    lines = archive_table(PLAN, MANIFEST, None).split("\n")
    assert lines[0].split() == ["database", "action", "db", "bytes", "archive", "bytes", "tables", "rows", "verified",
                                "sha256"]
    assert lines[2].split() == ["ClassifiedAds_Product", "keep", "8532323", "1234", "2", "15", "True", "ab" * 8]
    assert lines[3].startswith(HOSTILE) and lines[3][len(HOSTILE):].split() == ["dump", "7000000", "-", "0", "0",
                                                                                "-", "-"]


def test_numbers_are_right_aligned_and_another_generation_is_not_shown():
    lines = archive_table(PLAN, MANIFEST, "final").split("\n")
    assert lines[2].split()[3:6] == ["99", "0", "0"]
    assert lines[3].index("7000000") + len("7000000") == lines[2].index("8532323") + len("8532323")
    assert archive_table(PLAN, None, None).split("\n")[2].split()[3] == "-"
