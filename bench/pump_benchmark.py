"""Which pump moves one table's COPY stream from server to server fastest, and does psycopg2 release the GIL?

Usage (from the repository root, after bench/copy_benchmark.py has built its clusters)::

    PYTHONPATH=tools python bench/pump_benchmark.py [--root /var/tmp/classifiedads-copy-bench]
        [--table ArchivedOutboxMessages] [--database ClassifiedAds_Product] [--repeat 3]

Streams one legacy table (binary COPY) into an unindexed, unlogged scratch table on the target
cluster (so that the server's side is cheap and the pump's own cost shows) with:

* ``pipe``: the engine's way, a producer thread writes ``COPY ... TO STDOUT`` into an OS pipe
  (1 MiB buffered writer, pipe enlarged to 1 MiB), the consumer feeds ``COPY ... FROM STDIN`` from
  the other end in 1 MiB reads;
* ``queue``: a pure-Python file-like adaptor, the producer's ``write`` calls append to a list that
  is handed over through a ``queue.Queue`` in 1 MiB batches;
* ``psql``: ``psql | psql`` as the reference, no Python in the data path;
* ``pipe x2``: two ``pipe`` pumps at once in two threads of one process (two scratch tables). If
  psycopg2 held the GIL while libpq waits, this would take twice as long as one pump; it takes
  about as long as one when two cores are free.

Prints wall seconds and the client's CPU seconds per variant (best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import queue
import resource
import subprocess
import sys
import threading
import time

import psycopg2
from devkit.pgembed import EmbeddedCluster
from psycopg2 import sql

BUFFER = 1 << 20
SCRATCH = "pump_scratch"


def connect(info, dbname):
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    conn.autocommit = True
    return conn


def prepare_scratch(source_info, target_info, database, table, count):
    source = connect(source_info, database)
    with source.cursor() as cur:
        cur.execute("SELECT string_agg(format('%%I %%s', attname, format_type(atttypid, atttypmod)), ', ' "
                    "ORDER BY attnum) FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                    "AND NOT attisdropped", (sql.Identifier("public", table).as_string(source),))
        columns = cur.fetchone()[0]
    source.close()
    target = connect(target_info, "postgres")
    with target.cursor() as cur:
        for index in range(count):
            name = sql.Identifier(f"{SCRATCH}_{index}")
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
            cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} (" + columns + ")").format(name))
    target.close()


def copy_sql(database_table, index):
    return (sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(sql.Identifier("public", database_table)),
            sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(sql.Identifier(f"{SCRATCH}_{index}")))


def pump_pipe(source, target, copy_out, copy_in):
    read_fd, write_fd = os.pipe()
    try:
        fcntl.fcntl(write_fd, 1031, BUFFER)
    except OSError:
        pass
    sink = os.fdopen(write_fd, "wb", BUFFER)

    def produce():
        with source.cursor() as cur:
            cur.copy_expert(copy_out, sink)
        sink.close()

    producer = threading.Thread(target=produce)
    producer.start()
    with os.fdopen(read_fd, "rb", BUFFER) as stream, target.cursor() as cur:
        cur.copy_expert(copy_in, stream, BUFFER)
    producer.join()


class QueueStream:
    """write() from the producer, read() from the consumer, batches of about BUFFER bytes."""

    def __init__(self):
        self.queue = queue.Queue(maxsize=8)
        self.pending, self.size, self.leftover = [], 0, b""

    def write(self, data):
        self.pending.append(data)
        self.size += len(data)
        if self.size >= BUFFER:
            self.flush()

    def flush(self):
        if self.pending:
            self.queue.put(b"".join(self.pending))
            self.pending, self.size = [], 0

    def close(self):
        self.flush()
        self.queue.put(b"")

    def read(self, size=-1):
        data = self.leftover or self.queue.get()
        self.leftover = data[size:] if 0 < size < len(data) else b""
        return data[:size] if 0 < size < len(data) else data


def pump_queue(source, target, copy_out, copy_in):
    stream = QueueStream()

    def produce():
        with source.cursor() as cur:
            cur.copy_expert(copy_out, stream)
        stream.close()

    producer = threading.Thread(target=produce)
    producer.start()
    with target.cursor() as cur:
        cur.copy_expert(copy_in, stream, BUFFER)
    producer.join()


def pump_psql(source_info, target_info, database, copy_out, copy_in, conn):
    psql = os.path.join(source_info.bin_dir, "psql")
    out = subprocess.Popen([psql, "-X", "-q", "-d", database, "-c", copy_out.as_string(conn)],
                           env=dict(os.environ, **source_info.libpq_env()), stdout=subprocess.PIPE)
    into = subprocess.Popen([psql, "-X", "-q", "-d", "postgres", "-c", copy_in.as_string(conn)],
                            env=dict(os.environ, **target_info.libpq_env()), stdin=out.stdout)
    out.stdout.close()
    if into.wait() or out.wait():
        raise SystemExit("psql pipe failed")


def cpu():
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def run_variant(variant, source_info, target_info, database, table):
    pumps = 2 if variant == "pipe x2" else 1
    pairs = [(connect(source_info, database), connect(target_info, "postgres")) for _ in range(pumps)]
    for _source, target in pairs:
        with target.cursor() as cur:
            for index in range(pumps):
                cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(f"{SCRATCH}_{index}")))
    started_cpu, started = cpu(), time.monotonic()
    if variant == "psql":
        pump_psql(source_info, target_info, database, *copy_sql(table, 0), pairs[0][0])
    else:
        pump = pump_queue if variant == "queue" else pump_pipe
        threads = [threading.Thread(target=pump, args=(source, target) + copy_sql(table, index))
                   for index, (source, target) in enumerate(pairs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    seconds, client = time.monotonic() - started, cpu() - started_cpu
    for source, target in pairs:
        source.close()
        target.close()
    return seconds, client


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/var/tmp/classifiedads-copy-bench")
    parser.add_argument("--database", default="ClassifiedAds_Product")
    parser.add_argument("--table", default="ArchivedOutboxMessages")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    source_info, target_info = (EmbeddedCluster(name, options.root).start() for name in ("source", "target"))
    prepare_scratch(source_info, target_info, options.database, options.table, 2)
    conn = connect(source_info, options.database)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_table_size(%s::regclass)", (sql.Identifier("public", options.table).as_string(conn),))
        size = cur.fetchone()[0]
    conn.close()
    print(f"{options.database}.{options.table}: {size / 2 ** 20:.0f} MB, best of {options.repeat}")
    for variant in ("pipe", "queue", "psql", "pipe x2"):
        runs = [run_variant(variant, source_info, target_info, options.database, options.table)
                for _ in range(options.repeat)]
        seconds, client = min(runs)
        rate = size / 2 ** 20 / seconds
        print(f"  {variant:<8} {seconds:5.2f} s  {rate:6.1f} MB/s per pump   client cpu {client:.2f} s")
    target = connect(target_info, "postgres")
    with target.cursor() as cur:
        for index in range(2):
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"{SCRATCH}_{index}")))
    target.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
