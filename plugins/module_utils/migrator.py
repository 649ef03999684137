# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the application's migrator and checking what it left behind.

``MigratorRun`` runs the migrator with the shared connection string in its
environment (never argv), kills it after a timeout, keeps its output (the
password masked) in a private log, and checks that the expected tables
exist. ``changed`` compares a fingerprint of the catalog before and after.
The pure parts (which expected tables are missing, the tail of a log, the
timeout) are unit-tested; ``table_inventory`` reads the catalog.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import threading
import time

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, secrets_of
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.npgsql import npgsql_connection_string
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import write_private_file
from ansible_collections.classifiedads.consolidation.plugins.module_utils.secrets_mask import MASK


class MigratorError(ConsolidationError):
    """The migrator failed, hung, or did not leave the expected tables."""


def missing_tables(expected, present):
    """Pure: expected {schema: [table]} minus the present set of (schema, table), as sorted 'schema.table'."""
    return sorted("%s.%s" % (schema, table) for schema, tables in expected.items() for table in tables
                  if (schema, table) not in present)


def log_tail(text, lines=25):
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _parents():
    """{pid: parent pid} of every process now (Linux /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                # The command name may hold spaces and parentheses: the fields after the last ")" are fixed.
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IOError, IndexError):
            continue  # gone meanwhile
        parents[int(entry)] = int(fields[1])
    return parents


def process_tree(pid, parents):
    """Pure: ``pid`` and all its descendants, given {pid: parent pid}."""
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier and child not in tree]
        tree.extend(frontier)
    return tree


def kill_tree(pid):
    """SIGKILL ``pid`` and everything it started. A migrator is often a wrapper (a shell script, ``dotnet
    run``): killing only the process we started leaves its children running against the target database,
    holding the output pipe open so that the module would wait for them anyway. Stopped first, so that
    none can start another child between the listing and the kill."""
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for member in process_tree(pid, _parents()):
            try:
                os.kill(member, sig)
            except OSError:
                pass  # already gone


def run_with_timeout(run_command, argv, timeout, cwd=None, environ_update=None):
    """Run ``argv`` through ``run_command`` (AnsibleModule.run_command) and kill it, with every process it
    started, after ``timeout`` seconds.

    Returns (rc, stdout followed by stderr, whether it was killed, seconds it ran).
    """
    timed_out, timers = [], []

    def arm_timeout(process):
        timer = threading.Timer(timeout, lambda: (timed_out.append(True), kill_tree(process.pid)))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    started = time.monotonic()
    try:
        rc, stdout, stderr = run_command(argv, cwd=cwd, environ_update=environ_update,
                                         before_communicate_callback=arm_timeout)
    finally:
        for timer in timers:
            timer.cancel()
    return rc, stdout + stderr, bool(timed_out), round(time.monotonic() - started, 3)


def keep_log(path, text, secrets=()):
    """Write ``text`` to the private log ``path`` (0600; its directory 0700 when created) with ``secrets``
    (the connection's password and key passphrase) masked; returns what was written."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    log_dir = os.path.dirname(path)
    if log_dir and not os.path.isdir(log_dir):
        os.makedirs(log_dir, 0o700)
    write_private_file(path, text)
    return text


def table_inventory(endpoint, database, schemas):
    """Set of (schema, table) in ``schemas`` plus a fingerprint of the catalog that DDL changes.

    Returns (None, None) when the database does not exist yet.
    """
    admin = connect(endpoint, endpoint["maintenance_db"], autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                return None, None
    finally:
        admin.close()
    conn = connect(endpoint, database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
                        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)", (list(schemas),))
            tables = set(cur.fetchall())
            # Any DDL a migration runs moves at least one of these (data-only migrations do not).
            cur.execute("SELECT (SELECT count(*) FROM pg_catalog.pg_namespace), "
                        "(SELECT count(*) FROM pg_catalog.pg_class), "
                        "(SELECT count(*) FROM pg_catalog.pg_attribute WHERE attnum > 0 AND NOT attisdropped), "
                        "(SELECT count(*) FROM pg_catalog.pg_constraint), "
                        "(SELECT count(*) FROM pg_catalog.pg_index)")
            fingerprint = list(cur.fetchone())
        return tables, fingerprint
    finally:
        conn.rollback()
        conn.close()


class MigratorRun(object):
    """One run of the migrator ``command`` against ``database`` on the ``target`` server.

    ``result`` holds what the task returns (command, log_file, and as they
    become known duration, rc, missing_tables), also when a step fails.
    """

    def __init__(self, run_command, target, database, command, log_file, expect_tables=None, chdir=None,
                 timeout=1800, connection_string_env="ConnectionStrings__Default", environment=None):
        self.run_command = run_command
        self.target = target
        self.database = database
        self.command = command
        self.log_file = log_file
        self.expect_tables = expect_tables or {}
        self.chdir = chdir
        self.timeout = timeout
        self.connection_string_env = connection_string_env
        self.environment = environment or {}
        self.result = dict(command=command, log_file=log_file)

    def _inventory(self):
        return table_inventory(self.target, self.database, list(self.expect_tables) or ["public"])

    def _check_tables(self, tables):
        self.result["missing_tables"] = missing_tables(self.expect_tables, tables or set())
        return self.result["missing_tables"]

    def inspect(self):
        """Check mode: list the expected tables missing now; whether running the migrator would change anything."""
        tables, fingerprint = self._inventory()
        return bool(self._check_tables(tables)) or fingerprint is None

    def run(self):
        """Run the migrator and check the expected tables; whether the catalog changed."""
        _tables, before = self._inventory()
        env = dict((key, str(value)) for key, value in self.environment.items())
        env[self.connection_string_env] = npgsql_connection_string(self.target, self.database)
        rc, output, timed_out, self.result["duration"] = run_with_timeout(
            self.run_command, self.command, self.timeout, cwd=self.chdir, environ_update=env)
        output = keep_log(self.log_file, output, secrets_of(self.target))
        if timed_out:
            raise MigratorError("the migrator did not finish within %d s and was killed; last lines of %s:\n%s"
                                % (self.timeout, self.log_file, log_tail(output)))
        self.result["rc"] = rc
        if rc != 0:
            raise MigratorError("the migrator failed with exit status %d; last lines of %s:\n%s"
                                % (rc, self.log_file, log_tail(output)))
        after_tables, after = self._inventory()
        missing = self._check_tables(after_tables)
        if missing:
            raise MigratorError("the migrator succeeded but %d expected table(s) do not exist: %s"
                                % (len(missing), ", ".join(missing)))
        return after != before
