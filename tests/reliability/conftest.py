"""The reliability suite's set-ups, on the session clusters of tests/conftest.py.

pytest loads tests/conftest.py first (it sits in a parent directory), so
``source_cluster``, ``target_cluster`` and ``run_playbook`` are the same
session-wide servers and runner as in the main suite. This directory is a
package (``reliability``) so that this file does not shadow that one as the
module ``conftest`` the tests import helpers from.

Scenarios share one set of legacy databases (``legacy``) and one operator's
run (``operator_run``); each scenario that changes something works on its own
consolidated database (``consolidation``), dropped afterwards. A new scenario
is one test function taking these fixtures.

The run ends with the line ``N passed, N failed`` (make reliability prints it
last); a test that did not pass (failed, error, skipped) counts as failed and
fails the run.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import LOCAL_INVENTORY, REPO, consolidation_vars, drop_database, execute, run_sql
from devkit import legacy as legacy_fixture
from psycopg2 import sql

from reliability.harness import ArgvWatcher, copied_tables, kill, module_pids, wait_for

PREFIX = "Rel"
LEGACY_SCALE = 0.01
# The table the copy is cut off in: made big enough that its COPY lasts long
# enough to be caught in the middle (the other tables hold a few hundred rows).
BIG_SCHEMA, BIG_TABLE, BIG_ROWS = "notification", "EmailMessages", 60_000
OPERATOR_ROLE = "rel_operator"
OPERATOR_RUN_ID = "rel-operator-1"
OPERATOR_DATABASE = f"{PREFIX}_Consolidated"


@dataclass
class Legacy:
    prefix: str


# Rows added to three tables so that they are the largest after the big table: the copy takes tables
# largest first, so while one worker copies the big table the other commits these three first.
EARLY_ROWS = 3_000
_EARLY_INSERTS = {
    ("AuditLog", "AuditLogEntries"): 'INSERT INTO "AuditLogEntries" ("UserId", "Action", "Log", "CreatedDateTime") '
                                     "SELECT gen_random_uuid(), 'bulk', repeat(md5(i::text), 4), now() "
                                     "FROM generate_series(1, %(rows)s) AS i",
    ("AuditLog", "IdempotentRequests"): 'INSERT INTO "IdempotentRequests" ("RequestType", "RequestId", '
                                        '"CreatedDateTime") SELECT \'bulk\', repeat(md5(i::text), 4), now() '
                                        "FROM generate_series(1, %(rows)s) AS i",
    ("Product", "ArchivedOutboxMessages"): 'INSERT INTO "ArchivedOutboxMessages" ("Id", "CreatedDateTime", '
                                           '"TriggeredById", "Payload", "Published") SELECT gen_random_uuid(), '
                                           "now(), gen_random_uuid(), repeat(md5(i::text), 4), true "
                                           "FROM generate_series(1, %(rows)s) AS i",
}


def build_legacy(source_cluster, prefix) -> Legacy:
    """The six legacy databases ``<prefix>_*``: the big table enlarged to ``BIG_ROWS`` rows and the
    ``early_tables`` to ``EARLY_ROWS`` more."""
    legacy_fixture.create(source_cluster, LEGACY_SCALE, prefix=prefix, drop_existing=True, out=lambda line: None)
    run_sql(source_cluster, f"{prefix}_Notification", sql.SQL(
        "INSERT INTO {} (\"CreatedDateTime\", \"Subject\", \"Body\", \"AttemptCount\", \"MaxAttemptCount\") "
        "SELECT now() - i * interval '1 minute', 'bulk ' || i, repeat(md5(i::text), 24), 0, 3 "
        "FROM generate_series(1, %s) AS i").format(sql.Identifier(BIG_TABLE)), (BIG_ROWS,))
    for (module, _table), statement in _EARLY_INSERTS.items():
        run_sql(source_cluster, f"{prefix}_{module}", statement, {"rows": EARLY_ROWS})
    for module in ("Notification", "AuditLog", "Product"):
        run_sql(source_cluster, f"{prefix}_{module}", "VACUUM ANALYZE")
    return Legacy(prefix)


def early_tables(prefix):
    """{(legacy database, table)} of the three tables committed while the big table is still copying."""
    return {(f"{prefix}_{module}", table) for module, table in _EARLY_INSERTS}


@pytest.fixture(scope="session")
def legacy(source_cluster):
    """The legacy databases the scenarios share (prefix ``Rel``); a scenario that writes to them builds its own."""
    yield build_legacy(source_cluster, PREFIX)
    legacy_fixture.drop(source_cluster, prefix=PREFIX)


_PLAY_ENDED = object()


@dataclass
class Consolidation:
    """One scenario's consolidated database, run root and backup root, and the playbooks run on them."""

    root: Path
    vars: dict
    run_playbook: object
    # Set in the environment of every process of its plays (ansible-playbook passes it on to the modules it
    # runs locally): how the scenario finds its own processes on a machine where other runs may be going on.
    marker: str = field(default_factory=lambda: f"RELIABILITY_RUN={secrets.token_hex(8)}")
    target_database: str = field(init=False)

    def __post_init__(self):
        self.target_database = self.vars["consolidation_target_database"]

    @property
    def run_root(self) -> Path:
        return Path(self.vars["consolidation_run_root"])

    @property
    def backup_root(self) -> Path:
        return Path(self.vars["consolidation_backup_root"])

    def play(self, *args, playbook="consolidate", expect_rc=0, timeout=600, **extra_vars):
        """ansible-playbook classifiedads.consolidation.<playbook> with this scenario's variables."""
        name, value = self.marker.split("=", 1)
        return self.run_playbook(f"classifiedads.consolidation.{playbook}", *args,
                                 variables={**self.vars, **extra_vars}, env=dict(os.environ, **{name: value}),
                                 expect_rc=expect_rc, timeout=timeout)

    def play_meanwhile(self, moment, action, *args, what, **extra_vars):
        """Play in the background; as soon as ``moment()`` returns a true value, ``action(that value)``.

        Returns (the play's PlaybookRun, whatever ``action`` returned). Fails if the play ends first or
        the moment does not come within five minutes (say ``what`` it is).
        """
        outcome = {}
        player = threading.Thread(target=lambda: outcome.update(done=self.play(*args, expect_rc=None,
                                                                               **extra_vars)))
        player.start()
        try:
            came = wait_for(lambda: moment() or (not player.is_alive() and _PLAY_ENDED), timeout=300, what=what)
            acted = None if came is _PLAY_ENDED else action(came)
        finally:
            player.join()
        assert came is not _PLAY_ENDED, f"the play ended before {what}:\n{outcome['done'].output[-3000:]}"
        return outcome["done"], acted

    def start(self, **extra_vars) -> subprocess.Popen:
        """consolidate.yml started in a session of its own, as an operator's shell starts it: its whole process
        group can be killed without touching pytest's. Output goes to ``<root>/started.out``."""
        vars_file = self.root / f"started-{secrets.token_hex(4)}.json"
        vars_file.write_text(json.dumps({**self.vars, **extra_vars}))
        vars_file.chmod(0o600)
        name, value = self.marker.split("=", 1)
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".ansible", "collections"), **{name: value})
        with open(self.root / "started.out", "w") as output:
            return subprocess.Popen([str(Path(sys.executable).parent / "ansible-playbook"), "-i", LOCAL_INVENTORY,
                                     "-e", f"@{vars_file}", "classifiedads.consolidation.consolidate"],
                                    stdout=output, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                    start_new_session=True)

    def run_dir(self) -> Path:
        return self.run_root / (self.run_root / "latest").read_text().strip()


def only_modules(variables, names):
    """``variables`` with the module mapping cut down to the modules ``names`` (None: all six)."""
    if names is None:
        return variables
    return dict(variables, consolidation_modules=[module for module in variables["consolidation_modules"]
                                                  if module["name"] in names])


@pytest.fixture
def consolidation(legacy, source_cluster, target_cluster, run_playbook, tmp_path):
    """Factory: ``consolidation(name, modules=None, legacy_prefix="Rel", **vars)`` -> a :class:`Consolidation`
    into ``Rel_<name>`` on the target, of every legacy database ``<legacy_prefix>_*`` or only those of
    ``modules`` (a scenario about one step need not back up and copy all six). Its consolidated database is
    dropped afterwards.
    """
    made = []

    def make(name, modules=None, legacy_prefix=PREFIX, **overrides):
        database = f"{PREFIX}_{name}"
        variables = consolidation_vars(source_cluster, target_cluster, tmp_path / name, database, legacy_prefix)
        made.append(database)
        (tmp_path / name).mkdir()  # where an operator keeps runs and backups: it exists, they need not
        return Consolidation(tmp_path / name, {**only_modules(variables, modules), **overrides}, run_playbook)

    yield make
    for database in made:
        drop_database(target_cluster, database)


@dataclass
class OperatorRun:
    """The shared run: password login, -vvv, copy killed mid-table, then rerun with the same run id."""

    password: str
    consolidation: Consolidation
    killed: object  # PlaybookRun of the run whose data_copy was killed
    resumed: object  # PlaybookRun of the rerun
    copied_before_kill: dict  # (source database, source table) -> completed_at, as recorded when the kill landed
    big_rows_after_kill: int
    copying_when_killed: int  # tuples the big table's COPY had sent when the kill landed
    argv_hits: list
    argv_samples: int


def _password_endpoint(info, password):
    return {"host": info.host, "port": info.port, "user": OPERATOR_ROLE, "password": password, "sslmode": "disable"}


def mid_copy(target_cluster, database, tables_committed):
    """A moment for ``play_meanwhile``: the big table's COPY into ``database`` has sent rows while the tables
    ``tables_committed`` ({(source database, table)}) are committed. Its value is the rows sent so far."""

    def moment():
        if not tables_committed <= copied_tables(target_cluster, database).keys():
            return 0
        rows = execute(target_cluster, "SELECT p.tuples_processed FROM pg_stat_progress_copy p "
                                       "JOIN pg_stat_activity a USING (pid) WHERE p.datname = %s "
                                       "AND p.command = 'COPY FROM' AND strpos(a.query, %s) > 0",
                       params=(database, f'"{BIG_TABLE}"'))
        return rows[0][0] if rows else 0

    return moment


@pytest.fixture(scope="session")
def operator_run(legacy, source_cluster, target_cluster, run_playbook, tmp_path_factory):
    """consolidate.yml as an operator runs it with a password (no pgpass) and ``-vvv``: its data copy is
    killed (SIGKILL) in the middle of the big table once other tables are committed, then the operator
    reruns it with the same run id. Every process's argv is sampled throughout."""
    password = "Rel-" + secrets.token_hex(16)
    for info in (source_cluster, target_cluster):
        execute(info, sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(OPERATOR_ROLE), sql.Literal(password)))
    root = tmp_path_factory.mktemp("operator")
    variables = {**consolidation_vars(source_cluster, target_cluster, root, OPERATOR_DATABASE, PREFIX),
                 "consolidation_source": _password_endpoint(source_cluster, password),
                 "consolidation_target": _password_endpoint(target_cluster, password),
                 "consolidation_run_id": OPERATOR_RUN_ID}
    run = Consolidation(root, variables, run_playbook)
    try:
        with ArgvWatcher(password) as watcher:
            committed = early_tables(PREFIX)

            def kill_the_copy(progress):
                before_kill = copied_tables(target_cluster, OPERATOR_DATABASE)
                copy_module = module_pids("data_copy", run.marker)
                assert copy_module, "the data_copy module of this run was not found"
                kill(copy_module)
                return progress, before_kill

            killed, (progress, copied_before_kill) = run.play_meanwhile(
                mid_copy(target_cluster, OPERATOR_DATABASE, committed), kill_the_copy, "-vvv",
                what=f"the copy of {BIG_TABLE} under way after {sorted(committed)}")
            big_rows_after_kill = run_sql(target_cluster, OPERATOR_DATABASE, sql.SQL(
                "SELECT count(*) FROM {}.{}").format(sql.Identifier(BIG_SCHEMA), sql.Identifier(BIG_TABLE)))[0][0]
            resumed = run.play("-vvv", expect_rc=None)
        yield OperatorRun(password, run, killed, resumed, copied_before_kill, big_rows_after_kill,
                          progress, watcher.hits, watcher.samples)
    finally:
        drop_database(target_cluster, OPERATOR_DATABASE)
        for info in (source_cluster, target_cluster):
            execute(info, sql.SQL("DROP OWNED BY {}").format(sql.Identifier(OPERATOR_ROLE)))
            execute(info, sql.SQL("DROP ROLE {}").format(sql.Identifier(OPERATOR_ROLE)))


# --- the closing line: "N passed, N failed" -------------------------------------------------------------

_OUTCOMES: dict[str, bool] = {}


def pytest_runtest_logreport(report):
    passed = report.passed and not getattr(report, "wasxfail", None)
    if report.when == "call":
        _OUTCOMES[report.nodeid] = _OUTCOMES.get(report.nodeid, True) and passed
    elif not passed:  # an error in set-up or teardown, or a skip, is not a pass
        _OUTCOMES[report.nodeid] = False


def pytest_collectreport(report):
    if report.failed:
        _OUTCOMES[report.nodeid or "collection"] = False


def pytest_sessionfinish(session):
    if not all(_OUTCOMES.values()) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config):
    # After pytest's own summary: this is the run's last line.
    passed = sum(_OUTCOMES.values())
    print(f"{passed} passed, {len(_OUTCOMES) - passed} failed", flush=True)
