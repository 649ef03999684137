"""Small legacy/target database pairs for the online-mode tests of slots, copy, preflight and status.

Each test builds its own pair (a prefix keeps them apart on the session's clusters): a legacy database
with two keyed tables in ``public`` and a consolidated database where the migrator's stand-in made the
same tables in the module's schema. ``stream_inserts`` reads what a slot holds without consuming it.
"""

from __future__ import annotations

import struct
import threading
import time

import psycopg2
from conftest import drop_database, endpoint, execute, run_sql
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils import sync_names

LEGACY_DDL = ("CREATE TABLE public.items (id bigint PRIMARY KEY, label text NOT NULL)",
              "CREATE TABLE public.notes (id bigint PRIMARY KEY, body text)")
SCHEMA = "items"
SEEDED = 500


def drop_slots(info, database):
    """Drop every slot in ``database`` (a database with a slot cannot be dropped; a slot left keeps WAL)."""
    run_sql(info, "postgres", "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                              "WHERE database = %s", (database,))


def create_database(info, name, statements):
    drop_slots(info, name)
    drop_database(info, name)
    execute(info, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    for statement in statements:
        run_sql(info, name, statement)


def legacy_pair(source_info, target_info, prefix, legacy_ddl=LEGACY_DDL):
    """(legacy database, target database): seeded legacy tables, empty target tables of the same shape."""
    legacy, target = f"{prefix}_Items", f"{prefix}_Target"
    create_database(source_info, legacy, legacy_ddl + (
        f"INSERT INTO public.items SELECT g, 'seed ' || g FROM generate_series(1, {SEEDED}) g",
        "INSERT INTO public.notes SELECT g, repeat('n', g) FROM generate_series(1, 20) g"))
    create_database(target_info, target, [f"CREATE SCHEMA {SCHEMA}"] + [
        statement.replace("public.", f"{SCHEMA}.") for statement in legacy_ddl])
    return legacy, target


def modules(legacy):
    return [{"name": "Items", "source_database": legacy, "schema": SCHEMA}]


def copy_args(source_info, target_info, legacy, target, run_id, **extra):
    return dict(dict(source=endpoint(source_info), target=endpoint(target_info), target_database=target,
                     run_id=run_id, modules=modules(legacy), sync="online"), **extra)


def ids(info, dbname, table):
    return set(row[0] for row in run_sql(info, dbname, sql.SQL("SELECT id FROM {}").format(
        sql.Identifier(*table.split(".")))))


def slot_row(info, slot):
    """(confirmed_flush_lsn, restart_lsn, database, active) of a slot, or None."""
    rows = run_sql(info, "postgres", "SELECT confirmed_flush_lsn::text, restart_lsn::text, database, active "
                                     "FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    return rows[0] if rows else None


def ours(info, prefix=sync_names.DEFAULT_PREFIX):
    """Names of the slots of ours on the cluster."""
    return sorted(row[0] for row in run_sql(info, "postgres", "SELECT slot_name FROM pg_replication_slots")
                  if sync_names.is_ours(row[0], prefix))


def publications(info, dbname):
    return sorted(row[0] for row in run_sql(info, dbname, "SELECT pubname FROM pg_publication"))


def _tuple_first_value(data, at):
    """The first column's text value of a pgoutput TupleData at ``at``."""
    (count,) = struct.unpack_from("!h", data, at)
    assert count > 0
    kind = data[at + 2:at + 3]
    assert kind == b"t", kind
    (length,) = struct.unpack_from("!i", data, at + 3)
    return data[at + 7:at + 7 + length].decode()


def flush_wal(info, dbname):
    """The test clusters commit asynchronously and decoding stops at the flushed WAL: one synchronous
    commit flushes everything before it."""
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    try:
        with conn.cursor() as cur:
            cur.execute("SET synchronous_commit = on")
            cur.execute("SELECT pg_logical_emit_message(true, 'flush', '')")  # WAL of its own: flushed
        conn.commit()
    finally:
        conn.close()


def stream_inserts(info, dbname, slot, publication):
    """[(table, first column value)] of every insert the slot holds, peeked (the slot does not move)."""
    flush_wal(info, dbname)
    rows = run_sql(info, dbname, "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
                                 "'proto_version', '1', 'publication_names', %s)", (slot, publication))
    relations, inserts = {}, []
    for (message,) in rows:
        data = bytes(message)
        if data[:1] == b"R":
            (oid,) = struct.unpack_from("!I", data, 1)
            namespace_end = data.index(b"\0", 5)
            name_end = data.index(b"\0", namespace_end + 1)
            relations[oid] = data[namespace_end + 1:name_end].decode()
        elif data[:1] == b"I":
            (oid,) = struct.unpack_from("!I", data, 1)
            assert data[5:6] == b"N"
            inserts.append((relations[oid], int(_tuple_first_value(data, 6))))
    return inserts


class Writer(threading.Thread):
    """Inserts into public.items one row per transaction (ids from ``first``) until stopped; records each
    id whose COMMIT returned."""

    def __init__(self, info, dbname, first=1_000_000):
        super().__init__(daemon=True)
        self.info, self.dbname, self.next_id = info, dbname, first
        self.committed = []
        self.stopping = threading.Event()
        self.error = None

    def run(self):
        conn = psycopg2.connect(**self.info.connect_kwargs(self.dbname))
        try:
            with conn.cursor() as cur:
                while not self.stopping.is_set():
                    cur.execute("INSERT INTO public.items VALUES (%s, 'written during the copy')", (self.next_id,))
                    conn.commit()
                    self.committed.append(self.next_id)
                    self.next_id += 1
        except Exception as exc:  # reported by stop()
            self.error = exc
        finally:
            conn.close()

    def wait_for(self, count, timeout=60):
        deadline = time.time() + timeout
        start = len(self.committed)
        while len(self.committed) < start + count:
            assert time.time() < deadline and self.error is None, self.error
            time.sleep(0.01)

    def stop(self):
        self.stopping.set()
        self.join(30)
        assert self.error is None, self.error
        return set(self.committed)


def warning_lines(result):
    """A module result's warnings as text (ansible-core 2.19 returns them as event summaries)."""
    return [entry["event"]["msg"] if isinstance(entry, dict) else entry for entry in result.get("warnings", [])]
