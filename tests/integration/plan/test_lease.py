"""One run at a time per target database: the lease row and the advisory lock against a real server.

A module run by these tests works for its parent, the pytest process (it has no
ansible-playbook ancestor): that is the live controller holding a lease it takes. Other
holders are made by rewriting the lease row to a real process of this host (alive, or
started and reaped), or to another host.
"""

from __future__ import annotations

import json
import os
import subprocess

import psycopg2
import pytest
from conftest import drop_database, endpoint, execute, run_sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.controller import (
    CONTROLLER_VARIABLE,
    machine,
    started_of,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.lease import application_name, lock_key
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_slots import SLOTS_TABLE, SLOTS_TABLE_DDL

DATABASE = 'Lease "Target"; --'


@pytest.fixture
def target_db(target_cluster):
    drop_database(target_cluster, DATABASE)
    execute(target_cluster, 'CREATE DATABASE "Lease ""Target""; --"')
    yield DATABASE
    drop_database(target_cluster, DATABASE)


def lease_args(target_cluster, run_id, **extra):
    return dict(target=endpoint(target_cluster), target_database=DATABASE, run_id=run_id, **extra)


def lease_row(target_cluster):
    rows = run_sql(target_cluster, DATABASE, "SELECT to_regclass('_consolidation.lease') IS NOT NULL")
    if not rows[0][0]:
        return None
    rows = run_sql(target_cluster, DATABASE, "SELECT run_id, host, pid, pid_started FROM _consolidation.lease")
    return rows[0] if rows else None


def hand_lease_to(target_cluster, run_id, pid, started, host=None):
    """Make the recorded holder another run: a process of this host (or, with ``host``, of another one)."""
    run_sql(target_cluster, DATABASE, "UPDATE _consolidation.lease SET run_id = %s, pid = %s, pid_started = %s, "
                                      "host = coalesce(%s, host)", (run_id, pid, started, host))


@pytest.fixture
def live_process():
    process = subprocess.Popen(["sleep", "120"])
    yield process.pid, started_of(process.pid)
    process.kill()
    process.wait()


def finished_process():
    """The pid and start time of a process that has exited and been reaped."""
    process = subprocess.Popen(["sleep", "30"])
    started = started_of(process.pid)
    process.kill()
    process.wait()
    return process.pid, started


def test_a_second_run_is_refused_naming_the_holder(run_module, target_cluster, target_db, live_process):
    first = run_module("run_lease", lease_args(target_cluster, "first"))
    assert not first["failed"], first["msg"]
    assert first["lease"]["action"] == "acquired" and not first["changed"]
    assert lease_row(target_cluster)[:3] == ("first", os.uname().nodename, os.getpid())
    # The same controller again keeps it (each module of a run checks it so).
    again = run_module("run_lease", lease_args(target_cluster, "first"))
    assert again["lease"]["action"] == "kept", again

    pid, started = live_process
    hand_lease_to(target_cluster, "first", pid, started)
    for run_id in ("second", "first"):  # another run, or the same run id from a live holder
        refused = run_module("run_lease", lease_args(target_cluster, run_id))
        assert refused["failed"]
        assert f"leased to run first on host {os.uname().nodename} (ansible-playbook pid {pid}, since " \
            in refused["msg"]
        assert "still running" in refused["msg"] and "consolidation_lease_takeover" in refused["msg"]
        assert refused["holder"]["run_id"] == "first" and refused["holder"]["state"] == "alive"
        assert lease_row(target_cluster) == ("first", os.uname().nodename, pid, started)
    # Any module that works on the target refuses the same way, before it changes anything.
    schemas = run_module("target_schemas", dict(target=endpoint(target_cluster), target_database=DATABASE,
                                                schemas=["lease_probe"]))
    assert schemas["failed"] and "leased to run first" in schemas["msg"]
    assert run_sql(target_cluster, DATABASE, "SELECT to_regnamespace('lease_probe')") == [(None,)]


def test_a_module_working_right_now_is_named_and_never_overridden(run_module, target_cluster, target_db):
    # The session of a module of another run, working right now on the target (its advisory lock).
    holder = psycopg2.connect(**target_cluster.connect_kwargs("postgres"))
    holder.autocommit = True
    identity = {"host": "ops1", "pid": 4242}
    try:
        with holder.cursor() as cur:
            cur.execute("SET application_name = %s", (application_name("first", identity),))
            cur.execute("SELECT pg_advisory_lock(%s, %s)", lock_key(DATABASE))
            backend = holder.get_backend_pid()
        for name, args in (("run_lease", lease_args(target_cluster, "second", takeover=True)),
                           ("run_lease", lease_args(target_cluster, "first", run_ended=True)),
                           ("target_schemas", dict(target=endpoint(target_cluster), target_database=DATABASE,
                                                   schemas=["lease_probe"]))):
            refused = run_module(name, args)
            assert refused["failed"], (name, refused)
            assert ("is being worked on right now by another consolidation module: consolidation run first on ops1 "
                    f"pid 4242 (backend pid {backend})") in refused["msg"], refused["msg"]
        assert lease_row(target_cluster) is None
        assert run_sql(target_cluster, DATABASE, "SELECT to_regnamespace('lease_probe')") == [(None,)]
    finally:
        holder.close()
    # Its session gone, the lock is free.
    assert run_module("run_lease", lease_args(target_cluster, "second"))["lease"]["action"] == "acquired"


def test_a_stale_lease_whose_holder_is_gone_is_taken_over(run_module, target_cluster, target_db):
    assert not run_module("run_lease", lease_args(target_cluster, "crashed"))["failed"]
    pid, started = finished_process()
    for recorded_start in (started, started_of(os.getpid()) - 1):  # a free pid, and a pid now another process's
        hand_lease_to(target_cluster, "crashed", pid if recorded_start == started else os.getpid(), recorded_start)
        taken = run_module("run_lease", lease_args(target_cluster, "crashed"))
        assert not taken["failed"], taken["msg"]
        assert taken["lease"]["action"] == "taken_over" and taken["lease"]["holder"]["state"] == "gone"
        assert "took over the lease" in json.dumps(taken["warnings"])  # ansible-core 2.19+ nests the message
        assert lease_row(target_cluster) == ("crashed", os.uname().nodename, os.getpid(), started_of(os.getpid()))
    # A module of another run works beside a gone holder without taking its lease.
    hand_lease_to(target_cluster, "crashed", pid, started)
    schemas = run_module("target_schemas", dict(target=endpoint(target_cluster), target_database=DATABASE,
                                                schemas=["lease_probe"]))
    assert not schemas["failed"], schemas["msg"]
    assert lease_row(target_cluster)[0] == "crashed"


def test_a_live_holder_on_another_host_is_taken_only_with_the_flag(run_module, target_cluster, target_db):
    assert not run_module("run_lease", lease_args(target_cluster, "elsewhere"))["failed"]
    hand_lease_to(target_cluster, "elsewhere", 77, 12345, host="ops-other.example.internal")
    refused = run_module("run_lease", lease_args(target_cluster, "mine"))
    assert refused["failed"]
    assert "leased to run elsewhere on host ops-other.example.internal (ansible-playbook pid 77" in refused["msg"]
    assert "cannot be checked from this host" in refused["msg"] and refused["holder"]["state"] == "unknown"
    assert lease_row(target_cluster)[0] == "elsewhere"

    taken = run_module("run_lease", lease_args(target_cluster, "mine", takeover=True))
    assert not taken["failed"], taken["msg"]
    assert taken["lease"]["action"] == "taken_over" and "takeover was asked for" in json.dumps(taken["warnings"])
    assert lease_row(target_cluster)[:3] == ("mine", os.uname().nodename, os.getpid())


def test_check_mode_takes_nothing_and_reports_the_holder(run_module, target_cluster, target_db, live_process):
    free = run_module("run_lease", lease_args(target_cluster, "checked"), check=True)
    assert not free["failed"] and not free["changed"]
    assert free["lease"] == {"action": "would_acquire", "holder": None, "working": []}
    assert lease_row(target_cluster) is None  # not even the table

    assert not run_module("run_lease", lease_args(target_cluster, "first"))["failed"]
    pid, started = live_process
    hand_lease_to(target_cluster, "first", pid, started)
    checked = run_module("run_lease", lease_args(target_cluster, "checked"), check=True)
    assert not checked["failed"] and not checked["changed"]
    assert checked["lease"]["action"] == "would_be_refused"
    assert checked["lease"]["holder"]["run_id"] == "first" and checked["lease"]["holder"]["pid"] == pid
    assert "a real run now would be refused" in json.dumps(checked["warnings"])
    assert lease_row(target_cluster) == ("first", os.uname().nodename, pid, started)
    # A module in check mode neither locks nor refuses: it only plans.
    planned = run_module("target_schemas", dict(target=endpoint(target_cluster), target_database=DATABASE,
                                                schemas=["lease_probe"]), check=True)
    assert not planned["failed"], planned["msg"]


def test_release_deletes_only_the_own_lease_and_a_missing_database_is_pending(
        run_module, target_cluster, target_db, live_process):
    assert not run_module("run_lease", lease_args(target_cluster, "first"))["failed"]
    released = run_module("run_lease", lease_args(target_cluster, "first", state="absent"))
    assert released["lease"]["action"] == "released" and lease_row(target_cluster) is None

    assert not run_module("run_lease", lease_args(target_cluster, "first"))["failed"]
    pid, started = live_process
    hand_lease_to(target_cluster, "first", pid, started)
    foreign = run_module("run_lease", lease_args(target_cluster, "second", state="absent"))
    assert not foreign["failed"] and foreign["lease"]["action"] == "not_held"
    assert lease_row(target_cluster) == ("first", os.uname().nodename, pid, started)

    drop_database(target_cluster, DATABASE)
    pending = run_module("run_lease", lease_args(target_cluster, "first"))
    assert not pending["failed"] and pending["lease"]["action"] == "pending"


def test_a_controller_on_another_host_named_by_its_action_plugin_holds_the_lease(
        run_module, target_cluster, target_db):
    # What the action plugins pass to a module that runs on another host than its ansible-playbook.
    remote = dict(host="ops-controller.example.internal", machine_id="0" * 32, boot_id="boot", pid_namespace="pid:[1]",
                  pid=4242, pid_started=99)
    named = {CONTROLLER_VARIABLE: json.dumps(remote)}
    first = run_module("run_lease", lease_args(target_cluster, "remote"), env=named)
    assert first["lease"]["action"] == "acquired", first
    assert lease_row(target_cluster) == ("remote", "ops-controller.example.internal", 4242, 99)
    # Every later module of that run is the same holder, though its own parent differs each time.
    kept = run_module("run_lease", lease_args(target_cluster, "remote"), env=named)
    assert kept["lease"]["action"] == "kept" and not kept.get("warnings"), kept
    schemas = run_module("target_schemas", dict(target=endpoint(target_cluster), target_database=DATABASE,
                                                schemas=["lease_probe"]), env=named)
    assert not schemas["failed"], schemas["msg"]

    # Another run cannot check a process of that host, even one started there (this host's pid 4242 is not
    # that host's): it waits, or takes over on purpose.
    sibling = {CONTROLLER_VARIABLE: json.dumps(dict(remote, pid=4343, pid_started=100))}
    for env in (None, sibling):
        refused = run_module("run_lease", lease_args(target_cluster, "other"), env=env)
        assert refused["failed"] and refused["holder"]["state"] == "unknown", refused
        assert "cannot be checked from this host" in refused["msg"] and "consolidation_lease_takeover" in refused["msg"]
        assert lease_row(target_cluster)[0] == "remote"
    assert run_module("run_lease", lease_args(target_cluster, "other", state="absent"))["lease"]["action"] == "not_held"

    released = run_module("run_lease", lease_args(target_cluster, "remote", state="absent"), env=named)
    assert released["lease"]["action"] == "released" and lease_row(target_cluster) is None


def test_a_failed_job_of_the_same_run_elsewhere_is_taken_over_only_when_its_run_is_said_to_have_ended(
        run_module, target_cluster, target_db, live_process):
    # A failed AWX job: its ansible-playbook ran in an execution environment, another host, now gone, and the
    # failed run kept its lease. The rollback (or resume) of that run comes from another execution environment.
    failed_job = dict(host="awx-ee-job-41", machine_id="1" * 32, boot_id="boot-41", pid_namespace="pid:[41]",
                      pid=17, pid_started=4100)
    next_job = {CONTROLLER_VARIABLE: json.dumps(dict(failed_job, host="awx-ee-job-42", machine_id="2" * 32,
                                                     boot_id="boot-42", pid_namespace="pid:[42]", pid_started=4200))}
    first = run_module("run_lease", lease_args(target_cluster, "R41"),
                       env={CONTROLLER_VARIABLE: json.dumps(failed_job)})
    assert first["lease"]["action"] == "acquired", first

    refused = run_module("run_lease", lease_args(target_cluster, "R41"), env=next_job)
    assert refused["failed"] and refused["holder"]["state"] == "unknown", refused
    assert "cannot be checked from this host" in refused["msg"]
    assert "rerun with -e consolidation_lease_run_ended=true" in refused["msg"]
    # Another run is refused even with the flag: it speaks for run R41's jobs only.
    other = run_module("run_lease", lease_args(target_cluster, "R43", run_ended=True), env=next_job)
    assert other["failed"] and "takes over only a lease of run R43 itself" in other["msg"], other
    assert lease_row(target_cluster) == ("R41", "awx-ee-job-41", 17, 4100)
    # Check mode says what the real run would do, taking nothing.
    planned = run_module("run_lease", lease_args(target_cluster, "R41", run_ended=True), env=next_job, check=True)
    assert planned["lease"]["action"] == "would_take_over", planned
    assert lease_row(target_cluster) == ("R41", "awx-ee-job-41", 17, 4100)

    taken = run_module("run_lease", lease_args(target_cluster, "R41", run_ended=True), env=next_job)
    assert not taken["failed"], taken["msg"]
    assert taken["lease"]["action"] == "taken_over" and taken["lease"]["holder"]["host"] == "awx-ee-job-41"
    assert "this run's earlier job has ended" in json.dumps(taken["warnings"])
    assert lease_row(target_cluster) == ("R41", "awx-ee-job-42", 17, 4200)
    # The rest of that job's modules are its holder.
    schemas = run_module("target_schemas", dict(target=endpoint(target_cluster), target_database=DATABASE,
                                                schemas=["lease_probe"]), env=next_job)
    assert not schemas["failed"], schemas["msg"]

    # A holder of the run that this host sees alive has not ended: the flag does not override it.
    pid, started = live_process
    hand_lease_to(target_cluster, "R41", pid, started, host=os.uname().nodename)
    here = machine()
    run_sql(target_cluster, DATABASE,
            "UPDATE _consolidation.lease SET machine_id = %s, boot_id = %s, pid_namespace = %s",
            (here["machine_id"], here["boot_id"], here["pid_namespace"]))
    alive = run_module("run_lease", lease_args(target_cluster, "R41", run_ended=True))
    assert alive["failed"] and alive["holder"]["state"] == "alive" and "still running" in alive["msg"], alive
    assert lease_row(target_cluster) == ("R41", os.uname().nodename, pid, started)


def test_an_online_run_streaming_into_the_database_keeps_every_other_run_out(run_module, target_cluster, target_db):
    """sync.yml ends with its appliers still writing: its ended ansible-playbook must not let another run in."""
    assert not run_module("run_lease", lease_args(target_cluster, "online-run"))["failed"]
    table = "_consolidation." + SLOTS_TABLE
    run_sql(target_cluster, DATABASE, SLOTS_TABLE_DDL.replace("{table}", table))
    run_sql(target_cluster, DATABASE, f"INSERT INTO {table} (run_id, source_database, slot_name, consistent_point, "
                                      "snapshot) VALUES ('online-run', 'Legacy_A', 'slot_a', '0/1', 's')")
    pid, started = finished_process()
    hand_lease_to(target_cluster, "online-run", pid, started)
    for extra in ({}, {"takeover": True}):
        refused = run_module("run_lease", lease_args(target_cluster, "another-run", **extra))
        assert refused["failed"]
        assert "online run(s) online-run" in refused["msg"]
        assert "rollback.yml -e consolidation_run_id=online-run" in refused["msg"]
        assert lease_row(target_cluster)[0] == "online-run"
    # cutover.yml (or rollback.yml) of the streaming run itself takes its lease back.
    taken = run_module("run_lease", lease_args(target_cluster, "online-run"))
    assert not taken["failed"], taken["msg"]
    assert taken["lease"]["action"] == "taken_over"
    # Records in the copy's own state schema (data_copy_state_schema) count as well.
    run_sql(target_cluster, DATABASE, f"CREATE SCHEMA copy_state; ALTER TABLE {table} SET SCHEMA copy_state")
    hand_lease_to(target_cluster, "online-run", pid, started)
    refused = run_module("run_lease", lease_args(target_cluster, "another-run", state_schema="copy_state"))
    assert refused["failed"] and "online run(s) online-run" in refused["msg"]
    # Once its slots are dropped with their records (cutover or rollback), the next run is let in.
    run_sql(target_cluster, DATABASE, "DELETE FROM copy_state.sync_slots")
    taken = run_module("run_lease", lease_args(target_cluster, "another-run", state_schema="copy_state"))
    assert not taken["failed"], taken["msg"]
