# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup set's manifest and the decisions around it, as pure functions of plain data.

A *backup set* is one directory, ``<backup_root>/<set_id>/``, that holds one
``pg_dump`` custom-format archive per legacy database and per *generation*
(an optional label such as ``final`` for the decommission-time backup), and a
``manifest.json`` that describes every archive::

    {"format_version": 1, "set_id": "run-42", "created_at": "...Z", "updated_at": "...Z",
     "source": {"server": "db1:5432", "server_version": "15.18"},
     "pg_dump": {"path": "/usr/lib/postgresql/15/bin/pg_dump", "version": "15.18"},
     "archives": [{"database": "ClassifiedAds_Product", "label": null, "file": "ClassifiedAds_Product.dump",
                   "format": "custom", "compress": "1", "sha256": "...", "size": 1234,
                   "database_size": 8000000, "snapshot": "00000003-00000002-1",
                   "tables": [{"schema": "public", "table": "Products", "rows": 2}],
                   "started_at": "...Z", "finished_at": "...Z", "server_version": "15.18",
                   "pg_dump_version": "15.18", "verified": true, "verification": "..."}]}

Nothing here touches a server; ``load_manifest``, ``verify_archive`` and
``sha256_file`` read a file and are the only functions with I/O. Errors are
``BackupError`` with a message fit for an operator. Which pg_dump writes the
archives is ``pgclient``'s subject.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re

from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.pgclient import format_major
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    MANIFEST,
    read_json,
    run_id_problem,
)

MANIFEST_FORMAT_VERSION = 1
ARCHIVE_SUFFIX = ".dump"
PARTIAL_SUFFIX = ".partial"
ARCHIVE_FORMAT = "custom"

# Labels become part of a file name between the database and ".dump"; no dot, so
# "<db>.<label>.dump" splits one way only (dots in database names are escaped).
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")

# Custom format compresses, often ten-fold, but some data does not compress and
# the dump of a database can exceed its on-disk size (text output of bytea, say).
# A factor of 1.0 of pg_database_size is the conservative middle: it never
# starts a dump that has no chance to fit, and it is documented in the module.
DEFAULT_SPACE_FACTOR = 1.0

_SAFE_FILE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_COMPRESS_LEVEL = re.compile(r"^[0-9]$")
_COMPRESS_METHOD = re.compile(r"^(none|gzip|lz4|zstd)(?::([0-9]{1,2}))?$")
_TOC_TABLE_DATA = re.compile(r"^\d+; \d+ (\d+) TABLE DATA ", re.MULTILINE)


class BackupError(ConsolidationError):
    """The backup cannot go on; the message says why and names the file or database."""


# -- names ------------------------------------------------------------------------------------


def validate_set_id(set_id):
    """``set_id`` (the run id: it names the set's directory), or BackupError naming the option."""
    problem = run_id_problem(set_id, "set_id")
    if problem:
        raise BackupError(problem)
    return set_id


def validate_label(label):
    if label is None:
        return None
    if not isinstance(label, str) or not LABEL_PATTERN.match(label):
        raise BackupError("label %r must match %s: it becomes part of the archive file name"
                          % (label, LABEL_PATTERN.pattern))
    return label


def file_safe(name):
    """``name`` as a file-name component: letters, digits, ``_`` and ``-`` stay, every other
    byte of its UTF-8 becomes ``%XX``. Injective, so two databases never share a file, and free
    of ``/``, ``.`` and NUL whatever the database is called."""
    out = []
    for char in name:
        if char in _SAFE_FILE_CHARS:
            out.append(char)
        else:
            out.extend("%%%02X" % byte for byte in char.encode("utf-8"))
    return "".join(out)


def archive_filename(database, label=None):
    """``<database>.dump`` or, for a labelled generation, ``<database>.<label>.dump``."""
    parts = [file_safe(database)]
    if label:
        parts.append(validate_label(label))
    return ".".join(parts) + ARCHIVE_SUFFIX


def partial_filename(filename):
    return filename + PARTIAL_SUFFIX


# -- pg_dump options --------------------------------------------------------------------------


def compress_argument(spec, dump_major):
    """The ``--compress=`` value for ``spec``: a level ``0``-``9`` (gzip, every pg_dump), or
    ``method[:level]`` (``gzip``, ``lz4``, ``zstd``, ``none``: pg_dump 16 and newer)."""
    spec = str(spec).strip()
    if _COMPRESS_LEVEL.match(spec):
        return spec
    match = _COMPRESS_METHOD.match(spec)
    if not match:
        raise BackupError("compress %r must be a level 0-9 or method[:level] with method gzip, lz4, zstd or none"
                          % spec)
    if tuple(dump_major) < (16,):
        raise BackupError("compress %r needs pg_dump 16 or newer (this one is %s, which compresses with gzip "
                          "levels 0-9 only)" % (spec, format_major(dump_major)))
    return spec


# -- free space -------------------------------------------------------------------------------


def space_needed(database_sizes, factor=DEFAULT_SPACE_FACTOR):
    return int(sum(database_sizes.values()) * factor)


def space_problem(database_sizes, free_bytes, path, factor=DEFAULT_SPACE_FACTOR):
    """Why the archives of ``database_sizes`` ({database: pg_database_size}) may not fit, or None."""
    needed = space_needed(database_sizes, factor)
    if needed <= free_bytes:
        return None
    return ("not enough free space at %s: need %d bytes (%s x the pg_database_size of %s), %d bytes free"
            % (path, needed, factor, ", ".join(sorted(database_sizes)), free_bytes))


# -- archive table of contents ----------------------------------------------------------------


def toc_table_data_oids(toc_text):
    """OIDs of the tables whose data a ``pg_restore --list`` listing holds.

    Matched by OID, not by name: the listing prints names unquoted, so a name
    with a space cannot be split from its schema reliably.
    """
    return set(int(oid) for oid in _TOC_TABLE_DATA.findall(toc_text or ""))


def tables_missing_from_toc(toc_text, tables):
    """The ``tables`` ({"oid", "schema", "table"} dicts) whose data the listing lacks."""
    present = toc_table_data_oids(toc_text)
    return [table for table in tables if int(table["oid"]) not in present]


# -- the manifest -----------------------------------------------------------------------------


def new_manifest(set_id, source_server, created_at):
    return {
        "format_version": MANIFEST_FORMAT_VERSION,
        "set_id": set_id,
        "created_at": created_at,
        "updated_at": created_at,
        "source": {"server": source_server, "server_version": None},
        "pg_dump": {"path": None, "version": None},
        "archives": [],
    }


def check_manifest(manifest, set_id, source_server):
    """Refuse a manifest of another set or another source server: one set, one source."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("archives"), list):
        raise BackupError("the manifest of backup set %r is not a backup-set manifest" % set_id)
    if manifest.get("format_version") != MANIFEST_FORMAT_VERSION:
        raise BackupError("the manifest of backup set %r has format_version %r; this collection reads %d"
                          % (set_id, manifest.get("format_version"), MANIFEST_FORMAT_VERSION))
    if manifest.get("set_id") != set_id:
        raise BackupError("the manifest in directory %r belongs to set %r" % (set_id, manifest.get("set_id")))
    recorded = (manifest.get("source") or {}).get("server")
    if recorded and recorded != source_server:
        raise BackupError("backup set %r holds archives of %s, not of %s: use another set_id for another source"
                          % (set_id, recorded, source_server))
    return manifest


def load_manifest(set_dir, set_id, source_server):
    """The checked manifest of the set in ``set_dir``, or None when it has none yet."""
    manifest = read_json(os.path.join(set_dir, MANIFEST), error=BackupError)
    return None if manifest is None else check_manifest(manifest, set_id, source_server)


def find_archive(manifest, database, label=None):
    for entry in manifest["archives"]:
        if entry["database"] == database and entry.get("label") == label:
            return entry
    return None


def record_archive(manifest, entry, updated_at):
    """A copy of ``manifest`` with ``entry`` in place of the one for the same database and label."""
    archives = [existing for existing in manifest["archives"]
                if (existing["database"], existing.get("label")) != (entry["database"], entry.get("label"))]
    archives.append(entry)
    archives.sort(key=lambda item: (item.get("label") or "", item["database"]))
    updated = dict(manifest, archives=archives, updated_at=updated_at)
    updated["source"] = dict(manifest["source"], server_version=entry["server_version"])
    updated["pg_dump"] = {"path": entry["pg_dump_path"], "version": entry["pg_dump_version"]}
    return updated


def archive_decision(entry, file_sha256, needs_proof=False):
    """Whether a database needs (re)dumping: ``("dump"|"redo"|"keep", reason)``.

    ``entry`` is the manifest's record for the database and label (or None),
    ``file_sha256`` the checksum of the archive file as it is now (None when
    the file is missing). Only a verified archive that still matches its
    checksum is kept, and with ``needs_proof`` only one whose entry holds the
    counts and checksums of its snapshot (``proof``).
    """
    if entry is None:
        return "dump", "not in the manifest"
    if not entry.get("verified"):
        return "redo", "the manifest lists %s as not verified" % entry["file"]
    if file_sha256 is None:
        return "redo", "%s is missing" % entry["file"]
    if file_sha256 != entry["sha256"]:
        return "redo", "%s no longer matches its sha256 (manifest %s, file %s)" % (
            entry["file"], entry["sha256"], file_sha256)
    if needs_proof and not entry.get("proof"):
        return "redo", "the manifest holds no counts and checksums of %s's snapshot to prove it by" % entry["file"]
    return "keep", "verified archive %s matches its sha256" % entry["file"]


def sha256_file(path, chunk_size=1024 * 1024):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_archive(path, expected_sha256, expected_size=None):
    """None when the archive at ``path`` is the one the manifest describes, else why not.

    For a rollback: run it on every archive before restoring anything. The
    message names the file, so an operator knows which archive to replace.
    """
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        return "archive %s cannot be read: %s" % (path, exc.strerror or exc)
    if expected_size is not None and size != int(expected_size):
        return "archive %s has %d bytes, the manifest recorded %d (truncated or replaced?)" % (
            path, size, int(expected_size))
    try:
        actual = sha256_file(path)
    except OSError as exc:
        return "archive %s cannot be read: %s" % (path, exc.strerror or exc)
    if actual != expected_sha256:
        return "archive %s does not match the manifest: sha256 %s, expected %s" % (path, actual, expected_sha256)
    return None


def verify_manifest_archives(manifest, set_dir, label=None):
    """Every problem with the archives of one generation of a set (empty list when all match)."""
    problems = []
    for entry in manifest["archives"]:
        if entry.get("label") != label:
            continue
        if not entry.get("verified"):
            problems.append("archive %s of %s was never verified" % (entry["file"], entry["database"]))
            continue
        problem = verify_archive(os.path.join(set_dir, entry["file"]), entry["sha256"], entry.get("size"))
        if problem:
            problems.append(problem)
    return problems
