"""Build the six legacy ClassifiedAds databases, filled with deterministic, realistic data.

Usage::

    python -m devkit.legacy create --scale S [--cluster NAME | --host H --port P --user U --passfile F]
                                   [--prefix ClassifiedAds] [--drop-existing] [--jobs 2]
    python -m devkit.legacy counts [connection options] [--prefix ClassifiedAds]
    python -m devkit.legacy drop   [connection options] [--prefix ClassifiedAds]

``create`` makes ``<prefix>_Product``, ``_Identity``, ``_Storage``, ``_Notification``, ``_AuditLog`` and
``_Configuration`` exactly as the application's EF Core migrations left them (``devkit/sql/*.sql``,
the HasData seed rows, one ``__EFMigrationsHistory`` row each, and DbUp's ``CacheEntries`` and
``schemaversions`` in the AuditLog database), then fills them server-side (see
:mod:`devkit.legacy_data`): tables first, then primary keys, foreign keys and indexes over the
loaded rows, then ``VACUUM (FREEZE, ANALYZE)``. The data carries what years of production leave
behind (:data:`devkit.legacy_data.QUIRKS`): claims whose shadow foreign key is NULL, identity gaps,
sequences ahead of their columns, and a sequence no column owns. Two worker threads fill two databases at a time.

A finished database carries ``COMMENT ON DATABASE`` naming the generator version and the scale, so
running ``create`` again with the same scale does nothing; another scale, or a database this tool did
not finish, is refused unless ``--drop-existing`` is given.

Volume (PostgreSQL 15, ``pg_database_size`` summed over the six databases): each unit of ``--scale``
adds about 97 MB (tables, TOAST and indexes; about 150,000 rows) on top of 44 MB for six empty
databases. Measured: scale 1 = 145 MB in 5 s, scale 10 = 1,022 MB (1.5 million rows) in 12 to 18 s,
on two cores. Scale 0.01 gives a few hundred rows in the big tables (outbox, audit, e-mail).

Connection options default to libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSFILE);
``--cluster NAME`` starts (if needed) and uses the embedded cluster NAME of :mod:`devkit.pgembed`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import sys
import threading
import time
from pathlib import Path

import psycopg2
import yaml
from psycopg2 import sql

from devkit import ddl, legacy_data, reference_catalog

GENERATOR_VERSION = 2
# The collection's ClassifiedAds defaults, whose NULL policies the fixtures' quirks need.
SHIPPED_DEFAULTS = Path(__file__).resolve().parents[2] / "roles" / "consolidation" / "defaults" / "main.yml"
DEFAULT_PREFIX = "ClassifiedAds"
# Largest first, so that two workers finish at about the same time.
BUILD_ORDER = ("notification", "product", "auditlog", "storage", "identity", "configuration")
MB = 1024 * 1024


class LegacyError(RuntimeError):
    """The legacy databases could not be built or read; the message says why."""


@dataclasses.dataclass(frozen=True)
class Server:
    """Where the legacy databases live. ``None`` fields fall back to libpq's defaults and environment."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    passfile: str | None = None

    def connect_kwargs(self, dbname: str = "postgres") -> dict:
        kwargs = {"host": self.host, "port": self.port, "user": self.user, "passfile": self.passfile}
        return {"dbname": dbname, **{key: value for key, value in kwargs.items() if value is not None}}


@dataclasses.dataclass(frozen=True)
class DatabaseReport:
    database: str
    built: bool  # False: it was already there at this scale
    rows: int
    size_bytes: int
    seconds: float

    def line(self) -> str:
        state = f"{self.seconds:.1f} s" if self.built else "already built, unchanged"
        return f"{self.database}: {self.rows:,} rows, {self.size_bytes / MB:.1f} MB, {state}"


def marker(scale: float) -> str:
    """The database comment that records what built a legacy database."""
    return f"devkit.legacy fixture: generator {GENERATOR_VERSION}, scale {float(scale)!r}"


def shipped_null_policies() -> dict[str, dict[str, dict]]:
    """``{module name: {table: {"columns": ...}}}``: the table overrides of the shipped defaults that set NULL
    policies. Copies of these databases made outside the playbook need them too (the claims whose shadow key is
    NULL cannot be copied as they are)."""
    modules = yaml.safe_load(SHIPPED_DEFAULTS.read_text())["consolidation_modules"]
    return {module["name"]: {table: {"columns": override["columns"]}
                             for table, override in (module.get("tables") or {}).items() if "columns" in override}
            for module in modules}


def modules_by_build_order() -> list[ddl.Module]:
    return [ddl.MODULES_BY_SCHEMA[schema] for schema in BUILD_ORDER]


def create(server, scale: float, prefix: str = DEFAULT_PREFIX, drop_existing: bool = False, jobs: int = 2,
           out=print) -> list[DatabaseReport]:
    """Build the six legacy databases at ``scale``; return one report per database, in build order.

    ``server`` is anything with ``connect_kwargs(dbname)``: a :class:`Server` or a
    :class:`devkit.pgembed.ClusterInfo`. ``out`` receives one summary line per database.
    """
    if not scale > 0:
        raise LegacyError(f"--scale must be a positive number, not {scale!r}")
    volume = legacy_data.volume(scale)
    wanted = marker(scale)
    todo, reports = [], []
    for module in modules_by_build_order():
        name = _database_name(prefix, module)
        comment = _database_comment(server, name)
        if comment is not None and not drop_existing:
            if comment == wanted and _has_legacy_tables(server, name, module):
                report = DatabaseReport(name, False, *_rows_and_size(server, name), 0.0)
                reports.append(report)
                out(report.line())
                continue
            found = comment or "no devkit.legacy marker (not built by this tool, or interrupted)"
            raise LegacyError(f"database {name} exists ({found}); pass --drop-existing to rebuild it at scale {scale}")
        todo.append(module)
    for module in todo:  # sequentially: CREATE/DROP DATABASE contend for the template and catalogs
        name = _database_name(prefix, module)
        _drop_database(server, name)
        _create_database(server, name)

    lock = threading.Lock()

    def build(module):
        report = _fill(server, _database_name(prefix, module), module, volume, wanted)
        with lock:
            out(report.line())
        return report

    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(build, module): module for module in todo}
        for future in concurrent.futures.as_completed(futures):
            try:
                reports.append(future.result())
            except (psycopg2.Error, LegacyError) as exc:
                module = futures[future]
                failures.append(f"{_database_name(prefix, module)}: {str(exc).strip().splitlines()[0]}")
                _drop_database(server, _database_name(prefix, module))
    if failures:
        raise LegacyError("could not build " + "; ".join(failures))
    order = {module.schema: index for index, module in enumerate(modules_by_build_order())}
    reports.sort(key=lambda report: order[_module_of(prefix, report.database).schema])
    total_rows = sum(report.rows for report in reports)
    total_size = sum(report.size_bytes for report in reports)
    out(f"total: {total_rows:,} rows, {total_size / MB:.1f} MB at scale {float(scale)!r}")
    return reports


def drop(server, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Drop the six legacy databases if they exist (closing their sessions); return the names dropped."""
    dropped = []
    for module in ddl.MODULES:
        name = _database_name(prefix, module)
        if _database_comment(server, name) is not None:
            _drop_database(server, name)
            dropped.append(name)
    return dropped


def counts(server, prefix: str = DEFAULT_PREFIX) -> dict[str, dict[str, int]]:
    """Exact ``count(*)`` of every table in ``public`` of each existing legacy database."""
    result = {}
    for module in sorted(ddl.MODULES, key=lambda module: module.name):
        name = _database_name(prefix, module)
        if _database_comment(server, name) is None:
            continue
        conn = _connect(server, name)
        try:
            with conn.cursor() as cur:
                result[name] = {}
                for table in _public_tables(cur):
                    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", table)))
                    result[name][table] = cur.fetchone()[0]
        finally:
            conn.close()
    return result


def digests(server, prefix: str = DEFAULT_PREFIX) -> dict[str, dict[str, tuple[int, str]]]:
    """``(count, md5)`` of every table in ``public`` of each legacy database.

    The md5 covers every row's text form, in sorted order, so equal digests mean equal contents
    whatever the physical order. Meant for small scales: it reads every row.
    """
    result = {}
    for module in ddl.MODULES:
        name = _database_name(prefix, module)
        conn = _connect(server, name)
        try:
            with conn.cursor() as cur:
                result[name] = {}
                for table in _public_tables(cur):
                    cur.execute(sql.SQL(
                        "SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), ''))"
                        " FROM {} AS t").format(sql.Identifier("public", table)))
                    result[name][table] = cur.fetchone()
        finally:
            conn.close()
    return result


# -- internals ----------------------------------------------------------------------------------

def _database_name(prefix: str, module: ddl.Module) -> str:
    name = module.legacy_database(prefix)
    if len(name.encode()) > 63:
        raise LegacyError(f"database name {name!r} is longer than PostgreSQL's 63 bytes: use a shorter --prefix")
    return name


def query(server, dbname: str, statement, params=None):
    """Run one statement in autocommit on ``dbname`` of ``server``; its rows, or None for a command.

    The one SQL helper of the dev harness: the tests' ``run_sql`` and the benchmarks use it.
    """
    conn = psycopg2.connect(**server.connect_kwargs(dbname))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def _module_of(prefix: str, database: str) -> ddl.Module:
    return next(module for module in ddl.MODULES if module.legacy_database(prefix) == database)


def _connect(server, dbname: str):
    try:
        return psycopg2.connect(**server.connect_kwargs(dbname))
    except psycopg2.OperationalError as exc:
        raise LegacyError(f"cannot connect to database {dbname}: {str(exc).strip()}") from exc


def _maintenance(server):
    conn = _connect(server, "postgres")
    conn.autocommit = True
    return conn


def _database_comment(server, name: str) -> str | None:
    """The database's comment, ``""`` when it has none, ``None`` when it does not exist."""
    conn = _maintenance(server)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database"
                        " WHERE datname = %s", (name,))
            row = cur.fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]


def _public_tables(cur) -> list[str]:
    cur.execute("SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " AND relkind IN ('r', 'p') ORDER BY relname")
    return [table for (table,) in cur.fetchall()]


def _has_legacy_tables(server, name: str, module: ddl.Module) -> bool:
    conn = _connect(server, name)
    try:
        with conn.cursor() as cur:
            found = set(_public_tables(cur))
    finally:
        conn.close()
    return found == set(reference_catalog.legacy_database(module.schema))


def _rows_and_size(server, name: str) -> tuple[int, int]:
    conn = _connect(server, name)
    try:
        with conn.cursor() as cur:
            # Exact after VACUUM, which scans every page and records the live tuple count.
            cur.execute("SELECT coalesce(sum(greatest(reltuples, 0)), 0)::bigint, pg_database_size(current_database())"
                        " FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'")
            rows, size = cur.fetchone()
    finally:
        conn.close()
    return rows, size


def _drop_database(server, name: str) -> None:
    conn = _maintenance(server)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


def _create_database(server, name: str) -> None:
    conn = _maintenance(server)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def _fill(server, name: str, module: ddl.Module, volume: dict, wanted_marker: str) -> DatabaseReport:
    started = time.monotonic()
    conn = _connect(server, name)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(legacy_data.SESSION_SETUP)
            ddl.run_sections(cur, module, "public", ("tables", "seed"))
            ddl.create_history_table(cur)
            ddl.insert_history_row(cur, module.legacy_migration_id)
            if module.schema == "auditlog":
                # The legacy Migrator ran DbUp against the AuditLog connection string.
                ddl.run_dbup_script(cur)
                ddl.create_dbup_journal(cur)
                cur.execute(
                    sql.SQL("INSERT INTO public.{} (scriptname, applied) VALUES (%s, %s)").format(
                        sql.Identifier(ddl.DBUP_JOURNAL_TABLE)),
                    (ddl.DBUP_SCRIPT_NAME, "2025-12-28 10:00:07.123456"),
                )
            ddl.set_search_path(cur, "public")
            for _table, statement, params in legacy_data.GENERATORS[module.schema]:
                values = {**volume, **params}
                if "count" in params:
                    values["n"] = volume[params["count"]]
                cur.execute(statement, values)
            ddl.run_sections(cur, module, "public", ("keys", "indexes"))
            cur.execute(sql.SQL("COMMENT ON DATABASE {} IS %s").format(sql.Identifier(name)), (wanted_marker,))
        conn.autocommit = True
        with conn.cursor() as cur:
            # Frozen and analysed, like the long-lived tables of a real deployment: readers that copy
            # the data later do not pay for setting hint bits.
            tables = sql.SQL(", ").join(sql.Identifier("public", table) for table in _public_tables(cur))
            cur.execute(sql.SQL("VACUUM (FREEZE, ANALYZE) {}").format(tables))
    finally:
        conn.close()
    rows, size = _rows_and_size(server, name)
    return DatabaseReport(name, True, rows, size, time.monotonic() - started)


# -- command line -------------------------------------------------------------------------------

def _server_from_args(args) -> object:
    if args.cluster:
        from devkit.pgembed import ClusterError, EmbeddedCluster

        try:
            return EmbeddedCluster(args.cluster).start()
        except ClusterError as exc:
            raise LegacyError(str(exc)) from exc
    return Server(args.host, args.port, args.user, args.passfile)


def _parser() -> argparse.ArgumentParser:
    volume = ("Each unit of --scale adds about 97 MB across the six databases, on top of 44 MB for six empty "
              "databases: scale 1 is 145 MB, scale 10 about 1 GB (built in under 20 s on two cores); scale 0.01 "
              "gives a few hundred rows in the big tables.")
    parser = argparse.ArgumentParser(
        prog="python -m devkit.legacy",
        description="Build, count or drop the six legacy ClassifiedAds databases (one per module).",
        epilog=volume,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("connection (default: libpq's PGHOST, PGPORT, PGUSER, PGPASSFILE)")
    group.add_argument("--cluster", metavar="NAME", help="start if needed and use the embedded cluster NAME")
    group.add_argument("--host")
    group.add_argument("--port", type=int)
    group.add_argument("--user")
    group.add_argument("--passfile", help="pgpass file holding the password")
    connection.add_argument("--prefix", default=DEFAULT_PREFIX,
                            help=f"database names are <prefix>_<Module> (default: {DEFAULT_PREFIX})")

    build = commands.add_parser("create", parents=[connection], help="build the databases (idempotent)",
                                epilog=volume)
    build.add_argument("--scale", type=float, required=True,
                       help="data volume: about 97 MB per unit across the six databases; 0.01 is tiny")
    build.add_argument("--drop-existing", action="store_true",
                       help="drop and rebuild databases that exist at another scale or were not finished")
    build.add_argument("--jobs", type=int, default=2, help="databases filled in parallel (default: 2)")
    commands.add_parser("counts", parents=[connection], help="print count(*) of every table of each database")
    commands.add_parser("drop", parents=[connection], help="drop the databases")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cluster and any(value is not None for value in (args.host, args.port, args.user, args.passfile)):
        print("devkit.legacy: --cluster and --host/--port/--user/--passfile exclude each other", file=sys.stderr)
        return 2
    try:
        server = _server_from_args(args)
        if args.command == "create":
            create(server, args.scale, args.prefix, args.drop_existing, args.jobs)
        elif args.command == "counts":
            found = counts(server, args.prefix)
            if not found:
                print(f"no {args.prefix}_<Module> databases found")
            width = max((len(table) for tables in found.values() for table in tables), default=0)
            for database, tables in found.items():
                print(database)
                for table, count in tables.items():
                    print(f"  {table:<{width}}  {count:>11,}")
        else:
            for name in drop(server, args.prefix):
                print(f"dropped {name}")
    except (LegacyError, psycopg2.Error) as exc:
        print(f"devkit.legacy: {str(exc).strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
