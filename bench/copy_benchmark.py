"""Throughput of classifiedads.consolidation.data_copy against the two hand-made ways of moving the data.

Usage (from the repository root, with ansible-core and psycopg2 importable)::

    PYTHONPATH=tools python bench/copy_benchmark.py [--scale 13] [--methods a,b,c] [--repeat 1]
        [--parallel 2] [--root /var/tmp/classifiedads-copy-bench] [--durable] [--vacuum] [--destroy] [--json FILE]

Two embedded PostgreSQL clusters (devkit.pgembed) stand for the two servers: ``source`` holds the six
legacy ClassifiedAds databases at ``--scale`` (devkit.legacy, deterministic data; scale 13 is about
1.3 GB of databases, built once and reused), ``target`` receives the copy. Before every timed run the
target database is dropped and the stand-in migrator (tools/bin/classifiedads-migrator) creates it
again, with its tables, keys, indexes and seed rows, exactly as a consolidation finds it. Then:

a. the migration plan's way (migration-plan.md, step 4): per table, serially,
   ``psql -c "\\copy \\"T\\" TO 'T.csv' CSV HEADER"`` on the source, then
   ``psql -c "\\copy schema.\\"T\\" FROM 'T.csv' CSV HEADER"`` on the target;
b. a hand pipe per table, serially: ``psql -c "COPY \\"T\\" TO STDOUT (FORMAT binary)" |
   psql -c "COPY schema.\\"T\\" FROM STDIN (FORMAT binary)"`` into the migrator's tables;
c. the collection's data_copy module, run as Ansible runs it (JSON arguments in, JSON result out).

(a) and (b) first empty the tables the migrator seeded (Products, Users, the two configuration
tables, DbUp's journal), untimed, or their primary keys would stop them; (c) is told to replace
those rows with per-table ``truncate: true``, as a real plan must. Variants of (c) for measuring
single design choices: ``c-nofreeze`` (COPY without FREEZE), ``c-keep-indexes``
(``defer_indexes: false``), ``c1`` (``parallel: 1``).

The variants call the engine in this process (the module is only glue around it).

Each run is checked (every target table holds as many rows as its legacy table) and timed by wall
clock; MB is the size of the six legacy databases (``pg_database_size``), so MB/s is comparable
between methods. The CPU seconds of each server's backends (reaped children of its postmaster) and
of the client side are printed too: on a shared machine they are steadier than wall time. Not a
test: quote the best of a few repeats, and the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
from devkit import ddl, legacy
from devkit.legacy import query
from devkit.pgembed import EmbeddedCluster
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_engine import CopyEngine
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan

REPO = Path(__file__).resolve().parent.parent
MIGRATOR = REPO / "tools" / "bin" / "classifiedads-migrator"
MB = 1024 * 1024
TARGET_DATABASE = "ClassifiedAds"
EXCLUDE = "__EFMigrationsHistory"
# Default ClassifiedAds plan: DbUp's objects go to public; tables the migrator seeds get replaced.
PUBLIC_TABLES = {"schemaversions", "CacheEntries"}
SEEDED = {("product", "Products"), ("identity", "Users"), ("configuration", "ConfigurationEntries"),
          ("configuration", "LocalizationEntries"), ("public", "schemaversions")}
METHODS = {
    "a": "plan: \\copy to CSV files, then \\copy from them, table by table",
    "b": "hand pipe: psql COPY binary | psql COPY binary, table by table",
    "c": "data_copy module",
    "c-nofreeze": "data_copy engine, COPY without FREEZE",
    "c-keep-indexes": "data_copy engine, defer_indexes: false",
    "c1": "data_copy engine, parallel: 1",
}


# -- clusters and data ---------------------------------------------------------------------------------

def legacy_tables(info, prefix="ClassifiedAds"):
    """[(module, legacy database, table, target schema)] for every table the copy moves.

    Referenced tables come before the tables that reference them: the hand-made methods load the
    migrator's tables with their foreign keys in place, as the migration plan does.
    """
    tables = []
    for module in ddl.MODULES:
        database = module.legacy_database(prefix)
        names = [name for (name,) in query(info, database, "SELECT relname::text FROM pg_class WHERE relkind = 'r' "
                                                           "AND relnamespace = 'public'::regnamespace ORDER BY 1")
                 if name != EXCLUDE]
        parents = {}
        for child, parent in query(info, database, "SELECT conrelid::regclass::text, confrelid::regclass::text "
                                                   "FROM pg_constraint WHERE contype = 'f'"):
            parents.setdefault(child.strip('"'), set()).add(parent.strip('"'))
        ordered = []
        while len(ordered) < len(names):
            ordered += [name for name in names if name not in ordered
                        and parents.get(name, set()) <= set(ordered) - {name}]
        for table in ordered:
            tables.append((module, database, table, "public" if table in PUBLIC_TABLES else module.schema))
    return tables


def fresh_target(target_info):
    """Drop the consolidated database and let the stand-in migrator create it again."""
    query(target_info, "postgres", sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(TARGET_DATABASE)))
    connection_string = (f"Host={target_info.host};Port={target_info.port};Database={TARGET_DATABASE};"
                         f"Username={target_info.user};Passfile={target_info.passfile}")
    subprocess.run([sys.executable, str(MIGRATOR)], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, ConnectionStrings__Default=connection_string))
    query(target_info, TARGET_DATABASE, "CHECKPOINT")


def empty_seeded(target_info):
    # CASCADE: the tables referencing the seeded Users are empty anyway.
    query(target_info, TARGET_DATABASE, sql.SQL("TRUNCATE {} CASCADE").format(
        sql.SQL(", ").join(sql.Identifier(schema, table) for schema, table in sorted(SEEDED))))


# {(module name, table): columns whose NULL keeps a legacy row out}: the shipped quarantine policies, which every
# method applies (the fixtures hold claims whose shadow key is NULL, see devkit.legacy_data.QUIRKS).
QUARANTINED = {(module, table): [column for column, policy in override["columns"].items()
                                 if policy["on_null"] == "quarantine"]
               for module, tables in legacy.shipped_null_policies().items() for table, override in tables.items()}


def copied_rows(module, table):
    """The legacy rows a method copies, as the source of a COPY or a count: the table, or a query without the
    quarantined rows."""
    columns = QUARANTINED.get((module.name, table))
    if not columns:
        return sql.Identifier("public", table)
    return sql.SQL("(SELECT * FROM {} WHERE {})").format(sql.Identifier("public", table), sql.SQL(" AND ").join(
        sql.SQL("{} IS NOT NULL").format(sql.Identifier(column)) for column in columns))


def check_counts(source_info, target_info, tables):
    for module, database, table, schema in tables:
        expected = query(source_info, database, sql.SQL("SELECT count(*) FROM {} AS t").format(
            copied_rows(module, table)))[0][0]
        found = query(target_info, TARGET_DATABASE, sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(schema, table)))[0][0]
        if found != expected:
            raise SystemExit(f"{schema}.{table}: {found} rows in the target, {expected} in {database}")


# -- the methods ---------------------------------------------------------------------------------------

def psql(info, dbname, command):
    """argv and environment for psql running one command; the password stays in the pgpass file."""
    argv = [os.path.join(info.bin_dir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbname, "-c", command]
    return argv, dict(os.environ, **info.libpq_env())


def quoted(conn, *names):
    return sql.Identifier(*names).as_string(conn)


def method_plan(source_info, target_info, tables, workdir):
    conn = psycopg2.connect(**target_info.connect_kwargs(TARGET_DATABASE))
    try:
        for module, database, table, schema in tables:
            path = os.path.join(workdir, f"{database}.{table}.csv")
            literal = "'" + path.replace("'", "''") + "'"
            source = copied_rows(module, table).as_string(conn)
            argv, env = psql(source_info, database, f"\\copy {source} TO {literal} CSV HEADER")
            subprocess.run(argv, env=env, check=True)
            target = quoted(conn, schema, table)
            argv, env = psql(target_info, TARGET_DATABASE, f"\\copy {target} FROM {literal} CSV HEADER")
            subprocess.run(argv, env=env, check=True)
            os.unlink(path)
    finally:
        conn.close()


def method_pipe(source_info, target_info, tables, _workdir):
    conn = psycopg2.connect(**target_info.connect_kwargs(TARGET_DATABASE))
    try:
        for module, database, table, schema in tables:
            source = copied_rows(module, table).as_string(conn)
            out_argv, out_env = psql(source_info, database, f"COPY {source} TO STDOUT (FORMAT binary)")
            target = quoted(conn, schema, table)
            in_argv, in_env = psql(target_info, TARGET_DATABASE, f"COPY {target} FROM STDIN (FORMAT binary)")
            producer = subprocess.Popen(out_argv, env=out_env, stdout=subprocess.PIPE)
            consumer = subprocess.Popen(in_argv, env=in_env, stdin=producer.stdout)
            producer.stdout.close()
            if consumer.wait() or producer.wait():
                raise SystemExit(f"the pipe for {schema}.{table} failed")
    finally:
        conn.close()


def endpoint(info):
    return {"host": info.host, "port": info.port, "user": info.user, "passfile": info.passfile, "sslmode": "disable"}


def module_plan(tables):
    modules = {}
    for module, database, table, schema in tables:
        entry = modules.setdefault(module.name, {"name": module.name, "source_database": database,
                                                 "schema": module.schema,
                                                 "tables": dict(legacy.shipped_null_policies()[module.name])})
        if schema != module.schema or (schema, table) in SEEDED:
            entry["tables"][table] = {"schema": schema, "truncate": (schema, table) in SEEDED}
    return list(modules.values())


def module_args(source_info, target_info, tables, workdir):
    return dict(source=endpoint(source_info), target=endpoint(target_info), target_database=TARGET_DATABASE,
                run_id="bench", modules=module_plan(tables), exclude_tables=[EXCLUDE], parallel=OPTIONS.parallel,
                progress_log=os.path.join(workdir, "data_copy.log"))


def method_module(source_info, target_info, tables, workdir):
    """The module as Ansible runs it: JSON arguments in a file, JSON result on stdout."""
    path = os.path.join(workdir, "args.json")
    with open(path, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(module_args(source_info, target_info, tables, workdir),
                                               _ansible_remote_tmp=workdir)}, handle)
    completed = subprocess.run(
        [sys.executable, "-m", "ansible_collections.classifiedads.consolidation.plugins.modules.data_copy", path],
        capture_output=True, text=True, cwd=workdir,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        raise SystemExit(f"data_copy printed no JSON:\n{completed.stdout}\n{completed.stderr}") from None
    if result.get("failed"):
        raise SystemExit(f"data_copy failed: {result.get('msg')}")


def engine_variant(**changes):
    """The engine the module drives, called in this process with one design choice changed."""
    def run(source_info, target_info, tables, workdir):
        args = module_args(source_info, target_info, tables, workdir)
        args.update(changes)
        modules = build_plan(args.pop("modules"), TARGET_DATABASE, args["source"], args["target"],
                             args.pop("exclude_tables"))
        CopyEngine(modules=modules, **args).run()
    return run


RUNNERS = {"a": method_plan, "b": method_pipe, "c": method_module,
           "c-nofreeze": engine_variant(freeze=False), "c-keep-indexes": engine_variant(defer_indexes=False),
           "c1": engine_variant(parallel=1)}


# -- measuring -----------------------------------------------------------------------------------------

def backend_cpu(info):
    """CPU seconds of the server's exited backends (its postmaster's reaped children) plus its own."""
    with open(os.path.join(info.data_dir, "postmaster.pid")) as handle:
        pid = handle.readline().strip()
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def client_cpu():
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def timed(method, source_info, target_info, tables):
    fresh_target(target_info)
    if not method.startswith("c"):
        empty_seeded(target_info)
    runner = RUNNERS[method]
    workdir = tempfile.mkdtemp(prefix="copy-bench-")
    before = (backend_cpu(source_info), backend_cpu(target_info), client_cpu())
    started = time.monotonic()
    try:
        runner(source_info, target_info, tables, workdir)
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    time.sleep(0.5)  # let the last backends exit and be reaped
    after = (backend_cpu(source_info), backend_cpu(target_info), client_cpu())
    check_counts(source_info, target_info, tables)
    figures = {"seconds": seconds, "cpu_source": after[0] - before[0], "cpu_target": after[1] - before[1],
               "cpu_client": after[2] - before[2]}
    if OPTIONS.vacuum:
        # The work every copied page still owes: hint bits, visibility map, freezing. COPY FREEZE pays it upfront.
        started = time.monotonic()
        query(target_info, TARGET_DATABASE, "VACUUM (FREEZE)")
        figures["vacuum_seconds"] = time.monotonic() - started
    return figures


def machine(source_info):
    with open("/proc/meminfo") as handle:
        memory = int(handle.readline().split()[1]) * 1024
    settings = query(source_info, "postgres", "SELECT name, setting, unit FROM pg_settings WHERE name IN "
                                              "('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', "
                                              "'shared_buffers', 'max_wal_size', 'max_parallel_maintenance_workers') "
                                              "ORDER BY name")
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(memory / 1024 ** 3, 1),
        "kernel": platform.release(),
        "postgresql": query(source_info, "postgres", "SHOW server_version")[0][0],
        "settings": {name: setting + (unit or "") for name, setting, unit in settings},
        "load_average": os.getloadavg(),
    }


OPTIONS = None


def main(argv=None):
    global OPTIONS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=13.0, help="devkit.legacy scale (13: about 1.3 GB)")
    parser.add_argument("--methods", default="a,b,c", help=f"comma-separated, from: {', '.join(METHODS)}")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each method (default 1)")
    parser.add_argument("--parallel", type=int, default=2, help="data_copy's parallel option (default 2)")
    parser.add_argument("--root", default="/var/tmp/classifiedads-copy-bench", help="where the two clusters live")
    parser.add_argument("--durable", action="store_true", help="new clusters keep fsync on (default: off)")
    parser.add_argument("--destroy", action="store_true", help="destroy both clusters at the end")
    parser.add_argument("--vacuum", action="store_true",
                        help="after each run, also time VACUUM (FREEZE) of the target database (untimed in MB/s)")
    parser.add_argument("--json", help="also write the figures to this file")
    OPTIONS = options = parser.parse_args(argv)
    methods = [method.strip() for method in options.methods.split(",") if method.strip()]
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")

    clusters = [EmbeddedCluster(name, options.root, durable=options.durable) for name in ("source", "target")]
    source_info, target_info = (cluster.start() for cluster in clusters)
    try:
        print(f"legacy databases at scale {options.scale}:", flush=True)
        try:
            legacy.create(source_info, options.scale, out=lambda line: print("  " + line, flush=True))
        except legacy.LegacyError as exc:
            raise SystemExit(f"{exc} (or pick another --root)") from None
        tables = legacy_tables(source_info)
        size = sum(query(source_info, "postgres", "SELECT pg_database_size(%s)", (database,))[0][0]
                   for database in sorted({database for _m, database, _t, _s in tables}))
        about = machine(source_info)
        print("machine: {cpus} CPUs, {memory_gb} GB RAM, Linux {kernel}, PostgreSQL {postgresql}".format(**about))
        settings = ", ".join(f"{name}={value}" for name, value in about["settings"].items())
        print(f"server settings (both clusters): {settings}")
        print("load average at start: {:.2f} {:.2f} {:.2f}".format(*about["load_average"]))
        print(f"{len(tables)} tables, {size / MB:.0f} MB of legacy databases\n", flush=True)

        figures = {}
        for method in methods:
            runs = []
            for attempt in range(options.repeat):
                run = timed(method, source_info, target_info, tables)
                runs.append(run)
                rate = size / MB / run["seconds"]
                print(f"  {method:<15} run {attempt + 1}: {run['seconds']:6.1f} s  {rate:6.1f} MB/s"
                      f"   cpu: source {run['cpu_source']:.1f} s, target {run['cpu_target']:.1f} s,"
                      f" client {run['cpu_client']:.1f} s"
                      + (f"   then VACUUM (FREEZE) {run['vacuum_seconds']:.1f} s" if OPTIONS.vacuum else ""),
                      flush=True)
            best = min(run["seconds"] for run in runs)
            figures[method] = {"description": METHODS[method], "runs": runs, "best_seconds": best,
                               "median_seconds": statistics.median(run["seconds"] for run in runs),
                               "mb_per_second": size / MB / best}

        print(f"\n{'method':<15} {'seconds':>8} {'MB':>8} {'MB/s':>8}")
        for method, figure in figures.items():
            print(f"{method:<15} {figure['best_seconds']:8.1f} {size / MB:8.0f} {figure['mb_per_second']:8.1f}"
                  f"  {figure['description']}")
        for numerator in [method for method in figures if method.startswith("c")]:
            for denominator in ("a", "b"):
                if denominator in figures:
                    ratio = figures[denominator]["best_seconds"] / figures[numerator]["best_seconds"]
                    print(f"({numerator})/({denominator}): {ratio:.2f}x")
        if options.json:
            with open(options.json, "w") as handle:
                json.dump({"machine": about, "scale": options.scale, "size_bytes": size, "tables": len(tables),
                           "methods": figures}, handle, indent=2)
    finally:
        if options.destroy:
            for cluster in clusters:
                cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
