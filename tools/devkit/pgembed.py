"""Throwaway local PostgreSQL clusters for the demo and the test suite.

Usage::

    python -m devkit.pgembed start  [--name source] [--durable]
    python -m devkit.pgembed status [--name source]
    python -m devkit.pgembed env    [--name source]     # shell exports for psql & co
    python -m devkit.pgembed stop   [--name source | --all]
    python -m devkit.pgembed destroy [--name source | --all]

Each cluster lives in ``$CLASSIFIEDADS_PG_ROOT/<name>`` (default
``/var/tmp/classifiedads-pg``), listens on 127.0.0.1 only, on a free port
chosen at first start and kept afterwards, and authenticates every TCP and
socket connection with scram-sha-256. The superuser password is generated,
handed to ``initdb`` through a file that is removed right after, and kept only
in a 0600 pgpass file that clients use through ``PGPASSFILE``: it never
appears on a command line.

The PostgreSQL server refuses to run as root, so when this tool is invoked as
root it runs ``initdb`` and ``pg_ctl`` as an unprivileged OS user (``postgres``
unless ``PGEMBED_OS_USER`` says otherwise) through ``runuser``. Server
binaries are found in ``PG_BINDIR`` or the newest ``/usr/lib/postgresql/*/bin``;
when there are none, root installs Debian's ``postgresql`` package and anyone
else is told exactly what to install.

The clusters are for development and tests: unless ``--durable`` is given
they run with ``fsync=off``, which is unsafe for data anyone wants to keep.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_ROOT = "/var/tmp/classifiedads-pg"
DEFAULT_OS_USER = "postgres"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
STATE_FILE = "cluster.json"


class ClusterError(RuntimeError):
    """A cluster could not be created, started or stopped; the message says why."""


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """How to reach a running cluster. Holds no secret: the password stays in ``passfile``."""

    name: str
    host: str
    port: int
    user: str
    passfile: str
    data_dir: str
    socket_dir: str
    log_file: str
    bin_dir: str
    version: str

    def connect_kwargs(self, dbname: str = "postgres") -> dict:
        """Keyword arguments for ``psycopg2.connect``."""
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": dbname, "passfile": self.passfile}

    def libpq_env(self) -> dict:
        """Environment variables that point libpq clients (psql, pg_dump, ...) at this cluster."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user, "PGPASSFILE": self.passfile}

    def bin(self, program: str) -> str:
        return os.path.join(self.bin_dir, program)


def find_bin_dir(install: bool = True) -> str:
    """Locate the PostgreSQL server binaries, installing Debian's package as root if there are none."""
    candidates = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if os.access(os.path.join(candidate, "initdb"), os.X_OK) and os.access(
            os.path.join(candidate, "pg_ctl"), os.X_OK
        ):
            return candidate
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("pgembed: no PostgreSQL server binaries found; installing Debian's postgresql package", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env)
        return find_bin_dir(install=False)
    raise ClusterError(
        "no PostgreSQL server binaries (initdb, pg_ctl) found: install them with "
        "'apt-get install postgresql' (Debian/Ubuntu) or point PG_BINDIR at the directory that holds them"
    )


def _version_key(path: str) -> tuple:
    version = Path(path).parent.name
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


class EmbeddedCluster:
    """One named throwaway cluster under the harness root directory."""

    def __init__(self, name: str = "source", root: str | None = None, durable: bool = False,
                 settings: dict | None = None):
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ClusterError(f"cluster name {name!r} must be letters, digits, '-' or '_'")
        self.name = name
        self.root = Path(root or os.environ.get("CLASSIFIEDADS_PG_ROOT") or DEFAULT_ROOT)
        self.dir = self.root / name
        self.data_dir = self.dir / "data"
        self.socket_dir = self.dir / "run"
        self.log_file = self.dir / "postgresql.log"
        self.passfile = self.dir / "pgpass"
        self.state_file = self.dir / STATE_FILE
        self.durable = durable
        # postgresql.conf lines over the harness defaults (e.g. {"wal_level": "replica"} for a server that
        # cannot do online mode); written once, at initdb.
        self.settings = dict(settings or {})

    # -- privileges -----------------------------------------------------------------------------

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _os_user(self) -> pwd.struct_passwd | None:
        if not self._as_root:
            return None
        name = os.environ.get("PGEMBED_OS_USER", DEFAULT_OS_USER)
        try:
            return pwd.getpwnam(name)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True
            )
            return pwd.getpwnam(name)

    def _run_server_tool(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        user = self._os_user()
        if user is not None:
            argv = ["runuser", "-u", user.pw_name, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd="/")
        if check and result.returncode != 0:
            raise ClusterError(
                f"{os.path.basename(argv[argv.index('--') + 1] if '--' in argv else argv[0])} failed "
                f"(exit {result.returncode}): {(result.stderr or result.stdout).strip()}{self._log_tail()}"
            )
        return result

    def _log_tail(self, lines: int = 15) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n--- tail of " + str(self.log_file) + " ---\n" + "\n".join(tail)

    def _give_to_server_user(self, path: Path) -> None:
        user = self._os_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    # -- state ----------------------------------------------------------------------------------

    def _load_state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def _save_state(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)

    def _info(self, state: dict) -> ClusterInfo:
        return ClusterInfo(
            name=self.name,
            host=HOST,
            port=int(state["port"]),
            user=SUPERUSER,
            passfile=str(self.passfile),
            data_dir=str(self.data_dir),
            socket_dir=str(self.socket_dir),
            log_file=str(self.log_file),
            bin_dir=state["bin_dir"],
            version=state["version"],
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def is_running(self) -> bool:
        state = self._load_state()
        if state is None or not (self.data_dir / "PG_VERSION").exists():
            return False
        result = self._run_server_tool([os.path.join(state["bin_dir"], "pg_ctl"), "status", "-D", str(self.data_dir)],
                                       check=False)
        return result.returncode == 0

    def info(self) -> ClusterInfo:
        state = self._load_state()
        if state is None:
            raise ClusterError(f"cluster {self.name!r} does not exist under {self.root}; start it first")
        return self._info(state)

    def start(self) -> ClusterInfo:
        """Create the cluster on first use, start it unless it runs already, and return how to reach it."""
        state = self._load_state()
        if state is None or not (self.data_dir / "PG_VERSION").exists():
            state = self._initdb()
        elif self.is_running():
            return self._info(state)
        for _attempt in range(3):
            if not port_is_free(int(state["port"])):
                state["port"] = free_port()
                self._save_state(state)
            try:
                self._pg_ctl_start(state)
                return self._info(state)
            except ClusterError:
                # Another process may have taken the port between the check and the bind.
                if port_is_free(int(state["port"])):
                    raise
        raise ClusterError(f"cluster {self.name!r} could not find a free port to listen on")

    def _initdb(self) -> dict:
        bin_dir = find_bin_dir()
        user = self._os_user()
        if self.dir.exists():
            shutil.rmtree(self.dir)  # a half-created cluster from an interrupted start
        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.dir.mkdir(mode=0o755)
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(mode=0o700)
            self._give_to_server_user(directory)
        password = secrets.token_urlsafe(24)
        pwfile = self.dir / "initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        self._give_to_server_user(pwfile)
        try:
            self._run_server_tool([
                os.path.join(bin_dir, "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions",
            ])
        finally:
            pwfile.unlink()
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            # Any port: the port may change when a restart finds the old one taken.
            handle.write(f"{HOST}:*:*:{SUPERUSER}:{password}\n")
        self._write_server_settings()
        version = (self.data_dir / "PG_VERSION").read_text().strip()
        state = {"port": free_port(), "bin_dir": bin_dir, "version": version,
                 "os_user": user.pw_name if user else None, "durable": self.durable}
        self._save_state(state)
        return state

    def _write_server_settings(self) -> None:
        settings = {
            "listen_addresses": f"'{HOST}'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_buffers": "'256MB'",
            "max_wal_size": "'4GB'",
            "checkpoint_timeout": "'30min'",
            "logging_collector": "off",
            # Online mode (consolidation_sync: online) streams each legacy database through a logical
            # replication slot: every throwaway cluster can, as a self-hosted server must be set up for it.
            "wal_level": "logical",
            "max_replication_slots": "32",
            "max_wal_senders": "32",
        }
        if not self.durable:
            settings.update(fsync="off", full_page_writes="off", synchronous_commit="off")
        settings.update(self.settings)
        conf = self.data_dir / "postgresql.conf"
        body = "\n# --- devkit.pgembed settings (throwaway cluster) ---\n"
        body += "".join(f"{key} = {value}\n" for key, value in settings.items())
        self._append_as_server_user(conf, body)

    def _append_as_server_user(self, path: Path, text: str) -> None:
        user = self._os_user()
        if user is None:
            with open(path, "a") as handle:
                handle.write(text)
            return
        subprocess.run(["runuser", "-u", user.pw_name, "--", "tee", "-a", str(path)],
                       input=text, text=True, check=True, stdout=subprocess.DEVNULL)

    def _pg_ctl_start(self, state: dict) -> None:
        if not self.log_file.exists():
            self.log_file.touch(mode=0o644)
            self._give_to_server_user(self.log_file)
        self._run_server_tool([
            os.path.join(state["bin_dir"], "pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_file),
            "-w", "-t", "60", "-o", f"-p {int(state['port'])}",
        ])

    def stop(self) -> bool:
        """Stop the cluster if it runs; return whether it was running. Waits until the postmaster is gone."""
        state = self._load_state()
        if state is None or not self.is_running():
            return False
        self._run_server_tool([
            os.path.join(state["bin_dir"], "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60",
        ])
        deadline = time.monotonic() + 30
        while (self.data_dir / "postmaster.pid").exists():
            if time.monotonic() > deadline:
                raise ClusterError(f"cluster {self.name!r} did not stop within 30 s{self._log_tail()}")
            time.sleep(0.05)
        return True

    def destroy(self) -> None:
        self.stop()
        if self.dir.exists():
            shutil.rmtree(self.dir)


def all_clusters(root: str | None = None) -> list[EmbeddedCluster]:
    base = Path(root or os.environ.get("CLASSIFIEDADS_PG_ROOT") or DEFAULT_ROOT)
    if not base.is_dir():
        return []
    return [EmbeddedCluster(path.parent.name, str(base)) for path in sorted(base.glob(f"*/{STATE_FILE}"))]


def _describe(cluster: EmbeddedCluster) -> dict:
    described = {"name": cluster.name, "running": cluster.is_running()}
    if cluster.state_file.exists():
        described.update(dataclasses.asdict(cluster.info()))
    return described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.pgembed", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status", "env", "destroy"])
    parser.add_argument("--name", default="source", help="cluster name (default: source)")
    parser.add_argument("--all", action="store_true", help="stop/destroy/status every cluster under the root")
    parser.add_argument("--root", help="directory holding the clusters "
                        f"(default: $CLASSIFIEDADS_PG_ROOT or {DEFAULT_ROOT})")
    parser.add_argument("--durable", action="store_true", help="keep fsync on (new clusters only)")
    args = parser.parse_args(argv)
    try:
        clusters = all_clusters(args.root) if args.all else [EmbeddedCluster(args.name, args.root, args.durable)]
        if args.command == "start":
            for cluster in clusters:
                print(json.dumps(dataclasses.asdict(cluster.start())))
        elif args.command == "status":
            statuses = [_describe(cluster) for cluster in clusters]
            print(json.dumps(statuses if args.all else statuses[0], indent=2))
            return 0 if all(status["running"] for status in statuses) else 3
        elif args.command == "env":
            for key, value in clusters[0].info().libpq_env().items():
                print(f"export {key}={value}")
        elif args.command == "stop":
            for cluster in clusters:
                print(f"{cluster.name}: {'stopped' if cluster.stop() else 'was not running'}")
        elif args.command == "destroy":
            for cluster in clusters:
                cluster.destroy()
                print(f"{cluster.name}: destroyed")
    except ClusterError as exc:
        print(f"pgembed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
