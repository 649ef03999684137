"""The whole lifecycle with the stand-in application, on two real servers.

before (app on the legacy databases) -> consolidate.yml (stop, backup, copy,
verify, cutover, start, smoke, decommission) -> the app reads and writes
through the product/auditlog schemas -> rollback.yml -> the app reads and
writes the legacy databases again, every pre-migration row intact.

The application runs under the docker CLI stand-in (tools/bin/docker), which
drives the stand-in WebAPI from the appsettings.json the cutover edits.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, consolidation_vars, drop_database, run_sql
from devkit import legacy
from standin_app import harness

PREFIX = "Life"
TARGET_DB = "Life_Consolidated"
FIXTURE_APP = Path(REPO) / "tests" / "fixtures" / "classifiedads_app"
WEBAPI_SETTINGS = "ClassifiedAds.WebAPI/appsettings.json"


def legacy_databases():
    return [f"{PREFIX}_{name}" for name in
            ("Product", "Identity", "Storage", "Notification", "AuditLog", "Configuration")]


def product_codes(info, database, table):
    return sorted(row[0] for row in run_sql(info, database, f'SELECT "Code" FROM {table}'))


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory, source_cluster, target_cluster, run_playbook):
    root = tmp_path_factory.mktemp("lifecycle")
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)

    app_dir = root / "app"
    shutil.copytree(FIXTURE_APP, app_dir)
    settings_path = app_dir / WEBAPI_SETTINGS
    settings = json.loads(settings_path.read_text())
    for module, section in settings["Modules"].items():
        if "ConnectionStrings" in section:
            section["ConnectionStrings"]["Default"] = harness.connection_string(
                source_cluster.host, source_cluster.port, f"{PREFIX}_{module}", source_cluster.user,
                passfile=source_cluster.passfile)
    settings_path.write_text(json.dumps(settings, indent=2) + "\n")

    port = harness.free_port()
    env = dict(os.environ)
    env.update({
        "PATH": f"{Path(REPO) / 'tools' / 'bin'}{os.pathsep}{env['PATH']}",
        "DOCKER_STANDIN_LOG": str(root / "docker.log"), "DOCKER_STANDIN_STATE": str(root / "docker-state"),
        "DOCKER_STANDIN_WEBAPI_APPSETTINGS": str(settings_path), "DOCKER_STANDIN_WEBAPI_PORT": str(port),
        "DOCKER_STANDIN_PYTHON": sys.executable, "DOCKER_STANDIN_DOTENV": "0",
    })

    base_url = f"http://127.0.0.1:{port}"
    variables = {
        **consolidation_vars(source_cluster, target_cluster, root, TARGET_DB, PREFIX),
        "app_control_mode": "compose",
        "app_control_compose_project_dir": str(app_dir),
        "app_control_services": ["webapi"],
        "app_control_health_checks": [{"url": f"{base_url}/health"}],
        "cutover_app_dir": str(app_dir),
        "smoke_base_url": base_url,
        "decommission_confirm": legacy_databases(),
    }

    def docker(*args):
        return subprocess.run(["docker", "compose", "--project-directory", str(app_dir), *args], env=env,
                              capture_output=True, text=True, check=True)

    def play(playbook, *args, expect_rc=0):
        done = run_playbook(f"classifiedads.consolidation.{playbook}", *args, variables=variables, env=env,
                            expect_rc=expect_rc)
        return done.output, done.changed

    def api(method, path, body=None):
        return harness.request(base_url + path, method, body)

    yield {"docker": docker, "play": play, "api": api, "root": root, "settings": settings_path}
    subprocess.run(["docker", "compose", "--project-directory", str(app_dir), "stop", "webapi"], env=env,
                   capture_output=True, check=False)
    legacy.drop(source_cluster, prefix=PREFIX)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    for name in legacy_databases():
        drop_database(source_cluster, f"{name}_retired_{stamp}")
    for suffix in ("", f"_rolledback_{stamp}"):
        drop_database(target_cluster, f"{TARGET_DB}{suffix}")


def test_consolidate_cut_over_decommission_and_roll_back(lifecycle, source_cluster, target_cluster):
    docker, play, api = lifecycle["docker"], lifecycle["play"], lifecycle["api"]
    original_settings = lifecycle["settings"].read_bytes()

    # Before: the application works on the legacy databases.
    docker("up", "--detach", "webapi")
    status, where = api("GET", "/api/whereami")
    assert status == 200 and where["layout"] == "legacy"
    assert api("POST", "/api/products", {"code": "BEFORE-1", "name": "made before"})[0] == 201
    before = product_codes(source_cluster, f"{PREFIX}_Product", '"Products"')
    assert "BEFORE-1" in before

    # Consolidate, cut over, smoke-test and retire the legacy databases.
    output, changed = play("consolidate")
    assert changed > 0 and "PASSED" in output
    status, where = api("GET", "/api/whereami")
    assert where["layout"] == "consolidated"
    assert {store["database"] for store in where["stores"].values()} == {TARGET_DB}
    assert api("POST", "/api/products", {"code": "AFTER-1", "name": "made after"})[0] == 201
    consolidated = product_codes(target_cluster, TARGET_DB, 'product."Products"')
    assert set(before) | {"AFTER-1"} <= set(consolidated)
    audit = run_sql(target_cluster, TARGET_DB, "SELECT count(*) FROM auditlog.\"AuditLogEntries\" "
                                               "WHERE strpos(\"Log\", 'AFTER-1') > 0")
    assert audit == [(1,)]
    present = {row[0] for row in run_sql(source_cluster, "postgres", "SELECT datname FROM pg_database")}
    assert not present & set(legacy_databases())
    # The write fence stayed on until the decommission: the retired databases still carry it.
    fenced = run_sql(source_cluster, "postgres", "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d "
                                                 "ON d.oid = s.setdatabase WHERE d.datname LIKE %s "
                                                 "AND 'default_transaction_read_only=on' = ANY(s.setconfig)",
                     (f"{PREFIX}\\_%\\_retired\\_%",))
    assert fenced == [(len(legacy_databases()),)]

    # Roll back from the run id alone. AFTER-1 was written after the cutover: refused, naming its rows (the
    # smoke probe's own product and audit entry do not count), and nothing changes.
    run_id = (lifecycle["root"] / "runs" / "latest").read_text().strip()
    output, _changed = play("rollback", "-e", f"consolidation_run_id={run_id}", expect_rc=2)
    output = output.replace('\\"', '"')
    assert 'product."Products": +1 row(s) (besides 1 smoke probe row(s))' in output
    assert 'auditlog."AuditLogEntries": +1 row(s) (besides 1 smoke probe row(s))' in output
    assert api("GET", "/api/whereami")[1]["layout"] == "consolidated"
    # Discarded on purpose: the app is on the legacy databases again, nothing of theirs lost.
    play("rollback", "-e", f"consolidation_run_id={run_id}", "-e", "rollback_discard_new_writes=true")
    assert lifecycle["settings"].read_bytes() == original_settings
    status, where = api("GET", "/api/whereami")
    assert where["layout"] == "legacy"
    assert product_codes(source_cluster, f"{PREFIX}_Product", '"Products"') == before
    assert api("POST", "/api/products", {"code": "ROLLED-BACK-1", "name": "made after rollback"})[0] == 201
    assert "ROLLED-BACK-1" in product_codes(source_cluster, f"{PREFIX}_Product", '"Products"')
    output, changed = play("rollback", "-e", f"consolidation_run_id={run_id}")
    assert changed == 0, re.findall(r"TASK \[([^\]]+)\][^\n]*\nchanged", output)
