"""Helpers to configure and run the stand-in WebAPI from tests and demos (standard library only).

Nothing here imports psycopg2, so the docker CLI stand-in (``tools/bin/docker``) can use it under any
Python 3; the application process itself runs under ``python`` (default: this interpreter), which
needs psycopg2.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"^Now listening on: (http://\S+)$", re.MULTILINE)


def connection_string(host: str, port: int, database: str, username: str, password: str | None = None,
                      passfile: str | None = None) -> str:
    """An Npgsql connection string as ClassifiedAds' settings carry it (values quoted where Npgsql needs it)."""
    values = {"Host": host, "Port": port, "Database": database, "Username": username, "Password": password,
              "Passfile": passfile}
    return ";".join(f"{keyword}={_quote(str(value))}" for keyword, value in values.items() if value is not None)


def _quote(value: str) -> str:
    if value != value.strip() or any(char in value for char in ";'\""):
        return "'" + value.replace("'", "''") + "'"
    return value


def appsettings(shared: str | None = None, modules: dict[str, str] | None = None) -> dict:
    """The settings document: top-level ``ConnectionStrings:Default`` and/or per-module strings."""
    document: dict = {"Logging": {"LogLevel": {"Default": "Information"}}}
    if modules:
        document["Modules"] = {module: {"ConnectionStrings": {"Default": value}} for module, value in modules.items()}
    if shared is not None:
        document["ConnectionStrings"] = {"Default": shared}
    return document


def write_appsettings(path: Path, shared: str | None = None, modules: dict[str, str] | None = None) -> Path:
    """Write the settings document to ``path`` (0600: it holds a password)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(appsettings(shared, modules), handle, indent=2)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command(appsettings_path: str | None, port: int, pidfile: str | None = None,
            python: str | None = None) -> list[str]:
    """The stand-in's command line (run it with ``PYTHONPATH`` including :data:`TOOLS_DIR`)."""
    argv = [python or sys.executable, "-m", "standin_app", "--port", str(port)]
    if appsettings_path is not None:
        argv += ["--appsettings", str(appsettings_path)]
    if pidfile is not None:
        argv += ["--pidfile", str(pidfile)]
    return argv


def environment(extra: dict[str, str] | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the stand-in: no inherited .NET settings, ``PYTHONPATH`` to the tools."""
    base = os.environ if base is None else base
    env = {name: value for name, value in base.items()
           if name in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")}
    env["PYTHONPATH"] = str(TOOLS_DIR)
    env.update(extra or {})
    return env


class StandinProcess:
    """The stand-in running in the foreground of a test: ``with StandinProcess(...) as app: app.url``."""

    def __init__(self, appsettings_path: str | None, log_file: Path, env: dict[str, str] | None = None,
                 port: int = 0, python: str | None = None):
        self.log_file = Path(log_file)
        self.argv = command(appsettings_path, port, python=python)
        self.env = environment(env)
        self.process: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self, timeout: float = 15) -> StandinProcess:
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log())
            if found:
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"the stand-in exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the stand-in did not start within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> StandinProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def request(url: str, method: str = "GET", body=None, timeout: float = 10) -> tuple[int, object]:
    """``(status, decoded JSON body)`` of one request; HTTP errors are answers, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
