"""The embedded PostgreSQL harness, checked against the real server it starts."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg2
import pytest
from devkit.pgembed import EmbeddedCluster


def _query(info, sql, dbname="postgres"):
    with psycopg2.connect(**info.connect_kwargs(dbname)) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def _postmaster_pid(info) -> int:
    return int(Path(info.data_dir, "postmaster.pid").read_text().splitlines()[0])


def _live_processes_mentioning(text: str) -> list[int]:
    """PIDs of running (not zombie) processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if text in cmdline and "zombie" not in state:
            found.append(int(entry.name))
    return found


def _server_processes(postmaster_pid: int) -> set[int]:
    """The postmaster and its children (checkpointer, walwriter, backends...)."""
    pids = {postmaster_pid}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster_pid:
                pids.add(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _process_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("Uid:")).split()[1])


def test_server_runs_unprivileged_and_requires_scram(source_cluster):
    if os.geteuid() == 0:
        assert _process_uid(_postmaster_pid(source_cluster)) != 0
    methods = _query(source_cluster, "SELECT DISTINCT auth_method FROM pg_hba_file_rules")
    assert methods == [("scram-sha-256",)]
    stored = _query(source_cluster, "SELECT rolpassword FROM pg_authid WHERE rolname = current_user")
    assert stored[0][0].startswith("SCRAM-SHA-256$")
    assert _query(source_cluster, "SELECT inet_server_addr()::text") == [("127.0.0.1/32",)]


def test_wrong_password_is_refused(source_cluster):
    kwargs = dict(source_cluster.connect_kwargs(), passfile="/dev/null", password="not-the-password")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(**kwargs)


def test_password_lives_only_in_a_private_pgpass_file(source_cluster):
    passfile = Path(source_cluster.passfile)
    assert passfile.stat().st_mode & 0o777 == 0o600
    password = passfile.read_text().strip().rsplit(":", 1)[1]
    assert len(password) >= 24
    assert not [pid for pid in _live_processes_mentioning(password) if pid != os.getpid()]
    assert password not in Path(source_cluster.data_dir).parent.joinpath("cluster.json").read_text()


def test_two_clusters_run_side_by_side(source_cluster, target_cluster):
    assert source_cluster.port != target_cluster.port
    assert _postmaster_pid(source_cluster) != _postmaster_pid(target_cluster)
    with psycopg2.connect(**source_cluster.connect_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE only_on_source (id int)")
    try:
        assert _query(target_cluster, "SELECT to_regclass('only_on_source')") == [(None,)]
        assert _query(source_cluster, "SELECT to_regclass('only_on_source')::text") == [("only_on_source",)]
    finally:
        _query_commit(source_cluster, "DROP TABLE only_on_source")


def _query_commit(info, sql):
    with psycopg2.connect(**info.connect_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(sql)


def test_start_is_idempotent_and_restart_keeps_data(cluster_root):
    cluster = EmbeddedCluster("restart", cluster_root)
    first = cluster.start()
    pid = _postmaster_pid(first)
    again = cluster.start()
    assert (again.port, _postmaster_pid(again)) == (first.port, pid)
    _query_commit(first, "CREATE TABLE kept (id int)")
    assert cluster.stop() is True
    assert cluster.stop() is False
    restarted = cluster.start()
    assert _query(restarted, "SELECT to_regclass('kept')::text") == [("kept",)]
    cluster.destroy()
    assert not Path(cluster_root, "restart").exists()


def test_stop_leaves_no_process_behind(cluster_root):
    cluster = EmbeddedCluster("stopper", cluster_root)
    info = cluster.start()
    server = _server_processes(_postmaster_pid(info))
    assert len(server) > 1 and all(_alive(pid) for pid in server)
    cluster.stop()
    assert [pid for pid in server if _alive(pid)] == []
    assert _live_processes_mentioning(info.data_dir) == []
    assert not Path(info.data_dir, "postmaster.pid").exists()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(**info.connect_kwargs(), connect_timeout=3)
    cluster.destroy()
