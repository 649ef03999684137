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
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import psycopg2.sql
import pytest
import yaml
from devkit import docker_engine, legacy
from devkit.pgembed import EmbeddedCluster


# The engine of devkit.docker_engine, started unless one answers and stopped afterwards if this session
# started it, with the images built or taken from its cache. Tests skip only when dockerd is not installed
# and CLASSIFIEDADS_REQUIRE_DOCKER is unset (CI sets it: there a missing engine fails them).
@pytest.fixture(scope="session")
def docker_env():
    if shutil.which("dockerd") is None and not os.environ.get("CLASSIFIEDADS_REQUIRE_DOCKER"):
        pytest.skip("dockerd is not installed (apt-get install docker.io; .ci/run does); "
                    "CLASSIFIEDADS_REQUIRE_DOCKER=1 turns this skip into a failure")
    try:
        env, registration = docker_engine.acquire()
    except docker_engine.EngineError as exc:
        pytest.fail(f"the Docker Engine is not available: {exc}")
    try:
        docker_engine.ensure_images(env)
    except docker_engine.EngineError as exc:
        docker_engine.release(registration)
        pytest.fail(f"the images could not be built: {exc}")
    yield env
    docker_engine.release(registration)


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
    return legacy.query(info, dbname, statement, params)


def execute(info, statement, dbname="postgres", params=None):
    """``run_sql`` with the maintenance database as default."""
    return run_sql(info, dbname, statement, params)


def drop_database(info, name):
    """Drop ``name`` on an embedded cluster if it exists, ending its sessions (test clean-up)."""
    execute(info, psycopg2.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg2.sql.Identifier(name)))


def endpoint(info) -> dict:
    """The collection's connection dictionary (source/target) for an embedded cluster."""
    return {"host": info.host, "port": info.port, "user": info.user, "passfile": info.passfile,
            "sslmode": "disable"}


@pytest.fixture(scope="session")
def run_module(tmp_path_factory):
    """Run one of the collection's modules as Ansible does (JSON args in, JSON result out).

    The real module code runs in a child interpreter against the real
    clusters; ``check=True`` sets Ansible's check mode; ``env`` is added to its
    environment (a task's ``environment``).
    """
    workdir = tmp_path_factory.mktemp("module-args")

    def run(name: str, args: dict, check: bool = False, env: dict | None = None) -> dict:
        path = workdir / f"{name}.json"
        payload = dict(args, _ansible_check_mode=check, _ansible_remote_tmp=str(workdir),
                       _ansible_keep_remote_files=False)
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
        completed = subprocess.run(
            [sys.executable, "-m", f"ansible_collections.classifiedads.consolidation.plugins.modules.{name}",
             str(path)], capture_output=True, text=True, cwd=str(workdir), check=False,
            env=dict(os.environ, **(env or {}), PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
        try:
            result = json.loads(completed.stdout)
        except ValueError:
            raise AssertionError(f"{name} printed no JSON (exit {completed.returncode}):\n"
                                 f"{completed.stdout}\n{completed.stderr}") from None
        result.setdefault("failed", False)
        return result

    return run


def consolidation_vars(source_info, target_info, root, target_database, prefix):
    """consolidate.yml's variables for two embedded clusters: the shipped ClassifiedAds mapping (overrides
    included) on legacy databases named ``<prefix>_<Module>``, runs and backups under ``root``, the stand-in
    migrator. ``target_database`` None leaves the consolidated database to each run's own variables."""
    defaults = yaml.safe_load((Path(REPO) / "roles" / "consolidation" / "defaults" / "main.yml").read_text())
    modules = json.loads(json.dumps(defaults["consolidation_modules"]).replace('"ClassifiedAds_', f'"{prefix}_'))
    variables = {
        "consolidation_source": endpoint(source_info),
        "consolidation_target": endpoint(target_info),
        "consolidation_modules": modules,
        "consolidation_run_root": str(Path(root) / "runs"),
        "consolidation_backup_root": str(Path(root) / "backups"),
        "migrator_command": [sys.executable, str(Path(REPO) / "tools" / "bin" / "classifiedads-migrator")],
    }
    if target_database is not None:
        variables["consolidation_target_database"] = target_database
    return variables


LOCAL_INVENTORY = os.path.join(REPO, "inventories", "local")
_RECAP = re.compile(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


@dataclass
class PlaybookRun:
    """What one ansible-playbook run printed and its recap for localhost (None when it printed none)."""

    rc: int
    stdout: str
    stderr: str
    recap: dict | None = field(default=None)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def changed(self) -> int:
        assert self.recap, self.output[-3000:]
        return self.recap["changed"]


def last_task(output: str) -> str:
    """The last task a playbook printed before its recap, banner and result: where its summary belongs."""
    recap = output.rindex("PLAY RECAP")
    return output[output.rindex("TASK [", 0, recap):recap]


@pytest.fixture(scope="session")
def run_playbook(tmp_path_factory):
    """Run ansible-playbook as an operator does: this checkout on the collections path, no colour.

    ``run(playbook, *args, variables=None, inventory=LOCAL_INVENTORY, env=None, cwd=REPO,
    expect_rc=0)``: ``playbook`` is a file or a FQCN; ``variables`` go in as ``-e @file``
    (a 0600 JSON file: they may hold passwords); ``env`` replaces the base environment
    (``os.environ``) before the Ansible settings are added; ``expect_rc=None`` accepts any
    exit status. Returns a :class:`PlaybookRun`.
    """
    workdir = tmp_path_factory.mktemp("playbook-vars")
    counter = iter(range(1_000_000))

    def run(playbook, *args, variables=None, inventory=LOCAL_INVENTORY, env=None, cwd=REPO, expect_rc=0,
            timeout=900) -> PlaybookRun:
        environment = dict(os.environ if env is None else env)
        environment["ANSIBLE_NOCOLOR"] = "1"
        environment.setdefault("ANSIBLE_CONFIG", os.path.join(REPO, "ansible.cfg"))
        environment.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, ".ansible", "collections"))
        argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory)]
        if variables is not None:
            vars_file = workdir / f"vars-{next(counter)}.json"
            vars_file.write_text(json.dumps(variables))
            vars_file.chmod(0o600)
            argv += ["-e", f"@{vars_file}"]
        argv += [*args, str(playbook)]
        completed = subprocess.run(argv, capture_output=True, text=True, env=environment, cwd=str(cwd), check=False,
                                   timeout=timeout)
        found = _RECAP.search(completed.stdout + completed.stderr)
        recap = None
        if found:
            recap = dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found.groups()), strict=True))
        result = PlaybookRun(completed.returncode, completed.stdout, completed.stderr, recap)
        if expect_rc is not None:
            assert result.rc == expect_rc, result.output[-8000:]
        return result

    return run
