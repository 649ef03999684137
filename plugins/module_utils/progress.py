# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live progress lines of a long copy or backup: what they say, worked out from plain numbers.

The controller side (``plugins/plugin_utils/progress.py``) samples the run while the module works
and hands each :class:`Sample` to :func:`progress_line` (data_copy), each :class:`DumpSample` to
:func:`backup_line` (backup_set). A line carries counts, sizes, a rate and an estimate, never a
table's contents or a connection detail.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.copy_plan import megabytes
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident


class Sample(object):
    """One look at a running copy.

    ``tables_done``/``tables_total``: tables recorded as copied for the run (earlier invocations
    included) and planned in all; ``bytes_done``: the COPY stream of the tables this invocation
    completed; ``bytes_in_flight``: what the loads still running have streamed so far
    (``pg_stat_progress_copy``); ``size_done``/``size_total``: the source tables' on-disk sizes,
    done and planned, which scale the estimate.
    """

    def __init__(self, tables_done, tables_total, bytes_done, bytes_in_flight, size_done, size_total):
        self.tables_done = tables_done
        self.tables_total = tables_total
        self.bytes_done = bytes_done
        self.bytes_in_flight = bytes_in_flight
        self.size_done = size_done
        self.size_total = size_total


def seconds_left(sample, elapsed):
    """Seconds until the last table is loaded at the rate so far, or None when nothing says yet.

    The COPY stream and the on-disk size of a table differ by a few per cent either way, close
    enough to turn the bytes still to stream into time.
    """
    moved = sample.bytes_done + sample.bytes_in_flight
    if elapsed <= 0 or moved <= 0:
        return None
    remaining = max(0, sample.size_total - sample.size_done - sample.bytes_in_flight)
    return remaining / (moved / elapsed)


def duration(seconds):
    """``1h02m``, ``3m05s``, ``42s``: short enough for a progress line."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)
    if seconds >= 60:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def progress_line(task, sample, elapsed):
    """``data_copy: 3/12 tables, 412.5 MB copied (80.0 MB in flight) of about 1.2 GB, 38.4 MB/s, ETA 52s``."""
    moved = sample.bytes_done + sample.bytes_in_flight
    parts = ["%d/%d tables" % (sample.tables_done, sample.tables_total),
             "%.1f MB copied%s of about %.1f MB" % (
                 megabytes(moved), " (%.1f MB in flight)" % megabytes(sample.bytes_in_flight)
                 if sample.bytes_in_flight else "", megabytes(sample.size_total)),
             "%.1f MB/s" % (megabytes(moved) / elapsed if elapsed > 0 else 0.0)]
    if sample.tables_total and sample.tables_done >= sample.tables_total:
        parts.append("finishing (foreign keys, sequences, materialized views)")
    else:
        left = seconds_left(sample, elapsed)
        parts.append("ETA %s" % (duration(left) if left is not None else "unknown"))
    return "%s: %s" % (task, ", ".join(parts))


class DumpSample(object):
    """One look at a running backup: ``current`` is the database pg_dump reads now (None between two, or
    while an archive is read back), ``position`` its place in the list of ``databases``; ``bytes_read``
    what the dumps of this run streamed (``pg_stat_progress_copy``); ``size_passed`` the table sizes of
    the databases before the current one (dumped, or kept because their archive was still good)."""

    def __init__(self, databases, current, position, bytes_read, bytes_current, size_passed, size_total):
        self.databases = databases
        self.current = current
        self.position = position
        self.bytes_read = bytes_read
        self.bytes_current = bytes_current
        self.size_passed = size_passed
        self.size_total = size_total


def backup_line(task, sample, elapsed):
    """``backup_set: dumping "Legacy" (2/5 databases), 150.0 MB read of about 1200.0 MB, 30.0 MB/s, ETA 35s``."""
    rate = sample.bytes_read / elapsed if elapsed > 0 else 0.0
    if sample.current is None:
        where = "%d databases, no dump running (an archive is read back, or the next one starts)" % sample.databases
        eta = []
    else:
        where = "dumping %s (%d/%d databases)" % (quote_ident(sample.current), sample.position, sample.databases)
        remaining = max(0, sample.size_total - sample.size_passed - sample.bytes_current)
        eta = ["ETA %s" % (duration(remaining / rate) if rate > 0 else "unknown")]
    return "%s: %s" % (task, ", ".join([where, "%.1f MB read of about %.1f MB" % (
        megabytes(sample.bytes_read), megabytes(sample.size_total)), "%.1f MB/s" % megabytes(rate)] + eta))


def measured_jobs(order, active):
    """The jobs surely measured, from one side's ``order`` (table_stats.measuring_order) and the ``active`` ones.

    The side's workers start its jobs in that order, so every job before the last one running has been
    started, and those no longer running are done. A lower bound: a job finished since the last look and
    followed by none still running is not counted yet.
    """
    active = set(active)
    positions = [position for position, index in enumerate(order) if index in active]
    if not positions:
        return set()
    return set(order[:max(positions)]) - active


class VerifySample(object):
    """One look at a running verification: ``tables_done`` of ``tables_total`` compared tables have every side
    measured (at least, see :func:`measured_jobs`), ``measuring`` are being counted now; ``size_done`` and
    ``size_total`` are the on-disk sizes of the measured and of all the tables to scan, on both servers."""

    def __init__(self, tables_done, tables_total, measuring, size_done, size_total):
        self.tables_done = tables_done
        self.tables_total = tables_total
        self.measuring = measuring
        self.size_done = size_done
        self.size_total = size_total


def verify_line(task, sample, elapsed):
    """``row_count_diff: 3/12 tables measured (2 being measured), 412.5 MB of about 1200.0 MB scanned, 38.4 MB/s,
    ETA 52s``; between measurements (catalogs, sequences, the schema being read) it says so and gives no estimate."""
    rate = sample.size_done / elapsed if elapsed > 0 else 0.0
    if sample.measuring:
        where = "%d/%d tables measured (%d being measured)" % (sample.tables_done, sample.tables_total,
                                                               sample.measuring)
        left = max(0, sample.size_total - sample.size_done)
        eta = ["ETA %s" % (duration(left / rate) if rate > 0 else "unknown")]
    else:
        where = "%d/%d tables measured, none being measured now (catalogs, sequences or the schema are read)" % (
            sample.tables_done, sample.tables_total)
        eta = []
    return "%s: %s" % (task, ", ".join([where, "%.1f MB of about %.1f MB scanned" % (
        megabytes(sample.size_done), megabytes(sample.size_total)), "%.1f MB/s" % megabytes(rate)] + eta))
