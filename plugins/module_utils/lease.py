# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run at a time per target database: a lease row and a session advisory lock.

Two guards, because neither alone covers a whole run:

* **The advisory lock** (``pg_try_advisory_lock``) is held by every module that works
  on the target, for the module's lifetime, in a session of its own on the target
  server's *maintenance* database. Advisory locks belong to one database; the
  maintenance database exists before the consolidated one does (step 2 creates it),
  so the lock guards preflight and the creation of the database itself (two runs
  racing on ``CREATE DATABASE`` was one of the failures seen). It dies with the
  session: a killed module never leaves it behind. Its session's
  ``application_name`` names the holder, so a refusal can say who works right now.
* **The lease** (one row of ``_consolidation.lease`` in the target database: run id,
  controller host, ansible-playbook pid and start time, acquired_at, heartbeat) lasts
  between the modules of a run: from preflight (or, for a database that does not exist
  yet, from step 2) until the playbook releases it at its end. A failed run keeps it.
  It lives in the default state schema whatever ``data_copy_state_schema`` says, so that
  every module finds it.

A module refuses when another session holds the lock, or when the lease names another
holder that is alive or whose liveness cannot be checked from here (another host). A
holder proven gone (:func:`controller.holder_state`) is taken over; a live or unknown
one only with ``takeover`` (``consolidation_lease_takeover``), and a module that is
working right now never (its lock cannot be taken).

``run_ended`` (``consolidation_lease_run_ended``) is the narrow case between: the run's
earlier ansible-playbook ran where it cannot be checked (an AWX execution environment,
gone with its job), and whoever starts this one knows that job has ended (AWX starts a
workflow's failure node only then). It takes over a lease of the *same run id* from a
holder of unknown state only: another run's lease, or a holder seen alive, is still refused.

The heartbeat says when the holder last worked; it does not decide liveness (a
two-hour ``pg_dump`` writes no heartbeat and is alive), the process identity does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
import zlib

from ansible_collections.classifiedads.consolidation.plugins.module_utils import controller as processes
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect, sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident, utc_timestamp
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_slots import (
    SLOTS_TABLE as STREAMING_TABLE,
)

LEASE_SCHEMA = "_consolidation"
LEASE_TABLE = "lease"
# The first key of the two-key advisory lock ('CADC'): keeps ours apart from other applications' locks.
LOCK_CLASS = 0x43414443
APPLICATION_NAME_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL cuts longer names
# How long a module waits for the lock before refusing: a refused run's module holds it for
# milliseconds (it reads the lease and exits), which must not knock out the run that owns it.
LOCK_PATIENCE = 5.0
LOCK_POLL = 0.25

IDENTITY = ("host", "machine_id", "boot_id", "pid_namespace", "pid", "pid_started")
HOLDER = ("run_id",) + IDENTITY + ("acquired_at", "heartbeat")

ACQUIRE = "acquire"
KEEP = "keep"
TAKE_OVER = "take_over"

TAKEOVER_HINT = ("wait for it to finish; if it is gone for good (its host is down, say), rerun with "
                 "-e consolidation_lease_takeover=true")
RUN_ENDED_HINT = ("; if it is an earlier job of this same run that has ended (an AWX job whose execution environment "
                  "is gone), rerun with -e consolidation_lease_run_ended=true")

CREATE_TABLE = """CREATE TABLE IF NOT EXISTS {schema}.{table} (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    run_id text,
    host text NOT NULL,
    machine_id text NOT NULL,
    boot_id text NOT NULL,
    pid_namespace text,
    pid integer,
    pid_started bigint,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    heartbeat timestamptz NOT NULL DEFAULT now()
)"""


class LeaseHeld(ConsolidationError):
    """Another run holds the target database (its lock or its lease)."""


def lock_key(database):
    """The (class, key) pair of the advisory lock for ``database``: a stable 32-bit hash of its name."""
    key = zlib.crc32(database.encode("utf-8")) & 0xFFFFFFFF
    return LOCK_CLASS, key - (1 << 32) if key >= (1 << 31) else key


def application_name(run_id, identity):
    """What the lock session calls itself, so that a refused run can name it (cut at 63 bytes)."""
    text = "consolidation run %s on %s pid %s" % (run_id or "-", identity["host"], identity["pid"])
    return text.encode("utf-8")[:APPLICATION_NAME_BYTES].decode("utf-8", "ignore")


def same_holder(holder, identity):
    """Whether a recorded holder is this very controller process (never when either pid is unknown)."""
    return identity.get("pid") is not None and all(holder.get(key) == identity.get(key) for key in IDENTITY)


def describe_holder(holder):
    """``run R on host H (pid P, since T, last heartbeat T2)`` for messages."""
    def when(moment):
        return utc_timestamp(moment, whole_seconds=True) if hasattr(moment, "astimezone") else moment

    return "run %s on host %s (ansible-playbook pid %s, since %s, last heartbeat %s)" % (
        holder.get("run_id") or "(unknown run id)", holder.get("host"), holder.get("pid"),
        when(holder.get("acquired_at")), when(holder.get("heartbeat")))


def own_run(holder, run_id):
    """Whether the recorded holder is a process of the run ``run_id`` (never when either id is unknown)."""
    return bool(run_id) and holder.get("run_id") == run_id


def held_problem(database, holder, state, run_id=None, run_ended=False):
    why = ("which is still running" if state == processes.ALIVE
           else "whose process cannot be checked from this host")
    text = ("target database %s is leased to %s, %s: one run at a time per target database; %s"
            % (quote_ident(database), describe_holder(holder), why, TAKEOVER_HINT))
    if state == processes.UNKNOWN and own_run(holder, run_id):
        text += RUN_ENDED_HINT
    elif run_ended and not own_run(holder, run_id):
        text += ("; consolidation_lease_run_ended takes over only a lease of run %s itself"
                 % (run_id or "(no run id)"))
    return text


def streaming_problem(database, streaming, run_id):
    """The refusal of a run while other runs stream into the database (online mode), or None.

    ``streaming`` is {run id: [legacy databases with a slot recorded]} (:func:`read_streaming`). Their
    appliers outlive the playbooks, so an ended holder does not mean an ended run: taking the lease over
    (even with consolidation_lease_takeover) would let two runs write the same tables.
    """
    others = sorted(other for other in streaming if other != run_id)
    if not others:
        return None
    return ("target database %s is being synchronised by online run(s) %s (replication slots of %s): their appliers "
            "write into it until cutover.yml ends them; one run at a time per target database. Finish that run "
            "(cutover.yml) or roll it back (rollback.yml -e consolidation_run_id=%s) first"
            % (quote_ident(database), ", ".join(others),
               ", ".join(quote_ident(name) for other in others for name in streaming[other]), others[0]))


def decide(database, holder, identity, state, takeover=False, run_id=None, run_ended=False):
    """What acquiring the lease does: ACQUIRE (free), KEEP (ours), TAKE_OVER; raises LeaseHeld.

    ``holder`` is the recorded row (None: no lease), ``state`` its :func:`controller.holder_state`;
    ``run_ended`` says that the earlier jobs of run ``run_id`` have ended.
    """
    if holder is None:
        return ACQUIRE
    if same_holder(holder, identity):
        return KEEP
    if state == processes.GONE or takeover:
        return TAKE_OVER
    if run_ended and state == processes.UNKNOWN and own_run(holder, run_id):
        return TAKE_OVER
    raise LeaseHeld(held_problem(database, holder, state, run_id, run_ended), holder=public_holder(holder, state))


def admits(holder, identity, state):
    """Whether a module may work beside this lease (no lease, ours, or its holder is gone)."""
    return holder is None or same_holder(holder, identity) or state == processes.GONE


def public_holder(holder, state=None):
    """The holder as a result shows it: who, since when, and whether it lives (no machine ids)."""
    if holder is None:
        return None
    shown = dict((key, holder.get(key)) for key in ("run_id", "host", "pid"))
    for key in ("acquired_at", "heartbeat"):
        moment = holder.get(key)
        shown[key] = utc_timestamp(moment, whole_seconds=True) if hasattr(moment, "astimezone") else moment
    if state is not None:
        shown["state"] = state
    return shown


def lock_holder_problem(database, sessions, holder):
    """The refusal when another session holds the advisory lock, naming it (and the lease, if any)."""
    who = "; ".join("%s (backend pid %s)" % (name or "a session without application_name", pid)
                    for pid, name in sessions) or "a session that has just ended"
    text = ("target database %s is being worked on right now by another consolidation module: %s"
            % (quote_ident(database), who))
    if holder is not None:
        text += "; the lease names %s" % describe_holder(holder)
    return text + "; one run at a time per target database: wait for it to finish"


# -- the lease row ----------------------------------------------------------------------------------

def _table():
    return sql.SQL("{}.{}").format(sql.Identifier(LEASE_SCHEMA), sql.Identifier(LEASE_TABLE))


def read_holder(cur):
    """The lease row as a dict, or None when there is none (or no lease table yet)."""
    cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                (sql.SQL("{}.{}").format(sql.Identifier(LEASE_SCHEMA), sql.Identifier(LEASE_TABLE)).as_string(cur),))
    if not cur.fetchone()[0]:
        return None
    cur.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(sql.Identifier, HOLDER)), _table()))
    row = cur.fetchone()
    return dict(zip(HOLDER, row)) if row else None


def write_holder(cur, run_id, identity, action):
    """Record this controller as the holder: a new lease, a taken-over one, or a heartbeat of ours."""
    if action == KEEP:
        cur.execute(sql.SQL("UPDATE {} SET heartbeat = now(), run_id = coalesce(%s, run_id)").format(_table()),
                    (run_id,))
        return
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(LEASE_SCHEMA)))
    cur.execute(sql.SQL(CREATE_TABLE).format(schema=sql.Identifier(LEASE_SCHEMA), table=sql.Identifier(LEASE_TABLE)))
    columns = [sql.Identifier(column) for column in ("run_id",) + IDENTITY]
    cur.execute(sql.SQL("INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT (only_row) DO UPDATE SET "
                        "{replaced}, acquired_at = now(), heartbeat = now()").format(
        table=_table(), columns=sql.SQL(", ").join(columns),
        values=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        replaced=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(column) for column in columns)),
        [run_id] + [identity.get(key) for key in IDENTITY])


def read_streaming(cur, state_schema=LEASE_SCHEMA):
    """{run id: [legacy databases]} with a replication slot recorded by an online copy (``<state_schema>.sync_slots``,
    the copy's state schema; sync_slots state=absent deletes a run's records with its slots); {} without the table."""
    table = sql.SQL("{}.{}").format(sql.Identifier(state_schema), sql.Identifier(STREAMING_TABLE))
    cur.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (table.as_string(cur),))
    if not cur.fetchone()[0]:
        return {}
    cur.execute(sql.SQL("SELECT run_id, source_database FROM {} ORDER BY 1, 2").format(table))
    streaming = {}
    for run_id, database in cur.fetchall():
        streaming.setdefault(run_id, []).append(database)
    return streaming


def delete_holder(cur):
    cur.execute(sql.SQL("DELETE FROM {}").format(_table()))


# -- the advisory lock ------------------------------------------------------------------------------

def database_exists(cur, database):
    cur.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = %s)", (database,))
    return cur.fetchone()[0]


def lock_sessions(cur, database):
    """[(backend pid, application_name)] of the sessions holding the lock of ``database``."""
    classid, key = lock_key(database)
    cur.execute("SELECT l.pid, a.application_name FROM pg_catalog.pg_locks l "
                "LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
                "AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) "
                "AND l.classid::bigint = %s AND l.objid::bigint = %s ORDER BY l.pid",
                (classid & 0xFFFFFFFF, key & 0xFFFFFFFF))
    return cur.fetchall()


def try_lock(cur, database, deadline):
    """Take the advisory lock of ``database`` in this session, trying until ``deadline``; whether it was taken."""
    while True:
        cur.execute("SELECT pg_catalog.pg_try_advisory_lock(%s, %s)", lock_key(database))
        if cur.fetchone()[0]:
            return True
        if time.time() >= deadline:
            return False
        time.sleep(LOCK_POLL)


class TargetLease(object):
    """The lock session on the target server's maintenance database, and access to the lease row.

    The session lives as long as the module's process: its end releases the lock.

    ``identity`` is this controller (:meth:`controller.Controller.identity`), ``run_id``
    the run when the module knows it (for the holder's name only).
    """

    def __init__(self, target, database, identity, run_id=None):
        self.target = target
        self.database = database
        self.identity = identity
        self.run_id = run_id
        self.conn = None

    def _maintenance(self):
        return connect(self.target, self.target.get("maintenance_db") or "postgres", autocommit=True)

    def lock(self):
        """Take the advisory lock for as long as this object lives, or raise LeaseHeld naming who has it."""
        conn = self._maintenance()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_catalog.set_config('application_name', %s, false)",
                            (application_name(self.run_id, self.identity),))
                if not try_lock(cur, self.database, time.time() + LOCK_PATIENCE):
                    sessions = lock_sessions(cur, self.database)
                    holder = self.read()
                    raise LeaseHeld(lock_holder_problem(self.database, sessions, holder),
                                    holder=public_holder(holder))
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        return self

    def _on_target(self, work):
        """``work(cur)`` in one transaction on the target database; None when the database does not exist."""
        probe = self._maintenance()
        try:
            with probe.cursor() as cur:
                if not database_exists(cur, self.database):
                    return None
        finally:
            probe.close()
        conn = connect(self.target, self.database)
        try:
            with conn.cursor() as cur:
                result = work(cur)
            conn.commit()
            return result
        finally:
            conn.close()

    def read(self):
        return self._on_target(read_holder)

    def state_of(self, holder):
        # Liveness is judged from the machine this module runs on, which need not be its controller's.
        return processes.holder_state(holder, processes.machine(), processes.started_of) if holder else None

    def check(self, heartbeat=True):
        """A working module's check: refuse a live (or unknowable) other holder, keep ours beating."""
        def work(cur):
            holder = read_holder(cur)
            state = self.state_of(holder)
            if not admits(holder, self.identity, state):
                raise LeaseHeld(held_problem(self.database, holder, state, self.run_id),
                                holder=public_holder(holder, state))
            if heartbeat and holder is not None and same_holder(holder, self.identity):
                write_holder(cur, self.run_id, self.identity, KEEP)
        self._on_target(work)

    def acquire(self, takeover=False, run_ended=False, state_schema=LEASE_SCHEMA):
        """Take (or keep) the lease: (action, previous holder as shown, its state); action None: no database yet."""
        def work(cur):
            holder = read_holder(cur)
            state = self.state_of(holder)
            action = decide(self.database, holder, self.identity, state, takeover, self.run_id, run_ended)
            problem = (streaming_problem(self.database, read_streaming(cur, state_schema), self.run_id)
                       if action != KEEP else None)
            if problem:
                raise LeaseHeld(problem, holder=public_holder(holder, state))
            write_holder(cur, self.run_id, self.identity, action)
            return action, public_holder(holder, state)
        return self._on_target(work) or (None, None)

    def release(self, finish=None):
        """Delete the lease if it is ours: (released, holder as shown).

        ``finish(cur)`` then runs in the same transaction (the run's state is dropped with its lease, so
        that no other run can take the database in between).
        """
        def work(cur):
            holder = read_holder(cur)
            if holder is None or not same_holder(holder, self.identity):
                return False, public_holder(holder, self.state_of(holder))
            delete_holder(cur)
            if finish is not None:
                finish(cur)
            return True, public_holder(holder)
        return self._on_target(work) or (False, None)

    def peek(self, look):
        """``look(cur)`` in a transaction on the target database (check mode: it must only read); None without one."""
        return self._on_target(look)

    def inspect(self):
        """Check mode: (database exists, holder, its state, sessions holding the lock), changing nothing."""
        conn = self._maintenance()
        try:
            with conn.cursor() as cur:
                exists = database_exists(cur, self.database)
                sessions = lock_sessions(cur, self.database)
        finally:
            conn.close()
        holder = self.read() if exists else None
        return exists, holder, self.state_of(holder), sessions
