# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proof by content: was a legacy table written after it was read, and does it still hold what was verified?

A table's *write counters* are ``pg_stat_user_tables``' ``n_tup_ins``,
``n_tup_upd`` and ``n_tup_del`` of that table alone (a partition is a table
of its own; a partitioned table's stay at zero). They count attempted
writes, committed or rolled back, and only grow until the statistics are
reset (``pg_stat_reset()``, a crash, the table recreated), when they go down. Any difference between two reads means the
table was, or may have been, written in between; equal reads mean it was not.
The copy records them per table, verification and decommission read them
again, and a table whose counters moved must prove its content by checksum.

How they are read, on PostgreSQL 15's cumulative statistics:

* A backend adds its counts to the shared statistics when it goes idle or
  exits, at most once a second: a backend that flushed less than a second ago
  waits up to 10 s of idleness (``PGSTAT_IDLE_INTERVAL``), up to 60 s under lock
  contention, and a procedure that commits in a loop flushes when it returns.
  A write shows in the counters some seconds after its commit at worst, never
  before; the content checksum covers that lag (``verify_checksum``).
* With ``stats_fetch_consistency = cache`` (the default) a transaction reads
  the statistics once and then its cached copy: :func:`read_counters` calls
  ``pg_stat_clear_snapshot()`` first, so each read is current, whatever
  transaction the caller is in.
* Counters that vouch for a snapshot's content are read *before* that snapshot
  is taken. Every write they count committed before the read, so the snapshot
  holds it; every write the snapshot lacks committed after it, so after the
  read, and shows as a difference in any later read once flushed. Read after
  the snapshot, a write committed in between would be counted but missing from
  the data read: unseen for good.

The functions below the query are pure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

COUNTER_KEYS = ("inserted", "updated", "deleted")

# One query per database, whatever the number of rows. Each table on its own, partitions included, as the copy
# and the verification read them (a partitioned table holds no rows: its counters stay at zero).
# track_counts off leaves every counter at zero: the caller gets None.
COUNTERS_QUERY = """
SELECT n.nspname::text, c.relname::text, s.n_tup_ins, s.n_tup_upd, s.n_tup_del,
       pg_catalog.current_setting('track_counts')::bool
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_stat_user_tables s ON s.relid = c.oid
WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')
"""


def read_counters(cur, schemas, journal=None):
    """``{(schema, table): {inserted, updated, deleted} or None}`` for the tables of ``schemas``, read now.

    None means the server does not count (``track_counts`` off): nothing can be told from it.
    """
    clear = "SELECT pg_catalog.pg_stat_clear_snapshot()"
    for statement, params in ((clear, None), (COUNTERS_QUERY, (list(schemas),))):
        if journal is None:
            cur.execute(statement, params)
        else:
            journal.execute(cur, statement, params)
    found = {}
    for schema, table, inserted, updated, deleted, tracked in cur.fetchall():
        found[(schema, table)] = dict(inserted=inserted, updated=updated, deleted=deleted) if tracked else None
    return found


# -- pure -------------------------------------------------------------------------------------------------


def counter_delta(before, after):
    """``{inserted, updated, deleted}``: ``after`` minus ``before``; None when either is unknown."""
    if not before or not after:
        return None
    return dict((key, after[key] - before[key]) for key in COUNTER_KEYS)


def written_between(before, after):
    """Whether the table was (or may have been) written between two reads of its counters."""
    delta = counter_delta(before, after)
    return delta is None or any(delta.values())


def describe_delta(delta):
    """``updated +1, deleted +2``; a reset shows as a negative figure, unknown counters say so."""
    if delta is None:
        return "write counters unknown"
    moved = ["%s %+d" % (key, delta[key]) for key in COUNTER_KEYS if delta[key]]
    text = ", ".join(moved) or "no write"
    if any(value < 0 for value in delta.values()):
        text += " (counters went down: statistics reset or table recreated)"
    return text


def content_differences(expected, found):
    """What differs between two ``{rows, checksum}`` of one table, as phrases (empty when equal).

    A checksum is compared only when ``expected`` has one; ``found`` must then have one too.
    """
    differences = []
    if expected.get("rows") != found.get("rows"):
        differences.append("rows %s -> %s (%s)" % (expected.get("rows"), found.get("rows"), _signed(
            expected.get("rows"), found.get("rows"))))
    if expected.get("checksum") is not None and expected.get("checksum") != found.get("checksum"):
        differences.append("content checksum differs")
    return differences


def _signed(before, after):
    if isinstance(before, int) and isinstance(after, int):
        return "%+d" % (after - before)
    return "?"


def verified_tables(report, database):
    """What a verification report says of ``database``'s compared tables: one dict per table.

    ``schema``, ``table``, ``rows`` and ``checksum`` (the source's, checksum None when not computed),
    ``columns`` (the checksum's column plan, to checksum the same way again) and ``write_counters`` (read
    right after the verification measured the table).
    """
    # A checksum without its column plan (a report of an older release) cannot be computed again: not used.
    # A table read through a NULL policy was compared with the policy applied; what the legacy table itself
    # held then (what a backup of it holds) is its ``source_whole``.
    return [dict(schema=row.get("source_schema"), table=row.get("source_table"),
                 rows=(row.get("source_whole") or {}).get("rows", row.get("source_rows")),
                 checksum=((row.get("source_whole") or {}).get("checksum", row.get("source_checksum"))
                           if row.get("checksum_columns") is not None else None),
                 columns=row.get("checksum_columns"),
                 write_counters=(row.get("write_counters") or {}).get("verified"))
            for row in (report or {}).get("tables") or []
            if row.get("kind") == "copied" and row.get("source_database") == database]


def judge_written(label, since, delta, verified, found):
    """A table written since ``since``: ``(problem or None, entry)``; it passes only by matching content.

    ``verified`` is its proof.verified_tables entry, ``found`` its ``{rows, checksum}`` measured now.
    """
    differences = content_differences(verified, found)
    entry = dict(table=label, since=since, delta=delta, content="differs" if differences else "matches")
    if differences:
        return ("%s: written after %s (%s) and no longer what was verified: %s"
                % (label, since, describe_delta(delta), "; ".join(differences))), entry
    if verified.get("checksum") is None:
        entry["content"] = "unproven"
        return ("%s: written after %s (%s), and the verification computed no checksum of it, so its content "
                "cannot be proven: run the verification again" % (label, since, describe_delta(delta))), entry
    return None, entry
