"""The legacy fixture databases (devkit.legacy), checked against real PostgreSQL and the reference catalog."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from devkit import catalog, ddl, legacy, legacy_data, reference_catalog
from psycopg2 import sql

pytestmark = pytest.mark.integration

TOOLS = Path(__file__).resolve().parents[2] / "tools"
SCALE = 0.01
# The tables that carry the volume: their row counts follow --scale.
BIG_TABLES = {
    "Product": ["OutboxMessages", "ArchivedOutboxMessages", "AuditLogEntries"],
    "Storage": ["OutboxMessages", "ArchivedOutboxMessages", "AuditLogEntries", "FileEntries"],
    "Notification": ["EmailMessages", "ArchivedEmailMessages", "SmsMessages", "ArchivedSmsMessages"],
    "AuditLog": ["AuditLogEntries", "IdempotentRequests"],
    "Identity": ["Users", "UserClaims"],
}


def _silent(_line):
    pass


@pytest.fixture(scope="module")
def legacy_db(source_cluster):
    """The six legacy databases at scale 0.01 under the prefix LegacyA, dropped afterwards."""
    prefix = "LegacyA"
    reports = legacy.create(source_cluster, SCALE, prefix, drop_existing=True, out=_silent)
    yield source_cluster, prefix, reports
    legacy.drop(source_cluster, prefix)


def _connect(info, prefix, module_name):
    return psycopg2.connect(**info.connect_kwargs(f"{prefix}_{module_name}"))


def _query(info, prefix, module_name, query, params=None):
    conn = _connect(info, prefix, module_name)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("module", ddl.MODULES, ids=lambda module: module.name)
def test_catalog_matches_reference(legacy_db, module):
    info, prefix = legacy_db[:2]
    conn = _connect(info, prefix, module.name)
    try:
        actual = catalog.read_schema(conn, "public")
    finally:
        conn.close()
    assert catalog.diff(reference_catalog.legacy_database(module.schema), actual, module.name) == []


def test_altered_catalog_is_reported_as_drift(legacy_db):
    """The comparison can fail: change the catalog inside a transaction, read it, roll back."""
    info, prefix = legacy_db[:2]
    conn = _connect(info, prefix, "Notification")
    try:
        with conn.cursor() as cur:
            cur.execute('ALTER TABLE "EmailMessages" ALTER COLUMN "Subject" TYPE character varying(200)')
            cur.execute('ALTER TABLE "EmailMessages" ALTER COLUMN "AttemptCount" DROP NOT NULL')
            cur.execute('DROP INDEX "IX_EmailMessages_SentDateTime"')
            cur.execute('CREATE INDEX "IX_EmailMessages_SentDateTime" ON "EmailMessages" ("SentDateTime")')
            cur.execute('ALTER TABLE "EmailMessageAttachments" DROP CONSTRAINT '
                        '"FK_EmailMessageAttachments_EmailMessages_EmailMessageId"')
            cur.execute('ALTER TABLE "SmsMessages" ALTER COLUMN "Id" DROP DEFAULT')
            cur.execute('ALTER TABLE "ArchivedSmsMessages" ADD COLUMN "Extra" text')
            cur.execute('CREATE TABLE "Unexpected" ("Id" uuid PRIMARY KEY)')
            drift = catalog.diff(reference_catalog.legacy_database("notification"),
                                 catalog.read_schema(conn, "public"))
        conn.rollback()
    finally:
        conn.close()
    report = "\n".join(drift)
    assert "EmailMessages.Subject: type expected 'text', actual 'character varying(200)'" in report
    assert "EmailMessages.AttemptCount: not_null expected True, actual False" in report
    assert "index IX_EmailMessages_SentDateTime expected" in report  # lost its INCLUDE columns
    assert ("EmailMessageAttachments: missing foreign key "
            "FK_EmailMessageAttachments_EmailMessages_EmailMessageId") in report
    assert "SmsMessages.Id: default expected 'gen_random_uuid()', actual None" in report
    assert "ArchivedSmsMessages: columns expected" in report
    assert "unexpected table Unexpected" in report
    assert len(drift) == 7, report


def test_seed_rows_and_history(legacy_db):
    info, prefix = legacy_db[:2]
    assert _query(info, prefix, "Product", 'SELECT "Id"::text, "Code" FROM "Products" WHERE "Code" IN '
                  "('TEST', 'PD001') ORDER BY 2") == [("cc9d7eca-6428-4e6d-b40b-2c8d93ab7347", "PD001"),
                                                      ("6672e891-0d94-4620-b38a-dbc5b02da9f7", "TEST")]
    assert _query(info, prefix, "Identity", 'SELECT "Email", "CreatedDateTime"::text FROM "Users" WHERE "Id" = '
                  "'12837d3d-793f-ea11-becb-5cea1d05f660'") == [("phong@gmail.com", "0001-01-01 00:00:00+00")]
    assert _query(info, prefix, "Configuration", 'SELECT "Key" FROM "ConfigurationEntries" WHERE "Id" = '
                  "'8a051aa5-bcd1-ea11-b098-ac728981bd15'") == [("SecurityHeaders:Test-Read-From-SqlServer",)]
    assert _query(info, prefix, "Configuration", 'SELECT "Culture", "Value" FROM "LocalizationEntries" WHERE "Id" IN '
                  "('29a4aacb-4ddf-4f85-aced-c5283a8bdd7f', '5a262d8a-b0d9-45d3-8c0e-18b2c882b9fe') ORDER BY 1") == [
        ("en-US", "Test"), ("vi-VN", "Kiem Tra")]
    history_ids = set()
    for module in ddl.MODULES:
        rows = _query(info, prefix, module.name, 'SELECT "MigrationId", "ProductVersion" FROM "__EFMigrationsHistory"')
        assert rows == [(module.legacy_migration_id, "10.0.0")]
        history_ids.add(rows[0][0])
    assert len(history_ids) == 6  # distinct, so that merging the six history tables cannot collide
    assert _query(info, prefix, "AuditLog", "SELECT schemaversionsid, scriptname FROM schemaversions") == [
        (1, "ClassifiedAds.Migrator.DbUp.PostgresqlDistributedCache.0001-CreateTables.sql")]


def test_build_is_deterministic(legacy_db):
    info, prefix = legacy_db[:2]
    legacy.create(info, SCALE, "LegacyB", drop_existing=True, out=_silent)
    try:
        first = legacy.digests(info, prefix)
        second = legacy.digests(info, "LegacyB")
    finally:
        legacy.drop(info, "LegacyB")
    for module in ddl.MODULES:
        assert first[f"{prefix}_{module.name}"] == second[f"LegacyB_{module.name}"], module.name


def test_counts_follow_the_scale(legacy_db):
    info, prefix = legacy_db[:2]
    legacy.create(info, SCALE * 2, "LegacyC", drop_existing=True, out=_silent)
    try:
        small = legacy.counts(info, prefix)
        double = legacy.counts(info, "LegacyC")
    finally:
        legacy.drop(info, "LegacyC")
    for module_name, tables in BIG_TABLES.items():
        for table in tables:
            base = small[f"{prefix}_{module_name}"][table]
            assert base >= 20, (module_name, table, base)
            assert abs(double[f"LegacyC_{module_name}"][table] - 2 * base) <= 2, (module_name, table)
    # Fixed-size tables stay put.
    assert small[f"{prefix}_Identity"]["Roles"] == double["LegacyC_Identity"]["Roles"] == 8
    assert small[f"{prefix}_Identity"]["DataProtectionKeys"] == 6  # 8 keys, 2 rotated out


def test_rerun_at_same_scale_changes_nothing_and_other_scale_is_refused(legacy_db):
    info, prefix = legacy_db[:2]
    databases = "SELECT datname::text, oid FROM pg_database WHERE datname LIKE %s ORDER BY 1"
    oids = _query(info, prefix, "Product", databases, (f"{prefix}_%",))
    lines = []
    reports = legacy.create(info, SCALE, prefix, out=lines.append)
    assert [report.built for report in reports] == [False] * 6
    assert sum("already built, unchanged" in line for line in lines) == 6
    assert _query(info, prefix, "Product", databases, (f"{prefix}_%",)) == oids
    with pytest.raises(legacy.LegacyError, match="--drop-existing"):
        legacy.create(info, SCALE * 3, prefix, out=_silent)


def test_references_are_consistent(legacy_db):
    """FKs are enforced by the server; the references without FK must hold as well."""
    info, prefix = legacy_db[:2]
    orphans = {
        "Storage": ['SELECT count(*) FROM "DeletedFileEntries" d LEFT JOIN "FileEntries" f ON f."Id" = d."FileEntryId"'
                    ' WHERE f."Id" IS NULL OR NOT f."Deleted"'],
        "Notification": ['SELECT count(*) FROM "EmailMessages" e WHERE "CopyFromId" IS NOT NULL AND NOT EXISTS '
                         '(SELECT FROM "EmailMessages" c WHERE c."Id" = e."CopyFromId")'],
        # The NULL shadow keys are the quirk of test_claims_of_deleted_users_and_roles_have_null_shadow_keys.
        "Identity": ['SELECT count(*) FROM "UserClaims" c WHERE "UserId" IS NOT NULL AND NOT EXISTS '
                     '(SELECT FROM "Users" u WHERE u."Id" = c."UserId")'],
    }
    for module_name, queries in orphans.items():
        for query in queries:
            assert _query(info, prefix, module_name, query) == [(0,)], query
    # Across databases: users, files and e-mails referred to from other modules exist there.
    users = {row[0] for row in _query(info, prefix, "Identity", 'SELECT "Id" FROM "Users"')}
    files = {row[0] for row in _query(info, prefix, "Storage", 'SELECT "Id" FROM "FileEntries"')}
    for module_name in ("Product", "Storage", "AuditLog"):
        assert {row[0] for row in _query(info, prefix, module_name, 'SELECT "UserId" FROM "AuditLogEntries"')} <= users
    for module_name in ("Product", "Storage"):
        assert {row[0] for row in _query(info, prefix, module_name,
                                         'SELECT "TriggeredById" FROM "OutboxMessages" UNION '
                                         'SELECT "TriggeredById" FROM "ArchivedOutboxMessages"')} <= users
    attachments = {row[0] for row in _query(info, prefix, "Notification",
                                            'SELECT "FileEntryId" FROM "EmailMessageAttachments"')}
    assert attachments and attachments <= files
    products = {str(row[0]) for row in _query(info, prefix, "Product", 'SELECT "Id" FROM "Products"')}
    assert {row[0] for row in _query(info, prefix, "Product", 'SELECT "ObjectId" FROM "OutboxMessages"')} <= products


def test_archived_ids_are_their_own(legacy_db):
    info, prefix = legacy_db[:2]
    for module_name, live, archived in (("Product", "OutboxMessages", "ArchivedOutboxMessages"),
                                        ("Storage", "OutboxMessages", "ArchivedOutboxMessages"),
                                        ("Notification", "EmailMessages", "ArchivedEmailMessages"),
                                        ("Notification", "SmsMessages", "ArchivedSmsMessages")):
        query = sql.SQL('SELECT count(*) FROM {} JOIN {} USING ("Id")').format(sql.Identifier(live),
                                                                               sql.Identifier(archived))
        assert _query(info, prefix, module_name, query) == [(0,)]


# -- the quirks of real installations (legacy_data.QUIRKS) -------------------------------------------

def test_claims_of_deleted_users_and_roles_have_null_shadow_keys(legacy_db):
    info, prefix = legacy_db[:2]
    assert _query(info, prefix, "Identity", 'SELECT count(*) FROM "UserClaims" WHERE "UserId" IS NULL') == [
        (legacy_data.volume(SCALE)["orphan_user_claims"],)]
    assert _query(info, prefix, "Identity", 'SELECT count(*) FROM "RoleClaims" WHERE "RoleId" IS NULL') == [(2,)]
    assert legacy_data.volume(0.05)["orphan_user_claims"] == 3  # what the demo shows


def test_identity_has_gaps_and_its_sequence_is_ahead(legacy_db):
    info, prefix = legacy_db[:2]
    assert _query(info, prefix, "Identity", 'SELECT array_agg("Id" ORDER BY "Id") FROM "DataProtectionKeys"') == [
        ([1, 2, 4, 5, 7, 8],)]
    assert _query(info, prefix, "Identity", "SELECT last_value, is_called FROM "
                  "pg_sequence_last_value(pg_get_serial_sequence('\"DataProtectionKeys\"', 'Id')) AS last_value, "
                  "(SELECT true) AS t(is_called)") == [(12, True)]


def test_the_dbup_journal_sequence_is_owned_by_no_column_and_ahead(legacy_db):
    info, prefix = legacy_db[:2]
    assert _query(info, prefix, "AuditLog", "SELECT pg_get_serial_sequence('schemaversions', 'schemaversionsid'), "
                  "pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'schemaversions'::regclass") == [
        (None, "nextval('schemaversions_schemaversionsid_seq'::regclass)")]
    conn = _connect(info, prefix, "AuditLog")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sequence_last_value('schemaversions_schemaversionsid_seq'), "
                        "max(schemaversionsid) FROM schemaversions")
            assert cur.fetchone() == (2, 1)
            # The next row without an explicit value does not collide.
            cur.execute("INSERT INTO schemaversions (scriptname, applied) VALUES ('probe', '2026-01-01') "
                        "RETURNING schemaversionsid")
            assert cur.fetchone()[0] == 3
        conn.rollback()
    finally:
        conn.close()


def test_rows_look_like_the_application_wrote_them(legacy_db):
    info, prefix = legacy_db[:2]
    # RowVersion is never filled on PostgreSQL.
    for module in ddl.MODULES:
        for table, shape in reference_catalog.module_tables(module.schema).items():
            if any(column["name"] == "RowVersion" for column in shape["columns"]):
                query = sql.SQL('SELECT count(*) FROM {} WHERE "RowVersion" IS NOT NULL').format(sql.Identifier(table))
                assert _query(info, prefix, module.name, query) == [(0,)]
    # Nullable columns are sometimes NULL and sometimes not.
    for module_name, table, column in (("Product", "Products", "Description"),
                                       ("Product", "OutboxMessages", "ActivityId"),
                                       ("Notification", "EmailMessages", "SentDateTime"),
                                       ("Notification", "EmailMessages", "CCs"),
                                       ("Identity", "Users", "PhoneNumber"),
                                       ("Storage", "FileEntries", "EncryptionKey"),
                                       ("AuditLog", "CacheEntries", "AbsoluteExpiration")):
        query = sql.SQL("SELECT count(*) FILTER (WHERE {column} IS NULL), count({column}) FROM {table}").format(
            column=sql.Identifier(column), table=sql.Identifier(table))
        nulls, values = _query(info, prefix, module_name, query)[0]
        assert nulls > 0 and values > 0, (table, column)
    payload, published = _query(info, prefix, "Product", 'SELECT "Payload", "Published" FROM "OutboxMessages" '
                                'ORDER BY "CreatedDateTime" LIMIT 1')[0]
    assert payload.startswith('{"Id":"') and 300 < len(payload) < 2000 and published
    email, normalized = _query(info, prefix, "Identity", 'SELECT "Email", "NormalizedEmail" FROM "Users" '
                               "WHERE \"Email\" <> 'phong@gmail.com' LIMIT 1")[0]
    assert "@" in email and normalized == email.upper()
    assert _query(info, prefix, "AuditLog", 'SELECT DISTINCT "RequestType" FROM "IdempotentRequests"') == [
        ("ADD_AUDIT_LOG_ENTRY",)]
    assert _query(info, prefix, "AuditLog", 'SELECT min(length("Value")) > 100 FROM "CacheEntries"') == [(True,)]


def test_outbox_and_messages_carry_most_of_the_volume(legacy_db):
    reports = legacy_db[2]
    rows = {report.database.split("_", 1)[1]: report.rows for report in reports}
    assert rows["Product"] + rows["Notification"] + rows["AuditLog"] > 0.7 * sum(rows.values())
    assert legacy_data.volume(SCALE)["product_outbox"] == 80


def test_cli_counts(legacy_db):
    info, prefix = legacy_db[:2]
    env = {**os.environ, "PYTHONPATH": str(TOOLS)}
    result = subprocess.run(
        [sys.executable, "-m", "devkit.legacy", "counts", "--host", info.host, "--port", str(info.port),
         "--user", info.user, "--passfile", info.passfile, "--prefix", prefix],
        capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == sorted(f"{prefix}_{m.name}" for m in ddl.MODULES)
    exact = _query(info, prefix, "Product", 'SELECT count(*) FROM "ArchivedOutboxMessages"')[0][0]
    assert any(line.split() == ["ArchivedOutboxMessages", f"{exact:,}"] for line in lines)
