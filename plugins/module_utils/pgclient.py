# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PostgreSQL client programs: which pg_dump and pg_restore to run, judged by their versions.

pg_dump reads servers of its own major version and older; pg_restore reads
archives written by a pg_dump of its own major version and older. Of the
programs that fit, the one of the lowest major version wins: an archive
written by a much newer pg_dump may not be readable by the pg_restore a
rollback finds next to the old server.

The version arithmetic is pure; ``program_major`` and the ``locate_*``
functions run ``--version`` through the module's journal.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import shutil

from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError, ProgramError

# Where distributions install versioned client binaries (Debian/Ubuntu, PGDG RPMs, source builds).
PG_DUMP_GLOBS = ("/usr/lib/postgresql/*/bin/pg_dump", "/usr/pgsql-*/bin/pg_dump", "/usr/local/pgsql/bin/pg_dump")

_PG_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?")


class ClientProgramError(ConsolidationError):
    """No usable client program: none fits the server or the archives, or its version cannot be read."""


# -- versions ---------------------------------------------------------------------------------


def parse_program_version(text):
    """Major version of ``pg_dump --version`` output: ``(15,)``, or ``(9, 6)`` before PostgreSQL 10."""
    match = _PG_VERSION.search(text or "")
    if not match:
        raise ClientProgramError("cannot read a PostgreSQL version from %r" % (text or "").strip())
    major = int(match.group(1))
    if major < 10:
        return (major, int(match.group(2) or 0))
    return (major,)


def program_version_string(text):
    match = _PG_VERSION.search(text or "")
    return ".".join(part for part in match.groups() if part is not None) if match else None


def server_major(version_num):
    """Major version of a ``server_version_num`` (150018 -> (15,), 90624 -> (9, 6))."""
    version_num = int(version_num)
    if version_num >= 100000:
        return (version_num // 10000,)
    return (version_num // 10000, (version_num // 100) % 100)


def format_major(major):
    return ".".join(str(part) for part in major)


def closest_major(candidates, wanted):
    """The path of the lowest major at or above ``wanted`` in ``[(path, major), ...]`` (the earlier on a tie),
    or None."""
    fitting = [(tuple(major), index, path) for index, (path, major) in enumerate(candidates)
               if tuple(major) >= tuple(wanted)]
    return min(fitting)[2] if fitting else None


def pg_dump_version_problem(path, dump_major, server_version_num):
    """Why this pg_dump cannot dump the server, or None.

    pg_dump reads servers of its own and older majors only; an older pg_dump
    against a newer server fails halfway or, worse, misses objects it does not know.
    """
    wanted = server_major(server_version_num)
    if tuple(dump_major) < wanted:
        return ("%s is pg_dump %s, older than the source server (PostgreSQL %s): pg_dump must be of the "
                "server's major version or newer; install it (e.g. postgresql-client-%s) or set pg_dump_path"
                % (path, format_major(dump_major), format_major(wanted), format_major(wanted)))
    return None


def choose_pg_dump(candidates, server_version_num):
    """Pick the pg_dump to use from ``[(path, major), ...]``: the closest major at or above the server's.

    Raises ClientProgramError naming every candidate when none fits.
    """
    wanted = server_major(server_version_num)
    chosen = closest_major(candidates, wanted)
    if chosen:
        return chosen
    found = ", ".join("%s (%s)" % (path, format_major(major)) for path, major in candidates) or "none"
    raise ClientProgramError("no pg_dump of PostgreSQL %s or newer found (candidates: %s); install "
                             "postgresql-client-%s or set pg_dump_path"
                             % (format_major(wanted), found, format_major(wanted)))


def archive_major(archive):
    """Major version of the pg_dump that wrote a manifest entry."""
    return parse_program_version("(PostgreSQL) %s" % archive.get("pg_dump_version"))


# -- the installed programs -------------------------------------------------------------------


def program_major(path, journal):
    """``(major, version string)`` of a client program, from its ``--version``."""
    rc, out, err = journal.run([path, "--version"])
    if rc != 0:
        raise ClientProgramError("%s --version failed (exit %d): %s" % (path, rc, (err or out).strip()))
    return parse_program_version(out), program_version_string(out)


def _executables(paths):
    unique = []
    for path in paths:
        if os.access(path, os.X_OK) and path not in unique:
            unique.append(path)
    return unique


def pg_dump_candidates():
    """Installed pg_dump binaries: versioned directories first (newest first), then PATH."""
    found = []
    for pattern in PG_DUMP_GLOBS:
        found.extend(sorted(glob.glob(pattern), reverse=True))
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(on_path)
    return _executables(found)


def beside(path, program):
    """The client program ``program`` in the directory of ``path``."""
    return os.path.join(os.path.dirname(path), program)


def _versions(paths, journal):
    """``{path: (major, version string)}`` of the programs whose version could be read; a broken
    wrapper on PATH must not hide a good versioned binary."""
    versions = {}
    for path in paths:
        try:
            versions[path] = program_major(path, journal)
        except (ClientProgramError, ProgramError):
            continue
    return versions


def _majors(versions):
    return [(path, major) for path, (major, _version) in versions.items()]


class DumpPrograms(object):
    """The pg_dump chosen for a server and the pg_restore beside it."""

    def __init__(self, pg_dump, pg_dump_major, pg_dump_version, pg_restore):
        self.pg_dump = pg_dump
        self.pg_dump_major = pg_dump_major
        self.pg_dump_version = pg_dump_version
        self.pg_restore = pg_restore


def locate_dump_programs(pg_dump_path, server_version_num, journal):
    """The pg_dump to back up a server with (``pg_dump_path``, else the closest installed one) and the
    pg_restore beside it, which must read what it writes."""
    if pg_dump_path:
        major, version = program_major(pg_dump_path, journal)
        problem = pg_dump_version_problem(pg_dump_path, major, server_version_num)
        if problem:
            raise ClientProgramError(problem)
        chosen = pg_dump_path
    else:
        versions = _versions(pg_dump_candidates(), journal)
        chosen = choose_pg_dump(_majors(versions), server_version_num)
        major, version = versions[chosen]
    pg_restore = beside(chosen, "pg_restore")
    if not os.access(pg_restore, os.X_OK):
        raise ClientProgramError("no pg_restore next to %s: it reads every archive back before it counts as verified"
                                 % chosen)
    if tuple(program_major(pg_restore, journal)[0]) < tuple(major):
        raise ClientProgramError("%s is older than %s: it could not read the archives" % (pg_restore, chosen))
    return DumpPrograms(chosen, major, version, pg_restore)


def locate_pg_restore(explicit, archives, journal):
    """A pg_restore that reads every archive of ``archives`` (manifest entries): the one given, else one
    beside the pg_dump that wrote them, else the installed one closest to them."""
    needed = max(archive_major(archive) for archive in archives)
    if explicit:
        groups = [_executables([explicit])]
    else:
        writers = _executables([beside(archive["pg_dump_path"], "pg_restore")
                                for archive in archives if archive.get("pg_dump_path")])
        installed = [path for path in _executables([beside(path, "pg_restore") for path in pg_dump_candidates()])
                     if path not in writers]
        groups = [writers, installed]
    for group in groups:
        chosen = closest_major(_majors(_versions(group, journal)), needed)
        if chosen:
            return chosen
    tried = [path for group in groups for path in group]
    raise ClientProgramError("no pg_restore of PostgreSQL %s or newer found (tried: %s); install the client "
                             "programs or set pg_restore_path" % (format_major(needed), ", ".join(tried) or "none"))
