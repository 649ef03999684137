"""sync_applier against real PostgreSQL 15 clusters: every change kind, crashes, DDL, drain.

Each test builds a legacy database (tables in ``public``) on the source cluster and its consolidated
database (the same tables in schema ``shop``) on the target, then a publication and a pgoutput slot
named as the run's, as the online copy leaves them (empty tables: every row arrives through the stream).
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import signal
import threading
import time

import psycopg2
import pytest
from conftest import drop_database, endpoint, execute, run_sql
from constants import HOSTILE
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.controller import started_of
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import (
    applier_files,
    publication_name,
    slot_name,
)

pytestmark = pytest.mark.integration

TABLES = """
CREATE TABLE {schema}.items (
    id integer PRIMARY KEY, name text, big text, data bytea, tags text[], doc jsonb, at timestamptz, note text);
CREATE TABLE {schema}.loose (a integer, b text);
ALTER TABLE {schema}.loose REPLICA IDENTITY FULL;
CREATE TABLE {schema}.counters (id serial PRIMARY KEY, v integer NOT NULL);
CREATE TABLE {schema}.{hostile} ({hostile} integer PRIMARY KEY, "Value" text);
CREATE SEQUENCE {schema}.tickets;
"""
COMPARED = ("items", "loose", "counters", HOSTILE)
_numbers = itertools.count(1)


class Case:
    """One legacy database, its consolidated database, the slot and the run directory of one test."""

    def __init__(self, source, target, root, run_module):
        number = next(_numbers)
        self.source, self.target, self.run_module = source, target, run_module
        self.legacy = f"ApplierLegacy_{number}_{os.getpid()}"
        self.consolidated = f"ApplierTarget_{number}_{os.getpid()}"
        self.run_id = f"applier-{number}-{os.getpid()}"
        self.run_dir = str(root / self.run_id)
        os.makedirs(self.run_dir)
        self.slot = slot_name(self.run_id, self.legacy)
        self.files = applier_files(self.run_dir, self.legacy)
        for info, name, schema in ((source, self.legacy, "public"), (target, self.consolidated, "shop")):
            drop_database(info, name)
            execute(info, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if schema != "public":
                run_sql(info, name, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            run_sql(info, name, sql.SQL(TABLES).format(schema=sql.Identifier(schema), hostile=sql.Identifier(HOSTILE)))
        run_sql(source, self.legacy, sql.SQL("CREATE PUBLICATION {} FOR TABLE items, loose, counters, {}").format(
            sql.Identifier(publication_name(self.run_id, self.legacy)), sql.Identifier(HOSTILE)))
        run_sql(source, self.legacy, "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,))

    def args(self, **extra):
        return dict(source=endpoint(self.source), target=endpoint(self.target), target_database=self.consolidated,
                    run_id=self.run_id, run_dir=self.run_dir,
                    modules=[{"name": "Shop", "source_database": self.legacy, "schema": "shop"}], **extra)

    def module(self, state="started", check=False, **extra):
        return self.run_module("sync_applier", self.args(state=state, **extra), check=check)

    def src(self, statement, params=None):
        return run_sql(self.source, self.legacy, statement, params)

    def tgt(self, statement, params=None):
        return run_sql(self.target, self.consolidated, statement, params)

    def status(self):
        try:
            with open(self.files["status"]) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def supervisor(self):
        with open(self.files["pid"]) as handle:
            return json.load(handle)

    def rows(self, info, dbname, schema, table):
        """Every row as text, as a multiset: EXCEPT ALL both ways is Counter subtraction both ways."""
        statement = sql.SQL("SELECT r::text FROM {} r").format(sql.Identifier(schema, table))
        return collections.Counter(row[0] for row in run_sql(info, dbname, statement))

    def differences(self):
        found = {}
        for table in COMPARED:
            source = self.rows(self.source, self.legacy, "public", table)
            target = self.rows(self.target, self.consolidated, "shop", table)
            if source - target or target - source:
                found[table] = {"only_source": len(source - target), "only_target": len(target - source)}
        return found

    def wait_equal(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.differences():
                return
            assert self.status().get("state") != "failed", self.status()
            time.sleep(0.5)
        raise AssertionError(f"target never matched the source: {self.differences()}; status {self.status()}")

    def progress(self):
        return self.tgt("SELECT transactions, rows, applied_lsn::text FROM _consolidation.sync_progress "
                        "WHERE source_database = %s", (self.legacy,))[0]

    def cleanup(self):
        record = None
        try:
            record = self.supervisor()
        except OSError:
            pass
        if record and started_of(record["pid"]) == record["start_time"]:
            os.kill(record["pid"], signal.SIGTERM)
            deadline = time.time() + 30
            while started_of(record["pid"]) == record["start_time"] and time.time() < deadline:
                time.sleep(0.2)
        execute(self.source, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                             "WHERE slot_name = %s AND NOT active", "postgres", (self.slot,))
        drop_database(self.source, self.legacy)
        drop_database(self.target, self.consolidated)


@pytest.fixture
def applier_case(source_cluster, target_cluster, tmp_path, run_module):
    case = Case(source_cluster, target_cluster, tmp_path, run_module)
    yield case
    case.cleanup()


def test_every_change_kind_arrives_in_the_renamed_schema_after_the_module_has_returned(applier_case):
    case = applier_case
    result = case.module()
    assert not result["failed"], result
    assert result["changed"] and result["appliers"][0]["action"] == "started"
    pid = result["appliers"][0]["pid"]
    assert started_of(pid) == case.supervisor()["start_time"]  # outlives the module call

    # Written after the module returned: only the detached applier can bring them over.
    big = "".join("%032x" % (i * 7919) for i in range(4000))  # 128 kB, stored out of line (TOAST)
    case.src("INSERT INTO items VALUES (1, 'one', %s, '\\x00ff10'::bytea, ARRAY['a', 'b,\"c\"', NULL], "
             "'{\"k\": [1, 2.5, null]}', '2026-01-02 03:04:05.123456+05:30', NULL), "
             "(2, 'two', NULL, NULL, NULL, NULL, NULL, 'n'), (3, 'three', 'x', NULL, '{}', '[]', 'infinity', NULL)",
             (big,))
    case.src("UPDATE items SET name = 'uno' WHERE id = 1")  # big is TOASTed and unchanged: not in the stream
    case.src("UPDATE items SET id = 20, note = NULL WHERE id = 2")  # the key changes
    case.src("DELETE FROM items WHERE id = 3")
    case.src("INSERT INTO loose VALUES (1, 'same'), (1, 'same'), (2, NULL)")
    case.src("UPDATE loose SET b = 'changed' WHERE ctid = (SELECT ctid FROM loose WHERE a = 1 LIMIT 1)")
    case.src("DELETE FROM loose WHERE a = 2")
    case.src(sql.SQL("INSERT INTO {} VALUES (1, 'hostile')").format(sql.Identifier(HOSTILE)))
    case.src("INSERT INTO counters (v) SELECT g FROM generate_series(1, 50) g")
    case.src("TRUNCATE counters")
    case.src("INSERT INTO counters (v) VALUES (7)")
    case.wait_equal()

    assert case.tgt("SELECT big = %s, name FROM shop.items WHERE id = 1", (big,)) == [(True, "uno")]
    assert case.tgt("SELECT count(*) FROM shop.items") == [(2,)]
    transactions, rows, _lsn = case.progress()
    assert transactions == 11
    assert rows == 3 + 1 + 1 + 1 + 3 + 1 + 1 + 1 + 50 + 1 + 1
    assert case.status()["state"] == "streaming"

    again = case.module()
    assert not again["changed"] and again["appliers"][0]["action"] == "running"
    assert again["appliers"][0]["pid"] == pid

    stopped = case.module("stopped")
    assert stopped["changed"] and stopped["appliers"][0]["action"] == "stopped"
    assert started_of(pid) != case.supervisor()["start_time"]
    assert case.status()["state"] == "stopped"
    assert not case.module("stopped")["changed"]


def writer(case, stop, committed):
    """Source transactions of several statements each, as fast as one session goes, until ``stop`` is set."""
    conn = psycopg2.connect(**case.source.connect_kwargs(case.legacy))
    try:
        with conn.cursor() as cur:
            for number in itertools.count():
                if stop.is_set():
                    return
                cur.execute("INSERT INTO items (id, name, note) VALUES (%s, 'w', 'x')", (1000 + number,))
                cur.execute("UPDATE items SET name = name || '+' WHERE id = %s", (1000 + number // 2,))
                cur.execute("INSERT INTO counters (v) VALUES (%s)", (number,))
                if number % 5 == 0:
                    cur.execute("DELETE FROM counters WHERE v = %s", (number - 3,))
                conn.commit()
                committed.append(number)
    finally:
        conn.close()


def test_a_worker_killed_mid_stream_is_restarted_and_loses_or_duplicates_nothing(applier_case):
    case = applier_case
    assert not case.module()["failed"]
    stop, committed = threading.Event(), []
    thread = threading.Thread(target=writer, args=(case, stop, committed))
    thread.start()
    kills = 0
    try:
        while kills < 3:
            # Killed while it applies: the writer keeps the stream busy, so transactions are in flight.
            applied = case.status().get("transactions", 0)
            deadline = time.time() + 30
            while case.status().get("transactions", 0) < applied + 20 and time.time() < deadline:
                time.sleep(0.05)
            status = case.status()
            assert status.get("state") == "streaming", status
            os.kill(status["pid"], signal.SIGKILL)
            kills += 1
            while case.status().get("restarts", 0) < kills and time.time() < deadline:
                time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    case.wait_equal(timeout=120)
    transactions, _rows, _lsn = case.progress()
    assert transactions == len(committed)
    status = case.status()
    assert status["restarts"] == kills and status["state"] == "streaming"
    with open(case.files["log"]) as handle:
        assert handle.read().count("starting it again") == kills


def test_ddl_on_the_legacy_table_stops_the_applier_with_an_error_naming_table_and_column(applier_case):
    case = applier_case
    assert not case.module()["failed"]
    case.src("INSERT INTO items (id, name) VALUES (1, 'before')")
    case.wait_equal()
    case.src("ALTER TABLE items ADD COLUMN extra integer")
    case.src("INSERT INTO items (id, name, extra) VALUES (2, 'after', 5)")
    deadline = time.time() + 30
    while case.status().get("state") != "failed" and time.time() < deadline:
        time.sleep(0.2)
    status = case.status()
    assert status["state"] == "failed"
    assert 'ApplierLegacy' in status["error"] and "public.items" in status["error"]
    assert 'only in the source: extra' in status["error"] and "DDL" in status["error"]
    assert case.tgt("SELECT id FROM shop.items") == [(1,)]
    time.sleep(2)  # not restarted: the supervisor ended with the worker
    assert started_of(case.supervisor()["pid"]) != case.supervisor()["start_time"]
    assert case.status()["restarts"] == 0
    again = case.module()
    assert again["failed"] and "only in the source: extra" in again["msg"]
    drained = case.module("drained", catch_up_timeout=5)
    assert drained["failed"] and "only in the source: extra" in drained["msg"] and case.legacy in drained["msg"]
    assert "apply the same change to the consolidated table" in drained["msg"]
    # The fix the error names: the consolidated table takes the same change, and the applier goes on from its slot.
    case.tgt("ALTER TABLE shop.items ADD COLUMN extra integer")
    assert not case.module()["failed"]
    case.src("INSERT INTO items (id, name, extra) VALUES (3, 'later', 7)")
    case.wait_equal()
    assert case.tgt("SELECT id, extra FROM shop.items ORDER BY id") == [(1, None), (2, 5), (3, 7)]


def test_drained_applies_every_write_then_stops_and_continues_the_sequences(applier_case):
    case = applier_case
    assert not case.module()["failed"]
    case.src("INSERT INTO counters (v) SELECT g FROM generate_series(1, 40) g")
    case.src("SELECT nextval('tickets') FROM generate_series(1, 12)")
    case.src("INSERT INTO items (id, name) SELECT g, 'n' FROM generate_series(1, 300) g")
    # The last WAL is no change of ours (pgoutput sends nothing for it): the slot must reach it all the same.
    case.src("CREATE TABLE side (x integer); INSERT INTO side VALUES (1)")
    check = case.module("drained", check=True)
    assert check["changed"] and check["appliers"][0]["action"] == "would_drain"
    assert check["appliers"][0]["lag"] >= 0 and check["appliers"][0]["pid"]
    assert case.tgt("SELECT last_value FROM shop.counters_id_seq") == [(1,)]

    drained = case.module("drained", catch_up_timeout=30)
    assert not drained["failed"], drained
    assert drained["appliers"][0]["action"] == "drained" and drained["appliers"][0]["pid"] is None
    assert drained["appliers"][0]["lag"] >= 0
    assert not case.differences()
    assert case.tgt("SELECT nextval('shop.counters_id_seq')") == [(41,)]
    assert case.tgt("SELECT nextval('shop.tickets')") == [(13,)]
    assert case.status()["state"] == "stopped"


def test_a_stream_sent_again_after_the_target_committed_is_skipped_not_applied_twice(applier_case):
    case = applier_case
    rewind = case.slot[:40] + "_rewind"
    case.src("SELECT pg_copy_logical_replication_slot(%s, %s)", (case.slot, rewind))
    assert not case.module()["failed"]
    for number in range(5):
        case.src("INSERT INTO items (id, name) VALUES (%s, 'once')", (number,))
        case.src("INSERT INTO loose VALUES (%s, 'once')", (number,))  # no key: a second apply would double it
    case.wait_equal()
    assert case.progress()[0] == 10
    assert case.module("stopped")["changed"]
    # The slot forgets what it was told: as if the target had committed and the applier died before its feedback.
    case.src("SELECT pg_drop_replication_slot(%s)", (case.slot,))
    case.src("SELECT pg_copy_logical_replication_slot(%s, %s)", (rewind, case.slot))
    case.src("SELECT pg_drop_replication_slot(%s)", (rewind,))
    assert not case.module()["failed"]
    case.src("INSERT INTO items (id, name) VALUES (100, 'after')")
    case.wait_equal()
    assert case.progress()[0] == 11
    assert case.status()["state"] == "streaming"
    assert case.tgt("SELECT count(*) FROM shop.loose") == [(5,)]


def with_passwords(case, args):
    """``args`` with both servers' real passwords instead of their passfiles, and the passwords."""
    passwords = []
    for side, info in (("source", case.source), ("target", case.target)):
        with open(info.passfile) as handle:
            passwords.append(handle.read().strip().rsplit(":", 1)[1])
        args[side] = dict(args[side], password=passwords[-1])
        del args[side]["passfile"]
    return args, passwords


def test_the_password_stays_in_memory(applier_case):
    case = applier_case
    args, passwords = with_passwords(case, case.args())
    result = case.run_module("sync_applier", args)
    assert not result["failed"], result
    case.src("INSERT INTO items (id, name) VALUES (1, 'x')")
    case.wait_equal()
    supervisor, worker = case.supervisor()["pid"], case.status()["pid"]
    seen = json.dumps(result)
    for pid in (supervisor, worker):
        for name in ("cmdline", "environ"):
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                seen += handle.read().decode("utf-8", "replace")
    for path in case.files.values():
        assert os.stat(path).st_mode & 0o077 == 0, path
        with open(path) as handle:
            seen += handle.read()
    assert not [password for password in passwords if password in seen]


def test_without_session_replication_role_a_table_with_a_user_trigger_stops_the_applier(applier_case):
    case = applier_case
    role, secret = f"applier_owner_{os.getpid()}", "Not-A-Real-Secret-1"
    execute(case.target, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    execute(case.target, sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), "postgres",
            (secret,))
    try:
        grants = ["GRANT CREATE ON DATABASE {db} TO {role}", "ALTER SCHEMA shop OWNER TO {role}"]
        grants += [f"ALTER TABLE shop.{table} OWNER TO {{role}}" for table in ("items", "loose", "counters")]
        for statement in grants:
            case.tgt(sql.SQL(statement).format(db=sql.Identifier(case.consolidated), role=sql.Identifier(role)))
        case.tgt("CREATE FUNCTION shop.stamp() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$BEGIN NEW.name := 'stamped'; RETURN NEW; END$$")
        case.tgt("CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON shop.items FOR EACH ROW "
                 "EXECUTE FUNCTION shop.stamp()")
        args = case.args()
        args["target"] = dict(args["target"], user=role, password=secret)
        del args["target"]["passfile"]
        assert not case.run_module("sync_applier", args)["failed"]
        case.src("INSERT INTO loose VALUES (1, 'no trigger here')")
        deadline = time.time() + 30
        while case.tgt("SELECT count(*) FROM shop.loose") != [(1,)] and time.time() < deadline:
            time.sleep(0.2)
        assert case.tgt("SELECT b FROM shop.loose") == [("no trigger here",)]
        case.src("INSERT INTO items (id, name) VALUES (1, 'as written')")
        while case.status().get("state") != "failed" and time.time() < deadline:
            time.sleep(0.2)
        error = case.status()["error"]
        assert 'shop.items has enabled user triggers (stamp)' in error and "session_replication_role" in error
        assert case.tgt("SELECT count(*) FROM shop.items") == [(0,)]
    finally:
        case.cleanup()
        execute(case.target, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def wait_for(condition, timeout=30):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def test_check_mode_starts_and_stops_nothing_and_a_missing_slot_is_named(applier_case):
    case = applier_case
    check = case.module(check=True)
    assert check["changed"] and check["appliers"][0]["action"] == "would_start" and check["appliers"][0]["pid"] is None
    assert not os.path.exists(case.files["pid"])
    assert case.tgt("SELECT to_regclass('_consolidation.sync_progress')") == [(None,)]
    assert not case.module()["failed"]
    pid = case.supervisor()["pid"]
    stop_check = case.module("stopped", check=True)
    assert stop_check["changed"] and stop_check["appliers"][0]["action"] == "would_stop"
    assert started_of(pid) == case.supervisor()["start_time"]
    assert case.module("stopped")["changed"]
    case.src("SELECT pg_drop_replication_slot(%s)", (case.slot,))
    predicted = case.module(check=True)
    assert not predicted["failed"] and predicted["appliers"][0]["action"] == "would_start"
    assert any(f"no replication slot {case.slot}" in str(warning) for warning in predicted["warnings"])
    missing = case.module()
    assert missing["failed"] and f'no replication slot {case.slot}' in missing["msg"] and case.legacy in missing["msg"]
    assert "sync=online" in missing["msg"]


def test_a_supervisor_killed_outright_takes_its_worker_along_and_started_resumes(applier_case):
    case = applier_case
    assert not case.module()["failed"]
    case.src("INSERT INTO items (id, name) VALUES (1, 'a')")
    case.wait_equal()
    worker = case.status()["pid"]
    os.kill(case.supervisor()["pid"], signal.SIGKILL)
    wait_for(lambda: started_of(worker) is None)  # no orphan keeps the slot busy
    case.src("INSERT INTO items (id, name) VALUES (2, 'b')")
    again = case.module()
    assert not again["failed"], again.get("msg")
    assert again["changed"] and again["appliers"][0]["action"] == "started"
    case.wait_equal()
    assert case.progress()[0] == 2


def test_a_value_the_target_column_cannot_hold_stops_the_applier_without_showing_it(applier_case):
    case = applier_case
    case.tgt("ALTER TABLE shop.items ALTER COLUMN note TYPE varchar(3)")
    assert not case.module()["failed"]
    case.src("INSERT INTO items (id, note) VALUES (1, 'Sensitive-Value')")
    wait_for(lambda: case.status().get("state") == "failed")
    error = case.status()["error"]
    assert "shop.items" in error and "StringDataRightTruncation" in error and "Sensitive" not in error
    with open(case.files["log"]) as handle:
        assert "Sensitive" not in handle.read()


def test_an_applier_started_by_ansible_playbook_outlives_the_job_and_its_removed_module_files(applier_case,
                                                                                              run_playbook, tmp_path):
    case = applier_case
    playbook = tmp_path / "start.yml"
    playbook.write_text("""
- name: Start the applier
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Start it
      classifiedads.consolidation.sync_applier: "{{ applier }}"
      register: started
    - name: Show it
      ansible.builtin.debug:
        var: started.appliers
""")
    args, passwords = with_passwords(case, case.args(state="started"))
    run = run_playbook(playbook, "-vvv", variables={"applier": args})
    assert run.changed == 1
    assert not [password for password in passwords if password in run.output]
    assert started_of(case.supervisor()["pid"]) == case.supervisor()["start_time"]
    # Ansible has removed AnsiballZ's payload by now: the detached applier works from what it imported.
    case.src("INSERT INTO items (id, name, at) VALUES (1, 'after the job', now())")
    case.src("UPDATE items SET doc = '{\"a\": 1}' WHERE id = 1")
    case.wait_equal()
    assert case.status()["state"] == "streaming" and case.status()["restarts"] == 0


def test_a_publication_dropped_under_the_applier_stops_it_for_good(applier_case):
    case = applier_case
    assert not case.module()["failed"]
    case.src(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(publication_name(case.run_id, case.legacy))))
    case.src("INSERT INTO items (id, name) VALUES (1, 'a')")
    wait_for(lambda: case.status().get("state") == "failed")
    assert "no replication slot or publication" in case.status()["error"] and case.status()["restarts"] == 0


def test_drained_names_the_database_that_has_not_caught_up_and_leaves_its_applier_running(applier_case):
    case = applier_case
    assert not case.module()["failed"]
    blocker = psycopg2.connect(**case.target.connect_kwargs(case.consolidated))
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE shop.items IN ACCESS EXCLUSIVE MODE")  # the applier waits behind it
            case.src("INSERT INTO items (id, name) VALUES (1, 'held up')")
            drained = case.module("drained", catch_up_timeout=2)
    finally:
        blocker.rollback()
        blocker.close()
    assert drained["failed"]
    assert f"the applier of {case.legacy} has not caught up within 2 s" in drained["msg"]
    assert "bytes behind" in drained["msg"] and "catch_up_timeout" in drained["msg"]
    assert started_of(case.supervisor()["pid"]) == case.supervisor()["start_time"]
    case.wait_equal()
    assert not case.module("drained", catch_up_timeout=30)["failed"]


def test_partitions_land_beside_their_root_where_the_mapping_puts_it(applier_case):
    case = applier_case
    partitioned = ("CREATE TABLE {s}.events (id integer, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at); "
                   "CREATE TABLE {s}.events_2025 PARTITION OF {s}.events "
                   "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01'); "
                   "CREATE TABLE {s}.events_rest PARTITION OF {s}.events DEFAULT")
    case.src(partitioned.format(s="public"))
    case.tgt("CREATE SCHEMA archive; " + partitioned.format(s="archive"))
    case.src(sql.SQL("ALTER PUBLICATION {} ADD TABLE events_2025, events_rest").format(
        sql.Identifier(publication_name(case.run_id, case.legacy))))
    args = case.args(state="started")
    args["modules"][0]["tables"] = {"events": {"schema": "archive"}}
    assert not case.run_module("sync_applier", args)["failed"]
    case.src("INSERT INTO events VALUES (1, '2025-03-01'), (2, '2027-01-01')")
    case.src("UPDATE events SET at = '2025-06-01' WHERE id = 2")  # moves to the other partition
    wait_for(lambda: case.tgt("SELECT count(*) FROM archive.events_2025") == [(2,)])
    assert case.tgt("SELECT id, at::text FROM archive.events ORDER BY id") == [(1, "2025-03-01"), (2, "2025-06-01")]
    assert case.tgt("SELECT count(*) FROM archive.events_rest") == [(0,)]
    assert case.status()["state"] == "streaming"
