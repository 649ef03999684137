"""The app_control role through ansible-playbook, driving a real process through the docker CLI stand-in.

``tools/bin/docker`` comes first on PATH: ``docker compose`` starts and stops the stand-in WebAPI
(a real HTTP service on loopback, on a consolidated database on ``target_cluster``) and records
every call in a log, so the tests see exactly which commands the role ran. ``background`` is state
only. systemd mode cannot run here (no systemd); only its input checks are exercised.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import REPO, drop_database
from devkit import migrator
from standin_app import harness

pytestmark = pytest.mark.integration

DOCKER = Path(REPO) / "tools" / "bin" / "docker"
DATABASE = f"AppControl_{uuid.uuid4().hex[:6]}"

PLAYBOOK = """\
- name: Control the application
  hosts: localhost
  gather_facts: false
  tasks:
    - name: One entry point of app_control
      ansible.builtin.import_role:
        name: classifiedads.consolidation.app_control
        tasks_from: "{{ entry }}"
"""


def password(info) -> str:
    return Path(info.passfile).read_text().strip().split(":", 4)[4]


@pytest.fixture(scope="module")
def shared_connection_string(target_cluster):
    text = harness.connection_string(target_cluster.host, target_cluster.port, DATABASE, target_cluster.user,
                                     password=password(target_cluster))
    migrator.migrate(migrator.connect_kwargs(migrator.parse_connection_string(text)), log=lambda line: None)
    yield text
    drop_database(target_cluster, DATABASE)


class Deployment:
    """A Compose project directory, the docker stand-in's state and log, and ansible-playbook runs on them."""

    def __init__(self, root: Path, appsettings: Path, run_playbook, extra_env: dict | None = None):
        self.root = root
        self.run_playbook = run_playbook
        self.project = root / "classifiedads"
        self.project.mkdir()
        self.compose_file = self.project / "docker-compose.yml"
        self.compose_file.write_text("services: {webapi: {}, background: {}, migrator: {}}\n")
        self.log = root / "docker.log"
        self.port = harness.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {name: value for name, value in os.environ.items() if "__" not in name and not name.startswith("PG")}
        self.env.update({
            "PATH": os.pathsep.join([str(DOCKER.parent), str(Path(sys.executable).parent), os.environ["PATH"]]),
            "DOCKER_STANDIN_LOG": str(self.log), "DOCKER_STANDIN_STATE": str(root / "state"),
            "DOCKER_STANDIN_WEBAPI_APPSETTINGS": str(appsettings), "DOCKER_STANDIN_WEBAPI_PORT": str(self.port),
            "DOCKER_STANDIN_PYTHON": sys.executable,
        })
        self.env.update(extra_env or {})
        (root / "app_control.yml").write_text(PLAYBOOK)

    def compose_vars(self, **extra):
        return {"app_control_mode": "compose", "app_control_compose_files": [str(self.compose_file)],
                "app_control_compose_project_dir": str(self.project),
                "app_control_health_checks": [{"url": self.url + "/health"}],
                "app_control_health_timeout": 30, "app_control_health_interval": 1, **extra}

    def play(self, entry, variables, *args):
        """Run one entry point; returns (return code, output, changed count, docker calls made by this run)."""
        calls_before = len(self.calls())
        done = self.run_playbook(self.root / "app_control.yml", "-c", "local",
                                 "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"entry={entry}", *args,
                                 variables=variables, inventory="localhost,", env=self.env, cwd=self.root,
                                 expect_rc=None)
        return done.rc, done.output, done.changed, self.calls()[calls_before:]

    def calls(self):
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def health(self):
        try:
            return harness.request(self.url + "/health", timeout=3)[0]
        except OSError:
            return None

    def docker(self, *args):
        return subprocess.run([str(DOCKER), *args], env=self.env, capture_output=True, text=True, check=False,
                              timeout=60)

    def shutdown(self):
        self.docker("compose", "-f", str(self.compose_file), "down")


@pytest.fixture
def deployment(tmp_path, shared_connection_string, run_playbook):
    appsettings = harness.write_appsettings(tmp_path / "appsettings.json", shared=shared_connection_string)
    deployment = Deployment(tmp_path, appsettings, run_playbook)
    yield deployment
    deployment.shutdown()


def subcommands(calls):
    """The compose subcommand and its arguments of each call, without the CLI and file options."""
    result = []
    for call in calls:
        argv = call["argv"]
        assert argv[:5] == ["compose", "-f", argv[2], "--project-directory", argv[4]], argv
        result.append(" ".join(argv[5:]))
    return result


def test_compose_stop_and_start_are_idempotent_honest_and_check_mode_safe(deployment, target_cluster):
    variables = deployment.compose_vars()

    code, output, changed, calls = deployment.play("start", variables, "--check")
    assert (code, changed) == (0, 0), output[-3000:]
    assert "Check mode, would start: webapi, background; already running: none" in output
    assert "Check mode: the application would be started, so its health checks are not asked now." in output
    assert subcommands(calls) == ["ps --all --format json webapi background"]
    assert deployment.health() is None

    code, output, changed, calls = deployment.play("start", variables)
    assert (code, changed) == (0, 1), output[-3000:]
    assert subcommands(calls) == ["ps --all --format json webapi background", "up --detach --no-deps webapi background"]
    assert "Started: webapi, background" in output and f"item={deployment.url}/health (expect 200)" in output
    assert deployment.health() == 200
    where = harness.request(deployment.url + "/api/whereami")[1]
    assert (where["layout"], where["stores"]["product"]["database"]) == ("consolidated", DATABASE)

    code, output, changed, calls = deployment.play("start", variables)
    assert (code, changed) == (0, 0), output[-3000:]
    assert subcommands(calls) == ["ps --all --format json webapi background"]
    assert "Nothing to start; already running: webapi, background" in output

    # Check mode with nothing to start still asks the health checks: a GET changes nothing.
    code, output, changed, calls = deployment.play("start", variables, "--check")
    assert (code, changed) == (0, 0), output[-3000:]
    assert f"ok: [localhost] => (item={deployment.url}/health (expect 200))" in output

    code, output, changed, calls = deployment.play("stop", variables, "--check")
    assert (code, changed) == (0, 0), output[-3000:]
    assert "Check mode, would stop: webapi, background; already stopped: none" in output
    assert subcommands(calls) == ["ps --all --format json webapi background"]
    assert deployment.health() == 200

    code, output, changed, calls = deployment.play("stop", variables)
    assert (code, changed) == (0, 1), output[-3000:]
    assert subcommands(calls) == ["ps --all --format json webapi background", "stop webapi background"]
    assert deployment.health() is None

    code, output, changed, calls = deployment.play("stop", variables)
    assert (code, changed) == (0, 0), output[-3000:]
    assert "Nothing to stop; already stopped: webapi, background" in output

    secret = password(target_cluster)
    assert all(secret not in json.dumps(call) for call in deployment.calls())
    assert all(call["cwd"] == str(deployment.project) for call in deployment.calls())


def test_compose_start_acts_only_on_what_is_down_and_reads_older_ps_output(
        tmp_path, target_cluster, shared_connection_string, run_playbook):
    # Compose before 2.21 prints `ps --format json` as one array; the connection string comes from
    # the project's .env, as Compose interpolates ${ConnectionStrings__Default} after the cutover.
    appsettings = harness.write_appsettings(tmp_path / "appsettings.json")
    deployment = Deployment(tmp_path, appsettings, run_playbook, {"DOCKER_STANDIN_PS_ARRAY": "1"})
    (deployment.project / ".env").write_text(f"ConnectionStrings__Default={shared_connection_string}\n")
    try:
        up_background = deployment.docker("compose", "-f", str(deployment.compose_file), "up", "-d", "background")
        assert up_background.returncode == 0
        code, output, changed, calls = deployment.play("start", deployment.compose_vars())
        assert (code, changed) == (0, 1), output[-3000:]
        assert subcommands(calls)[1] == "up --detach --no-deps webapi"
        assert "Started: webapi; already running: background" in output
        where = harness.request(deployment.url + "/api/whereami")[1]
        assert where["stores"]["product"]["connection_string_from"] == "environment variable ConnectionStrings__Default"
        code, output, changed, calls = deployment.play("stop", deployment.compose_vars(app_control_services=["webapi"]))
        assert (code, changed) == (0, 1), output[-3000:]
        assert subcommands(calls) == ["ps --all --format json webapi", "stop webapi"]
        assert password(target_cluster) not in deployment.log.read_text() + output
    finally:
        deployment.shutdown()


def test_start_fails_when_a_health_check_never_passes(deployment):
    variables = deployment.compose_vars(app_control_health_checks=[
        {"url": deployment.url + "/health"}, {"url": deployment.url + "/api/nothing", "status": 200, "timeout": 2}],
        app_control_health_timeout=2)
    code, output, _changed, _calls = deployment.play("start", variables)
    assert code == 2
    assert f"failed: [localhost] (item={deployment.url}/api/nothing (expect 200))" in output
    assert "Status code was 404 and not [200]" in output


def test_command_mode_with_and_without_a_status_command(deployment):
    compose = ["docker", "compose", "-f", str(deployment.compose_file)]
    probe = f"import urllib.request; urllib.request.urlopen('{deployment.url}/health', timeout=2)"
    variables = {"app_control_mode": "command", "app_control_start_command": compose + ["up", "-d", "webapi"],
                 "app_control_stop_command": compose + ["stop", "webapi"],
                 "app_control_status_command": [sys.executable, "-c", probe],
                 "app_control_health_checks": [{"url": deployment.url + "/health"}],
                 "app_control_health_timeout": 30, "app_control_health_interval": 1}

    code, output, changed, calls = deployment.play("start", variables, "--check")
    assert (code, changed, calls) == (0, 0, []), output[-3000:]
    assert "Check mode, would run: docker compose -f" in output
    results = [deployment.play("start", variables)[:3], deployment.play("start", variables)[:3]]
    assert [(code, changed) for code, _output, changed in results] == [(0, 1), (0, 0)], results[-1][1][-3000:]
    assert "Nothing to start: the status command says the application runs" in results[1][1]
    assert deployment.health() == 200
    results = [deployment.play("stop", variables)[:3], deployment.play("stop", variables)[:3]]
    assert [(code, changed) for code, _output, changed in results] == [(0, 1), (0, 0)], results[-1][1][-3000:]
    assert deployment.health() is None

    # Without a status command the state is unknown: the command always runs and says it changed.
    del variables["app_control_status_command"]
    for _attempt in range(2):
        code, output, changed, calls = deployment.play("stop", variables)
        assert (code, changed, len(calls)) == (0, 1, 1), output[-3000:]

    # A status command that cannot run is an error, not "the application is stopped".
    variables["app_control_status_command"] = ["/nonexistent/status-command"]
    code, output, _changed, calls = deployment.play("stop", variables)
    assert (code, calls) == (2, [])
    assert re.search(r'fatal: \[localhost\]: FAILED! => .*"cmd": "/nonexistent/status-command"', output)


def test_none_mode_touches_nothing(deployment):
    for entry, done in (("stop", "stopped"), ("start", "started")):
        code, output, changed, calls = deployment.play(entry, {"app_control_health_checks": []})
        assert (code, changed, calls) == (0, 0, []), output[-3000:]
        assert f"app_control_mode is none: the application is not {done} by this play" in output


@pytest.mark.parametrize("entry, variables", [
    ("stop", {"app_control_mode": "systemd"}),
    ("stop", {"app_control_mode": "compose", "app_control_services": []}),
    ("stop", {"app_control_mode": "command", "app_control_start_command": ["true"]}),
    ("start", {"app_control_mode": "command", "app_control_stop_command": ["true"]}),
    ("start", {"app_control_mode": "none", "app_control_health_checks": [{"url": "localhost:9002/health"}]}),
])
def test_inconsistent_settings_fail_before_anything_runs(deployment, entry, variables):
    code, output, _changed, calls = deployment.play(entry, variables)
    assert code == 2 and calls == []
    assert "needs: compose - app_control_compose_command and app_control_services" in output


def test_docker_standin_runs_the_migrator_with_only_the_forwarded_variables(tmp_path, target_cluster, run_playbook):
    database = f"AppControlRun_{uuid.uuid4().hex[:6]}"
    shared = harness.connection_string(target_cluster.host, target_cluster.port, database, target_cluster.user,
                                       password=password(target_cluster))
    deployment = Deployment(tmp_path, tmp_path / "unused.json", run_playbook, {
        "DOCKER_STANDIN_RUN_MIGRATOR": json.dumps([sys.executable, str(DOCKER.parent / "classifiedads-migrator")]),
        "ConnectionStrings__Default": shared})
    try:
        run = ["compose", "-f", str(deployment.compose_file), "run", "--rm"]
        completed = deployment.docker(*run, "-e", "ConnectionStrings__Default", "migrator")
        assert completed.returncode == 0, completed.stderr
        assert "Applying migration 20260201104447_InitialProduct" in completed.stdout
        # Nothing else reaches the "container": without -e the migrator has no connection string.
        completed = deployment.docker(*run, "migrator")
        assert completed.returncode == 2 and "no connection string" in completed.stderr
        calls = deployment.calls()
        assert calls[0]["forwarded_env"] == {"ConnectionStrings__Default": True}
        assert password(target_cluster) not in deployment.log.read_text()
    finally:
        drop_database(target_cluster, database)
