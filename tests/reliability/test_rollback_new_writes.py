"""Rollback after the application wrote to the consolidated database: refused, listing the writes, unless
``rollback_discard_new_writes``; then it rolls back, recording what it discarded."""

from __future__ import annotations

import json
import stat

from conftest import execute, run_sql

from reliability.harness import database_fingerprint, without_state_schema

NEW_PRODUCT = ('INSERT INTO product."Products" ("Id", "Code", "Name", "Description", "CreatedDateTime") '
               "VALUES (gen_random_uuid(), 'NEW-1', 'written after the cutover', 'by the application', now())")


def legacy_settings(info, database):
    return execute(info, "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
                         "WHERE d.datname = %s", params=(database,))


def test_rollback_after_writes_to_the_consolidated_database_refuses_listing_them_unless_told_to_discard(
        consolidation, legacy, source_cluster, target_cluster):
    product_db = f"{legacy.prefix}_Product"
    # Earlier scenarios consolidated these shared legacy databases and left them fenced; a fence this run did not
    # set is not its rollback's to lift, so start, as an operator does, from a writable legacy database.
    execute(source_cluster, f'ALTER DATABASE "{product_db}" RESET default_transaction_read_only')
    run = consolidation("RollbackWrites", modules=["Product"])
    run.play()
    run_id = run.run_dir().name
    assert legacy_settings(source_cluster, product_db) == [(["default_transaction_read_only=on"],)]  # fenced
    run_sql(target_cluster, run.target_database, NEW_PRODUCT)

    def state():
        return (without_state_schema(database_fingerprint(target_cluster, run.target_database)),
                legacy_settings(source_cluster, product_db))

    before = state()

    refused = run.play("-e", f"consolidation_run_id={run_id}", playbook="rollback", expect_rc=2)
    assert "Rollback refused, nothing was stopped or changed" in refused.output, refused.output[-4000:]
    assert "product.\\\"Products\\\": +1 row(s)" in refused.output or 'product."Products": +1 row(s)' in refused.output
    assert "set rollback_discard_new_writes: true" in refused.output
    assert state() == before  # the fence too stays on
    assert not (run.run_dir() / "discarded_writes.json").exists()

    discarded = run.play("-e", f"consolidation_run_id={run_id}", playbook="rollback",
                         rollback_discard_new_writes=True)
    assert "discarded as asked, recorded in" in discarded.output, discarded.output[-4000:]
    record_path = run.run_dir() / "discarded_writes.json"
    assert stat.S_IMODE(record_path.stat().st_mode) == 0o600
    record = json.loads(record_path.read_text())
    assert [(write["schema"], write["table"]) for write in record["writes"]] == [("product", "Products")]
    assert legacy_settings(source_cluster, product_db) == []  # the fence lifted: the legacy database is live again
