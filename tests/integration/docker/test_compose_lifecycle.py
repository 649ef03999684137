"""The whole lifecycle with ClassifiedAds under a real Docker Engine and Compose v2.

The compose project (tools/docker/classifiedads) runs PostgreSQL 15 as its `db` service and the
stand-in WebAPI and background worker as `webapi` and `background`, fed by the same .env and
appsettings.json shapes as ClassifiedAds. consolidate.yml stops them with `docker compose stop`,
runs the migrator as the `migrator` service (`docker compose run --rm -e ConnectionStrings__Default
migrator`), cuts over .env, docker-compose.yml and the appsettings files, brings the services up again
(recreated with the new environment), smoke-tests through the API and retires the legacy databases;
rollback.yml brings everything back and the containers serve the legacy databases again.
"""

from __future__ import annotations

import pytest
from compose_stack import ComposeStack
from conftest import consolidation_vars, run_sql
from devkit import legacy
from standin_app import harness

TARGET_DB = "ClassifiedAds"
MIGRATOR_COMMAND = ["docker", "compose", "run", "--rm", "-e", "ConnectionStrings__Default", "migrator"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_env):
    root = tmp_path_factory.mktemp("compose-lifecycle")
    stack = ComposeStack(root / "app", docker_env)
    try:
        # The plan's order: the database first; the legacy migrator's work (six databases) stands in
        # for the application's history; then the application.
        stack.compose("up", "--detach", "--wait", "db")
        legacy.create(stack.db, 0.01, prefix=stack.prefix, out=lambda line: None)
        stack.compose("up", "--detach", "webapi", "background")
        stack.wait_until_serving()
        stack.root = root
        yield stack
    finally:
        stack.down()


def product_codes(stack, database, table):
    return sorted(row[0] for row in run_sql(stack.db, database, f'SELECT "Code" FROM {table}'))


def test_compose_stack_consolidated_and_rolled_back(stack, run_playbook):
    app_dir = stack.directory
    variables = {
        **consolidation_vars(stack.db, stack.db, stack.root, TARGET_DB, stack.prefix),
        "consolidation_source": stack.endpoint(),
        "consolidation_target": stack.endpoint(),
        "migrator_command": MIGRATOR_COMMAND,
        "migrator_chdir": str(app_dir),
        **stack.control_variables(),
        "cutover_compose_db_port": stack.db.port,
        "decommission_confirm": stack.legacy_databases(),
    }
    outputs = []

    def play(playbook, *args):
        done = run_playbook(f"classifiedads.consolidation.{playbook}", *args, variables=variables, env=stack.env)
        outputs.append(done.output)
        return done

    legacy_stores = {f"{stack.prefix}_Product", f"{stack.prefix}_AuditLog"}
    originals = {name: (app_dir / name).read_bytes() for name in (".env", "docker-compose.yml")}

    # Before: both services run on the legacy databases, with the connection strings of .env.
    for url in (stack.webapi_url, stack.background_url):
        layout = _whereami(url)
        assert layout["layout"] == "legacy"
        assert {store["database"] for store in layout["stores"].values()} == legacy_stores
        assert {store["connection_string_from"].split()[-1] for store in layout["stores"].values()} == {
            "Modules__Product__ConnectionStrings__Default", "Modules__AuditLog__ConnectionStrings__Default"}
    assert harness.request(stack.webapi_url + "/api/products", "POST", {"code": "BEFORE-1", "name": "b"})[0] == 201
    before = product_codes(stack, f"{stack.prefix}_Product", '"Products"')
    assert "BEFORE-1" in before
    legacy_containers = stack.containers()

    # Check mode asks Compose and changes nothing: the same containers still run the legacy configuration.
    # (Without decommission_confirm: check mode has no verified run for the decommission's guards.)
    done = play("consolidate", "--check", "-e", '{"decommission_confirm": []}')
    assert stack.containers() == legacy_containers
    assert (app_dir / ".env").read_bytes() == originals[".env"]
    assert _whereami(stack.webapi_url)["layout"] == "legacy"
    assert "Check mode, would stop: webapi, background" in done.output

    # Consolidate: stop, back up, migrate (the migrator container), copy, verify, cut over, start, smoke,
    # decommission.
    done = play("consolidate")
    assert done.changed > 0 and "PASSED" in done.output
    containers = stack.containers()
    assert {service: state for service, (state, _id) in containers.items()} == {
        "db": "running", "webapi": "running", "background": "running"}, containers  # migrator: run --rm
    for service in ("webapi", "background"):  # recreated with the new .env, not restarted with the old one
        assert containers[service][1] != legacy_containers[service][1]
    assert containers["db"][1] == legacy_containers["db"][1]
    dotenv = (app_dir / ".env").read_text()
    assert "Modules__Product__ConnectionStrings__Default" not in dotenv
    assert f"ConnectionStrings__Default=Host=db;Port={stack.db.port};Database={TARGET_DB};" in dotenv
    for url in (stack.webapi_url, stack.background_url):
        layout = _whereami(url)
        assert layout["layout"] == "consolidated"
        assert {(store["database"], store["schema"], store["host"]) for store in layout["stores"].values()} == {
            (TARGET_DB, "product", "db"), (TARGET_DB, "auditlog", "db")}
        assert {store["connection_string_from"] for store in layout["stores"].values()} == {
            "environment variable ConnectionStrings__Default"}
    # The migrator container made the EF history; the copy brought the legacy rows.
    history = run_sql(stack.db, TARGET_DB, 'SELECT count(*) FROM public."__EFMigrationsHistory"')
    assert history[0][0] >= 6
    assert set(before) <= set(product_codes(stack, TARGET_DB, 'product."Products"'))
    # The smoke probe's write went through the API into the module schemas.
    smoke = run_sql(stack.db, TARGET_DB, "SELECT count(*) FROM auditlog.\"AuditLogEntries\" a "
                                         "JOIN product.\"Products\" p ON strpos(a.\"Log\", p.\"Code\") > 0 "
                                         "WHERE p.\"Code\" NOT IN %s", (tuple(before),))
    assert smoke[0][0] >= 1
    assert harness.request(stack.webapi_url + "/api/products", "POST", {"code": "AFTER-1", "name": "a"})[0] == 201
    assert "AFTER-1" in product_codes(stack, TARGET_DB, 'product."Products"')
    present = {row[0] for row in run_sql(stack.db, "postgres", "SELECT datname FROM pg_database")}
    assert not present & set(stack.legacy_databases())

    # Roll back (AFTER-1 discarded on purpose): the services serve the legacy databases again.
    run_id = (stack.root / "runs" / "latest").read_text().strip()
    play("rollback", "-e", f"consolidation_run_id={run_id}", "-e", "rollback_discard_new_writes=true")
    for name, content in originals.items():
        assert (app_dir / name).read_bytes() == content, name
    containers = stack.containers()
    assert {service: state for service, (state, _id) in containers.items()} == {
        "db": "running", "webapi": "running", "background": "running"}, containers
    for url in (stack.webapi_url, stack.background_url):
        layout = _whereami(url)
        assert layout["layout"] == "legacy"
        assert {store["database"] for store in layout["stores"].values()} == legacy_stores
    assert product_codes(stack, f"{stack.prefix}_Product", '"Products"') == before
    assert harness.request(stack.webapi_url + "/api/products", "POST", {"code": "ROLLED-1", "name": "r"})[0] == 201
    assert "ROLLED-1" in product_codes(stack, f"{stack.prefix}_Product", '"Products"')

    # The password reached the containers through .env and the migrator's environment, never the job output.
    for output in outputs:
        assert stack.password not in output


def _whereami(url):
    status, body = harness.request(url + "/api/whereami")
    assert status == 200, body
    return body
