"""Decommission is bound to what was verified, against real servers: the final backup's per-table counts and
checksums (taken inside its dump's snapshot) must equal the verified source, and a legacy table written since
must still match by content. A refusal names the table and the delta and retires nothing.

The tests run in order on one consolidation (``consolidate.yml``): a row inserted after verification is
refused by the role (check mode and for real) and, once a final backup holding it exists, by that backup's
proof; the row removed and the stale final archive moved out, an aborted write is named but the decommission
proceeds. Stray writes bypass the write fence (``tests/stray_write.py``).
"""

from __future__ import annotations

import json

import pytest
from conftest import drop_database, endpoint
from conftest import run_sql as query
from devkit import legacy
from stray_write import stray_write
from test_decommission import Workspace, failed_guards, files_under

pytestmark = pytest.mark.integration

PREFIX = "Proven"
TARGET_DB = "Proven_Consolidated"
RUN = "proven-run-1"
PRODUCT_DB = f"{PREFIX}_Product"
STRAY = ('INSERT INTO "Products" ("Id", "Code", "Name", "Description", "CreatedDateTime") '
         "VALUES ('00000000-0000-0000-0000-00000000beef', 'STRAY', 'stray', 'written after verification', now())")
PRODUCTS = f'"{PRODUCT_DB}".public."Products"'  # as qualified() writes it


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, source_cluster, target_cluster, run_playbook):
    root = tmp_path_factory.mktemp("proof")
    legacy.create(source_cluster, 0.01, prefix=PREFIX, drop_existing=True, out=lambda line: None)
    space = Workspace(root, source_cluster, target_cluster, PREFIX, run_playbook)
    space.consolidate(RUN, TARGET_DB)
    yield space
    for name in [*space.catalog(), TARGET_DB]:
        drop_database(target_cluster if name == TARGET_DB else source_cluster, name)


def retire_args(workspace, source_cluster, **extra):
    return dict(dict(source=endpoint(source_cluster), databases=workspace.databases, confirm=workspace.databases,
                     run_dir=str(workspace.run_dir(RUN)), backup_root=str(workspace.root / "backups"), set_id=RUN),
                **extra)


def verified_products(workspace):
    report = json.loads((workspace.run_dir(RUN) / "verification.json").read_text())
    assert report["write_counters"] is True
    return next(row for row in report["tables"] if row["source_database"] == PRODUCT_DB
                and row["source_table"] == "Products")


def test_a_row_inserted_after_verification_refuses_the_decommission_naming_table_and_delta(
        workspace, source_cluster):
    verified = verified_products(workspace)
    stray_write(source_cluster, PRODUCT_DB, "public", "Products", STRAY)
    delta = f"rows {verified['source_rows']} -> {verified['source_rows'] + 1} (+1)"
    before = (workspace.catalog(), files_under(workspace.root / "runs", workspace.root / "backups"))

    output, _changed = workspace.decommission(RUN, "--check", expect_rc=2)
    assert "decommission refused by guard proof" in output
    assert "written after the verification (inserted +1)" in output and delta in output
    assert PRODUCTS.replace('"', '\\"') in output  # the name as the play prints it (JSON-escaped)

    output, _changed = workspace.decommission(RUN, expect_rc=2)
    assert "decommission refused by guard proof" in output and delta in output
    # Refused before the final backup was taken: nothing retired, nothing written.
    assert (workspace.catalog(), files_under(workspace.root / "runs", workspace.root / "backups")) == before


def test_a_final_backup_that_differs_from_the_verified_source_is_refused(workspace, run_module, source_cluster):
    """The row is still there: a final backup taken now holds it, and its proof says so."""
    verified = verified_products(workspace)
    backup = run_module("backup_set", dict(
        source=endpoint(source_cluster), databases=workspace.databases, backup_root=str(workspace.root / "backups"),
        set_id=RUN, label="final", verification_report=str(workspace.run_dir(RUN) / "verification.json")))
    assert not backup["failed"], backup["msg"]
    archive = next(entry for entry in backup["manifest"]["archives"]
                   if entry["database"] == PRODUCT_DB and entry["label"] == "final")
    proved = next(entry for entry in archive["proof"]["tables"] if entry["table"] == "Products")
    assert proved["rows"] == verified["source_rows"] + 1 and proved["checksum"] != verified["source_checksum"]
    assert proved["write_counters"]["inserted"] == verified["write_counters"]["verified"]["inserted"] + 1
    # Every other table's proof, taken in the dump's snapshot, equals the verified source.
    for entry in archive["proof"]["tables"]:
        row = next(row for row in json.loads((workspace.run_dir(RUN) / "verification.json").read_text())["tables"]
                   if row["source_database"] == PRODUCT_DB and row["source_table"] == entry["table"])
        if entry["table"] != "Products":
            assert (entry["rows"], entry["checksum"]) == (row["source_rows"], row["source_checksum"]), entry

    before = workspace.catalog()
    result = run_module("database_retire", retire_args(workspace, source_cluster))
    assert result["failed"] and failed_guards(result) == ["proof"], result["msg"]
    assert (f"{PRODUCTS}: the final backup differs from the verified source: rows {verified['source_rows']} -> "
            f"{verified['source_rows'] + 1} (+1); content checksum differs") in result["msg"]
    assert f"move {PRODUCT_DB}.final.dump out of the backup set" in result["msg"]
    assert workspace.catalog() == before and not (workspace.run_dir(RUN) / "decommission.json").exists()


def test_with_equal_content_an_aborted_write_is_named_and_the_decommission_proceeds(workspace, run_module,
                                                                                    source_cluster):
    # Put the legacy table back, and move the final archives that hold the stray row out of the set.
    stray_write(source_cluster, PRODUCT_DB, "public", "Products",
                "DELETE FROM \"Products\" WHERE \"Id\" = '00000000-0000-0000-0000-00000000beef'")
    for archive in workspace.set_dir(RUN).glob("*.final.dump"):
        archive.rename(workspace.root / archive.name)
    stray_write(source_cluster, f"{PREFIX}_Configuration", "public", "ConfigurationEntries",
                "BEGIN", "UPDATE \"ConfigurationEntries\" SET \"Value\" = 'aborted'", "ROLLBACK")

    check = run_module("database_retire", retire_args(workspace, source_cluster, final_backup_pending=True),
                       check=True)
    assert not check["failed"], check["msg"]
    [proof] = [entry for entry in check["guards"] if entry["guard"] == "proof"]
    named = {entry["table"]: entry for entry in proof["written"]}
    configuration = f'"{PREFIX}_Configuration".public."ConfigurationEntries"'
    assert named[configuration]["content"] == "matches" and named[configuration]["delta"]["updated"] > 0
    assert named[PRODUCTS]["content"] == "matches"
    assert named[PRODUCTS]["delta"] == {"inserted": 1, "updated": 0, "deleted": 1}

    output, changed = workspace.decommission(RUN)
    assert changed > 0 and "retired 6 database(s)" in output, output[-4000:]
    assert not set(workspace.databases) & set(workspace.catalog())
    manifest = json.loads((workspace.set_dir(RUN) / "manifest.json").read_text())
    finals = [entry for entry in manifest["archives"] if entry["label"] == "final"]
    assert len(finals) == 6 and all(entry["proof"]["tables"] for entry in finals)
    assert query(source_cluster, "postgres", "SELECT count(*) FROM pg_database WHERE datname = %s",
                 (PRODUCT_DB,)) == [(0,)]
