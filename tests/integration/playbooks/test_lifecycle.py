"""The whole lifecycle with the stand-in application, on two real servers.

before (app on the legacy databases) -> consolidate.yml (stop, backup, copy,
verify, cutover, start, smoke, decommission) -> the app reads and writes
through the product/auditlog schemas -> rollback.yml -> the app reads and
writes the legacy databases again, every pre-migration row intact.

The application (the stand-in WebAPI and background worker) runs in containers
under a real Docker Engine and Compose v2 (tests/integration/docker/compose_stack.py),
reading the .env and appsettings.json files the cutover edits, its databases on
the embedded servers (their pgpass files mounted into the containers).
"""

from __future__ import annotations

import datetime
import re

import pytest
from compose_stack import ComposeStack
from conftest import consolidation_vars, drop_database, run_sql
from devkit import legacy
from standin_app import harness

PREFIX = "Life"
TARGET_DB = "Life_Consolidated"
WEBAPI_SETTINGS = "ClassifiedAds.WebAPI/appsettings.json"


def legacy_databases():
    return [f"{PREFIX}_{name}" for name in
            ("Product", "Identity", "Storage", "Notification", "AuditLog", "Configuration")]


def product_codes(info, database, table):
    return sorted(row[0] for row in run_sql(info, database, f'SELECT "Code" FROM {table}'))


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory, source_cluster, target_cluster, run_playbook, docker_env):
    root = tmp_path_factory.mktemp("lifecycle")
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)
    stack = ComposeStack(root / "app", docker_env, prefix=PREFIX, database=source_cluster,
                         passfiles=(target_cluster.passfile,))
    app_dir = stack.directory

    variables = {
        **consolidation_vars(source_cluster, target_cluster, root, TARGET_DB, PREFIX),
        **stack.control_variables(),
        # .env feeds the containers; the database does not run in compose: name the target server.
        "cutover_compose_db_host": target_cluster.host,
        "cutover_compose_db_port": target_cluster.port,
        "decommission_confirm": legacy_databases(),
    }

    def docker(*args):
        return stack.compose(*args)

    def play(playbook, *args, expect_rc=0):
        done = run_playbook(f"classifiedads.consolidation.{playbook}", *args, variables=variables, env=stack.env,
                            expect_rc=expect_rc)
        return done.output, done.changed

    def api(method, path, body=None):
        return harness.request(stack.webapi_url + path, method, body)

    yield {"docker": docker, "play": play, "api": api, "root": root, "settings": app_dir / WEBAPI_SETTINGS,
           "stack": stack}
    stack.down()
    legacy.drop(source_cluster, prefix=PREFIX)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    for name in legacy_databases():
        drop_database(source_cluster, f"{name}_retired_{stamp}")
    for suffix in ("", f"_rolledback_{stamp}"):
        drop_database(target_cluster, f"{TARGET_DB}{suffix}")


def test_consolidate_cut_over_decommission_and_roll_back(lifecycle, source_cluster, target_cluster):
    docker, play, api = lifecycle["docker"], lifecycle["play"], lifecycle["api"]
    original_settings = lifecycle["settings"].read_bytes()
    original_dotenv = (lifecycle["stack"].directory / ".env").read_bytes()

    # Before: the application works on the legacy databases (the database is not a service here).
    docker("up", "--detach", "--no-deps", "webapi", "background")
    lifecycle["stack"].wait_until_serving()
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
    assert (lifecycle["stack"].directory / ".env").read_bytes() == original_dotenv
    status, where = api("GET", "/api/whereami")
    assert where["layout"] == "legacy"
    assert product_codes(source_cluster, f"{PREFIX}_Product", '"Products"') == before
    assert api("POST", "/api/products", {"code": "ROLLED-BACK-1", "name": "made after rollback"})[0] == 201
    assert "ROLLED-BACK-1" in product_codes(source_cluster, f"{PREFIX}_Product", '"Products"')
    output, changed = play("rollback", "-e", f"consolidation_run_id={run_id}")
    assert changed == 0, re.findall(r"TASK \[([^\]]+)\][^\n]*\nchanged", output)
