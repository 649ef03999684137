"""Rollback decisions, from plain data: what brings each legacy database back, and how it is checked."""

from __future__ import annotations

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import restore as r
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal

RENAMED = {"database": "ClassifiedAds_Product", "state": "retired", "mode": "rename",
           "retired_name": "ClassifiedAds_Product_retired_20261124"}
DROPPED = {"database": "ClassifiedAds_Product", "state": "retired", "mode": "drop", "retired_name": None}

# What `pg_restore --create --schema-only --section=pre-data --file=-` prints (PostgreSQL 15), trimmed.
CREATE_SCRIPT = """--
-- Name: ClassifiedAds_Product; Type: DATABASE; Schema: -; Owner: app owner
--

CREATE DATABASE "ClassifiedAds_Product" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C';


ALTER DATABASE "ClassifiedAds_Product" OWNER TO "app owner";

\\connect "ClassifiedAds_Product"

CREATE TABLE public."Products" (id uuid NOT NULL);
"""


# -- decisions ----------------------------------------------------------------------------------


def test_a_database_in_place_is_only_verified():
    catalog = {"ClassifiedAds_Product": {"allow_connections": True}}
    assert r.restore_decision("ClassifiedAds_Product", RENAMED, catalog) == dict(action="present",
                                                                                 source="ClassifiedAds_Product")


def test_a_closed_database_in_place_is_reopened():
    catalog = {"ClassifiedAds_Product": {"allow_connections": False}}
    assert r.restore_decision("ClassifiedAds_Product", None, catalog)["action"] == "reopen"


def test_a_renamed_database_is_renamed_back():
    catalog = {"ClassifiedAds_Product_retired_20261124": {"allow_connections": False}}
    assert r.restore_decision("ClassifiedAds_Product", RENAMED, catalog) == dict(
        action="undo", source="ClassifiedAds_Product_retired_20261124")


@pytest.mark.parametrize("entry", [DROPPED, None, RENAMED], ids=["dropped", "no record", "renamed, then lost"])
def test_a_missing_database_is_restored(entry):
    decision = r.restore_decision("ClassifiedAds_Product", entry, {})
    assert decision == dict(action="restore", source=None, leftover_scratch=False)


def test_a_leftover_scratch_database_of_ours_is_replaced():
    scratch = {"allow_connections": True, "comment": r.SCRATCH_MARKER + "ClassifiedAds_Product from x"}
    catalog = {"ClassifiedAds_Product_restoring": scratch}
    assert r.restore_decision("ClassifiedAds_Product", DROPPED, catalog)["leftover_scratch"] is True


def test_a_scratch_name_taken_by_someone_else_refuses():
    catalog = {"ClassifiedAds_Product_restoring": {"allow_connections": True, "comment": None}}
    decision = r.restore_decision("ClassifiedAds_Product", DROPPED, catalog)
    assert decision["action"] is None
    assert decision["problem"] == ("cannot restore ClassifiedAds_Product: a database named "
                                   "ClassifiedAds_Product_restoring exists that this collection did not create "
                                   "(drop or rename it first)")


def test_scratch_and_rolled_back_names_fit_63_bytes():
    assert r.scratch_name(HOSTILE) == HOSTILE + "_restoring"
    assert len(r.scratch_name("x" * 63).encode()) == 63
    assert r.rolled_back_name("ClassifiedAds", "20261124") == "ClassifiedAds_rolledback_20261124"


# -- the archive --------------------------------------------------------------------------------


MANIFEST = {"archives": [
    {"database": "ClassifiedAds_Product", "label": None, "file": "ClassifiedAds_Product.dump"},
    {"database": "ClassifiedAds_Product", "label": "final", "file": "ClassifiedAds_Product.final.dump"},
    {"database": "ClassifiedAds_Identity", "label": None, "file": "ClassifiedAds_Identity.dump"},
]}


def test_the_final_generation_is_preferred_else_the_first():
    assert r.choose_archive(MANIFEST, "ClassifiedAds_Product")["file"] == "ClassifiedAds_Product.final.dump"
    assert r.choose_archive(MANIFEST, "ClassifiedAds_Identity")["file"] == "ClassifiedAds_Identity.dump"
    assert r.choose_archive(MANIFEST, "ClassifiedAds_Storage") is None


def test_counts_are_compared_table_by_table():
    expected = [{"schema": "public", "table": "Products", "rows": 10},
                {"schema": "public", "table": "AuditLogEntries", "rows": 3},
                {"schema": "public", "table": HOSTILE, "rows": 0}]
    assert r.count_differences(expected, {("public", "Products"): 10, ("public", "AuditLogEntries"): 3,
                                          ("public", HOSTILE): 0}) == []
    assert r.count_differences(expected, {("public", "Products"): 9, ("public", "AuditLogEntries"): 3}) == [
        "public.Products: 9 rows, manifest 10", f"public.{HOSTILE}: missing (manifest 0 rows)"]


def test_owner_encoding_and_locale_come_from_the_archive():
    assert r.parse_create_database(CREATE_SCRIPT) == {
        "owner": "app owner", "options": [("ENCODING", "UTF8"), ("LOCALE_PROVIDER", "libc"),
                                          ("LOCALE", "C")]}


def test_icu_and_split_locales_and_odd_names_parse():
    script = ('CREATE DATABASE "a""; DROP TABLE x; --" WITH TEMPLATE = template0 ENCODING = \'LATIN1\' '
              "LOCALE_PROVIDER = icu LC_COLLATE = 'C' LC_CTYPE = 'it''s' ICU_LOCALE = 'de-DE';\n\n"
              "ALTER DATABASE \"a\"\"; DROP TABLE x; --\" OWNER TO postgres;\n")
    assert r.parse_create_database(script) == {"owner": "postgres", "options": [
        ("ENCODING", "LATIN1"), ("LOCALE_PROVIDER", "icu"), ("LC_COLLATE", "C"), ("LC_CTYPE", "it's"),
        ("ICU_LOCALE", "de-DE")]}


def test_an_archive_without_a_database_entry_is_refused():
    with pytest.raises(r.RestoreError, match="no CREATE DATABASE entry"):
        r.parse_create_database("CREATE TABLE t (x int);")


def test_the_owner_is_the_recorded_one_when_the_login_may_use_it():
    assert r.restore_owner(["app", "postgres"], "admin", {"app", "admin"}) == "app"
    assert r.restore_owner([None, "postgres"], "admin", {"admin", "postgres"}) == "postgres"
    assert r.restore_owner(["gone"], "admin", {"admin"}) == "admin"


# -- what the rollback reports ------------------------------------------------------------------


def rollback(check_mode=False, items=(), target=None):
    subject = r.Rollback({"source": {"host": "db1", "port": 5432}, "databases": [], "run_dir": "/runs/run-1"},
                         QueryJournal(check_mode=check_mode))
    subject.items, subject.target_item = list(items), target
    return subject


def outcome(database, action, **extra):
    base = dict(database=database, action=action, source=database, archive={"file": database + ".final.dump"},
                verified=True, differences=[], note=None)
    base.update(extra)
    return base


ITEMS = [outcome("ClassifiedAds_Product", "restore", source=None),
         outcome("ClassifiedAds_Identity", "undo", source="ClassifiedAds_Identity_retired_20261124"),
         outcome(HOSTILE, "present", verified=False, differences=["public.Products: 9 rows, manifest 10"],
                 note="changed since rollback brought it back at T")]
TARGET = {"action": "retire", "database": "ClassifiedAds", "retired_name": "ClassifiedAds_rolledback_20261124"}


def test_the_summary_groups_the_databases_by_what_brings_them_back():
    assert rollback(items=ITEMS, target=TARGET).summary() == (
        "renamed back: ClassifiedAds_Identity; restored: ClassifiedAds_Product; already present: " + HOSTILE
        + "; ClassifiedAds closed and renamed to ClassifiedAds_rolledback_20261124")
    assert rollback(check_mode=True, items=ITEMS[:1]).summary() == "would be restored: ClassifiedAds_Product"


def test_the_table_says_how_each_database_came_back_and_whether_its_rows_match():
    lines = rollback(items=ITEMS).table().split("\n")
    assert lines[0].split() == ["database", "outcome", "rows", "from", "note"]
    assert lines[2].split() == ["ClassifiedAds_Product", "restored", "verified", "ClassifiedAds_Product.final.dump"]
    assert lines[3].split() == ["ClassifiedAds_Identity", "undone", "(renamed", "back)", "verified",
                                "ClassifiedAds_Identity_retired_20261124"]
    present = lines[4][len(HOSTILE):].split("  ")
    assert lines[4].startswith(HOSTILE) and [cell.strip() for cell in present if cell.strip()] == [
        "already present", "differ", HOSTILE,
        "public.Products: 9 rows, manifest 10; changed since rollback brought it back at T"]


def test_refused_before_anything_changed_failed_after():
    subject = rollback()
    assert subject.failure_message(["a", "b"]) == "rollback refused: a; b"
    subject.started = True
    assert subject.failure_message(["a"]) == "rollback failed: a"
