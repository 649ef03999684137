# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Online mode's names: replication slots, publications, the applier's files and its progress table.

Online mode (``consolidation_sync: online``) streams each legacy database into its module schema
through a logical replication slot and a publication of that database, created with the snapshot
the copy reads. Every piece of the collection that creates, streams from, reports on or drops them
takes the names from here, so that a slot left behind by any run is recognisable as ours.

* A slot lives in the cluster, a publication in its database. Slot names allow only ``[a-z0-9_]``
  and 63 bytes, while database names and run ids allow far more, so both names are
  ``<prefix>_<8 hex of the run id>_<6 hex of the database>_<readable part of the database>``:
  the digests keep two runs and two databases apart, the readable part tells a person which it is.
* Everything of ours starts with ``<prefix>_`` (default ``classifiedads``): preflight and status warn
  about every such slot, since a forgotten slot keeps WAL on the source until its disk fills.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError

DEFAULT_PREFIX = "classifiedads"
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,19}\Z")
PREFIX_RULE = "lower-case letters, digits and '_', starting with a letter, at most 20"
# NAMEDATALEN - 1: PostgreSQL truncates longer names, and two truncated names could meet.
MAX_NAME = 63

# <run_dir>/sync/<source database>.{pid,log,status.json}: the applier of one legacy database.
SYNC_DIR = "sync"
PID_SUFFIX = ".pid"
LOG_SUFFIX = ".log"
STATUS_SUFFIX = ".status.json"
# <run_dir>/sync/drained.json: cutover.yml's drain finished (every applier caught up with its fenced source and
# stopped): a rerun of the cutover has nothing left to catch up, and the slots only keep WAL from then on.
DRAINED_MARKER = "drained.json"

# <target database>.<state_schema>.sync_progress: one row per legacy database, updated in the
# transaction that applies each source transaction (exactly once across crashes and restarts).
PROGRESS_TABLE = "sync_progress"
PROGRESS_COLUMNS = (
    ("source_database", "text PRIMARY KEY"),
    ("slot_name", "text NOT NULL"),
    # The end LSN of the last source transaction applied; a transaction ending at or before it is skipped.
    ("applied_lsn", "pg_lsn NOT NULL"),
    ("applied_commit_time", "timestamptz"),  # that transaction's commit time on the source
    ("applied_at", "timestamptz NOT NULL"),  # when the target committed it
    ("transactions", "bigint NOT NULL DEFAULT 0"),  # source transactions applied so far
    ("rows", "bigint NOT NULL DEFAULT 0"),  # rows inserted, updated or deleted so far (a truncate counts 1)
)


def check_prefix(prefix):
    if not isinstance(prefix, str) or not PREFIX_PATTERN.match(prefix):
        raise ConsolidationError("sync slot prefix %r is not valid: it must be %s (fix: set "
                                 "consolidation_sync_slot_prefix accordingly)" % (prefix, PREFIX_RULE))
    return prefix


def _digest(text, length):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def slot_name(run_id, source_database, prefix=DEFAULT_PREFIX):
    """The replication slot (and publication) of ``source_database`` in run ``run_id``."""
    head = "%s_%s_%s_" % (check_prefix(prefix), _digest(run_id, 8), _digest(source_database, 6))
    readable = re.sub(r"[^a-z0-9_]+", "_", source_database.lower()).strip("_")
    return (head + readable)[:MAX_NAME].rstrip("_")


def publication_name(run_id, source_database, prefix=DEFAULT_PREFIX):
    """A publication belongs to its database, so it can carry the slot's name."""
    return slot_name(run_id, source_database, prefix)


def is_ours(name, prefix=DEFAULT_PREFIX):
    """Whether a slot or publication name has the shape this collection gives them (any run)."""
    return re.match(r"^%s_[0-9a-f]{8}_[0-9a-f]{6}(_[a-z0-9_]*)?\Z" % re.escape(prefix), name or "") is not None


def of_run(name, run_id, prefix=DEFAULT_PREFIX):
    """Whether a slot or publication name belongs to run ``run_id``."""
    return is_ours(name, prefix) and name.startswith("%s_%s_" % (prefix, _digest(run_id, 8)))


def drained_marker(run_dir):
    return os.path.join(run_dir, SYNC_DIR, DRAINED_MARKER)


def applier_files(run_dir, source_database):
    """{"pid", "log", "status"}: the paths of one legacy database's applier under the run directory.

    Database names may hold characters a file name cannot (``/``), so the file is named by the
    slot-style readable part plus the database digest, like the slot.
    """
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", source_database).strip("._") or "db"
    stem = "%s-%s" % (readable[:80], _digest(source_database, 6))
    base = os.path.join(run_dir, SYNC_DIR, stem)
    return {"pid": base + PID_SUFFIX, "log": base + LOG_SUFFIX, "status": base + STATUS_SUFFIX}
