"""Decommission is bound to what was verified.

One consolidation of its own legacy database (fenced, as by default); a deliberate writer that bypasses the
fence then changes it. In order: the decommission refuses, the verification run again fails, both naming
the table; the table put back, a final backup taken while it differed still makes the decommission refuse.
"""

from __future__ import annotations

import json

import pytest
from conftest import consolidation_vars, drop_database, endpoint, execute
from devkit import legacy as legacy_fixture
from stray_write import stray_write

from reliability.conftest import Consolidation, build_legacy, only_modules

PREFIX = "RelV"
PRODUCT_DB = f"{PREFIX}_Product"
PRODUCTS = f'"{PRODUCT_DB}".public."Products"'
FIRST_PRODUCT = 'WHERE "Id" = (SELECT min("Id"::text)::uuid FROM "Products")'
EDIT = f'UPDATE "Products" SET "Name" = "Name" || \' (after verify)\' {FIRST_PRODUCT}'
UNDO = f"UPDATE \"Products\" SET \"Name\" = left(\"Name\", -length(' (after verify)')) {FIRST_PRODUCT}"
STRAY_ID = "00000000-0000-0000-0000-00000000beef"
STRAY = ('INSERT INTO "Products" ("Id", "Code", "Name", "Description", "CreatedDateTime") '
         f"VALUES ('{STRAY_ID}', 'STRAY', 'stray', 'written after verification', now())")


def legacy_databases(info):
    return {row[0] for row in execute(info, "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                                      params=(PREFIX + "_",))}


@pytest.fixture(scope="module")
def verified(source_cluster, target_cluster, run_playbook, tmp_path_factory):
    """Product consolidated and verified, then its legacy Products table changed (an update: same count)."""
    build_legacy(source_cluster, PREFIX)
    root = tmp_path_factory.mktemp("changed-after-verify")
    database = f"{PREFIX}_Consolidated"
    run = Consolidation(root, only_modules(consolidation_vars(source_cluster, target_cluster, root, database, PREFIX),
                                           ["Product"]), run_playbook)
    try:
        run.play()
        report = json.loads((run.run_dir() / "verification.json").read_text())
        assert report["summary"]["passed"] is True
        stray_write(source_cluster, PRODUCT_DB, "public", "Products", EDIT)
        [products] = [row for row in report["tables"] if row["source_table"] == "Products"]
        yield run, products
    finally:
        drop_database(target_cluster, database)
        legacy_fixture.drop(source_cluster, prefix=PREFIX)


def decommission(run, *args, expect_rc):
    return run.play("--tags", "preflight,decommission", *args, expect_rc=expect_rc, decommission_confirm=[PRODUCT_DB])


def test_a_source_changed_after_verify_makes_decommission_refuse_naming_table_and_delta(verified, source_cluster):
    run, _products = verified
    before = legacy_databases(source_cluster)
    done = decommission(run, expect_rc=2)
    assert "decommission refused by guard proof" in done.output, done.output[-4000:]
    assert PRODUCTS.replace('"', '\\"') in done.output
    assert "written after the verification (updated +1)" in done.output and "content checksum differs" in done.output
    assert legacy_databases(source_cluster) == before
    assert not list(run.backup_root.rglob("*.final.dump"))  # refused before the final backup


def test_a_source_changed_after_verify_makes_a_rerun_verify_fail_naming_table_and_delta(verified):
    run, _products = verified
    done = run.play(expect_rc=2)
    assert " - PASSED" not in done.output and " - FAILED" in done.output, done.output[-4000:]
    report = json.loads((run.run_dir() / "verification.json").read_text())
    assert report["summary"]["passed"] is False
    [products] = [row for row in report["tables"] if not row["ok"]]
    assert (products["source_database"], products["source_table"]) == (PRODUCT_DB, "Products")
    assert products["source_checksum"] != products["target_checksum"]
    assert "Products" in done.output


def test_a_final_backup_that_differs_from_the_verified_source_makes_decommission_refuse(
        verified, source_cluster, run_module):
    run, products = verified
    # Put the table back and verify again: the run is clean.
    stray_write(source_cluster, PRODUCT_DB, "public", "Products", UNDO)
    run.play()
    # A final backup taken while a stray row was there (a decommission that raced a writer), then the row
    # deleted again: the legacy table matches what was verified, the final archive in the backup set does not.
    stray_write(source_cluster, PRODUCT_DB, "public", "Products", STRAY)
    taken = run_module("backup_set", dict(
        source=endpoint(source_cluster), databases=[PRODUCT_DB], backup_root=str(run.backup_root),
        set_id=run.run_dir().name, label="final", verification_report=str(run.run_dir() / "verification.json")))
    assert not taken["failed"], taken["msg"]
    stray_write(source_cluster, PRODUCT_DB, "public", "Products", f'DELETE FROM "Products" WHERE "Id" = \'{STRAY_ID}\'')
    before = legacy_databases(source_cluster)

    done = decommission(run, expect_rc=2)
    rows = products["source_rows"]
    assert (f"the final backup differs from the verified source: rows {rows} -> {rows + 1} (+1); content checksum "
            "differs") in done.output, done.output[-4000:]
    assert f"move {PRODUCT_DB}.final.dump out of the backup set" in done.output
    assert legacy_databases(source_cluster) == before
    assert not (run.run_dir() / "decommission.json").exists()
