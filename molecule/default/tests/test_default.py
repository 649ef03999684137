"""What consolidate.yml left behind in the Molecule instance from existing legacy databases."""

from __future__ import annotations

from instance_facts import BACKUP_ROOT, LEGACY, SCHEMAS, TARGET, read_json


def test_verification_passed_and_report_is_private(host, run_dir):
    report = host.file(f"{run_dir}/verification.json")
    assert report.mode == 0o600
    data = read_json(host, report.path)
    assert data["passed"] is True
    assert data["summary"]["tables"] >= 26
    assert host.file(run_dir).mode == 0o700


def test_backup_set_holds_six_verified_archives(host, run_dir):
    backup_dir = f"{BACKUP_ROOT}/{run_dir.rsplit('/', 1)[1]}"
    manifest = host.file(f"{backup_dir}/manifest.json")
    assert manifest.mode == 0o600
    archives = read_json(host, manifest.path)["archives"]
    assert sorted(entry["database"] for entry in archives) == LEGACY
    assert all(entry["verified"] for entry in archives)
    for entry in archives:
        assert host.file(f"{backup_dir}/{entry['file']}").mode == 0o600


def test_every_module_schema_exists(psql):
    assert set(SCHEMAS) <= set(psql("ClassifiedAds", "SELECT nspname FROM pg_namespace"))


def test_products_were_copied(psql):
    source = psql("ClassifiedAds_Product", 'SELECT count(*) FROM "Products"')
    target = psql("ClassifiedAds", 'SELECT count(*) FROM product."Products"')
    assert source == target and int(target[0]) > 2


def test_the_completed_run_recorded_its_state_and_dropped_the_state_schema(host, run_dir, psql):
    assert host.file(f"{run_dir}/state.json").mode == 0o600
    assert "_consolidation" not in psql(TARGET, "SELECT nspname FROM pg_namespace")
