"""The ClassifiedAds application under a real Docker Engine and Compose v2, for the tests that run it.

The engine comes from the ``docker_env`` fixture (tests/conftest.py).

:class:`ComposeStack` writes a project from ``tools/docker/classifiedads`` (compose file, the db
service's entrypoint) and the ClassifiedAds files of ``tests/fixtures/classifiedads_app`` (the three
appsettings.json), with a ``.env`` in ClassifiedAds' shape whose per-module connection strings name
the ``db`` service, and brings it up as the migration plan does: ``up -d db``, then (once the legacy
databases exist) ``up -d webapi background``. With ``database`` (an embedded cluster) the application
uses that server instead of ``db``, through its pgpass file (mounted read-only at the same path by a
``docker-compose.override.yml``, with any other ``passfiles`` the cutover may write into the files).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from conftest import REPO
from constants import APP_FIXTURE, MODULE_NAMES
from devkit.pgembed import ClusterInfo
from standin_app import harness

PROJECT_TEMPLATE = Path(REPO) / "tools" / "docker" / "classifiedads"
SETTINGS_FILES = ["ClassifiedAds.WebAPI/appsettings.json", "ClassifiedAds.Background/appsettings.json",
                  "ClassifiedAds.Migrator/appsettings.json"]
SUPERUSER = "postgres"


class ComposeStack:
    """One compose project in ``directory``; ``db`` is its PostgreSQL server as the host reaches it."""

    def __init__(self, directory: Path, docker_env: dict, prefix: str = "ClassifiedAds",
                 database: ClusterInfo | None = None, passfiles: tuple = ()):
        self.directory = Path(directory)
        self.prefix = prefix
        self.webapi_port, self.background_port = harness.free_port(), harness.free_port()
        self.env = {**os.environ, **docker_env}
        self.webapi_url = f"http://127.0.0.1:{self.webapi_port}"
        self.background_url = f"http://127.0.0.1:{self.background_port}"
        if database is None:
            self.password = secrets.token_hex(16)  # no character that .env or Npgsql would need to quote
            self.db = ClusterInfo(name="compose-db", host="127.0.0.1", port=harness.free_port(), user=SUPERUSER,
                                  passfile=str(self.directory.parent / "pgpass"), data_dir="", socket_dir="",
                                  log_file="", bin_dir="/usr/lib/postgresql/15/bin", version="15")
        else:
            self.password, self.db = None, database
        self._write_project(database is None, (self.db.passfile, *passfiles) if database else ())

    def _write_project(self, with_db: bool, passfiles: tuple):
        self.directory.mkdir(parents=True)
        for name in SETTINGS_FILES:
            target = self.directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            settings = json.loads((APP_FIXTURE / name).read_text())
            # The files as the developers run the app outside containers; the .env wins inside them.
            for module, section in settings["Modules"].items():
                section["ConnectionStrings"]["Default"] = self.connection_string(module, "127.0.0.1")
            target.write_text(json.dumps(settings, indent=2) + "\n")
            target.chmod(0o600)
        shutil.copy2(PROJECT_TEMPLATE / "docker-compose.yml", self.directory / "docker-compose.yml")
        shutil.copytree(PROJECT_TEMPLATE / "db", self.directory / "db")
        if with_db:
            _private(self.directory / "secrets" / "db_password", self.password)
            _private(Path(self.db.passfile), f"127.0.0.1:{self.db.port}:*:{SUPERUSER}:{self.password}\n")
        else:  # compose wants the secret's file even for a service that is never started
            _private(self.directory / "secrets" / "db_password", "")
        if passfiles:
            mounts = [f"{path}:{path}:ro" for path in passfiles]
            override = {"services": {service: {"volumes": mounts} for service in ("migrator", "webapi", "background")}}
            (self.directory / "docker-compose.override.yml").write_text(json.dumps(override, indent=2) + "\n")
        lines = [f"COMPOSE_PROJECT_NAME=cad-{secrets.token_hex(4)}",
                 "ASPNETCORE_ENVIRONMENT=Development", "DOTNET_ENVIRONMENT=Development",
                 f"DB_PORT={self.db.port}", f"WEBAPI_PORT={self.webapi_port}",
                 f"BACKGROUND_PORT={self.background_port}"]
        # `db` names the compose service; a server outside compose is named as the host reaches it (its pgpass
        # entry matches that name only).
        self.dotenv_host = "db" if with_db else self.db.host
        lines += [f"Modules__{module}__ConnectionStrings__Default={self.connection_string(module, self.dotenv_host)}"
                  for module in MODULE_NAMES]
        _private(self.directory / ".env", "\n".join(lines) + "\n")

    def connection_string(self, module: str, host: str) -> str:
        return harness.connection_string(host, self.db.port, f"{self.prefix}_{module}", self.db.user, self.password,
                                         passfile=None if self.password else self.db.passfile)

    def legacy_databases(self) -> list:
        return [f"{self.prefix}_{module}" for module in MODULE_NAMES]

    def endpoint(self) -> dict:
        """The collection's connection dictionary for the db service (password, no pgpass: the migrator
        container receives the connection string the migrator role builds from it)."""
        return {"host": "127.0.0.1", "port": self.db.port, "user": SUPERUSER, "password": self.password,
                "sslmode": "disable"}

    def control_variables(self) -> dict:
        """The play variables that put this project under app_control (compose mode), cutover and smoke."""
        return {
            "app_control_mode": "compose",
            "app_control_compose_project_dir": str(self.directory),
            "app_control_services": ["webapi", "background"],
            "app_control_health_checks": [{"url": f"{self.webapi_url}/health"},
                                          {"url": f"{self.background_url}/health"}],
            "cutover_app_dir": str(self.directory),
            "smoke_base_url": self.webapi_url,
        }

    def compose(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(["docker", "compose", *args], cwd=self.directory, env=self.env, capture_output=True,
                              text=True, check=False, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout}{done.stderr}")
        return done

    def containers(self) -> dict:
        """service -> (state, container id) of every container of the project, stopped ones included."""
        rows = self.compose("ps", "--all", "--format", "json").stdout.strip()
        found = {}
        for line in rows.splitlines():
            for row in (json.loads(line) if line.startswith("[") else [json.loads(line)]):
                found[row["Service"]] = (row["State"], row["ID"])
        return found

    def wait_until_serving(self, timeout: float = 60):
        """Until webapi and background answer /health with 200 (a container that was just started needs a moment)."""
        deadline = time.monotonic() + timeout
        for url in (self.webapi_url, self.background_url):
            while True:
                try:
                    status, body = harness.request(url + "/health", timeout=5)
                except OSError as exc:
                    status, body = None, exc
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    logs = self.compose("logs", "--tail", "20", check=False).stdout
                    raise AssertionError(f"{url}/health did not answer 200 within {timeout} s ({body}):\n{logs}")
                time.sleep(0.2)

    def down(self):
        self.compose("down", "--volumes", "--timeout", "10", check=False)


def _private(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
