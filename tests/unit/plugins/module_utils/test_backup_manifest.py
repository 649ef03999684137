"""The backup set's pure decisions: names, versions, free space, the archive listing, the manifest."""

from __future__ import annotations

import hashlib

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import display
from ansible_collections.classifiedads.consolidation.plugins.module_utils import manifest as m

# What `pg_restore --list` prints (PostgreSQL 15): TABLE DATA lines carry the table's OID.
LISTING = """;
; Archive created at 2026-11-24 04:06:43 UTC
;     dbname: Mixed_Db
;     Format: CUSTOM
;
; Selected TOC Entries:
;
6; 2615 16395 SCHEMA - Other Schema postgres
217; 1259 16396 TABLE Other Schema a b postgres
216; 1259 16387 TABLE public Products postgres
3353; 0 16396 TABLE DATA Other Schema a b postgres
3352; 0 16387 TABLE DATA public Products postgres
3362; 0 0 SEQUENCE SET public Products_id_seq postgres
"""


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("set_id", ["20261124T040000Z", "run-1", "a.b_c-d", "X"])
def test_valid_set_ids(set_id):
    assert m.validate_set_id(set_id) == set_id


@pytest.mark.parametrize("set_id", ["", ".hidden", "../escape", "a/b", "-x", HOSTILE, "x" * 129, None, 5])
def test_set_ids_that_are_not_safe_directory_names_are_refused(set_id):
    with pytest.raises(m.BackupError, match="set_id"):
        m.validate_set_id(set_id)


@pytest.mark.parametrize("label", ["final", "pre-copy", "gen_2"])
def test_valid_labels(label):
    assert m.validate_label(label) == label


@pytest.mark.parametrize("label", ["", "a.b", "../x", "-x", "x" * 33, HOSTILE])
def test_labels_that_would_break_the_file_name_are_refused(label):
    with pytest.raises(m.BackupError, match="label"):
        m.validate_label(label)


def test_no_label_is_allowed():
    assert m.validate_label(None) is None


def test_mixed_case_database_names_keep_their_case():
    assert m.archive_filename("ClassifiedAds_Product") == "ClassifiedAds_Product.dump"


def test_labelled_generation_goes_between_database_and_suffix():
    assert m.archive_filename("ClassifiedAds_Product", "final") == "ClassifiedAds_Product.final.dump"


def test_hostile_database_name_becomes_a_plain_file_name():
    name = m.archive_filename(HOSTILE)
    assert name == "a%22%3B%20DROP%20TABLE%20x%3B%20--.dump"
    assert "/" not in name and '"' not in name and " " not in name


@pytest.mark.parametrize("database", ["../../etc/passwd", ".", "..", "a/b", "a\\b"])
def test_no_database_name_escapes_the_set_directory(database):
    name = m.archive_filename(database)
    assert "/" not in name and not name.startswith(".")


def test_file_names_are_injective():
    # "." is escaped, so a dotted database name cannot pose as a labelled generation of another.
    names = ["a.final", "a", "A", "a%2E", "a b", "a_b", "Ä", "a\x01"]
    files = [m.archive_filename(name) for name in names] + [m.archive_filename("a", "final")]
    assert len(set(files)) == len(files)


def test_non_ascii_is_escaped_byte_by_byte():
    assert m.file_safe("Ä") == "%C3%84"


# -- pg_dump options -----------------------------------------------------------------------


@pytest.mark.parametrize("spec, major, expected", [
    ("1", (15,), "1"), ("0", (15,), "0"), (9, (15,), "9"),
    ("zstd:3", (16,), "zstd:3"), ("lz4", (17,), "lz4"), ("gzip:9", (16,), "gzip:9"),
])
def test_compression_arguments(spec, major, expected):
    assert m.compress_argument(spec, major) == expected


def test_compression_methods_need_pg_dump_16():
    with pytest.raises(m.BackupError, match="needs pg_dump 16"):
        m.compress_argument("zstd:3", (15,))


@pytest.mark.parametrize("spec", ["10", "fast", "zstd:", "-1", "1; rm -rf /"])
def test_invalid_compression_is_refused(spec):
    with pytest.raises(m.BackupError, match="compress"):
        m.compress_argument(spec, (17,))


# -- free space -----------------------------------------------------------------------------


def test_enough_space():
    assert m.space_problem({"A": 100, "B": 50}, 150, "/backups") is None


def test_not_enough_space_names_needed_and_free_bytes():
    problem = m.space_problem({"A": 100, "B": 51}, 150, "/backups")
    assert problem == ("not enough free space at /backups: need 151 bytes (1.0 x the pg_database_size of A, B), "
                       "150 bytes free")


def test_space_factor_scales_the_need():
    assert m.space_needed({"A": 1000}, 0.5) == 500
    assert m.space_problem({"A": 1000}, 499, "/b", factor=0.5) is not None


def test_nothing_to_dump_needs_no_space():
    assert m.space_problem({}, 0, "/backups") is None


# -- the archive listing --------------------------------------------------------------------


def test_table_data_entries_are_found_by_oid_despite_spaces_in_names():
    assert m.toc_table_data_oids(LISTING) == {16396, 16387}


def test_tables_missing_from_the_listing():
    tables = [{"oid": 16396, "schema": "Other Schema", "table": "a b"},
              {"oid": 16387, "schema": "public", "table": "Products"},
              {"oid": 17000, "schema": "public", "table": HOSTILE}]
    assert m.tables_missing_from_toc(LISTING, tables) == [tables[2]]


# -- the manifest ---------------------------------------------------------------------------


def _entry(database, label=None, **extra):
    entry = {"database": database, "label": label, "file": m.archive_filename(database, label), "sha256": "ab" * 32,
             "size": 10, "verified": True, "server_version": "15.18", "pg_dump_path": "/x/pg_dump",
             "pg_dump_version": "15.18"}
    entry.update(extra)
    return entry


def test_new_manifest_has_no_secret_and_no_archives():
    manifest = m.new_manifest("run-1", "db1:5432", "2026-11-24T04:00:00.000000Z")
    assert manifest["archives"] == [] and manifest["source"]["server"] == "db1:5432"
    assert "password" not in repr(manifest)


def test_record_archive_replaces_the_same_generation_and_keeps_others():
    manifest = m.new_manifest("run-1", "db1:5432", "t0")
    manifest = m.record_archive(manifest, _entry("B"), "t1")
    manifest = m.record_archive(manifest, _entry("A"), "t2")
    manifest = m.record_archive(manifest, _entry("A", "final"), "t3")
    manifest = m.record_archive(manifest, _entry("A", size=99), "t4")
    assert [(e["database"], e["label"]) for e in manifest["archives"]] == [("A", None), ("B", None), ("A", "final")]
    assert m.find_archive(manifest, "A")["size"] == 99
    assert m.find_archive(manifest, "A", "final")["size"] == 10
    assert m.find_archive(manifest, "C") is None
    assert manifest["updated_at"] == "t4" and manifest["created_at"] == "t0"
    assert manifest["pg_dump"] == {"path": "/x/pg_dump", "version": "15.18"}


def test_record_archive_does_not_mutate_its_input():
    manifest = m.new_manifest("run-1", "db1:5432", "t0")
    m.record_archive(manifest, _entry("A"), "t1")
    assert manifest["archives"] == []


@pytest.mark.parametrize("entry, sha, action", [
    (None, None, "dump"),
    (_entry("A", verified=False), "ab" * 32, "redo"),
    (_entry("A"), None, "redo"),
    (_entry("A"), "cd" * 32, "redo"),
    (_entry("A"), "ab" * 32, "keep"),
])
def test_archive_decision(entry, sha, action):
    assert m.archive_decision(entry, sha)[0] == action


def test_changed_archive_reason_names_the_file_and_both_checksums():
    reason = m.archive_decision(_entry("A"), "cd" * 32)[1]
    assert "A.dump" in reason and "ab" * 32 in reason and "cd" * 32 in reason


def test_manifest_of_another_source_is_refused():
    manifest = m.new_manifest("run-1", "db1:5432", "t0")
    with pytest.raises(m.BackupError, match="holds archives of db1:5432, not of db2:5432"):
        m.check_manifest(manifest, "run-1", "db2:5432")


def test_manifest_of_another_set_is_refused():
    with pytest.raises(m.BackupError, match="belongs to set"):
        m.check_manifest(m.new_manifest("run-2", "db1:5432", "t0"), "run-1", "db1:5432")


def test_manifest_of_unknown_format_is_refused():
    manifest = dict(m.new_manifest("run-1", "db1:5432", "t0"), format_version=99)
    with pytest.raises(m.BackupError, match="format_version"):
        m.check_manifest(manifest, "run-1", "db1:5432")


def test_utc_timestamps_end_in_z():
    assert display.utc_timestamp().endswith("Z")


# -- verify_archive -------------------------------------------------------------------------


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "ClassifiedAds_Product.dump"
    data = b"PGDMP" + bytes(range(256)) * 40
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


def test_intact_archive_verifies(archive):
    path, sha, size = archive
    assert m.verify_archive(str(path), sha) is None
    assert m.verify_archive(str(path), sha, size) is None


def test_truncated_archive_is_named_with_its_sizes(archive):
    path, sha, size = archive
    path.write_bytes(path.read_bytes()[:100])
    problem = m.verify_archive(str(path), sha, size)
    assert str(path) in problem and "100 bytes" in problem and str(size) in problem


def test_changed_archive_of_the_same_size_fails_its_checksum(archive):
    path, sha, size = archive
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    problem = m.verify_archive(str(path), sha, size)
    assert str(path) in problem and "does not match the manifest" in problem and sha in problem


def test_missing_archive_is_named(tmp_path):
    problem = m.verify_archive(str(tmp_path / "gone.dump"), "00")
    assert "gone.dump" in problem and "cannot be read" in problem


def test_verify_manifest_archives_reports_each_bad_file(tmp_path, archive):
    path, sha, size = archive
    manifest = m.new_manifest("run-1", "db1:5432", "t0")
    manifest = m.record_archive(manifest, dict(_entry("ClassifiedAds_Product"), sha256=sha, size=size), "t1")
    manifest = m.record_archive(manifest, _entry("Gone"), "t2")
    manifest = m.record_archive(manifest, _entry("Unverified", verified=False), "t3")
    problems = m.verify_manifest_archives(manifest, str(tmp_path))
    assert len(problems) == 2
    assert "Gone.dump" in problems[0] and "never verified" in problems[1]
    assert m.verify_manifest_archives(manifest, str(tmp_path), label="final") == []
