"""Writes to the legacy databases during the window never end in a PASSED verification.

With the default fence (``consolidation_fence: read_only``) PostgreSQL refuses them, and a writer that
bypasses it on purpose is found. With the fence off (``consolidation_fence: none``, its reason given),
nothing stops a writer: an insert, an update that keeps the row count, and a delete, each into a table
already copied, must be found.
"""

from __future__ import annotations

import json

import psycopg2
import pytest
from conftest import run_sql
from devkit import legacy as legacy_fixture
from psycopg2 import sql
from stray_write import stray_write

from reliability.conftest import build_legacy, early_tables, mid_copy

PREFIX, FENCED_PREFIX = "RelW", "RelF"


def writes(prefix):
    """{(legacy database, table): the statement a writer outside the play runs there}."""
    return {
        (f"{prefix}_AuditLog", "AuditLogEntries"):
            'INSERT INTO "AuditLogEntries" ("UserId", "Action", "CreatedDateTime") '
            "VALUES (gen_random_uuid(), 'written during the window', now())",
        (f"{prefix}_AuditLog", "IdempotentRequests"):
            'UPDATE "IdempotentRequests" SET "RequestType" = "RequestType" || \' (edited during the window)\' '
            'WHERE "Id" = (SELECT min("Id"::text)::uuid FROM "IdempotentRequests")',
        (f"{prefix}_Product", "ArchivedOutboxMessages"):
            'DELETE FROM "ArchivedOutboxMessages" WHERE "Id" = (SELECT min("Id"::text)::uuid '
            'FROM "ArchivedOutboxMessages")',
    }


WRITES = writes(PREFIX)


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

    done, _moment = run.play_meanwhile(mid_copy(target_cluster, run.target_database, set(WRITES)), write,
                                       what="the three tables copied while the big one is still copying")
    assert done.rc == 2, done.output[-4000:]
    assert " - PASSED" not in done.output and " - FAILED" in done.output
    assert failed_tables(run) == set(WRITES)


def failed_tables(run):
    report = json.loads((run.run_dir() / "verification.json").read_text())
    assert report["passed"] is False
    return {(row["source_database"], row["source_table"]) for row in report["tables"] if not row["ok"]}


@pytest.fixture
def fenced_legacy(source_cluster):
    """Legacy databases of its own: the deliberate writer changes them, the fence stays on them."""
    yield build_legacy(source_cluster, FENCED_PREFIX)
    legacy_fixture.drop(source_cluster, prefix=FENCED_PREFIX)


def test_with_the_default_fence_writes_are_refused_and_a_writer_that_bypasses_it_is_detected(
        fenced_legacy, consolidation, source_cluster, target_cluster):
    fenced = writes(FENCED_PREFIX)
    run = consolidation("Fenced", legacy_prefix=FENCED_PREFIX, modules=["Notification", "AuditLog", "Product"])

    def write(_progress):
        refused = {}
        for (database, table), statement in fenced.items():
            try:
                run_sql(source_cluster, database, statement)  # a new session, as any writer opens
            except psycopg2.errors.ReadOnlySqlTransaction as exc:
                refused[table] = str(exc).splitlines()[0]
            # Reads keep working: a read-only site may stay up during the window.
            run_sql(source_cluster, database, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        # A deliberate writer turns the fence off for its session: the fence stops accidents, not this.
        for (database, table), statement in fenced.items():
            stray_write(source_cluster, database, "public", table, statement)
        return refused

    done, refused = run.play_meanwhile(mid_copy(target_cluster, run.target_database, set(fenced)), write,
                                       what="the three tables copied while the big one is still copying")
    assert set(refused) == {table for _database, table in fenced}
    assert all("cannot execute" in message and "read-only transaction" in message for message in refused.values())
    # Every table the deliberate writer changed is named: never a silent PASSED.
    assert done.rc == 2, done.output[-4000:]
    assert " - PASSED" not in done.output and " - FAILED" in done.output
    assert failed_tables(run) == set(fenced)
    assert (run.run_dir() / "fence.json").exists()
