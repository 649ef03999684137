"""Proof by content against real servers: the copy records each table's write counters and snapshot, and
verification names every table whose legacy source was written after it was copied, passing it only when its
content still matches, with or without ``checksum``.

Each stray write bypasses the write fence (``tests/stray_write.py``) and is awaited in the statistics before
anything is asserted. Each test that changes data puts it back, so the next one starts from equal content.
"""

from __future__ import annotations

import json

import pytest
from conftest import drop_database, endpoint
from conftest import run_sql as query
from constants import MODULE_SCHEMAS
from devkit import legacy, migrator
from stray_write import stray_write, write_counters

pytestmark = pytest.mark.integration

PREFIX = "Proof"
TARGET_DB = "Proof_Consolidated"
RUN_ID = "proof-1"
PRODUCT_DB = f"{PREFIX}_Product"
CONFIGURATION_DB = f"{PREFIX}_Configuration"
# Tables the stand-in migrator seeds: the copy replaces their rows.
SEEDED = {"Product": ["Products"], "Identity": ["Users"],
          "Configuration": ["ConfigurationEntries", "LocalizationEntries"]}


def plan_modules():
    modules = []
    for name, schema in MODULE_SCHEMAS:
        tables = {table: {"truncate": True} for table in SEEDED.get(name, [])}
        tables.update(legacy.shipped_null_policies().get(name, {}))  # the fixtures' NULL shadow keys
        if name == "AuditLog":
            tables.update({"schemaversions": {"schema": "public", "truncate": True},
                           "CacheEntries": {"schema": "public"}})
        modules.append({"name": name, "source_database": f"{PREFIX}_{name}", "schema": schema, "tables": tables})
    return modules


@pytest.fixture(scope="module")
def copied(run_module, source_cluster, target_cluster):
    legacy.create(source_cluster, 0.01, prefix=PREFIX, drop_existing=True, out=lambda line: None)
    drop_database(target_cluster, TARGET_DB)
    migrator.migrate(target_cluster.connect_kwargs(TARGET_DB), log=lambda line: None)
    args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=TARGET_DB,
                run_id=RUN_ID, modules=plan_modules(), parallel=2)
    result = run_module("data_copy", args)
    assert not result["failed"], result.get("msg")
    yield dict(result=result, args=args)
    drop_database(target_cluster, TARGET_DB)
    legacy.drop(source_cluster, prefix=PREFIX)


@pytest.fixture
def verify(run_module, source_cluster, target_cluster, tmp_path):
    def run(**extra):
        args = dict(source=endpoint(source_cluster), target=endpoint(target_cluster), modules=plan_modules(),
                    target_database=TARGET_DB, run_id=RUN_ID, backup_set=RUN_ID, checksum=False,
                    report_dir=str(tmp_path / "run"), fail_on_mismatch=True)
        args.update(extra)
        return run_module("row_count_diff", args)

    return run


def written(result, table):
    return [entry for entry in result["written_after_copy"] if entry["source_table"] == table]


def row_of(result, table):
    return next(row for row in result["tables"] if row["source_table"] == table and row["kind"] == "copied")


# -- what the copy records ------------------------------------------------------------------------------------


def test_the_copy_records_each_tables_counters_and_snapshot_in_its_state_and_result(
        copied, run_module, source_cluster, target_cluster):
    tables = copied["result"]["tables"]
    assert tables and all(entry["status"] == "copied" for entry in tables)
    snapshots = {}
    for entry in tables:
        assert entry["source_snapshot"], entry
        assert sorted(entry["write_counters"]) == ["deleted", "inserted", "updated"], entry
        snapshots.setdefault(entry["source_database"], set()).add(entry["source_snapshot"])
    # One snapshot per legacy database, a different one for each.
    assert all(len(found) == 1 for found in snapshots.values()), snapshots
    assert len(set().union(*snapshots.values())) == len(snapshots)

    recorded = query(target_cluster, TARGET_DB, "SELECT source_database, source_table, source_snapshot, "
                     "source_inserted, source_updated, source_deleted FROM _consolidation.copied_tables "
                     "WHERE run_id = %s", (RUN_ID,))
    assert {(db, table): (snapshot, dict(inserted=ins, updated=upd, deleted=dele))
            for db, table, snapshot, ins, upd, dele in recorded} == {
        (entry["source_database"], entry["source_table"]): (entry["source_snapshot"], entry["write_counters"])
        for entry in tables}

    # Nothing wrote since: what was recorded is what the statistics say now (the legacy generator's inserts).
    products = next(entry for entry in tables if entry["source_table"] == "Products")
    assert products["write_counters"]["inserted"] > 0
    assert tuple(products["write_counters"][key] for key in ("inserted", "updated", "deleted")) == write_counters(
        source_cluster, PRODUCT_DB, "public", "Products")

    # A rerun skips every table and reports what the first invocation recorded.
    again = run_module("data_copy", copied["args"])
    assert not again["failed"] and not again["changed"], again.get("msg")
    assert {(entry["source_table"], entry["source_snapshot"], json.dumps(entry["write_counters"], sort_keys=True))
            for entry in again["tables"]} == {
        (entry["source_table"], entry["source_snapshot"], json.dumps(entry["write_counters"], sort_keys=True))
        for entry in tables}


# -- what verification makes of them ---------------------------------------------------------------------------


def test_without_a_write_since_the_copy_no_table_is_named(copied, verify):
    result = verify()
    assert not result["failed"], result["msg"]
    assert result["written_after_copy"] == [] and result["summary"]["written_after_copy"] == 0
    row = row_of(result, "Products")
    assert row["written_after_copy"] is False and row["source_checksum"] is None  # counted only
    assert row["write_counters"]["delta"] == {"inserted": 0, "updated": 0, "deleted": 0}


def test_an_update_after_the_copy_is_named_and_fails_even_without_checksums(copied, verify, source_cluster,
                                                                            tmp_path):
    key, description = query(source_cluster, PRODUCT_DB,
                             'SELECT "Id", "Description" FROM "Products" ORDER BY "Id" LIMIT 1')[0]
    stray_write(source_cluster, PRODUCT_DB, "public", "Products",
                ('UPDATE "Products" SET "Description" = %s WHERE "Id" = %s', ("edited after the copy", key)))
    try:
        result = verify(checksum=False)
        assert result["failed"]
        [entry] = written(result, "Products")
        assert entry["content"] == "differs" and entry["ok"] is False
        assert entry["delta"] == {"inserted": 0, "updated": 1, "deleted": 0}
        row = row_of(result, "Products")
        assert row["state"] == "mismatch" and row["source_rows"] == row["target_rows"]  # counts alone would pass
        assert "content checksums differ" in row["reasons"]
        assert "Products" in result["msg"] and "updated +1" in result["msg"]
        # Both reports list it with its delta.
        report = json.loads((tmp_path / "run" / "verification.json").read_text())
        assert [(item["source_table"], item["delta"]["updated"]) for item in report["written_after_copy"]] == [
            ("Products", 1)]
        markdown = (tmp_path / "run" / "verification.md").read_text()
        assert "## Written after the copy" in markdown and "updated +1; content differs" in markdown
        assert "edited after the copy" not in json.dumps(result) + markdown  # no row contents
    finally:
        stray_write(source_cluster, PRODUCT_DB, "public", "Products",
                    ('UPDATE "Products" SET "Description" = %s WHERE "Id" = %s', (description, key)))
    # Put back, the table is still named (its counters moved) but passes on its content.
    result = verify(checksum=False)
    assert not result["failed"], result["msg"]
    [entry] = written(result, "Products")
    assert entry["content"] == "matches" and entry["delta"]["updated"] == 2


def test_an_aborted_write_is_named_and_passes_only_because_its_content_still_matches(copied, verify,
                                                                                     source_cluster):
    stray_write(source_cluster, CONFIGURATION_DB, "public", "ConfigurationEntries",
                "BEGIN", 'UPDATE "ConfigurationEntries" SET "Value" = \'aborted\'', "ROLLBACK")
    for checksum in (False, True):
        result = verify(checksum=checksum)
        assert not result["failed"], result["msg"]
        [entry] = written(result, "ConfigurationEntries")
        assert entry["content"] == "matches" and entry["delta"]["updated"] > 0
        row = row_of(result, "ConfigurationEntries")
        assert row["state"] == "match" and row["source_checksum"] is not None
        assert row["source_checksum"] == row["target_checksum"]
        assert any("written after it was copied" in reason for reason in row["reasons"])
        assert "ConfigurationEntries" in result["table_text"]


def test_a_statistics_reset_counts_as_a_write(copied, verify, source_cluster):
    query(source_cluster, CONFIGURATION_DB,
          "SELECT pg_stat_reset_single_table_counters('public.\"LocalizationEntries\"'::regclass)")
    result = verify()
    assert not result["failed"], result["msg"]
    [entry] = written(result, "LocalizationEntries")
    assert entry["delta"]["inserted"] < 0 and entry["content"] == "matches"
    assert "went down" in result["table_text"]


# -- a rehearsal's verification: the application keeps writing ---------------------------------------------------


def test_a_rehearsal_sets_apart_what_the_application_wrote_after_the_copy_and_still_compares_the_rest(
        copied, verify, source_cluster, target_cluster):
    # The last test of the module: what it changes goes with the fixture.
    key = query(source_cluster, PRODUCT_DB, 'SELECT "Id" FROM "Products" ORDER BY "Id" LIMIT 1')[0][0]
    stray_write(source_cluster, PRODUCT_DB, "public", "Products",
                ('UPDATE "Products" SET "Description" = %s WHERE "Id" = %s', ("the application at work", key)))
    # A target table whose source nobody wrote, broken after the copy: a rehearsal must still see it.
    query(target_cluster, TARGET_DB, 'DELETE FROM auditlog."AuditLogEntries" WHERE "Id" = '
                                     '(SELECT "Id" FROM auditlog."AuditLogEntries" ORDER BY "Id" LIMIT 1)')
    # The real run's verification fails on both tables.
    assert verify(checksum=True)["failed"]
    result = verify(checksum=True, rehearsal=True)
    assert result["failed"]
    products = row_of(result, "Products")
    entries = next(row for row in result["tables"]
                   if (row["target_schema"], row["target_table"]) == ("auditlog", "AuditLogEntries"))
    assert products["rehearsal_write"] and products["ok"] and products["state"] == "mismatch"
    assert not entries.get("rehearsal_write") and not entries["ok"]
    assert result["summary"]["rehearsal_writes"] == 1
    assert "1 written by the application during the rehearsal (not compared)" in result["msg"]
