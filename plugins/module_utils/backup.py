# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a backup set: one verified pg_dump archive per legacy database, and its manifest.

The decisions (file names, is there room, is an archive still good) are pure
functions in ``manifest.py``, the choice of pg_dump is ``pgclient.py``'s; this
file does the I/O around them: the server, the ``pg_dump``/``pg_restore``
processes and the set directory.

Each database is dumped from a snapshot that a REPEATABLE READ transaction of
ours exports (``pg_export_snapshot()`` / ``pg_dump --snapshot``); the table row
counts recorded in the manifest are taken in that same transaction while
pg_dump runs, so they describe exactly the rows in the archive. Given the
run's verification report, the same transaction also counts and checksums
every table the verification compared, the way it did (``table_stats``), and
the manifest keeps them with the write counters read just before the snapshot
(``proof``): decommissioning compares them with the verified source. The archive
is written as ``<file>.partial``, read back completely by ``pg_restore``, and
renamed only then: a file without ``.partial`` is always complete and verified.
The manifest is replaced atomically after every archive.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import stat

from ansible_collections.classifiedads.consolidation.plugins.module_utils import proof, table_stats
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    connect,
    libpq_environment,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.dbops import maintenance_cursor
from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import (
    address,
    render_table,
    utc_timestamp,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.manifest import (
    ARCHIVE_FORMAT,
    DEFAULT_SPACE_FACTOR,
    PARTIAL_SUFFIX,
    BackupError,
    archive_decision,
    archive_filename,
    compress_argument,
    find_archive,
    load_manifest,
    new_manifest,
    partial_filename,
    record_archive,
    sha256_file,
    space_needed,
    space_problem,
    tables_missing_from_toc,
    validate_label,
    validate_set_id,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.pgclient import locate_dump_programs
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    MANIFEST,
    directory_lock,
    fsync_directory,
    read_json,
    write_private_json,
)

# Every ordinary table (and partition) whose rows pg_dump writes as TABLE DATA:
# not the system schemas, not tables that belong to an extension.
TABLES_QUERY = """
SELECT c.oid, n.nspname, c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""

DATABASES_QUERY = """
SELECT datname, datallowconn, pg_catalog.pg_database_size(oid)
FROM pg_catalog.pg_database WHERE datname = ANY(%s)
"""


# -- the set directory ------------------------------------------------------------------------


def free_bytes(path):
    """Free bytes for an unprivileged writer on the file system that holds (or will hold) ``path``."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    vfs = os.statvfs(probe)
    return vfs.f_bavail * vfs.f_frsize


def backup_root_problem(backup_root):
    """Why no backup set can be written under ``backup_root``, or None.

    The root, or the nearest part of it that exists, must be a directory this
    user may create entries in: found before anything is written, the run
    directory included.
    """
    probe = os.path.abspath(backup_root)
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    where = "backup_root %s" % backup_root if probe == os.path.abspath(backup_root) else (
        "backup_root %s cannot be created: %s" % (backup_root, probe))
    if not os.path.isdir(probe):
        return "%s is not a directory" % where
    if not os.access(probe, os.W_OK | os.X_OK):
        return "%s is not writable by uid %d" % (where, os.geteuid())
    return None


def prepare_set_dir(set_dir):
    """Create the set directory (and the root) 0700; tighten an existing set directory. Returns changed."""
    changed = False
    root = os.path.dirname(set_dir)
    if not os.path.isdir(root):
        os.makedirs(root, 0o700)
        changed = True
    if not os.path.lexists(set_dir):
        os.mkdir(set_dir, 0o700)
        changed = True
    # A set directory that someone else planted (a symlink, or another owner's
    # directory in a shared root) would receive the archives: refuse it.
    info = os.lstat(set_dir)
    if not stat.S_ISDIR(info.st_mode):
        raise BackupError("%s is not a directory (a symlink?): refusing to write a backup set there" % set_dir)
    if info.st_uid != os.geteuid():
        raise BackupError("%s belongs to uid %d, not to this user (uid %d): refusing to write a backup set there"
                          % (set_dir, info.st_uid, os.geteuid()))
    if info.st_mode & 0o777 != 0o700:
        os.chmod(set_dir, 0o700)
        changed = True
    return changed


def set_lock(set_dir):
    """Hold an exclusive lock on the set directory: two runs must not write one set."""
    return directory_lock(set_dir, BackupError("backup set %s is being written by another run" % set_dir))


def remove_partials(set_dir):
    """Remove what an interrupted run left: ``*.partial`` archives and manifest temp files."""
    removed = []
    for name in sorted(os.listdir(set_dir)):
        if name.endswith(PARTIAL_SUFFIX) or name.startswith("." + MANIFEST + "."):
            os.unlink(os.path.join(set_dir, name))
            removed.append(name)
    return removed


def current_file_sha256(set_dir, entry):
    path = os.path.join(set_dir, entry["file"]) if entry else None
    if path is None or not os.path.isfile(path):
        return None
    return sha256_file(path)


# -- one archive ------------------------------------------------------------------------------


def count_rows(cur, journal):
    """Exact row counts of every table, in the caller's transaction (and so its snapshot)."""
    journal.execute(cur, TABLES_QUERY)
    tables = [{"oid": oid, "schema": schema, "table": table} for oid, schema, table in cur.fetchall()]
    for table in tables:
        # ONLY: an inheritance parent's TABLE DATA holds its own rows, not its children's.
        journal.execute(cur, sql.SQL("SELECT count(*) FROM ONLY {}").format(
            sql.Identifier(table["schema"], table["table"])))
        table["rows"] = cur.fetchone()[0]
    return tables


def counters_before_snapshot(conn, tables, journal):
    """The verification's session settings and the tables' write counters, before the dump's snapshot.

    In a transaction of their own, ahead of the dump's (proof.py says why the counters must come first);
    the settings make every column hashed by its text form render as the verification rendered it.
    """
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            journal.execute(cur, table_stats.session_setup_query(),
                            [value for _name, value in table_stats.SESSION_SETTINGS])
            return proof.read_counters(cur, sorted(set(table["schema"] for table in tables)), journal)
    finally:
        conn.autocommit = False


def prove_tables(cur, journal, tables, counters):
    """Count and checksum ``tables`` (proof.verified_tables) in the caller's transaction, the dump's snapshot."""
    proved = []
    for table in tables:
        rows, checksum = table_stats.count_and_checksum(cur, table["schema"], table["table"], table["columns"],
                                                        journal.execute)
        proved.append(dict(schema=table["schema"], table=table["table"], rows=rows, checksum=checksum,
                           write_counters=counters.get((table["schema"], table["table"]))))
    return proved


def _create_private_file(path):
    if os.path.exists(path):
        os.unlink(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def verify_written_archive(programs, path, tables, journal):
    """pg_restore must list every counted table's data and read the whole archive; raises otherwise."""
    rc, toc, err = journal.run([programs.pg_restore, "--list", path])
    if rc != 0:
        raise BackupError("pg_restore --list cannot read %s (exit %d): %s" % (path, rc, err.strip()))
    missing = tables_missing_from_toc(toc, tables)
    if missing:
        raise BackupError("archive %s lacks the data of %s" % (
            path, ", ".join("%s.%s" % (table["schema"], table["table"]) for table in missing)))
    # --list reads only the table of contents (a truncated archive still lists fine);
    # writing the whole restore script to /dev/null decompresses every data block.
    rc, out, err = journal.run([programs.pg_restore, "--file=" + os.devnull, path])
    if rc != 0:
        raise BackupError("pg_restore cannot read all of %s (exit %d): %s" % (path, rc, err.strip()))
    return {"toc_tables": len(tables), "full_read": True}


def dump_database(source, database, set_dir, filename, programs, compress, journal, verified=None):
    """Dump one database into ``set_dir/filename`` and return its manifest entry.

    ``verified``: the tables to prove (proof.verified_tables), or None for no ``proof`` in the entry.
    """
    final_path = os.path.join(set_dir, filename)
    partial_path = partial_filename(final_path)
    started_at = utc_timestamp()
    conn = connect(source, database)
    try:
        counters = counters_before_snapshot(conn, verified, journal) if verified is not None else {}
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            # The transaction's snapshot is taken by its first statement: this one.
            journal.execute(cur, "SELECT pg_catalog.pg_export_snapshot(), pg_catalog.current_setting('server_version')")
            snapshot, server_version = cur.fetchone()
            journal.execute(cur, "SET LOCAL statement_timeout = 0")
            # Like pg_dump's own session: a row-level security policy raises an error rather than hide rows.
            journal.execute(cur, "SET LOCAL row_security = off")
            _create_private_file(partial_path)
            counted = {}

            def count_while_dumping(process):
                # pg_dump has imported the snapshot or will: our transaction stays open until it ends.
                try:
                    counted["tables"] = count_rows(cur, journal)
                    if verified is not None:
                        counted["proof"] = prove_tables(cur, journal, verified, counters)
                except Exception as exc:  # stop pg_dump, then report the count's error
                    counted["error"] = exc
                    process.kill()

            # The database name goes through PGDATABASE: on argv, libpq would parse a name
            # containing "=" as a connection string.
            with libpq_environment(source, database) as env:
                rc, out, err = journal.run(
                    [programs.pg_dump, "--format=custom", "--compress=" + compress, "--snapshot=" + snapshot,
                     "--no-password", "--file=" + partial_path], env, count_while_dumping)
            if "error" in counted:
                raise counted["error"]
            if rc != 0:
                raise BackupError("pg_dump of %s failed (exit %d): %s" % (database, rc, err.strip()))
            tables = counted["tables"]
        conn.rollback()
        verification = verify_written_archive(programs, partial_path, tables, journal)
        checksum = sha256_file(partial_path)
        size = os.path.getsize(partial_path)
        os.chmod(partial_path, 0o600)
        os.rename(partial_path, final_path)
        fsync_directory(set_dir)
    except BaseException:
        if os.path.exists(partial_path):
            os.unlink(partial_path)
        raise
    finally:
        conn.close()
    entry = {
        "database": database,
        "file": filename,
        "format": ARCHIVE_FORMAT,
        "compress": compress,
        "sha256": checksum,
        "size": size,
        "snapshot": snapshot,
        "tables": [dict((key, table[key]) for key in ("schema", "table", "rows")) for table in tables],
        "started_at": started_at,
        "finished_at": utc_timestamp(),
        "server_version": server_version,
        "pg_dump_path": programs.pg_dump,
        "pg_dump_version": programs.pg_dump_version,
        "verified": True,
        "verified_at": utc_timestamp(),
        "verification": verification,
    }
    if verified is not None:
        entry["proof"] = {"tables": counted["proof"]}
    return entry


# -- the whole set ----------------------------------------------------------------------------


def inspect_source(source, databases, journal):
    """Server version and the size of each wanted database; raises naming missing ones."""
    with maintenance_cursor(source) as cur:
        journal.execute(cur, DATABASES_QUERY, (list(databases),))
        found = dict((name, (allow, size)) for name, allow, size in cur.fetchall())
        version_num = cur.connection.server_version
    missing = [name for name in databases if name not in found]
    if missing:
        raise BackupError("database(s) %s do not exist on %s" % (", ".join(missing), address(source)))
    closed = [name for name in databases if not found[name][0]]
    if closed:
        raise BackupError("database(s) %s do not allow connections (datallowconn is false)" % ", ".join(closed))
    return version_num, dict((name, found[name][1]) for name in databases)


def archive_table(plan, manifest, label):
    """One line per database of ``plan``: its action, and the archive of generation ``label`` the set holds."""
    archives = dict((entry["database"], entry) for entry in (manifest or {}).get("archives", [])
                    if entry.get("label") == label)
    rows = []
    for item in plan:
        archive = archives.get(item["database"], {})
        tables = archive.get("tables", [])
        rows.append([item["database"], item["action"], item["size"], archive.get("size", "-"), len(tables),
                     sum(table["rows"] for table in tables), archive.get("verified", "-"),
                     archive.get("sha256", "-")[:16]])
    return render_table(("database", "action", "db bytes", "archive bytes", "tables", "rows", "verified", "sha256"),
                        rows, numeric=("db bytes", "archive bytes", "tables", "rows"))


def run_backup(params, journal):
    """Everything the backup_set module does; returns its result dict, raises BackupError.

    ``journal`` (the module's QueryJournal) runs the statements and programs
    and keeps what ran, so a caller can report them on failure too; in check
    mode nothing is written.
    """
    check_mode = journal.check_mode
    if params["space_factor"] <= 0:
        raise BackupError("space_factor must be positive")
    set_id = validate_set_id(params["set_id"])
    label = validate_label(params.get("label"))
    source = params["source"]
    databases = list(params["databases"])
    if not databases:
        raise BackupError("databases is empty: nothing to back up")
    duplicates = sorted(set(name for name in databases if databases.count(name) > 1))
    if duplicates:
        raise BackupError("database(s) %s are listed more than once" % ", ".join(duplicates))
    backup_root = os.path.abspath(params["backup_root"])
    problem = backup_root_problem(backup_root)
    if problem:
        raise BackupError(problem)
    set_dir = os.path.join(backup_root, set_id)
    factor = params.get("space_factor") or DEFAULT_SPACE_FACTOR
    report = None
    if params.get("verification_report"):
        report = read_json(params["verification_report"], error=BackupError)
        if report is None:
            raise BackupError("no verification report at %s: the final backup proves its content against it"
                              % params["verification_report"])

    version_num, sizes = inspect_source(source, databases, journal)
    programs = locate_dump_programs(params.get("pg_dump_path"), version_num, journal)
    compress = compress_argument(params.get("compress") or "1", programs.pg_dump_major)

    with contextlib.ExitStack() as held:
        # Decide under the set's lock, so another run cannot change the manifest in between.
        locked = not check_mode and os.path.isdir(set_dir)
        if locked:
            held.enter_context(set_lock(set_dir))
        manifest = load_manifest(set_dir, set_id, address(source)) if os.path.isdir(set_dir) else None
        plan = []
        for database in databases:
            entry = find_archive(manifest, database, label) if manifest else None
            action, reason = archive_decision(entry, current_file_sha256(set_dir, entry), report is not None)
            plan.append({"database": database, "file": archive_filename(database, label),
                         "size": sizes[database], "action": action, "reason": reason})
        to_dump = dict((item["database"], item["size"]) for item in plan if item["action"] != "keep")
        free = free_bytes(set_dir)
        problem = space_problem(to_dump, free, backup_root, factor)
        partials = sorted(name for name in os.listdir(set_dir)
                          if name.endswith(PARTIAL_SUFFIX)) if os.path.isdir(set_dir) else []
        result = {
            "set_id": set_id,
            "label": label,
            "path": set_dir,
            "manifest_path": os.path.join(set_dir, MANIFEST),
            "pg_dump": {"path": programs.pg_dump, "version": programs.pg_dump_version},
            "databases": plan,
            "dumped": [item["database"] for item in plan if item["action"] != "keep"],
            "kept": [item["database"] for item in plan if item["action"] == "keep"],
            "space": {"needed": space_needed(to_dump, factor), "free": free, "factor": factor,
                      "sufficient": problem is None},
            "removed_partials": partials,
            "queries": journal.queries,
            "commands": journal.commands,
            "manifest": manifest,
            "changed": bool(to_dump or partials),
            "table_text": archive_table(plan, manifest, label),
        }
        if check_mode:
            return result
        if problem:
            raise BackupError(problem)

        dir_changed = prepare_set_dir(set_dir)
        if not locked:
            held.enter_context(set_lock(set_dir))
        result["removed_partials"] = remove_partials(set_dir)
        for item in plan:
            if item["action"] == "keep":
                continue
            verified = proof.verified_tables(report, item["database"]) if report is not None else None
            entry = dump_database(source, item["database"], set_dir, item["file"], programs, compress, journal,
                                  verified)
            entry.update(label=label, database_size=item["size"])
            if manifest is None:
                manifest = new_manifest(set_id, address(source), entry["started_at"])
            manifest = record_archive(manifest, entry, entry["finished_at"])
            write_private_json(os.path.join(set_dir, MANIFEST), manifest)
    result["manifest"] = manifest
    result["table_text"] = archive_table(plan, manifest, label)
    result["changed"] = bool(dir_changed or to_dump or result["removed_partials"])
    return result
