# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a table's rows travel from the source server to the target server.

The two COPY statements of a table, and the pump that joins them: ``COPY ...
TO STDOUT`` on the source writes into an OS pipe from a helper thread while the
worker feeds ``COPY ... FROM STDIN`` on the target from the other end. No file,
no copy of the data in Python objects beyond one buffer; psycopg2 releases the
GIL inside libpq calls, so the pumps of several tables run in parallel. Another
way of moving the stream would be another pump beside :func:`pipe_pump`, with
the same arguments and result (bench/pump_benchmark.py compares candidates).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import threading

from ansible_collections.classifiedads.consolidation.plugins.module_utils import null_policy
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import sql
from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import CopyFailed

PIPE_BUFFER = 1 << 20  # bytes a pump moves per read/write; also the pipe size asked of Linux
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, only named by Python >= 3.10


class Aborted(Exception):
    """Another worker failed: this one stops without reporting a second error."""


class CountingReader(object):
    """The read end of a pump's pipe, as copy_expert reads it: counts bytes, stops when the run aborts."""

    def __init__(self, handle, abort):
        self.handle = handle
        self.abort = abort
        self.bytes = 0

    def read(self, size=-1):
        if self.abort.is_set():
            raise Aborted()
        data = self.handle.read(size)
        self.bytes += len(data)
        return data

    def close(self):
        self.handle.close()


def copy_out_statement(job):
    """``COPY ... TO STDOUT`` of the job's source table, its matched columns in the target's order."""
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in job.match.columns)
    table = sql.SQL("{}.{}").format(sql.Identifier(job.source_schema), sql.Identifier(job.source_table))
    fmt = sql.SQL(job.match.copy_format)
    if job.null_plan is not None:
        # A NULL policy reads the table through a SELECT (COALESCE, or a filter), still in the snapshot.
        return sql.SQL("COPY ({}) TO STDOUT (FORMAT {})").format(
            null_policy.select_statement(job.null_plan, job.match.columns, table, only=True), fmt)
    # Every job is a plain table (a partition is one; a partitioned table is no job): COPY reads it itself,
    # without the executor. Like ONLY: inheritance children are tables of their own and copied as such.
    return sql.SQL("COPY {} ({}) TO STDOUT (FORMAT {})").format(table, columns, fmt)


def copy_in_statement(job, freeze):
    """``COPY ... FROM STDIN`` into the job's target table; ``freeze`` asks for FREEZE where it applies."""
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in job.match.columns)
    # FREEZE needs a plain table truncated in the same transaction, which it always is here.
    options = "FORMAT %s, FREEZE" if freeze and job.target_relkind == "r" else "FORMAT %s"
    return sql.SQL("COPY {} ({}) FROM STDIN ({})").format(job.target_table_sql(), columns,
                                                          sql.SQL(options % job.match.copy_format))


def pipe_pump(job, source, target_cur, copy_in, abort, journal):
    """Pump ``COPY ... TO STDOUT`` on the source into ``COPY ... FROM STDIN`` on the target.

    ``source`` is a source connection of the job's database (read inside the job's snapshot),
    ``target_cur`` a cursor inside the table's target transaction, ``abort`` the run's stop signal,
    ``journal`` keeps both COPY statements. The source side runs on a helper thread and writes
    into an OS pipe; this thread feeds the target from the other end. Returns (rows, bytes).
    Binary and text COPY both accept a stream that simply ends, so a source failure must not
    reach COMMIT: it is re-raised here, and the two row counts must agree.
    """
    read_fd, write_fd = os.pipe()
    try:
        fcntl.fcntl(write_fd, F_SETPIPE_SZ, PIPE_BUFFER)
    except (OSError, IOError):
        pass  # a smaller pipe only means more wake-ups
    sink = os.fdopen(write_fd, "wb", PIPE_BUFFER)
    reader = CountingReader(os.fdopen(read_fd, "rb", PIPE_BUFFER), abort)
    copy_out = copy_out_statement(job)
    outcome = {}

    def produce():
        try:
            with source.cursor() as cur:
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cur.execute("SET TRANSACTION SNAPSHOT %s", (job.source.snapshot,))
                try:
                    cur.copy_expert(copy_out, sink)
                finally:
                    sink.close()
                outcome["rows"] = cur.rowcount
                cur.execute("COMMIT")
        except Exception as exc:  # handed to the consuming thread
            outcome["error"] = exc
            try:
                sink.close()
            except (OSError, IOError):
                pass

    with source.cursor() as cur:
        journal.record(cur, copy_out)
    journal.record(target_cur, copy_in)
    producer = threading.Thread(target=produce, name="copy-out %s" % job.source_table)
    producer.start()
    try:
        target_cur.copy_expert(copy_in, reader, PIPE_BUFFER)
        rows = target_cur.rowcount
    finally:
        # Closing the read end makes a producer still writing fail with EPIPE instead of blocking.
        reader.close()
        producer.join()
    if "error" in outcome:
        raise CopyFailed("reading %s failed: %s" % (job.source_label, str(outcome["error"]).strip()))
    if outcome.get("rows") != rows:
        raise CopyFailed("%s: the source sent %s rows but the target received %s"
                         % (job.source_label, outcome.get("rows"), rows))
    return rows, reader.bytes
