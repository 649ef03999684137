"""A writer that bypasses the write fence, and waiting until PostgreSQL's statistics have seen its write.

Tests of "proof by content" simulate a stray writer into a legacy database (a cron job, an admin script).
The legacy databases may be fenced (``default_transaction_read_only = on``), so the writer turns that off
for its session, as a deliberate bypassing writer would. A backend adds its write counts to the cumulative
statistics when it goes idle or exits, some seconds later at worst: :func:`stray_write` closes its session
and then polls ``pg_stat_user_tables`` in a fresh transaction until the table's counters have moved, never
sleeping on hope.
"""

from __future__ import annotations

import time

import psycopg2

COUNTERS = ("SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s")


def write_counters(info, dbname: str, schema: str, table: str) -> tuple[int, int, int]:
    """The table's (inserted, updated, deleted) as a new transaction sees them now."""
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(COUNTERS, (schema, table))
            return cur.fetchone()
    finally:
        conn.close()


def stray_write(info, dbname: str, schema: str, table: str, *statements, timeout: float = 60.0):
    """Run ``statements`` (each a statement or (statement, params)) in one session that bypasses the fence,
    end the session, and return once the table's write counters differ from before; (before, after)."""
    before = write_counters(info, dbname, schema, table)
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = off")
            for statement in statements:
                cur.execute(*(statement if isinstance(statement, tuple) else (statement,)))
    finally:
        conn.close()  # an exiting backend flushes its statistics
    deadline = time.monotonic() + timeout
    while True:
        after = write_counters(info, dbname, schema, table)
        if after != before:
            return before, after
        if time.monotonic() > deadline:
            raise AssertionError(f"the write counters of {schema}.{table} did not move within {timeout} s")
        time.sleep(0.1)
