"""A libpq service in the modules' environment (PGSERVICE) against two real PostgreSQL 15 clusters.

psycopg2 fills the keys a connection leaves out from the service PGSERVICE names; pg_dump, pg_restore and psql
cannot be given it (its dbname would outrank theirs). With a service that names the *target* cluster's port and a
source connection that leaves its port out, backup_set's counts would come from one server and its archive from
another: the modules refuse PGSERVICE instead, before touching anything.
"""

from __future__ import annotations

import psycopg2
import pytest
from conftest import drop_database, endpoint, execute, run_sql

pytestmark = pytest.mark.integration

DATABASE = "SvcCase_Product"


@pytest.fixture
def service_file(source_cluster, target_cluster, tmp_path):
    """A real service file whose ``elsewhere`` section names the target cluster, and a database on the source."""
    path = tmp_path / "pg_service.conf"
    path.write_text(f"[elsewhere]\nhost={target_cluster.host}\nport={target_cluster.port}\n"
                    f"user={target_cluster.user}\npassfile={target_cluster.passfile}\n")
    drop_database(source_cluster, DATABASE)
    execute(source_cluster, f'CREATE DATABASE "{DATABASE}"')
    run_sql(source_cluster, DATABASE, "CREATE TABLE ads AS SELECT g AS id FROM generate_series(1, 7) g")
    yield path
    drop_database(source_cluster, DATABASE)


def source_without_port(info):
    return {key: value for key, value in endpoint(info).items() if key != "port"}


def backup(run_module, source, root, env):
    return run_module("backup_set", dict(source=source, databases=[DATABASE], backup_root=str(root),
                                         set_id="svc-1"), env=env)


def test_the_service_would_take_psycopg2_to_the_other_server(
        service_file, source_cluster, target_cluster, monkeypatch):
    # The hazard is real: the port the connection leaves out comes from the service, not from PGPORT.
    monkeypatch.setenv("PGSERVICEFILE", str(service_file))
    monkeypatch.setenv("PGSERVICE", "elsewhere")
    monkeypatch.setenv("PGPORT", str(source_cluster.port))
    # The passfile stays out too: the source's would not log in on the target, the service's does.
    kwargs = {key: value for key, value in source_cluster.connect_kwargs().items() if key not in ("port", "passfile")}
    conn = psycopg2.connect(**kwargs)
    try:
        assert conn.info.port == target_cluster.port != source_cluster.port
    finally:
        conn.close()


@pytest.mark.parametrize("service", ["elsewhere", ""])
def test_pgservice_is_refused_naming_the_side_before_anything_is_written(service_file, source_cluster, run_module,
                                                                         tmp_path, service):
    env = {"PGSERVICEFILE": str(service_file), "PGSERVICE": service, "PGPORT": str(source_cluster.port)}
    result = backup(run_module, source_without_port(source_cluster), tmp_path / "backups", env)
    assert result["failed"]
    [problem] = result["problems"]
    assert problem.startswith(f"PGSERVICE={service} is set in the environment the modules run in")
    assert "the source server" in problem and "unset PGSERVICE" in problem
    assert not (tmp_path / "backups").exists()


def test_without_pgservice_both_paths_read_the_server_the_environment_names(service_file, source_cluster,
                                                                            run_module, tmp_path):
    # PGSERVICEFILE alone names no service: libpq reads it only for a service name.
    env = {"PGSERVICEFILE": str(service_file), "PGPORT": str(source_cluster.port)}
    result = backup(run_module, source_without_port(source_cluster), tmp_path / "backups", env)
    assert not result["failed"], result.get("msg")
    assert result["manifest"]["source"]["server"] == f"{source_cluster.host}:{source_cluster.port}"
    archive = result["manifest"]["archives"][0]
    assert archive["verified"] is True
    assert {(t["schema"], t["table"]): t["rows"] for t in archive["tables"]} == {("public", "ads"): 7}
