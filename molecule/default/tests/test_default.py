"""What consolidate.yml left behind on the Molecule instance (the embedded cluster)."""

from __future__ import annotations

import json

ROOT = "/var/tmp/classifiedads-molecule"
SCHEMAS = ["auditlog", "configuration", "identity", "notification", "product", "storage"]


def latest_run(host):
    return host.file(f"{ROOT}/runs/latest").content_string.strip()


def psql(host, database, query):
    cluster = json.loads(host.file(f"{ROOT}/molecule/cluster.json").content_string)
    command = host.run(
        "PGPASSFILE=%s psql -X -h 127.0.0.1 -p %s -U postgres -d %s -Atc %s",
        f"{ROOT}/molecule/pgpass", str(cluster["port"]), database, query,
    )
    assert command.rc == 0, command.stderr
    return command.stdout.split()


def test_verification_passed_and_report_is_private(host):
    run_dir = f"{ROOT}/runs/{latest_run(host)}"
    report = host.file(f"{run_dir}/verification.json")
    assert report.mode == 0o600
    data = json.loads(report.content_string)
    assert data["passed"] is True
    assert data["summary"]["tables"] >= 26
    assert host.file(run_dir).mode == 0o700


def test_backup_set_holds_six_verified_archives(host):
    backup_dir = f"{ROOT}/backups/{latest_run(host)}"
    manifest = host.file(f"{backup_dir}/manifest.json")
    assert manifest.mode == 0o600
    databases = json.loads(manifest.content_string)["archives"]
    assert sorted(entry["database"] for entry in databases) == [
        f"ClassifiedAds_{name}" for name in
        ["AuditLog", "Configuration", "Identity", "Notification", "Product", "Storage"]]
    assert all(entry["verified"] for entry in databases)
    for entry in databases:
        assert host.file(f"{backup_dir}/{entry['file']}").mode == 0o600


def test_every_module_schema_exists(host):
    found = psql(host, "ClassifiedAds", "SELECT nspname FROM pg_namespace ORDER BY 1")
    assert set(SCHEMAS) <= set(found)


def test_products_were_copied(host):
    source = psql(host, "ClassifiedAds_Product", 'SELECT count(*) FROM "Products"')
    target = psql(host, "ClassifiedAds", 'SELECT count(*) FROM product."Products"')
    assert source == target and int(target[0]) > 2
