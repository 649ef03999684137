"""What rollback.yml left behind in the Molecule instance after a consolidation that was cut over and
decommissioned: the application's files as they were, every legacy database back with every row and
open for writes, the consolidated database retired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from instance_facts import LEGACY, RUN_ROOT, TARGET, read_json

RUN_ID = "molecule-rollback"
APP_DIR = "/srv/classifiedads"
FIXTURE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "classifiedads_app"
DIGESTS = (Path(__file__).resolve().parents[1] / "table_digests.sql").read_text()


def test_the_run_was_cut_over_and_decommissioned_before_the_rollback(host):
    decommission = read_json(host, f"{RUN_ROOT}/{RUN_ID}/decommission.json")
    assert {entry["database"] for entry in decommission["databases"]} == set(LEGACY)
    assert host.file(f"{RUN_ROOT}/{RUN_ID}/rollback.json").mode == 0o600


APP_FILES = sorted(str(path.relative_to(FIXTURE)) for path in FIXTURE.rglob("*") if path.is_file())


@pytest.mark.parametrize("path", APP_FILES)
def test_the_configuration_files_are_back_as_they_were(host, path):
    assert host.file(f"{APP_DIR}/{path}").content_string == (FIXTURE / path).read_text()


def test_every_legacy_database_holds_what_it_held_before(host, psql, state_dir):
    before = json.loads(host.file(f"{state_dir}/digests-before.json").content_string)
    assert sorted(before) == LEGACY
    for database in LEGACY:
        assert psql(database, DIGESTS) == before[database].split(), database


def test_the_legacy_databases_accept_connections_and_writes_again(psql):
    names = ", ".join(f"'{database}'" for database in LEGACY)
    assert psql("postgres", f"SELECT count(*) FROM pg_database WHERE datallowconn AND datname IN ({names})") == ["6"]
    for database in LEGACY:
        assert psql(database, "SHOW default_transaction_read_only") == ["off"], database


def test_the_consolidated_database_was_retired_not_dropped(psql):
    names = psql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'ClassifiedAds%' ORDER BY 1")
    assert TARGET not in names
    assert [name for name in names if name.startswith(f"{TARGET}_rolledback_")], names
