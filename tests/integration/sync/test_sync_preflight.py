"""preflight with sync=online against real clusters: every refusal at once, each with its fix (wal_level,
replica identity, REPLICATION, ownership, CREATE), and in every mode a warning per slot of ours with the
WAL it retains."""

from __future__ import annotations

import pytest
from conftest import endpoint, run_sql
from devkit.pgembed import EmbeddedCluster
from sync_db import create_database, drop_slots, legacy_pair, modules, warning_lines

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names

pytestmark = pytest.mark.integration

ROLE = "slots_plain"
PASSWORD = "Pf-" + "x7Qw2" * 4


@pytest.fixture(scope="module")
def replica_cluster(cluster_root):
    """A source server whose wal_level cannot decode: what a self-hosted server has until it is changed."""
    cluster = EmbeddedCluster("replica-level", cluster_root, settings={"wal_level": "replica"})
    yield cluster.start()
    cluster.destroy()


def preflight_args(source, target_info, legacy, tmp_path, sync="online", **extra):
    return dict(dict(source=source, target=endpoint(target_info), target_database=f"{legacy}_Nowhere",
                     modules=modules(legacy), run_root=str(tmp_path / "runs"), backup_root=str(tmp_path / "backups"),
                     mode="existing", sync=sync, run_id="pre-1"), **extra)


def test_a_source_ready_for_online_mode_passes(source_cluster, target_cluster, run_module, tmp_path):
    legacy, _target = legacy_pair(source_cluster, target_cluster, "PfOk")
    result = run_module("preflight", preflight_args(endpoint(source_cluster), target_cluster, legacy, tmp_path),
                        check=True)
    assert not result["failed"], result.get("msg")


def test_a_replica_level_server_is_refused_with_the_switch_for_each_kind_of_server(
        replica_cluster, target_cluster, run_module, tmp_path):
    create_database(replica_cluster, "PfWal_Items", ["CREATE TABLE public.items (id bigint PRIMARY KEY)"])
    result = run_module("preflight", preflight_args(endpoint(replica_cluster), target_cluster, "PfWal_Items",
                                                    tmp_path), check=True)
    assert result["failed"]
    [problem] = result["problems"]
    assert "wal_level = replica" in problem
    for fix in ("ALTER SYSTEM SET wal_level = logical", "restart", "rds.logical_replication = 1",
                "cloudsql.logical_decoding = on", "azure.replication_support = logical"):
        assert fix in problem
    # Offline mode does not need it.
    assert not run_module("preflight", preflight_args(endpoint(replica_cluster), target_cluster, "PfWal_Items",
                                                      tmp_path, sync="offline"), check=True)["failed"]


def test_every_missing_right_and_identity_is_listed_with_its_fix(source_cluster, target_cluster, run_module,
                                                                 tmp_path):
    legacy = "PfRights_Items"
    create_database(source_cluster, legacy, [
        "CREATE TABLE public.items (id bigint PRIMARY KEY, label text)",
        "CREATE TABLE public.keyless (id bigint, label text)",
        "CREATE TABLE public.full_identity (id bigint, label text)",
        "ALTER TABLE public.full_identity REPLICA IDENTITY FULL",
        "CREATE TABLE public.by_index (id bigint NOT NULL, label text)",
        "CREATE UNIQUE INDEX by_index_id ON public.by_index (id)",
        "ALTER TABLE public.by_index REPLICA IDENTITY USING INDEX by_index_id",
        "CREATE UNLOGGED TABLE public.scratch (id bigint PRIMARY KEY)"])
    run_sql(source_cluster, "postgres", f"DROP ROLE IF EXISTS {ROLE}")
    run_sql(source_cluster, "postgres", f"CREATE ROLE {ROLE} LOGIN PASSWORD %s", (PASSWORD,))
    run_sql(source_cluster, legacy, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROLE}")
    plain = dict(endpoint(source_cluster), user=ROLE, password=PASSWORD)
    plain.pop("passfile")
    try:
        result = run_module("preflight", preflight_args(plain, target_cluster, legacy, tmp_path), check=True)
    finally:
        run_sql(source_cluster, legacy, f"DROP OWNED BY {ROLE}")
        run_sql(source_cluster, "postgres", f"DROP ROLE {ROLE}")
    assert result["failed"]
    problems = result["problems"]
    assert len(problems) == 5, problems
    replication, create, ownership, unlogged, identity = problems
    assert f"ALTER ROLE {ROLE} REPLICATION" in replication and "rds_replication" in replication
    assert f'GRANT CREATE ON DATABASE "{legacy}" TO {ROLE}' in create
    for table in ("items", "keyless", "full_identity", "by_index", "scratch"):
        assert f'"{legacy}".public.{table}' in ownership
    assert f'"{legacy}".public.scratch' in unlogged and "SET LOGGED" in unlogged and "keyless" not in unlogged
    assert f'"{legacy}".public.keyless' in identity and "REPLICA IDENTITY FULL" in identity
    assert "full_identity" not in identity and "by_index" not in identity and ".items" not in identity
    assert PASSWORD not in str(result)


def test_every_slot_of_ours_is_a_warning_in_every_mode(source_cluster, target_cluster, run_module, tmp_path):
    legacy, _target = legacy_pair(source_cluster, target_cluster, "PfSlot")
    forgotten = sync_names.slot_name("an-old-run", legacy)
    run_sql(source_cluster, legacy, "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (forgotten,))
    run_sql(source_cluster, legacy, "SELECT pg_create_logical_replication_slot('someone_elses', 'pgoutput')")
    try:
        before = run_sql(source_cluster, legacy, "SELECT pg_current_wal_lsn()")[0][0]
        run_sql(source_cluster, legacy, "INSERT INTO public.items SELECT g, md5(g::text) "
                                        "FROM generate_series(100000, 150000) g")
        written = run_sql(source_cluster, legacy, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint",
                          (before,))[0][0]
        result = run_module("preflight", preflight_args(endpoint(source_cluster), target_cluster, legacy, tmp_path,
                                                        sync="offline"), check=True)
    finally:
        drop_slots(source_cluster, legacy)
    assert not result["failed"], result.get("msg")
    # Other tests of the session may leave slots of ours in this cluster: look at this one.
    [slot] = [found for found in result["slots"] if found["slot_name"] == forgotten]
    assert slot["slot_name"] == forgotten and slot["active"] is False
    assert written > 1_000_000 and slot["retained_bytes"] >= written
    [warning] = [line for line in warning_lines(result) if "replication slot" in line and forgotten in line]
    assert forgotten in warning and "inactive" in warning and slot["retained"] in warning
    assert "someone_elses" not in str(warning_lines(result))
