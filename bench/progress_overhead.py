"""What the live progress lines cost a short task: data_copy, backup_set and row_count_diff with and without
their action plugins.

Usage (from the repository root, with ansible-core and psycopg2 importable)::

    PYTHONPATH=tools python bench/progress_overhead.py [--runs 7] [--rows 20000]

Starts one throwaway embedded PostgreSQL cluster, fills a small legacy database (``--rows`` rows, well
under the 15 s interval), and times ``ansible-playbook`` running a copy, a backup and a verification,
``--runs`` times in each of three set-ups, interleaved so that the machine's load falls on all alike:

* ``module only``: the collection without ``plugins/action`` (a copy of this checkout), as before the
  progress lines existed;
* ``progress off``: the action plugins with ``classifiedads_consolidation_progress_interval=0``;
* ``progress on``: the action plugins with the default interval (no line is due in a short run).

Prints the median and the best wall time of each. Not a test: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devkit.legacy import query as run_sql
from devkit.pgembed import EmbeddedCluster

REPO = Path(__file__).resolve().parent.parent


def collections_without_actions(workdir):
    """A collections path whose classifiedads.consolidation is this checkout minus plugins/action."""
    root = workdir / "collections" / "ansible_collections" / "classifiedads" / "consolidation"
    root.parent.mkdir(parents=True)
    shutil.copytree(REPO, root, ignore=shutil.ignore_patterns(".git", ".venv", ".ansible", "tests", "bench", "tools",
                                                              ".cache", "*.pyc"), symlinks=True)
    shutil.rmtree(root / "plugins" / "action")
    community = REPO / ".ansible" / "collections" / "ansible_collections" / "community"
    if community.exists():
        (root.parent.parent / "community").symlink_to(community)
    return workdir / "collections"


def playbook(workdir, info, run):
    path = workdir / "short.yml"
    source = {"host": info.host, "port": info.port, "user": info.user, "passfile": info.passfile, "sslmode": "disable"}
    path.write_text(json.dumps([{
        "hosts": "consolidation_controller", "gather_facts": False,
        "tasks": [
            {"classifiedads.consolidation.data_copy": {
                "source": source, "target": source, "target_database": "Bench_Target", "run_id": run, "truncate": True,
                "modules": [{"name": "Legacy", "source_database": "Bench_Legacy", "schema": "legacy"}]}},
            {"classifiedads.consolidation.backup_set": {
                "source": source, "databases": ["Bench_Legacy"], "backup_root": str(workdir / "backups"),
                "set_id": run}},
            {"classifiedads.consolidation.row_count_diff": {
                "source": source, "target": source, "target_database": "Bench_Target", "checksum": True,
                "modules": [{"name": "Legacy", "source_database": "Bench_Legacy", "schema": "legacy"}]}}]}]))
    return path


def timed(collections, play, interval):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(collections))
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(REPO / "inventories" / "local"),
            str(play)]
    if interval is not None:
        argv[1:1] = ["-e", f"classifiedads_consolidation_progress_interval={interval}"]
    started = time.monotonic()
    completed = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - started
    if completed.returncode != 0:
        raise SystemExit(completed.stdout[-3000:] + completed.stderr[-3000:])
    if any(task + ":" in completed.stdout for task in ("data_copy", "backup_set", "row_count_diff")):
        raise SystemExit("a short run printed progress:\n" + completed.stdout)
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="cad-bench-progress-", dir="/var/tmp")
    os.chmod(root, 0o755)
    workdir = Path(tempfile.mkdtemp(prefix="cad-bench-progress-"))
    cluster = EmbeddedCluster("bench", root).start()
    try:
        for name in ("Bench_Legacy", "Bench_Target"):
            run_sql(cluster, "postgres", f'CREATE DATABASE "{name}"')
        run_sql(cluster, "Bench_Legacy", 'CREATE TABLE "Items" (id bigint PRIMARY KEY, body text NOT NULL)')
        run_sql(cluster, "Bench_Legacy", 'INSERT INTO "Items" SELECT g, md5(g::text) FROM generate_series(1, %s) g',
                (args.rows,))
        run_sql(cluster, "Bench_Target", "CREATE SCHEMA legacy")
        run_sql(cluster, "Bench_Target", 'CREATE TABLE legacy."Items" (id bigint PRIMARY KEY, body text NOT NULL)')
        setups = {"module only": (collections_without_actions(workdir), None),
                  "progress off": (REPO / ".ansible" / "collections", 0),
                  "progress on": (REPO / ".ansible" / "collections", None)}
        times = dict((name, []) for name in setups)
        for attempt in range(args.runs):
            for name, (collections, interval) in setups.items():
                run = f"bench-{attempt}-{name.replace(' ', '-')}"
                times[name].append(timed(collections, playbook(workdir, cluster, run), interval))
        print(f"{args.rows} rows, {args.runs} runs each: wall time of ansible-playbook (copy + backup + verification)")
        for name, values in times.items():
            print(f"  {name:<13} median {statistics.median(values):.2f} s, best {min(values):.2f} s")
    finally:
        EmbeddedCluster("bench", root).destroy()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
