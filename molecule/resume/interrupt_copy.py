"""Run consolidate.yml once and cut its data copy off in the middle: the resume scenario's first attempt.

Usage: interrupt_copy.py STATE_DIR INVENTORY_DIR

Runs ``ansible-playbook classifiedads.consolidation.consolidate`` against the Molecule inventory as an
operator would, and meanwhile, on the scenario's server (port and pgpass in STATE_DIR):

1. as soon as the migrator has created the big target table, takes an ACCESS SHARE lock on it, the
   weakest there is: the copy's reads of the table (its emptiness check) go through, but the copy's
   transaction for that table waits at its own LOCK TABLE (ACCESS EXCLUSIVE);
2. once the copy is waiting there and other tables have been committed meanwhile (the other copy
   worker goes on), terminates the waiting backend, as a server restart or a network cut would;
3. waits for the playbook, which must fail.

A lock instead of a race with the clock: the kill always lands inside the table's copy, whatever
the machine's speed. What was committed at the kill goes to STATE_DIR/interrupted.json for verify,
which checks that the rerun with the same run id copied only the rest. Exit status 0 when all of that
happened, 1 with the reason otherwise. Prints no row data and no secret.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

TARGET = "ClassifiedAds"
BIG_TABLE = ("product", "Products")
COMMITTED_BEFORE_KILL = 3  # tables committed while the big one waits, before the kill
TIMEOUT = 300


class Interrupted(Exception):
    """The interruption did not happen as planned; the message says what was seen instead."""


def connect(state_dir, database):
    port = int((state_dir / "port").read_text())
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=database,
                            passfile=str(state_dir / "pgpass"), connect_timeout=5)
    conn.autocommit = True
    return conn


def wait_for(what, probe, playbook, timeout=TIMEOUT, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        if playbook.poll() is not None:
            raise Interrupted(f"the playbook ended (rc {playbook.returncode}) before {what}")
        time.sleep(interval)
    raise Interrupted(f"no {what} within {timeout} s")


def big_table_exists(state_dir):
    try:
        with contextlib.closing(connect(state_dir, TARGET)) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                        (sql.Identifier(*BIG_TABLE).as_string(conn),))
            return cur.fetchone()[0]
    except psycopg2.OperationalError:  # the target database does not exist yet
        return False


def committed_tables(cur):
    cur.execute("SELECT pg_catalog.to_regclass('_consolidation.copied_tables') IS NOT NULL")
    if not cur.fetchone()[0]:
        return []
    cur.execute("SELECT source_database, source_table, completed_at FROM _consolidation.copied_tables")
    return [{"source_database": database, "source_table": table, "completed_at": completed.isoformat()}
            for database, table, completed in cur.fetchall()]


def interrupt(state_dir, playbook):
    wait_for(f"{'.'.join(BIG_TABLE)} in {TARGET}", lambda: big_table_exists(state_dir), playbook)
    holder = connect(state_dir, TARGET)
    holder.autocommit = False
    watcher = connect(state_dir, TARGET)
    try:
        with holder.cursor() as cur:
            try:
                cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE NOWAIT").format(sql.Identifier(*BIG_TABLE)))
            except psycopg2.errors.LockNotAvailable as exc:
                raise Interrupted("the copy of the big table had already started when it could be locked") from exc
        with watcher.cursor() as cur:
            def waiting_copy():
                cur.execute("SELECT pid, query FROM pg_catalog.pg_stat_activity "
                            "WHERE %s = ANY(pg_catalog.pg_blocking_pids(pid))", (holder.info.backend_pid,))
                return cur.fetchall()

            blocked = wait_for("statement waiting for the lock", waiting_copy, playbook)
            pid, statement = blocked[0]
            if len(blocked) > 1 or not statement.startswith("LOCK TABLE"):
                raise Interrupted(f"{len(blocked)} statements waited for the lock, the first: {statement[:120]}")
            wait_for(f"{COMMITTED_BEFORE_KILL} tables committed",
                     lambda: len(committed_tables(cur)) >= COMMITTED_BEFORE_KILL, playbook, timeout=60)
            committed = committed_tables(cur)
            killed_at = datetime.datetime.now(datetime.UTC)
            cur.execute("SELECT pg_catalog.pg_terminate_backend(%s)", (pid,))
            return {"killed_at": killed_at.isoformat(), "killed_statement": statement,
                    "committed_before_kill": committed}
    finally:
        holder.rollback()
        holder.close()
        watcher.close()


def main(state_dir, inventory_dir):
    log = state_dir / "interrupted-run.log"
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    with log.open("w") as output:
        argv = [str(ansible_playbook), "classifiedads.consolidation.consolidate", "-i", str(inventory_dir)]
        playbook = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            record = interrupt(state_dir, playbook)
        except Interrupted as exc:
            playbook.kill()
            playbook.wait()
            print(f"interrupt_copy: {exc} (playbook output: {log})", file=sys.stderr)
            return 1
        rc = playbook.wait(timeout=TIMEOUT)
    if rc == 0:
        print(f"interrupt_copy: the playbook succeeded although its copy of {'.'.join(BIG_TABLE)} was cut off "
              f"(output: {log})", file=sys.stderr)
        return 1
    record["playbook_rc"] = rc
    (state_dir / "interrupted.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"copy of {'.'.join(BIG_TABLE)} cut off after {len(record['committed_before_kill'])} tables; "
          f"the playbook failed with rc {rc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
