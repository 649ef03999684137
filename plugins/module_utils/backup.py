# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a backup set: one verified pg_dump archive per legacy database, and its manifest.

The decisions (file names, which pg_dump, is there room, is an archive still
good) are pure functions in ``manifest.py``; this file does the I/O around
them: the server, the ``pg_dump``/``pg_restore`` processes and the set
directory.

Each database is dumped from a snapshot that a REPEATABLE READ transaction of
ours exports (``pg_export_snapshot()`` / ``pg_dump --snapshot``); the table row
counts recorded in the manifest are taken in that same transaction while
pg_dump runs, so they describe exactly the rows in the archive. The archive
is written as ``<file>.partial``, read back completely by ``pg_restore``, and
renamed only then: a file without ``.partial`` is always complete and verified.
The manifest is replaced atomically after every archive.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import glob
import json
import os
import shutil
import stat
import tempfile

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import (
    connect,
    libpq_environment,
    sql,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.manifest import (
    ARCHIVE_FORMAT,
    DEFAULT_SPACE_FACTOR,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    BackupError,
    archive_decision,
    archive_filename,
    check_manifest,
    choose_pg_dump,
    compress_argument,
    find_archive,
    new_manifest,
    parse_program_version,
    partial_filename,
    pg_dump_version_problem,
    program_version_string,
    record_archive,
    sha256_file,
    space_needed,
    space_problem,
    tables_missing_from_toc,
    utc_timestamp,
    validate_label,
    validate_set_id,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import directory_lock

# Where distributions install versioned client binaries (Debian/Ubuntu, PGDG RPMs, source builds).
PG_DUMP_GLOBS = ("/usr/lib/postgresql/*/bin/pg_dump", "/usr/pgsql-*/bin/pg_dump", "/usr/local/pgsql/bin/pg_dump")

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


def server_address(endpoint):
    return "%s:%s" % (endpoint.get("host") or "local socket", endpoint.get("port"))


# -- what runs ---------------------------------------------------------------------------------


class Recorder(object):
    """Runs the client programs and the SQL of one backup, and remembers both for the result.

    ``run(argv, env, before_communicate)`` runs a program to completion and
    returns (rc, stdout, stderr) as text; the module passes Ansible's
    ``run_command``. ``env`` is the program's whole environment (None: ours);
    ``before_communicate`` is called with the started process, for work that
    must happen while it runs.
    """

    def __init__(self, run):
        self._run = run
        self.queries = []
        self.commands = []

    def run(self, argv, env=None, before_communicate=None):
        self.commands.append(list(argv))
        try:
            return self._run(list(argv), env, before_communicate)
        except OSError as exc:
            raise BackupError("cannot run %s: %s" % (argv[0], exc.strerror or exc)) from None

    def execute(self, cur, query, params=None):
        cur.execute(query, params)
        self.queries.append(cur.query.decode("utf-8", "replace") if isinstance(cur.query, bytes) else cur.query)


def program_major(path, recorder):
    rc, out, err = recorder.run([path, "--version"])
    if rc != 0:
        raise BackupError("%s --version failed (exit %d): %s" % (path, rc, (err or out).strip()))
    return parse_program_version(out), program_version_string(out)


def pg_dump_candidates():
    """Installed pg_dump binaries: versioned directories first (newest first), then PATH."""
    found = []
    for pattern in PG_DUMP_GLOBS:
        found.extend(sorted(glob.glob(pattern), reverse=True))
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(on_path)
    unique = []
    for path in found:
        if os.access(path, os.X_OK) and path not in unique:
            unique.append(path)
    return unique


class Tools(object):
    """The pg_dump chosen for this server and the pg_restore beside it."""

    def __init__(self, pg_dump, pg_dump_major, pg_dump_version, pg_restore):
        self.pg_dump = pg_dump
        self.pg_dump_major = pg_dump_major
        self.pg_dump_version = pg_dump_version
        self.pg_restore = pg_restore


def locate_tools(pg_dump_path, server_version_num, recorder):
    if pg_dump_path:
        major, version = program_major(pg_dump_path, recorder)
        problem = pg_dump_version_problem(pg_dump_path, major, server_version_num)
        if problem:
            raise BackupError(problem)
        chosen = pg_dump_path
    else:
        majors = {}
        for path in pg_dump_candidates():
            try:
                majors[path] = program_major(path, recorder)
            except BackupError:
                continue  # a broken wrapper on PATH must not hide a good versioned binary
        chosen = choose_pg_dump([(path, info[0]) for path, info in majors.items()], server_version_num)
        major, version = majors[chosen]
    pg_restore = os.path.join(os.path.dirname(chosen), "pg_restore")
    if not os.access(pg_restore, os.X_OK):
        raise BackupError("no pg_restore next to %s: it reads every archive back before it counts as verified"
                          % chosen)
    restore_major = program_major(pg_restore, recorder)[0]
    if tuple(restore_major) < tuple(major):
        raise BackupError("%s is older than %s: it could not read the archives" % (pg_restore, chosen))
    return Tools(chosen, major, version, pg_restore)


# -- the set directory ------------------------------------------------------------------------


def free_bytes(path):
    """Free bytes for an unprivileged writer on the file system that holds (or will hold) ``path``."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    vfs = os.statvfs(probe)
    return vfs.f_bavail * vfs.f_frsize


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
        if name.endswith(PARTIAL_SUFFIX) or name.startswith("." + MANIFEST_NAME + "."):
            os.unlink(os.path.join(set_dir, name))
            removed.append(name)
    return removed


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_manifest(set_dir):
    path = os.path.join(set_dir, MANIFEST_NAME)
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise BackupError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    except ValueError as exc:
        raise BackupError("%s is not valid JSON (%s): move it aside to start the set afresh" % (path, exc)) from None


def write_manifest(set_dir, manifest):
    """Replace manifest.json atomically: a temp file (0600) in the same directory, fsync, rename."""
    fd, tmp = tempfile.mkstemp(prefix="." + MANIFEST_NAME + ".", dir=set_dir)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, os.path.join(set_dir, MANIFEST_NAME))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(set_dir)


def current_file_sha256(set_dir, entry):
    path = os.path.join(set_dir, entry["file"]) if entry else None
    if path is None or not os.path.isfile(path):
        return None
    return sha256_file(path)


# -- one archive ------------------------------------------------------------------------------


def count_rows(cur, recorder):
    """Exact row counts of every table, in the caller's transaction (and so its snapshot)."""
    recorder.execute(cur, TABLES_QUERY)
    tables = [{"oid": oid, "schema": schema, "table": table} for oid, schema, table in cur.fetchall()]
    for table in tables:
        # ONLY: an inheritance parent's TABLE DATA holds its own rows, not its children's.
        recorder.execute(cur, sql.SQL("SELECT count(*) FROM ONLY {}").format(
            sql.Identifier(table["schema"], table["table"])))
        table["rows"] = cur.fetchone()[0]
    return tables


def _create_private_file(path):
    if os.path.exists(path):
        os.unlink(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def verify_written_archive(tools, path, tables, recorder):
    """pg_restore must list every counted table's data and read the whole archive; raises otherwise."""
    rc, toc, err = recorder.run([tools.pg_restore, "--list", path])
    if rc != 0:
        raise BackupError("pg_restore --list cannot read %s (exit %d): %s" % (path, rc, err.strip()))
    missing = tables_missing_from_toc(toc, tables)
    if missing:
        raise BackupError("archive %s lacks the data of %s" % (
            path, ", ".join("%s.%s" % (table["schema"], table["table"]) for table in missing)))
    # --list reads only the table of contents (a truncated archive still lists fine);
    # writing the whole restore script to /dev/null decompresses every data block.
    rc, out, err = recorder.run([tools.pg_restore, "--file=" + os.devnull, path])
    if rc != 0:
        raise BackupError("pg_restore cannot read all of %s (exit %d): %s" % (path, rc, err.strip()))
    return {"toc_tables": len(tables), "full_read": True}


def dump_database(source, database, set_dir, filename, tools, compress, recorder):
    """Dump one database into ``set_dir/filename`` and return its manifest entry."""
    final_path = os.path.join(set_dir, filename)
    partial_path = partial_filename(final_path)
    started_at = utc_timestamp()
    conn = connect(source, database)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            # The transaction's snapshot is taken by its first statement: this one.
            recorder.execute(cur, "SELECT pg_catalog.pg_export_snapshot(), "
                                  "pg_catalog.current_setting('server_version')")
            snapshot, server_version = cur.fetchone()
            recorder.execute(cur, "SET LOCAL statement_timeout = 0")
            _create_private_file(partial_path)
            counted = {}

            def count_while_dumping(process):
                # pg_dump has imported the snapshot or will: our transaction stays open until it ends.
                try:
                    counted["tables"] = count_rows(cur, recorder)
                except Exception as exc:  # stop pg_dump, then report the count's error
                    counted["error"] = exc
                    process.kill()

            # The database name goes through PGDATABASE: on argv, libpq would parse a name
            # containing "=" as a connection string.
            with libpq_environment(source, database) as env:
                rc, out, err = recorder.run(
                    [tools.pg_dump, "--format=custom", "--compress=" + compress, "--snapshot=" + snapshot,
                     "--no-password", "--file=" + partial_path], env, count_while_dumping)
            if "error" in counted:
                raise counted["error"]
            if rc != 0:
                raise BackupError("pg_dump of %s failed (exit %d): %s" % (database, rc, err.strip()))
            tables = counted["tables"]
        conn.rollback()
        verification = verify_written_archive(tools, partial_path, tables, recorder)
        checksum = sha256_file(partial_path)
        size = os.path.getsize(partial_path)
        os.chmod(partial_path, 0o600)
        os.rename(partial_path, final_path)
        _fsync_dir(set_dir)
    except BaseException:
        if os.path.exists(partial_path):
            os.unlink(partial_path)
        raise
    finally:
        conn.close()
    return {
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
        "pg_dump_path": tools.pg_dump,
        "pg_dump_version": tools.pg_dump_version,
        "verified": True,
        "verified_at": utc_timestamp(),
        "verification": verification,
    }


# -- the whole set ----------------------------------------------------------------------------


def inspect_source(source, databases, recorder):
    """Server version and the size of each wanted database; raises naming missing ones."""
    conn = connect(source, source.get("maintenance_db") or "postgres", autocommit=True)
    try:
        with conn.cursor() as cur:
            recorder.execute(cur, DATABASES_QUERY, (list(databases),))
            found = dict((name, (allow, size)) for name, allow, size in cur.fetchall())
            version_num = conn.server_version
    finally:
        conn.close()
    missing = [name for name in databases if name not in found]
    if missing:
        raise BackupError("database(s) %s do not exist on %s" % (", ".join(missing), server_address(source)))
    closed = [name for name in databases if not found[name][0]]
    if closed:
        raise BackupError("database(s) %s do not allow connections (datallowconn is false)" % ", ".join(closed))
    return version_num, dict((name, found[name][1]) for name in databases)


def run_backup(params, check_mode, recorder):
    """Everything the backup_set module does; returns its result dict, raises BackupError.

    ``recorder`` (a Recorder) runs the programs and keeps what ran, so a caller
    can report the queries and commands on failure too.
    """
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
    set_dir = os.path.join(backup_root, set_id)
    factor = params.get("space_factor") or DEFAULT_SPACE_FACTOR

    version_num, sizes = inspect_source(source, databases, recorder)
    tools = locate_tools(params.get("pg_dump_path"), version_num, recorder)
    compress = compress_argument(params.get("compress") or "1", tools.pg_dump_major)

    with contextlib.ExitStack() as held:
        # Decide under the set's lock, so another run cannot change the manifest in between.
        locked = not check_mode and os.path.isdir(set_dir)
        if locked:
            held.enter_context(set_lock(set_dir))
        manifest = load_manifest(set_dir) if os.path.isdir(set_dir) else None
        if manifest is not None:
            check_manifest(manifest, set_id, server_address(source))
        plan = []
        for database in databases:
            entry = find_archive(manifest, database, label) if manifest else None
            action, reason = archive_decision(entry, current_file_sha256(set_dir, entry))
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
            "manifest_path": os.path.join(set_dir, MANIFEST_NAME),
            "pg_dump": {"path": tools.pg_dump, "version": tools.pg_dump_version},
            "databases": plan,
            "dumped": [item["database"] for item in plan if item["action"] != "keep"],
            "kept": [item["database"] for item in plan if item["action"] == "keep"],
            "space": {"needed": space_needed(to_dump, factor), "free": free, "factor": factor,
                      "sufficient": problem is None},
            "removed_partials": partials,
            "queries": recorder.queries,
            "commands": recorder.commands,
            "manifest": manifest,
            "changed": bool(to_dump or partials),
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
            entry = dump_database(source, item["database"], set_dir, item["file"], tools, compress, recorder)
            entry.update(label=label, database_size=item["size"])
            if manifest is None:
                manifest = new_manifest(set_id, server_address(source), entry["started_at"])
            manifest = record_archive(manifest, entry, entry["finished_at"])
            write_manifest(set_dir, manifest)
    result["manifest"] = manifest
    result["changed"] = bool(dir_changed or to_dump or result["removed_partials"])
    return result
