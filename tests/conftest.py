"""Shared pytest fixtures: real PostgreSQL clusters started by the devkit harness.

Two session-wide clusters, ``source_cluster`` and ``target_cluster``, stand for
the two servers of a consolidation (legacy databases on one, the consolidated
database possibly on another). They live under a private root below /var/tmp
(the server runs as an unprivileged user that cannot enter pytest's own
temporary directories) and are destroyed when the session ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import psycopg2
import pytest
from devkit.pgembed import EmbeddedCluster


@pytest.fixture(scope="session")
def cluster_root():
    root = tempfile.mkdtemp(prefix="cad-pytest-", dir="/var/tmp")
    os.chmod(root, 0o755)
    yield root
    for name in os.listdir(root):
        EmbeddedCluster(name, root).destroy()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def source_cluster(cluster_root):
    return EmbeddedCluster("source", cluster_root).start()


@pytest.fixture(scope="session")
def target_cluster(cluster_root):
    return EmbeddedCluster("target", cluster_root).start()


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_sql(info, dbname, statement, params=None):
    """Run one statement in autocommit on ``dbname`` of an embedded cluster; rows, or None for commands."""
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def execute(info, statement, dbname="postgres", params=None):
    """``run_sql`` with the maintenance database as default."""
    return run_sql(info, dbname, statement, params)


def endpoint(info) -> dict:
    """The collection's connection dictionary (source/target) for an embedded cluster."""
    return {"host": info.host, "port": info.port, "user": info.user, "passfile": info.passfile,
            "sslmode": "disable"}


@pytest.fixture(scope="session")
def run_module(tmp_path_factory):
    """Run one of the collection's modules as Ansible does (JSON args in, JSON result out).

    The real module code runs in a child interpreter against the real
    clusters; ``check=True`` sets Ansible's check mode.
    """
    workdir = tmp_path_factory.mktemp("module-args")

    def run(name: str, args: dict, check: bool = False) -> dict:
        path = workdir / f"{name}.json"
        payload = dict(args, _ansible_check_mode=check, _ansible_remote_tmp=str(workdir),
                       _ansible_keep_remote_files=False)
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        completed = subprocess.run(
            [sys.executable, "-m", f"ansible_collections.classifiedads.consolidation.plugins.modules.{name}",
             str(path)], capture_output=True, text=True, cwd=str(workdir), check=False,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
        try:
            result = json.loads(completed.stdout)
        except ValueError:
            raise AssertionError(f"{name} printed no JSON (exit {completed.returncode}):\n"
                                 f"{completed.stdout}\n{completed.stderr}") from None
        result.setdefault("failed", False)
        return result

    return run
