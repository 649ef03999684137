"""What consolidate.yml left behind in the Molecule instance on a server without legacy databases."""

from __future__ import annotations

from instance_facts import BACKUP_ROOT, SCHEMAS, TARGET, read_json


def test_the_run_took_the_fresh_path_and_its_verification_passed(host, run_dir):
    assert read_json(host, f"{run_dir}/plan.json")["mode"] == "fresh"
    report = host.file(f"{run_dir}/verification.json")
    assert report.mode == 0o600
    assert read_json(host, report.path)["passed"] is True


def test_no_legacy_database_appeared(psql):
    databases = psql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'ClassifiedAds%' ORDER BY 1")
    assert databases == [TARGET]


def test_the_migrator_made_every_module_schema_with_its_tables(psql):
    tables = set(psql(TARGET, "SELECT table_schema || '.' || table_name FROM information_schema.tables"))
    assert set(SCHEMAS) <= {table.split(".")[0] for table in tables}
    assert {"product.Products", "identity.DataProtectionKeys", "auditlog.IdempotentRequests",
            "configuration.LocalizationEntries", "public.schemaversions", "public.__EFMigrationsHistory"} <= tables


def test_nothing_was_backed_up(host, run_dir):
    assert not host.file(f"{BACKUP_ROOT}/{run_dir.rsplit('/', 1)[1]}").exists
