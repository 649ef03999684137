"""Plan step 7 on real servers: the stand-in WebAPI, then the smoke role against it.

The stand-in (tools/standin_app) runs as a real HTTP service on loopback, once on the legacy
databases (per-module connection strings, tables in ``public``; built by devkit.legacy on
``source_cluster``) and once on a consolidated database (the shared connection string, tables in
the module schemas; created by the stand-in migrator on ``target_cluster``). The smoke role runs
through ansible-playbook against it and checks the database with community.postgresql.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from conftest import drop_database, endpoint
from devkit import legacy, migrator
from standin_app import harness

pytestmark = pytest.mark.integration

PREFIX = f"Smoke{uuid.uuid4().hex[:6]}"
CONSOLIDATED = f"SmokeConsolidated_{uuid.uuid4().hex[:6]}"


def password(info) -> str:
    return Path(info.passfile).read_text().strip().split(":", 4)[4]


def query(info, dbname, statement, params=None):
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


def connection_string(info, database):
    return harness.connection_string(info.host, info.port, database, info.user, password=password(info))


@pytest.fixture(scope="module")
def legacy_databases(source_cluster):
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)
    yield {"Product": f"{PREFIX}_Product", "AuditLog": f"{PREFIX}_AuditLog"}
    legacy.drop(source_cluster, prefix=PREFIX)


@pytest.fixture(scope="module")
def consolidated_database(target_cluster):
    migrator.migrate(migrator.connect_kwargs(migrator.parse_connection_string(
        connection_string(target_cluster, CONSOLIDATED))), log=lambda line: None)
    yield CONSOLIDATED
    drop_database(target_cluster, CONSOLIDATED)


@pytest.fixture(scope="module")
def legacy_app(tmp_path_factory, source_cluster, legacy_databases):
    root = tmp_path_factory.mktemp("legacy-app")
    settings = harness.write_appsettings(root / "appsettings.json", modules={
        module: connection_string(source_cluster, database) for module, database in legacy_databases.items()})
    with harness.StandinProcess(str(settings), root / "app.log") as app:
        yield app


@pytest.fixture(scope="module")
def consolidated_app(tmp_path_factory, target_cluster, consolidated_database):
    root = tmp_path_factory.mktemp("consolidated-app")
    settings = harness.write_appsettings(root / "appsettings.json",
                                         shared=connection_string(target_cluster, consolidated_database))
    with harness.StandinProcess(str(settings), root / "app.log") as app:
        yield app


# -- the stand-in itself -----------------------------------------------------------------------------

def test_standin_reads_and_writes_the_legacy_databases(legacy_app, source_cluster, legacy_databases):
    assert harness.request(legacy_app.url + "/health")[0] == 200
    status, where = harness.request(legacy_app.url + "/api/whereami")
    assert status == 200 and where["layout"] == "legacy"
    assert {key: (store["database"], store["schema"]) for key, store in where["stores"].items()} == {
        "product": (legacy_databases["Product"], "public"), "auditlog": (legacy_databases["AuditLog"], "public")}

    status, products = harness.request(legacy_app.url + "/api/products")
    expected = query(source_cluster, legacy_databases["Product"], 'SELECT count(*) FROM public."Products"')[0][0]
    assert status == 200 and len(products) == expected > 2
    assert {"TEST", "PD001"} <= {product["code"] for product in products}  # the HasData seed rows

    status, created = harness.request(legacy_app.url + "/api/products", "POST",
                                      {"code": "LEGACY-1", "name": "Legacy write", "description": "d"})
    assert status == 201 and created["code"] == "LEGACY-1"
    assert query(source_cluster, legacy_databases["Product"],
                 'SELECT "Id"::text FROM public."Products" WHERE "Code" = %s', ("LEGACY-1",)) == [(created["id"],)]
    audit = query(source_cluster, legacy_databases["AuditLog"],
                  'SELECT "Action", "Log"::json ->> \'Code\' FROM public."AuditLogEntries" WHERE "ObjectId" = %s',
                  (created["id"],))
    assert audit == [("CREATED_PRODUCT", "LEGACY-1")]
    assert password(source_cluster) not in legacy_app.log() + json.dumps(where)


def test_standin_writes_land_in_the_module_schemas_of_the_consolidated_database(
        consolidated_app, target_cluster, consolidated_database):
    status, where = harness.request(consolidated_app.url + "/api/whereami")
    assert where["layout"] == "consolidated"
    assert {key: (store["database"], store["schema"]) for key, store in where["stores"].items()} == {
        "product": (consolidated_database, "product"), "auditlog": (consolidated_database, "auditlog")}

    status, created = harness.request(consolidated_app.url + "/api/products", "POST", {"code": "SHARED-1"})
    assert status == 201
    assert query(target_cluster, consolidated_database,
                 'SELECT "Id"::text FROM product."Products" WHERE "Code" = %s', ("SHARED-1",)) == [(created["id"],)]
    assert query(target_cluster, consolidated_database,
                 'SELECT count(*) FROM auditlog."AuditLogEntries" WHERE "ObjectId" = %s', (created["id"],)) == [(1,)]
    # Nothing in public: the consolidated database has no Products table there at all.
    assert query(target_cluster, consolidated_database, "SELECT to_regclass('public.\"Products\"')") == [(None,)]
    status, products = harness.request(consolidated_app.url + "/api/products")
    assert status == 200 and "SHARED-1" in {product["code"] for product in products}
    assert harness.request(consolidated_app.url + "/api/products", "POST", {"name": "no code"})[0] == 400
    assert password(target_cluster) not in consolidated_app.log()


def test_standin_health_is_503_while_the_database_is_unreachable(tmp_path, target_cluster):
    unreachable = harness.connection_string("127.0.0.1", harness.free_port(), "ClassifiedAds", "postgres",
                                            password=password(target_cluster))
    settings = harness.write_appsettings(tmp_path / "appsettings.json", shared=unreachable)
    with harness.StandinProcess(str(settings), tmp_path / "app.log") as app:
        status, body = harness.request(app.url + "/health")
        assert status == 503 and body["status"] == "Unhealthy"
        assert harness.request(app.url + "/api/products")[0] == 503
    assert password(target_cluster) not in json.dumps(body) + app.log()


def test_standin_refuses_to_start_without_a_connection_string(tmp_path):
    settings = harness.write_appsettings(tmp_path / "appsettings.json", modules={"Product": "Host=h;Database=d"})
    completed = subprocess.run(harness.command(str(settings), 0), env=harness.environment(), capture_output=True,
                               text=True, check=False, timeout=30)
    assert completed.returncode == 2
    assert "Modules:AuditLog:ConnectionStrings:Default" in completed.stderr


# -- the smoke role ---------------------------------------------------------------------------------

PLAYBOOK = """\
- name: Smoke-test the application
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Plan step 7
      ansible.builtin.import_role:
        name: classifiedads.consolidation.smoke
"""


@pytest.fixture
def run_smoke(tmp_path, run_playbook):
    """ansible-playbook with the smoke role: ``run(variables, *args)`` returns (return code, output, changed count)."""
    play = tmp_path / "smoke.yml"
    play.write_text(PLAYBOOK)

    def run(variables, *args):
        done = run_playbook(play, "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", *args,
                            variables=variables, inventory="localhost,", expect_rc=None)
        return done.rc, done.output, done.changed

    return run


def smoke_vars(app, cluster, database, **extra):
    return {"smoke_base_url": app.url, "smoke_db": endpoint(cluster), "smoke_database": database,
            "smoke_run_id": "pytest", **extra}


def failure_message(output):
    """The message of the role's final fail task (from the count of failed checks on)."""
    return output[re.search(r"\d+ smoke check\(s\) failed", output).start():]


def marker_of(output):
    return re.search(r"marker (smoke-pytest-[0-9a-f]{8})", output).group(1)


def test_smoke_passes_against_the_consolidated_application(run_smoke, consolidated_app, target_cluster,
                                                           consolidated_database):
    code, output, changed = run_smoke(smoke_vars(consolidated_app, target_cluster, consolidated_database))
    assert code == 0, output[-4000:]
    assert changed == 0
    for name in ("health endpoint", "product list", "create a product", 'product row in product.\\"Products\\"',
                 'audit entry in auditlog.\\"AuditLogEntries\\"'):
        assert f"PASSED {name}: " in output, name
    marker = marker_of(output)
    assert query(target_cluster, consolidated_database, 'SELECT "Name" FROM product."Products" WHERE "Code" = %s',
                 (marker,)) == [(f"Smoke test {marker}",)]
    assert password(target_cluster) not in output


def test_smoke_failure_names_the_check_with_status_and_body(run_smoke, consolidated_app, target_cluster,
                                                            consolidated_database):
    variables = smoke_vars(consolidated_app, target_cluster, consolidated_database, smoke_http_checks=[
        {"name": "health endpoint", "url": "/health"},
        {"name": "products answer 204", "url": "/api/products", "status": 204},
        {"name": "lists a product that does not exist", "url": "/api/products", "contains": "NO-SUCH-CODE"},
    ], smoke_write_probes=[{
        "name": "write through a db_check", "url": "/api/products", "body": {"code": "{marker}"},
        "db_checks": [{"name": "a db_check cannot write",
                       "query": 'WITH added AS (INSERT INTO product."Products" ("Id", "Code", "CreatedDateTime") '
                                "VALUES (gen_random_uuid(), 'DB-CHECK-WRITE', now()) RETURNING 1) "
                                "SELECT count(*) FROM added",
                       "expect_rows": 1}]}])
    code, output, changed = run_smoke(variables)
    assert code == 2 and changed == 0
    failure = failure_message(output)
    assert failure.startswith("3 smoke check(s) failed")
    assert "products answer 204: GET " + consolidated_app.url + "/api/products answered 200, expected 204; body: [" \
        in failure
    assert 'lists a product that does not exist: GET ' in failure and 'body lacks \\"NO-SUCH-CODE\\"' in failure
    assert "a db_check cannot write: query failed: " in failure and "read-only transaction" in failure
    assert "PASSED health endpoint" in output and "PASSED write through a db_check" in output
    assert query(target_cluster, consolidated_database,
                 'SELECT count(*) FROM product."Products" WHERE "Code" = %s', ("DB-CHECK-WRITE",)) == [(0,)]


def test_smoke_fails_when_the_record_lands_in_the_wrong_schema(run_smoke, legacy_app, source_cluster, target_cluster,
                                                               legacy_databases, consolidated_database):
    # The application still runs on its old per-module configuration: the API works and the write
    # succeeds, but the record lands in public of the legacy Product database, not in product.
    code, output, _changed = run_smoke(smoke_vars(legacy_app, target_cluster, consolidated_database))
    assert code == 2
    assert "PASSED health endpoint" in output and "PASSED create a product" in output
    failure = failure_message(output)
    assert failure.startswith("2 smoke check(s) failed")
    assert 'product row in product.\\"Products\\": counted 0, expected 1' in failure
    assert 'audit entry in auditlog.\\"AuditLogEntries\\": counted 0, expected 1' in failure
    marker = marker_of(output)
    assert query(source_cluster, legacy_databases["Product"],
                 'SELECT count(*) FROM public."Products" WHERE "Code" = %s', (marker,)) == [(1,)]


def test_smoke_check_mode_reads_but_never_writes(run_smoke, consolidated_app, target_cluster, consolidated_database):
    count = 'SELECT count(*) FROM product."Products"'
    before = query(target_cluster, consolidated_database, count)
    variables = smoke_vars(consolidated_app, target_cluster, consolidated_database)
    variables["smoke_http_checks"] = [{"name": "health endpoint", "url": "/health"},
                                      {"name": "a post among the checks", "url": "/api/products", "method": "POST"}]
    code, output, changed = run_smoke(variables, "--check")
    assert code == 0 and changed == 0, output[-3000:]
    assert "PASSED health endpoint" in output
    assert "SKIPPED a post among the checks: check mode, POST /api/products not sent" in output
    assert "SKIPPED create a product: check mode" in output
    assert "Check mode: not sending the write probes (create a product)" in output
    assert query(target_cluster, consolidated_database, count) == before

    # In check mode the steps before did not run: a failing check is reported, not fatal.
    variables["smoke_base_url"] = f"http://127.0.0.1:{harness.free_port()}"
    code, output, changed = run_smoke(variables, "--check")
    assert (code, changed) == (0, 0), output[-3000:]
    assert "FAILED health endpoint: GET " + variables["smoke_base_url"] + "/health got no answer" in output
