"""Writes to the legacy databases during the window never end in a PASSED verification.

With the fence off (``consolidation_fence: none``, its reason given), nothing stops a writer: an insert,
an update that keeps the row count, and a delete, each into a table already copied, must be found.
"""

from __future__ import annotations

import json

import pytest
from conftest import run_sql
from devkit import legacy as legacy_fixture

from reliability.conftest import build_legacy, early_tables, mid_copy

PREFIX = "RelW"
WRITES = {
    # (legacy database, table): the statement a writer outside the play runs there
    (f"{PREFIX}_AuditLog", "AuditLogEntries"):
        'INSERT INTO "AuditLogEntries" ("UserId", "Action", "CreatedDateTime") '
        "VALUES (gen_random_uuid(), 'written during the window', now())",
    (f"{PREFIX}_AuditLog", "IdempotentRequests"):
        'UPDATE "IdempotentRequests" SET "RequestType" = "RequestType" || \' (edited during the window)\' '
        'WHERE "Id" = (SELECT min("Id"::text)::uuid FROM "IdempotentRequests")',
    (f"{PREFIX}_Product", "ArchivedOutboxMessages"):
        'DELETE FROM "ArchivedOutboxMessages" WHERE "Id" = (SELECT min("Id"::text)::uuid '
        'FROM "ArchivedOutboxMessages")',
}


@pytest.fixture
def written_legacy(source_cluster):
    """Legacy databases of its own: this scenario writes to them."""
    yield build_legacy(source_cluster, PREFIX)
    legacy_fixture.drop(source_cluster, prefix=PREFIX)


def test_inserts_updates_and_deletes_after_a_table_was_copied_fail_verification_naming_each_table(
        written_legacy, consolidation, source_cluster, target_cluster):
    assert set(WRITES) == early_tables(PREFIX)
    run = consolidation("Writes", legacy_prefix=PREFIX, consolidation_fence="none",
                        consolidation_fence_reason="reliability scenario: writers are expected")

    def write(_progress):
        for (database, _table), statement in WRITES.items():
            run_sql(source_cluster, database, statement)

    done, _ = run.play_meanwhile(mid_copy(target_cluster, run.target_database, set(WRITES)), write,
                                 what="the three tables copied while the big one is still copying")
    assert done.rc == 2, done.output[-4000:]
    assert " - PASSED" not in done.output and " - FAILED" in done.output
    report = json.loads((run.run_dir() / "verification.json").read_text())
    assert report["passed"] is False
    assert {(row["source_database"], row["source_table"]) for row in report["tables"] if not row["ok"]} == set(WRITES)
