"""Start a throwaway PostgreSQL 15 server inside the Molecule instance (run there by prepare.yml).

Usage: python3 start_server.py STATE_DIR

The instance shares the host's network, so the server listens on 127.0.0.1 at a port that is free
on the host, and is reached the same way from inside the container and from the host. STATE_DIR is
mounted at the same path on both sides: the port goes to ``STATE_DIR/port``, the superuser's
password only to ``STATE_DIR/pgpass`` (0600) and to initdb's password file, removed right after.
Nothing secret is printed or passed in an argument. Runs with the image's python3 (stdlib only).
"""

import os
import pwd
import secrets
import socket
import subprocess
import sys
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
DATA = Path("/var/lib/postgresql/molecule")
OS_USER = "postgres"


def as_server_user(*argv):
    subprocess.run(["runuser", "-u", OS_USER, "--", *map(str, argv)], check=True)


def write_private(path, text, owner=None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(state_dir):
    server_user = pwd.getpwnam(OS_USER)
    password = secrets.token_urlsafe(24)
    DATA.mkdir(mode=0o700)
    os.chown(DATA, server_user.pw_uid, server_user.pw_gid)
    pwfile = DATA.parent / "initdb-password"
    write_private(pwfile, password + "\n", owner=server_user)
    try:
        as_server_user(BIN / "initdb", "-D", DATA, "-U", "postgres", f"--pwfile={pwfile}",
                       "--auth-host=scram-sha-256", "--auth-local=peer", "--encoding=UTF8", "--no-locale",
                       "--no-sync", "--no-instructions")
    finally:
        pwfile.unlink()
    # Any port: the file stays valid if the server is restarted elsewhere.
    write_private(state_dir / "pgpass", f"127.0.0.1:*:*:postgres:{password}\n")
    port = free_port()
    # A throwaway server: durability costs time and buys nothing here.
    settings = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={DATA} "
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
    as_server_user(BIN / "pg_ctl", "-D", DATA, "-l", DATA / "server.log", "-o", settings, "-w", "start")
    (state_dir / "port").write_text(f"{port}\n")
    print(f"PostgreSQL 15 listening on 127.0.0.1:{port}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
