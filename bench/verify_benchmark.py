"""Throughput of classifiedads.consolidation.row_count_diff: counts and checksums, MB/s per side.

Usage (from the repository root, with ansible-core and psycopg2 importable)::

    PYTHONPATH=<collections path>:tools python bench/verify_benchmark.py [--scale 10] [--runs 3]
        [--workers 2] [--root /var/tmp/classifiedads-bench] [--destroy]

Builds (once, then reused) two embedded PostgreSQL clusters under ``--root``: the six legacy
ClassifiedAds databases at ``--scale`` on one (devkit.legacy: deterministic data, scale 10 is about
1 GB of databases), and the consolidated database on the other (devkit.migrator, then the
collection's data copy). Then it runs the module as Ansible would, ``--runs`` times for counts and for
checksums, and prints the MB/s of each: table bytes (heap and TOAST, ``pg_table_size``) of one side
divided by the module's own ``elapsed`` (both sides are measured at the same time, so that is the
rate each side sustains). Not a test: timings on a shared machine are noisy, the best run is the
figure to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg2
from devkit import legacy, migrator
from devkit.pgembed import EmbeddedCluster
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_engine import CopyEngine
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import build_plan

MB = 1024 * 1024
TARGET_DATABASE = "ClassifiedAds"
MODULES = [
    {"name": "Product", "source_database": "ClassifiedAds_Product", "schema": "product"},
    {"name": "Identity", "source_database": "ClassifiedAds_Identity", "schema": "identity",
     "tables": legacy.shipped_null_policies()["Identity"]},
    {"name": "Storage", "source_database": "ClassifiedAds_Storage", "schema": "storage"},
    {"name": "Notification", "source_database": "ClassifiedAds_Notification", "schema": "notification"},
    {"name": "AuditLog", "source_database": "ClassifiedAds_AuditLog", "schema": "auditlog",
     "tables": {"schemaversions": {"schema": "public", "truncate": True}, "CacheEntries": {"schema": "public"}}},
    {"name": "Configuration", "source_database": "ClassifiedAds_Configuration", "schema": "configuration"},
]
EXCLUDE = ["__EFMigrationsHistory"]


def endpoint(info):
    return {"host": info.host, "port": info.port, "user": info.user, "passfile": info.passfile, "sslmode": "disable"}


def connect(info, dbname, autocommit=True):
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    conn.autocommit = autocommit
    return conn


def target_marker(scale):
    return f"verify_benchmark: data_copy of devkit.legacy scale {float(scale)!r}"


def database_comment(info, dbname):
    conn = connect(info, "postgres")
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = %s",
                    (dbname,))
        row = cur.fetchone()
    conn.close()
    return None if row is None else row[0]


def build_target(source_info, target_info, scale):
    """The consolidated database: the stand-in migrator's tables, filled by the collection's own data copy (with
    the shipped NULL policies: the legacy claims whose shadow key is NULL go to the quarantine)."""
    if database_comment(target_info, TARGET_DATABASE) == target_marker(scale):
        return
    conn = connect(target_info, "postgres")
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TARGET_DATABASE)))
    conn.close()
    migrator.migrate(target_info.connect_kwargs(TARGET_DATABASE), log=lambda line: None)
    modules = build_plan(MODULES, TARGET_DATABASE, endpoint(source_info), endpoint(target_info), EXCLUDE)
    # truncate: the migrator's seed rows go, the legacy rows replace them.
    result = CopyEngine(endpoint(source_info), endpoint(target_info), modules, TARGET_DATABASE, "bench",
                        truncate=True).run()
    print(f"  copied {result['totals']['tables']} tables, {result['totals']['rows']} rows", flush=True)
    conn = connect(target_info, TARGET_DATABASE)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("COMMENT ON DATABASE {} IS %s").format(sql.Identifier(TARGET_DATABASE)),
                    (target_marker(scale),))
        cur.execute("VACUUM (FREEZE, ANALYZE)")
    conn.close()


def run_module(args):
    """Run row_count_diff as Ansible does (JSON arguments in a file, JSON result on stdout).

    Adds ``wall``: seconds for the whole process, interpreter start included.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    started = time.monotonic()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "ansible_collections.classifiedads.consolidation.plugins.modules.row_count_diff",
             handle.name], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    finally:
        os.unlink(handle.name)
    result = dict(json.loads(completed.stdout), wall=time.monotonic() - started)
    if result.get("failed"):
        raise SystemExit(f"row_count_diff failed: {result.get('msg')}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10.0, help="devkit.legacy scale (10: about 1 GB)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="tables at a time per server (default 2)")
    parser.add_argument("--root", default="/var/tmp/classifiedads-bench", help="where the two clusters live")
    parser.add_argument("--destroy", action="store_true", help="destroy both clusters at the end")
    parser.add_argument("--schema-fidelity", choices=("off", "report", "enforce"), default="report",
                        help="row_count_diff's schema_fidelity (default report, the module's default): off measures "
                             "the rows alone, without the schema's catalog reads")
    options = parser.parse_args(argv)

    clusters = [EmbeddedCluster(name, options.root) for name in ("bench-source", "bench-target")]
    source_info, target_info = (cluster.start() for cluster in clusters)
    try:
        print(f"legacy databases (scale {options.scale}):", flush=True)
        try:
            legacy.create(source_info, options.scale, out=lambda line: print("  " + line, flush=True))
        except legacy.LegacyError as exc:
            raise SystemExit(f"{exc} (or pick another --root)") from exc
        print("consolidated database:", flush=True)
        build_target(source_info, target_info, options.scale)

        args = dict(source=endpoint(source_info), target=endpoint(target_info), modules=MODULES,
                    target_database=TARGET_DATABASE, workers=options.workers, check_sequences=True,
                    schema_fidelity=options.schema_fidelity)
        sizes = {}
        for side, info in (("source", source_info), ("target", target_info)):
            total = 0
            databases = [module["source_database"] for module in MODULES] if side == "source" else [TARGET_DATABASE]
            for dbname in databases:
                conn = connect(info, dbname)
                with conn.cursor() as cur:
                    cur.execute("SELECT coalesce(sum(pg_table_size(c.oid)), 0) FROM pg_class c"
                                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
                                " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
                                " AND c.relname <> ALL(%s)", (EXCLUDE,))
                    total += int(cur.fetchone()[0])
                conn.close()
            sizes[side] = total
        tables = len([row for row in run_module(args)["tables"] if row["kind"] == "copied"])  # also warms the cache
        print(f"\ncompared: {tables} tables, {sizes['source'] / MB:.1f} MB on the source, "
              f"{sizes['target'] / MB:.1f} MB on the target; {options.workers} worker(s) per server; "
              f"schema fidelity {options.schema_fidelity}")
        for label, extra in (("counts", {}), ("checksums", {"checksum": True})):
            times, walls = [], []
            for _run in range(options.runs):
                result = run_module(dict(args, **extra))
                assert result["summary"]["passed"], result["table_text"]
                assert all((row["source_checksum"] is not None) == bool(extra)
                           for row in result["tables"] if row["kind"] == "copied")
                times.append(result["elapsed"])
                walls.append(result["wall"])
            best, median = min(times), statistics.median(times)
            print(f"{label:<10} best {best:6.2f} s  median {median:6.2f} s  ->  "
                  f"{sizes['source'] / MB / best:7.0f} MB/s per side (best), "
                  f"{sizes['source'] / MB / median:7.0f} MB/s (median); whole module process best {min(walls):.2f} s")
    finally:
        if options.destroy:
            for cluster in clusters:
                cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
