"""What the reliability scenarios observe: server fingerprints, files, processes.

Plain functions over a running cluster or the local machine; the fixtures that
set scenarios up are in this directory's ``conftest.py``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import psycopg2
from conftest import run_sql
from psycopg2 import sql

_CATALOG_QUERIES = {
    "relations": "SELECT n.nspname, c.relname, c.relkind, c.relowner::regrole::text, c.relpersistence "
                 "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                 "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
                 "ORDER BY 1, 2",
    "columns": "SELECT a.attrelid::regclass::text, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
               "pg_get_expr(d.adbin, d.adrelid), a.attidentity FROM pg_attribute a "
               "JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = "
               "(a.attrelid, a.attnum) WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relnamespace NOT IN "
               "('pg_catalog'::regnamespace, 'information_schema'::regnamespace) ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated "
                   "FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace, "
                   "'information_schema'::regnamespace) ORDER BY 1, 2",
    "indexes": "SELECT schemaname, indexname, indexdef FROM pg_indexes "
               "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    "sequences": "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2",
    "comments": "SELECT objoid::regclass::text, objsubid, description FROM pg_description d "
                "JOIN pg_class c ON c.oid = d.objoid WHERE d.classoid = 'pg_class'::regclass "
                "AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) "
                "ORDER BY 1, 2",
}
_SERVER_QUERIES = {
    "databases": "SELECT datname, datdba::regrole::text, datallowconn, datconnlimit, datistemplate, "
                 "shobj_description(oid, 'pg_database') FROM pg_database ORDER BY 1",
    "settings": "SELECT coalesce(d.datname, ''), setrole::regrole::text, setconfig FROM pg_db_role_setting s "
                "LEFT JOIN pg_database d ON d.oid = s.setdatabase ORDER BY 1, 2",
    "roles": "SELECT rolname, rolsuper, rolcreatedb, rolcanlogin, rolconnlimit FROM pg_roles ORDER BY 1",
}


def _rows(cur, statement):
    cur.execute(statement)
    return cur.fetchall()


def server_fingerprint(info) -> dict:
    """Every database of a cluster, catalog and data: what no check-mode run may change.

    Data is one digest per table over its rows' text (order-independent), so
    an UPDATE that keeps the count shows as well as an INSERT.
    """
    conn = psycopg2.connect(**info.connect_kwargs("postgres"))
    try:
        with conn.cursor() as cur:
            fingerprint = {"server": {name: _rows(cur, query) for name, query in _SERVER_QUERIES.items()}}
            databases = [row[0] for row in _rows(cur, "SELECT datname FROM pg_database WHERE datallowconn "
                                                      "ORDER BY 1")]
    finally:
        conn.close()
    for database in databases:
        fingerprint[database] = database_fingerprint(info, database)
    return fingerprint


def database_fingerprint(info, database) -> dict:
    conn = psycopg2.connect(**info.connect_kwargs(database))
    try:
        with conn.cursor() as cur:
            found = {name: _rows(cur, query) for name, query in _CATALOG_QUERIES.items()}
            data = {}
            for schema, name, kind, _owner, _persistence in found["relations"]:
                if kind in ("r", "p"):
                    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))
                    cur.execute(sql.SQL("SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' "
                                        "ORDER BY md5(t::text)), '')) FROM {} AS t").format(table))
                    data[f"{schema}.{name}"] = cur.fetchone()
            found["data"] = data
    finally:
        conn.close()
    return found


def without_data(fingerprint: dict, *tables: str) -> dict:
    """A :func:`database_fingerprint` minus the data of ``tables`` (``schema.table``): the run's lease row,
    whose heartbeat and holder move with the run that holds it, not with the data."""
    return {**fingerprint, "data": {name: value for name, value in fingerprint["data"].items() if name not in tables}}


def without_state_schema(fingerprint: dict) -> dict:
    """A :func:`database_fingerprint` minus the state schema ``_consolidation``: a completed run has dropped
    it, and a later play that fails (a refused rollback, say) keeps the lease it took there, as a failed run
    does. Toast tables go too: the lease table's gets a new name each time, and every toast table only
    mirrors a table the fingerprint lists anyway."""
    def ours(row):
        return str(row[0]) == "_consolidation" or str(row[0]).startswith(("_consolidation.", "pg_toast."))

    kept = {name: [row for row in rows if not ours(row)] for name, rows in fingerprint.items() if name != "data"}
    kept["data"] = {name: value for name, value in fingerprint["data"].items()
                    if not name.startswith("_consolidation.")}
    return kept


def copied_tables(info, database, run_dir=None) -> dict:
    """{(source database, source table): completed_at} that the data copy recorded in ``database``
    (empty while the database or its state schema does not exist); once the run has completed and
    dropped its state schema, as ``state.json`` in ``run_dir`` keeps them."""
    try:
        rows = run_sql(info, database, "SELECT source_database, source_table, completed_at "
                                       "FROM _consolidation.copied_tables")
    except psycopg2.Error:
        record = Path(run_dir) / "state.json" if run_dir is not None else None
        if record is None or not record.exists():
            return {}
        rows = [(row["source_database"], row["source_table"], datetime.datetime.fromisoformat(row["completed_at"]))
                for row in json.loads(record.read_text())["copied_tables"]]
    return {(source_database, table): completed for source_database, table, completed in rows}


def files_under(*roots) -> list[Path]:
    return sorted(path for root in roots if Path(root).exists() for path in Path(root).rglob("*") if path.is_file())


def files_containing(needle: str, paths) -> list[str]:
    """The paths whose bytes contain ``needle``."""
    wanted = needle.encode()
    return [str(path) for path in paths if wanted in Path(path).read_bytes()]


def process_argvs():
    """{pid: argv} of every process readable now (processes that end meanwhile are left out)."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    found[int(entry.name)] = handle.read().split(b"\0")
            except OSError:
                continue
    return found


def processes_with_environment(entry: str) -> list[int]:
    """Processes whose environment holds ``entry`` (``NAME=value``): a command and every child it left."""
    wanted = entry.encode()
    found = []
    for entry_dir in os.scandir("/proc"):
        if entry_dir.name.isdigit():
            try:
                with open(f"/proc/{entry_dir.name}/environ", "rb") as handle:
                    if wanted in handle.read().split(b"\0"):
                        found.append(int(entry_dir.name))
            except OSError:
                continue
    return found


def module_pids(module, environment_entry) -> list[int]:
    """Processes running the collection module ``module`` as Ansible starts it (AnsiballZ_<module>.py) with
    ``environment_entry`` (``NAME=value``) in their environment: this run's, not another's."""
    marker = f"AnsiballZ_{module}.py".encode()
    mine = set(processes_with_environment(environment_entry))
    return [pid for pid, argv in process_argvs().items() if pid in mine and any(marker in arg for arg in argv)]


def kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


class ArgvWatcher:
    """Samples every process's argv in a background thread; ``hits`` are the argvs that held ``needle``.

    A sample every ``interval`` seconds sees every process that lives longer
    than that (pg_dump, pg_restore, the migrator, the modules themselves).
    """

    def __init__(self, needle: str, interval: float = 0.05):
        self.needle = needle.encode()
        self.interval = interval
        self.hits: list[list[bytes]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self):
        while not self._stop.is_set():
            for argv in process_argvs().values():
                if any(self.needle in arg for arg in argv):
                    self.hits.append(argv)
            self.samples += 1
            time.sleep(self.interval)


def wait_for(predicate, timeout: float, interval: float = 0.02, what: str = "condition"):
    """Poll ``predicate`` until it returns a true value (returned) or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def flip_bytes(path: Path, offset_from_end: int = 64) -> str:
    """Invert a few bytes near the end of ``path`` (size unchanged); returns the new sha256."""
    data = bytearray(path.read_bytes())
    for index in range(len(data) - offset_from_end, len(data) - offset_from_end + 8):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))
    return hashlib.sha256(data).hexdigest()
