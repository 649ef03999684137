"""Online mode's playbooks end to end on two real servers, with an application-like writer on the legacy databases.

sync.yml copies while the writer keeps committing inserts, updates and deletes in all six legacy
databases and leaves one applier per database streaming; sync_status.yml shows their lag; cutover.yml
fences, lets them catch up, verifies by content, cuts over and drops the slots. Every write whose COMMIT
returned must then be in the consolidated database, and no slot or publication may be left. A second
run is rolled back after sync.yml instead: appliers stopped, slots and publications gone, the legacy
databases writable. The connections carry real passwords (no passfile), and -vvv must never print them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest
from conftest import consolidation_vars, drop_database, endpoint, execute, run_sql
from devkit import legacy
from devkit.writer_load import WriterLoad
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import (
    PROGRESS_TABLE,
    applier_files,
    is_ours,
    of_run,
)

pytestmark = pytest.mark.integration

SLOT_PREFIX = "onlinetest"
MODULES = ("Product", "Identity", "Storage", "Notification", "AuditLog", "Configuration")


def password_of(info):
    """The cluster superuser's password, from the harness's own pgpass line (host:port:db:user:password)."""
    return Path(info.passfile).read_text().strip().split(":", 4)[4]


def with_password(info):
    """The collection's connection dictionary with the password itself, as an inventory vaults it."""
    return {"host": info.host, "port": info.port, "user": info.user, "password": password_of(info),
            "sslmode": "disable"}


def slots_of_ours(info):
    return [name for (name,) in run_sql(info, "postgres", "SELECT slot_name FROM pg_replication_slots")
            if is_ours(name, SLOT_PREFIX)]


def publications_of_ours(info, prefix):
    found = []
    for module in MODULES:
        found += [name for (name,) in run_sql(info, f"{prefix}_{module}", "SELECT pubname FROM pg_publication")
                  if is_ours(name, SLOT_PREFIX)]
    return found


def applier_pids(run_dir, prefix):
    """{legacy database: pid} of every applier whose pid file exists."""
    pids = {}
    for module in MODULES:
        path = Path(applier_files(str(run_dir), f"{prefix}_{module}")["pid"])
        if path.exists():
            pids[f"{prefix}_{module}"] = json.loads(path.read_text())["pid"]
    return pids


def applier_restarts(run_dir, prefix):
    """{legacy database: restarts} from each applier's status file."""
    restarts = {}
    for module in MODULES:
        status = Path(applier_files(str(run_dir), f"{prefix}_{module}")["status"])
        restarts[f"{prefix}_{module}"] = json.loads(status.read_text())["restarts"]
    return restarts


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone as far as the applier goes.
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"waited {timeout} s for {what}")


def applied_transactions(info, database):
    rows = run_sql(info, database, f'SELECT coalesce(sum(transactions), 0) FROM "_consolidation".{PROGRESS_TABLE}')
    return int(rows[0][0])


class OnlineRun:
    """One online consolidation of legacy databases ``<prefix>_<Module>`` into ``<prefix>_Consolidated``."""

    def __init__(self, prefix, root, source, target, run_playbook):
        self.prefix, self.root, self.source, self.target = prefix, root, source, target
        self.database = f"{prefix}_Consolidated"
        self.run_playbook = run_playbook
        self.plays = 0
        self.variables = {
            **consolidation_vars(source, target, root, self.database, prefix),
            "consolidation_source": with_password(source),
            "consolidation_target": with_password(target),
            "consolidation_sync": "online",
            "consolidation_sync_slot_prefix": SLOT_PREFIX,
        }
        legacy.create(source, 0.01, prefix=prefix, drop_existing=True, out=lambda line: None)

    def play(self, playbook, *args, expect_rc=0):
        done = self.run_playbook(f"classifiedads.consolidation.{playbook}", *args, variables=self.variables,
                                 expect_rc=None)
        # The whole output beside the run, for a failure's reader (the assertion shows only its end).
        self.plays += 1
        (self.root / f"{self.plays:02d}-{playbook}.log").write_text(done.output)
        assert done.rc == expect_rc, done.output[-8000:]
        return done

    @property
    def run_id(self):
        return (self.root / "runs" / "latest").read_text().strip()

    @property
    def run_dir(self):
        return self.root / "runs" / self.run_id

    def assert_no_secret(self, output):
        for info in (self.source, self.target):
            # pytest.fail, not assert: the assertion's report would print the password.
            if password_of(info) in output:
                pytest.fail("a password is in the playbook's output")

    def close(self):
        """Stop what a failed test left running, then drop its slots (a database with one cannot go) and databases."""
        pids = applier_pids(self.run_dir, self.prefix).values() if (self.root / "runs" / "latest").exists() else ()
        for pid in pids:
            if alive(pid):
                os.kill(pid, 15)
        wait_until(lambda: not any(alive(pid) for pid in pids), 30, "the appliers to stop")
        for name in slots_of_ours(self.source):
            run_sql(self.source, "postgres", "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                                             "WHERE slot_name = %s AND active_pid IS NOT NULL", (name,))
            wait_until(lambda name=name: run_sql(self.source, "postgres", "SELECT active FROM pg_replication_slots "
                                                                          "WHERE slot_name = %s", (name,))
                       == [(False,)], 10, "the slot to be released")
            run_sql(self.source, "postgres", "SELECT pg_drop_replication_slot(%s)", (name,))
        legacy.drop(self.source, prefix=self.prefix)
        drop_database(self.target, self.database)


@pytest.fixture
def online_run(tmp_path, source_cluster, target_cluster, run_playbook, request):
    run = OnlineRun(request.param, tmp_path, source_cluster, target_cluster, run_playbook)
    yield run
    run.close()


@pytest.mark.parametrize("online_run", ["OnlineCut"], indirect=True)
def test_sync_then_cutover_under_a_writer_loses_no_write_and_leaves_no_slot(online_run, source_cluster,
                                                                            target_cluster):
    run = online_run
    load = WriterLoad(source_cluster, rate=40, prefix=run.prefix).start()
    try:
        done = run.play("sync", "-vvv")
        run.assert_no_secret(done.output)
        assert "SYNCING" in done.output, done.output[-3000:]
        # The appliers outlive the play and keep applying the writer's transactions.
        pids = applier_pids(run.run_dir, run.prefix)
        assert sorted(pids) == sorted(f"{run.prefix}_{module}" for module in MODULES)
        assert all(alive(pid) for pid in pids.values())
        slots = slots_of_ours(source_cluster)
        assert len(slots) == len(MODULES) and all(of_run(name, run.run_id, SLOT_PREFIX) for name in slots)
        before = applied_transactions(target_cluster, run.database)
        wait_until(lambda: applied_transactions(target_cluster, run.database) > before + 20, 120,
                   "the appliers to apply the writer's transactions after sync.yml ended")

        status = run.play("sync_status", "-e", f"consolidation_run_id={run.run_id}")
        assert status.changed == 0
        for module in MODULES:
            assert f"{run.prefix}_{module}" in status.output

        # The window: the writer keeps trying; the fence refuses it from then on.
        restarts = applier_restarts(run.run_dir, run.prefix)
        done = run.play("cutover", "-vvv")
        run.assert_no_secret(done.output)
        assert "PASSED" in done.output, done.output[-5000:]
        # The run's own slots, read by its appliers, are what cutover.yml works with: no forgotten-slot warning.
        assert "a slot no applier reads" not in done.output
        # The fence left the appliers' WAL senders alone: no applier had to reconnect during the window.
        assert applier_restarts(run.run_dir, run.prefix) == restarts
    finally:
        stats = load.stop()
    assert stats.inserts > 0 and stats.updates > 0 and stats.deletes > 0, stats
    report = load.check(target_cluster, run.database)
    assert report.ok, report.summary()
    assert slots_of_ours(source_cluster) == []
    assert publications_of_ours(source_cluster, run.prefix) == []
    assert not any(alive(pid) for pid in pids.values())


@pytest.mark.parametrize("online_run", ["OnlineBack"], indirect=True)
def test_rollback_after_sync_stops_the_appliers_drops_slots_and_publications_and_leaves_the_legacy_writable(
        online_run, source_cluster, target_cluster):
    run = online_run
    run.play("sync")
    # The records of the run's slots keep every other run out of the consolidated database while it streams.
    recorded = 'SELECT count(*) FROM _consolidation.sync_slots WHERE run_id = %s'
    assert run_sql(target_cluster, run.database, recorded, (run.run_id,)) == [(len(MODULES),)]
    pids = applier_pids(run.run_dir, run.prefix)
    assert len(pids) == len(MODULES) and all(alive(pid) for pid in pids.values())
    assert len(slots_of_ours(source_cluster)) == len(MODULES)
    # The application keeps writing after the backup: an online run's legacy databases differ from it by design.
    configuration = f"{run.prefix}_Configuration"
    run_sql(source_cluster, configuration, 'INSERT INTO "ConfigurationEntries" ("Key", "IsSensitive", '
                                           "\"CreatedDateTime\") VALUES ('written during the sync', false, now())")

    # Check mode names what it would do and changes nothing.
    run.play("rollback", "--check", "-e", f"consolidation_run_id={run.run_id}")
    assert all(alive(pid) for pid in pids.values())
    assert len(slots_of_ours(source_cluster)) == len(MODULES)

    done = run.play("rollback", "-vvv", "-e", f"consolidation_run_id={run.run_id}")
    run.assert_no_secret(done.output)
    assert not any(alive(pid) for pid in pids.values())
    assert slots_of_ours(source_cluster) == []
    assert publications_of_ours(source_cluster, run.prefix) == []
    # ...and go with its slots, so that the next run is not refused for a run that streams no more.
    assert run_sql(target_cluster, run.database, recorded, (run.run_id,)) == [(0,)]
    # The application's writes after the backup are still there, and the legacy databases take new ones.
    for module in MODULES:
        database = f"{run.prefix}_{module}"
        assert run_sql(source_cluster, database, "SHOW default_transaction_read_only") == [("off",)]
    assert run_sql(source_cluster, configuration, 'SELECT count(*) FROM "ConfigurationEntries" '
                                                  "WHERE \"Key\" = 'written during the sync'") == [(1,)]
    run_sql(source_cluster, configuration, 'UPDATE "ConfigurationEntries" SET "Value" = \'after rollback\' '
                                           "WHERE \"Key\" = 'written during the sync'")
    # A second rollback has nothing left to do.
    again = run.play("rollback", "-e", f"consolidation_run_id={run.run_id}")
    assert again.changed == 0, again.output[-3000:]


@pytest.fixture
def refusal_vars(tmp_path, source_cluster, target_cluster):
    variables = consolidation_vars(source_cluster, target_cluster, tmp_path, "Refused_Consolidated", "Refused")
    return dict(variables, consolidation_sync_slot_prefix=SLOT_PREFIX), tmp_path


@pytest.mark.parametrize(("playbook", "sync", "extra", "expected"), [
    ("consolidate", "online", [], "consolidation_sync is online: run sync.yml"),
    ("sync", "offline", [], "sync.yml belongs to online mode, and consolidation_sync is offline"),
    ("cutover", "offline", [], "cutover.yml belongs to online mode, and consolidation_sync is offline"),
    ("sync", "online", ["-e", "verify_checksum=false"], "consolidation_sync online needs verify_checksum true"),
    ("sync", "online", ["-e", "consolidation_fence=none", "-e", "consolidation_fence_reason=vendor says so"],
     "consolidation_sync online needs the write fence"),
    ("sync", "online", ["-e", "consolidation_sync_slot_prefix=Bad-Prefix"],
     "consolidation_sync_slot_prefix 'Bad-Prefix'"),
])
def test_a_playbook_that_does_not_fit_the_mode_is_refused_before_anything_changes(
        refusal_vars, run_playbook, target_cluster, playbook, sync, extra, expected):
    variables, root = refusal_vars
    done = run_playbook(f"classifiedads.consolidation.{playbook}", *extra,
                        variables=dict(variables, consolidation_sync=sync), expect_rc=2)
    assert expected in done.output.replace("\\n", " "), done.output[-3000:]
    assert not (root / "runs").exists()
    assert run_sql(target_cluster, "postgres", "SELECT count(*) FROM pg_database WHERE datname = %s",
                   ("Refused_Consolidated",)) == [(0,)]


def test_the_fence_waits_for_a_closing_writer_but_neither_waits_for_nor_ends_a_wal_sender_streaming_a_slot(
        tmp_path, run_module, source_cluster):
    database, slot = "Fence_Streamed", f"{SLOT_PREFIX}_00000000_000000_fence"
    drop_database(source_cluster, database)
    execute(source_cluster, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    execute(source_cluster, "CREATE TABLE items (id int PRIMARY KEY)", database)
    run_dir = tmp_path / "fence-streamed"
    run_dir.mkdir(mode=0o700)
    (run_dir / "plan.json").write_text(json.dumps({
        "run_id": "fence-streamed", "mode": "existing", "target_database": "Fence_Streamed_Target",
        "run_dir": str(run_dir), "modules": [{"name": "M", "source_database": database, "schema": "m"}]}))
    stream = psycopg2.connect(**source_cluster.connect_kwargs(database),
                              connection_factory=psycopg2.extras.LogicalReplicationConnection)
    writer = psycopg2.connect(**source_cluster.connect_kwargs(database), application_name="pytest-writer")
    try:
        with stream.cursor() as cur:
            cur.create_replication_slot(slot, output_plugin="test_decoding")
            cur.start_replication(slot_name=slot, decode=True)
            sender = run_sql(source_cluster, "postgres", "SELECT active_pid FROM pg_replication_slots "
                                                         "WHERE slot_name = %s", (slot,))[0][0]
            writer_pid = writer.get_backend_pid()
            # The stopped application's session closes after a second; the WAL sender never closes on its own.
            closing = threading.Timer(1.0, writer.close)
            closing.start()
            started = time.monotonic()
            result = run_module("legacy_fence", dict(source=endpoint(source_cluster), databases=[database],
                                                     run_dir=str(run_dir), wait_timeout=30))
            closing.join()
            assert not result["failed"], result["msg"]
            assert time.monotonic() - started < 20
            entry = result["databases"][0]
            assert [session["pid"] for session in entry["sessions_closed"]] == [writer_pid]
            assert entry["sessions_ended"] == []
            assert sender in [pid for (pid,) in run_sql(source_cluster, "postgres",
                                                        "SELECT pid FROM pg_stat_activity")]
            # The stream still carries what a session that bypasses the fence on purpose commits.
            run_sql(source_cluster, database, "START TRANSACTION READ WRITE; INSERT INTO items VALUES (1); COMMIT")
            deadline = time.monotonic() + 10
            message = None
            while message is None or "INSERT" not in message.payload:
                assert time.monotonic() < deadline, "the stream carried nothing after the fence"
                message = cur.read_message()
                time.sleep(0.05 if message is None else 0)
    finally:
        writer.close()
        stream.close()
        wait_until(lambda: run_sql(source_cluster, "postgres", "SELECT count(*) FROM pg_replication_slots "
                                                               "WHERE slot_name = %s AND NOT active", (slot,))
                   == [(1,)], 10, "the slot to be released")
        run_sql(source_cluster, "postgres", "SELECT pg_drop_replication_slot(%s)", (slot,))
        drop_database(source_cluster, database)


def applier_state(run_dir, database):
    path = Path(applier_files(str(run_dir), database)["status"])
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("online_run", ["OnlineDdl"], indirect=True)
def test_check_mode_creates_nothing_a_rerun_changes_nothing_and_ddl_refuses_the_cutover_before_anything_stops(
        online_run, source_cluster, target_cluster):
    run = online_run
    run.play("sync", "--check")
    assert slots_of_ours(source_cluster) == [] and publications_of_ours(source_cluster, run.prefix) == []
    assert run_sql(target_cluster, "postgres", "SELECT count(*) FROM pg_database WHERE datname = %s",
                   (run.database,)) == [(0,)]

    run.play("sync")
    pids = applier_pids(run.run_dir, run.prefix)
    again = run.play("sync")
    assert again.changed == 0, again.output[-5000:]
    assert applier_pids(run.run_dir, run.prefix) == pids and all(alive(pid) for pid in pids.values())

    # DDL on a legacy database during the sync: the applier stops for good instead of diverging.
    product = f"{run.prefix}_Product"
    run_sql(source_cluster, product, 'ALTER TABLE "Products" ADD COLUMN "Note" text')
    run_sql(source_cluster, product, 'UPDATE "Products" SET "Note" = \'added\' '
                                     'WHERE "Id" = (SELECT "Id" FROM "Products" LIMIT 1)')
    wait_until(lambda: applier_state(run.run_dir, product).get("state") == "failed", 60,
               "the Product applier to stop on the DDL")

    refused = run.play("cutover", expect_rc=2)
    output = refused.output.replace('\\"', '"')
    assert f"cannot be cut over, nothing was stopped or changed: the applier of {product} stopped for good" in output
    assert '"Products"' in output and "Note" in output
    # Nothing of the window began: no fence, the slots and the other appliers are still there.
    assert run_sql(source_cluster, product, "SHOW default_transaction_read_only") == [("off",)]
    assert len(slots_of_ours(source_cluster)) == len(MODULES)
    assert all(alive(pid) for database, pid in pids.items() if database != product)


@pytest.mark.parametrize("online_run", ["OnlineRetry"], indirect=True)
def test_a_cutover_failed_after_the_drain_drops_its_slots_and_its_rerun_completes_it(
        online_run, source_cluster, target_cluster):
    run = online_run
    run.play("sync")
    product = f"{run.prefix}_Product"
    run_sql(source_cluster, product, 'UPDATE "Products" SET "Name" = \'before the window\' '
                                     'WHERE "Id" = (SELECT "Id" FROM "Products" ORDER BY "Id" LIMIT 1)')

    # The configuration step fails (its directory is missing) after the fence, the catch-up and the verification.
    failed = run.play("cutover", "-e", f"cutover_app_dir={run.root / 'no-such-app'}", expect_rc=2)
    summary = failed.output[failed.output.rindex("TASK ["):]
    assert "FAILED at task" in summary and "run cutover again" in summary, summary
    assert "the rerun verifies again, cuts over and starts" in summary and "lifts the fence" in summary
    # Drained, the slots had nothing left to carry: the failed attempt does not leave them keeping WAL.
    assert slots_of_ours(source_cluster) == [] and publications_of_ours(source_cluster, run.prefix) == []
    assert run_sql(source_cluster, product, "SHOW default_transaction_read_only") == [("on",)]
    assert not any(alive(pid) for pid in applier_pids(run.run_dir, run.prefix).values())

    # The rerun knows the drain is done, verifies and completes the run.
    done = run.play("cutover")
    assert "drained by an earlier attempt" in done.output
    assert f"Run {run.run_id} PASSED" in done.output, done.output[-5000:]
    assert slots_of_ours(source_cluster) == [] and publications_of_ours(source_cluster, run.prefix) == []
    assert run_sql(target_cluster, run.database, 'SELECT count(*) FROM product."Products" '
                                                 "WHERE \"Name\" = 'before the window'") == [(1,)]
