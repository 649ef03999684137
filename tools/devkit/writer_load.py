"""A writer load against the six legacy ClassifiedAds databases, and the proof that none of its writes was lost.

Usage::

    python -m devkit.writer_load [--cluster NAME | --host H --port P --user U --passfile F]
                                 [--prefix ClassifiedAds] [--rate 200] [--seconds 30]

In code (what the benchmarks and the online-mode tests do)::

    load = WriterLoad(source_info, rate=200)
    load.start()
    ...                                  # sync, fence, cutover
    stats = load.stop()
    report = load.check(target_info, "ClassifiedAds")
    assert report.ok, report.summary()

One thread per legacy database issues transactions at ``rate / 6`` per second each: inserts of new rows,
updates of rows it inserted and of rows the database already held (sampled at start), deletes of rows
it inserted (the rows the seed made are referenced by foreign keys, so the load never deletes them).
About one transaction in ten holds two statements (an insert, then an update of the same row), so that
the stream carries multi-statement transactions. A few Product inserts carry a description of ~8 kB
that PostgreSQL stores out of line (TOAST); later updates of that row leave it unchanged.

Only writes whose COMMIT returned are recorded, in a ledger: per (database, table, Id) the last values
written, or "deleted". A COMMIT that failed without an answer (the connection dropped) may or may not
have happened: both outcomes are accepted for that row, and the load never touches it again. Refusals
(a fenced database is read-only, or refuses connections) are counted, not recorded; the thread retries
after a short pause, so that a load running through a fence simply stalls.

:meth:`WriterLoad.check` reads the consolidated database (each module's tables in the module's
schema, same table names) and proves every recorded write: inserted and updated rows present with
their last written values, deleted rows absent. ``check_legacy`` does the same against the legacy
databases themselves.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import random
import sys
import threading
import time
import uuid

import psycopg2
import psycopg2.errorcodes
import psycopg2.extras
from psycopg2 import sql

from devkit import ddl

psycopg2.extras.register_uuid()

DEFAULT_PREFIX = "ClassifiedAds"
# Rows of the seed each thread may update (never delete): enough that updates spread over pages.
SAMPLED_ROWS = 200
# Pause after a refused or failed transaction: a fenced database refuses every attempt.
RETRY_PAUSE = 0.2
# A rate that falls behind catches up by at most this much at once (no burst after a stall).
MAX_LAG_SECONDS = 1.0
LONG_TEXT_CHARS = 8000
UTC = datetime.UTC


def _now():
    return datetime.datetime.now(UTC)


def _word(rng: random.Random, length: int = 12) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(length)).strip() or "x"


def _long_text(rng: random.Random) -> str:
    # Random hex barely compresses, so the value stays larger than the TOAST threshold after pglz.
    return rng.randbytes(LONG_TEXT_CHARS // 2).hex()


@dataclasses.dataclass(frozen=True)
class TableLoad:
    """What the load writes into one table: the columns of a new row and the columns an update sets."""

    table: str
    new_row: object  # (rng, n) -> {column: value}
    update: object  # (rng) -> {column: value}


def _product(rng, n):
    description = _long_text(rng) if rng.random() < 0.05 else _word(rng, 60)
    return {"Code": f"WL{n:06d}", "Name": _word(rng, 16), "Description": description, "CreatedDateTime": _now()}


def _user(rng, n):
    name = f"writer.load.{n}"
    return {"UserName": name, "NormalizedUserName": name.upper(), "Email": name + "@example.com",
            "EmailConfirmed": False, "PhoneNumberConfirmed": False, "TwoFactorEnabled": False,
            "LockoutEnabled": True, "AccessFailedCount": 0, "ConcurrencyStamp": _word(rng), "CreatedDateTime": _now()}


def _file(rng, n):
    return {"Name": f"writer-{n}.txt", "Description": _word(rng, 40), "Size": rng.randrange(1, 10 ** 9),
            "UploadedTime": _now(), "FileName": f"writer-{n}.txt", "Encrypted": False, "Archived": False,
            "Deleted": False, "CreatedDateTime": _now()}


def _email(rng, n):
    return {"From": "noreply@classifiedads.example", "Tos": f"writer.{n}@example.com", "Subject": _word(rng, 30),
            "Body": _word(rng, 200), "AttemptCount": 0, "MaxAttemptCount": 3, "CreatedDateTime": _now()}


def _audit(rng, n):
    return {"UserId": uuid.UUID(int=rng.getrandbits(128)), "Action": "WriterLoad", "ObjectId": str(n),
            "Log": _word(rng, 80), "CreatedDateTime": _now()}


def _configuration(rng, n):
    return {"Key": f"WriterLoad:{n}", "Value": _word(rng), "Description": _word(rng, 30), "IsSensitive": False,
            "CreatedDateTime": _now()}


# Columns an update sets are ones no application reader depends on (never a Key, Value or e-mail address).
TABLE_LOADS = {
    "Product": TableLoad("Products", _product, lambda rng: {"Name": _word(rng, 16), "UpdatedDateTime": _now()}),
    "Identity": TableLoad("Users", _user, lambda rng: {"ConcurrencyStamp": _word(rng), "UpdatedDateTime": _now()}),
    "Storage": TableLoad("FileEntries", _file,
                         lambda rng: {"Description": _word(rng, 40), "UpdatedDateTime": _now()}),
    "Notification": TableLoad("EmailMessages", _email,
                              lambda rng: {"Log": _word(rng, 40), "AttemptCount": rng.randrange(0, 3),
                                           "UpdatedDateTime": _now()}),
    "AuditLog": TableLoad("AuditLogEntries", _audit, lambda rng: {"Log": _word(rng, 80), "UpdatedDateTime": _now()}),
    "Configuration": TableLoad("ConfigurationEntries", _configuration,
                               lambda rng: {"Description": _word(rng, 30), "UpdatedDateTime": _now()}),
}


@dataclasses.dataclass
class Stats:
    """What the load did; ``committed`` counts transactions whose COMMIT returned."""

    committed: int = 0
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    refused: int = 0
    uncertain: int = 0
    first_refusal: float | None = None  # time.time() of the first refused transaction
    last_commit: float | None = None  # time.time() of the last committed one
    started: float | None = None
    stopped: float | None = None

    def add(self, other: Stats) -> None:
        for name in ("committed", "inserts", "updates", "deletes", "refused", "uncertain"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.first_refusal = min(filter(None, (self.first_refusal, other.first_refusal)), default=None)
        self.last_commit = max(filter(None, (self.last_commit, other.last_commit)), default=None)

    def rate(self) -> float:
        seconds = (self.stopped or time.time()) - (self.started or time.time())
        return self.committed / seconds if seconds > 0 else 0.0


@dataclasses.dataclass
class CheckReport:
    """The outcome of comparing the ledger with a database: ``ok`` when every recorded write is there."""

    checked: int = 0
    present: int = 0
    absent: int = 0
    missing: list = dataclasses.field(default_factory=list)  # (database, table, Id) expected present, not found
    stale: list = dataclasses.field(default_factory=list)  # present with other values than the last written
    resurrected: list = dataclasses.field(default_factory=list)  # deleted, yet present

    @property
    def ok(self) -> bool:
        return self.checked > 0 and not (self.missing or self.stale or self.resurrected)

    def summary(self) -> str:
        head = (f"{self.checked} recorded rows checked: {self.present} present with their last values,"
                f" {self.absent} deleted and absent")
        kinds = (("missing", self.missing), ("with other values", self.stale),
                 ("deleted, yet present", self.resurrected))
        problems = [(label, keys) for label, keys in kinds if keys]
        if self.checked == 0:
            return head + "; nothing was recorded, so nothing is proven"
        if not problems:
            return head
        # Ids only: they are the load's own keys, never row contents.
        return head + "; " + "; ".join(
            f"{len(keys)} {label} (first: {', '.join('{}.{} {}'.format(*key) for key in keys[:3])})"
            for label, keys in problems)


class _Ledger:
    """Per (table, Id): the acceptable states of the row, each ``None`` (deleted) or {column: value}."""

    def __init__(self):
        self.states: dict[tuple[str, uuid.UUID], list] = {}

    def _after(self, table, key, values):
        """The row's state after writing ``values`` (None: a delete) over its last known state."""
        if values is None:
            return None
        previous = self.states.get((table, key))
        return {**((previous[-1] if previous else None) or {}), **values}

    def committed(self, table, key, values):
        self.states[(table, key)] = [self._after(table, key, values)]

    def uncertain(self, table, key, values):
        # Before the write: the earlier state, or "absent" for a row this load was inserting.
        self.states[(table, key)] = (self.states.get((table, key)) or [None]) + [self._after(table, key, values)]


class _DatabaseWriter(threading.Thread):
    def __init__(self, server, module: ddl.Module, prefix: str, interval: float, stop: threading.Event, seed: int):
        super().__init__(name="writer-" + module.name, daemon=True)
        self.server = server
        self.database = module.legacy_database(prefix)
        self.load = TABLE_LOADS[module.name]
        self.interval = interval
        self.stop_event = stop
        self.rng = random.Random(seed)
        self.stats = Stats()
        self.ledger = _Ledger()
        self.lock = threading.Lock()
        self.own: list[uuid.UUID] = []  # rows this load inserted and may update or delete
        self.seeded: list[uuid.UUID] = []  # rows of the seed it may update
        self.conn = None
        self.counter = 0
        self.error: BaseException | None = None

    # -- connection ---------------------------------------------------------------------------------------

    def _connect(self):
        if self.conn is None or self.conn.closed:
            self.conn = psycopg2.connect(**self.server.connect_kwargs(self.database))
        return self.conn

    def _close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
            self.conn = None

    def sample_seed_rows(self):
        conn = self._connect()
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL('SELECT "Id" FROM {} ORDER BY "Id" LIMIT %s').format(
                sql.Identifier("public", self.load.table)), (SAMPLED_ROWS,))
            self.seeded = [row[0] for row in cur.fetchall()]

    # -- one transaction ------------------------------------------------------------------------------------

    def _plan(self):
        """The statements of the next transaction: [(operation, Id, values)]."""
        roll = self.rng.random()
        if roll < 0.45 or not (self.own or self.seeded):
            self.counter += 1
            key = uuid.UUID(int=self.rng.getrandbits(128), version=4)
            statements = [("insert", key, self.load.new_row(self.rng, self.counter))]
            if self.rng.random() < 0.2:
                statements.append(("update", key, self.load.update(self.rng)))
            return statements
        if roll < 0.85 or not self.own:
            pool = self.own if self.own and (self.rng.random() < 0.6 or not self.seeded) else self.seeded
            return [("update", self.rng.choice(pool), self.load.update(self.rng))]
        return [("delete", self.own[self.rng.randrange(len(self.own))], None)]

    def _execute(self, cur, operation, key, values):
        table = sql.Identifier("public", self.load.table)
        if operation == "insert":
            columns = ["Id", *values]
            cur.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                table, sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns))), [key, *values.values()])
        elif operation == "update":
            cur.execute(sql.SQL('UPDATE {} SET {} WHERE "Id" = %s').format(
                table, sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(column)) for column in values)),
                [*values.values(), key])
        else:
            cur.execute(sql.SQL('DELETE FROM {} WHERE "Id" = %s').format(table), [key])
        if cur.rowcount != 1:
            raise RuntimeError(f"writer load: {operation} of {self.load.table} Id {key} touched {cur.rowcount} rows,"
                               " expected 1 (another writer?)")

    def _record(self, statements, certain: bool):
        with self.lock:
            for operation, key, values in statements:
                state = None if operation == "delete" else values
                if not certain:
                    # Whether it happened is unknown: both states are accepted, and the row is left alone from now on.
                    self.ledger.uncertain(self.load.table, key, state)
                    self._forget(key)
                    continue
                self.ledger.committed(self.load.table, key, state)
                setattr(self.stats, operation + "s", getattr(self.stats, operation + "s") + 1)
                if operation == "insert":
                    self.own.append(key)
                elif operation == "delete":
                    self._forget(key)
            if certain:
                self.stats.committed += 1
                self.stats.last_commit = time.time()
            else:
                self.stats.uncertain += 1

    def _forget(self, key):
        if key in self.own:
            self.own.remove(key)
        if key in self.seeded:
            self.seeded.remove(key)

    def _refused(self):
        with self.lock:
            self.stats.refused += 1
            if self.stats.first_refusal is None:
                self.stats.first_refusal = time.time()

    def transaction(self):
        statements = self._plan()
        try:
            conn = self._connect()
            with conn.cursor() as cur:
                for operation, key, values in statements:
                    self._execute(cur, operation, key, values)
        except psycopg2.Error:
            # Refused before COMMIT (read-only fence, connection refused or terminated): nothing happened.
            self._refused()
            self._close()
            return False
        try:
            conn.commit()
        except psycopg2.Error as exc:
            if conn.closed or isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
                self._record(statements, certain=False)
            else:
                self._refused()
            self._close()
            return False
        self._record(statements, certain=True)
        return True

    # -- the thread -----------------------------------------------------------------------------------------

    def run(self):
        self.stats.started = time.time()
        deadline = time.monotonic()
        try:
            while not self.stop_event.is_set():
                deadline = max(deadline + self.interval, time.monotonic() - MAX_LAG_SECONDS)
                if not self.transaction():
                    self.stop_event.wait(RETRY_PAUSE)
                    continue
                pause = deadline - time.monotonic()
                if pause > 0:
                    self.stop_event.wait(pause)
        except BaseException as exc:  # noqa: BLE001 - reported by WriterLoad.stop, never swallowed
            self.error = exc
        finally:
            self._close()
            self.stats.stopped = time.time()


class WriterLoad:
    """Writes into the six legacy databases of ``server`` (anything with ``connect_kwargs(dbname)``)."""

    def __init__(self, server, rate: float = 200.0, prefix: str = DEFAULT_PREFIX, seed: int = 11):
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        self.server = server
        self.prefix = prefix
        self.stop_event = threading.Event()
        interval = len(ddl.MODULES) / rate
        self.writers = [_DatabaseWriter(server, module, prefix, interval, self.stop_event, seed + index)
                        for index, module in enumerate(ddl.MODULES)]

    def start(self) -> WriterLoad:
        for writer in self.writers:
            writer.sample_seed_rows()
        for writer in self.writers:
            writer.start()
        return self

    def stats(self) -> Stats:
        """The totals so far (safe while running)."""
        total = Stats(started=min((w.stats.started for w in self.writers if w.stats.started), default=None))
        for writer in self.writers:
            with writer.lock:
                total.add(writer.stats)
        stops = [w.stats.stopped for w in self.writers]
        total.stopped = max(stops) if all(stops) else None
        return total

    def stop(self) -> Stats:
        """Stop every thread after its current transaction; raise what a thread failed with."""
        self.stop_event.set()
        for writer in self.writers:
            writer.join()
        errors = [f"{writer.database}: {writer.error}" for writer in self.writers if writer.error]
        if errors:
            raise RuntimeError("writer load failed: " + "; ".join(errors))
        return self.stats()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- proofs -------------------------------------------------------------------------------------------------

    def check(self, target_info, target_database: str, schemas: dict | None = None) -> CheckReport:
        """Prove every recorded write in the consolidated database ``target_database``.

        ``schemas`` maps a module name to its schema there (default: the ClassifiedAds plan's, e.g.
        Product -> product). Call after :meth:`stop`.
        """
        schemas = schemas or {module.name: module.schema for module in ddl.MODULES}
        conn = psycopg2.connect(**target_info.connect_kwargs(target_database))
        try:
            report = CheckReport()
            for writer, module in zip(self.writers, ddl.MODULES, strict=True):
                _check_ledger(conn, schemas[module.name], writer, report)
            return report
        finally:
            conn.close()

    def check_legacy(self) -> CheckReport:
        """Prove every recorded write in the legacy databases themselves (the load's own sanity check)."""
        report = CheckReport()
        for writer in self.writers:
            conn = psycopg2.connect(**self.server.connect_kwargs(writer.database))
            try:
                _check_ledger(conn, "public", writer, report)
            finally:
                conn.close()
        return report


def _check_ledger(conn, schema: str, writer: _DatabaseWriter, report: CheckReport) -> None:
    with writer.lock:
        states = dict(writer.ledger.states)
    columns = sorted({column for alternatives in states.values() for state in alternatives if state
                      for column in state})
    keys = [key for (_table, key) in states]
    if not keys:
        return
    with conn.cursor() as cur:
        cur.execute(sql.SQL('SELECT {} FROM {} WHERE "Id" = ANY(%s)').format(
            sql.SQL(", ").join(map(sql.Identifier, ["Id", *columns])), sql.Identifier(schema, writer.load.table)),
            (keys,))
        found = {row[0]: dict(zip(columns, row[1:], strict=True)) for row in cur.fetchall()}
    conn.rollback()
    for (table, key), alternatives in states.items():
        report.checked += 1
        row = found.get(key)
        if any(state is None and row is None for state in alternatives):
            report.absent += 1
        elif row is not None and any(state and all(row[c] == v for c, v in state.items()) for state in alternatives):
            report.present += 1
        elif row is None:
            report.missing.append((writer.database, table, key))
        elif all(state is None for state in alternatives):
            report.resurrected.append((writer.database, table, key))
        else:
            report.stale.append((writer.database, table, key))


# -- command line -------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    from devkit.legacy import Server

    parser = argparse.ArgumentParser(prog="python -m devkit.writer_load", description=__doc__.split("\n")[0])
    parser.add_argument("--cluster", metavar="NAME", help="use the running embedded cluster NAME")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--user")
    parser.add_argument("--passfile")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--rate", type=float, default=200.0, help="transactions per second, all databases")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.cluster:
        from devkit.pgembed import EmbeddedCluster

        server = EmbeddedCluster(args.cluster).start()
    else:
        server = Server(args.host, args.port, args.user, args.passfile)
    load = WriterLoad(server, args.rate, args.prefix, seed=os.getpid()).start()
    time.sleep(args.seconds)
    stats = load.stop()
    report = load.check_legacy()
    print(f"{stats.committed} transactions ({stats.rate():.0f}/s): {stats.inserts} inserts, {stats.updates} updates,"
          f" {stats.deletes} deletes; {stats.refused} refused, {stats.uncertain} uncertain")
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
