# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run directory and the backup set: their file names, the run-id pattern, private JSON files.

A run is named by its run id; ``<run_root>/<run id>`` holds its record
(``plan.json``, logs, reports) and ``<backup_root>/<run id>`` its backup set.
Every module and role takes these names from here (roles through the
``files`` of the published plan), so that no two places spell them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import json
import os
import re
import tempfile

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import utc_timestamp, visible
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError

# A run id (and the backup set id, which is the run id): it names directories, so no separators.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")  # \Z: "$" would accept a final newline
RUN_ID_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit (at most 64)"

# <run_root>
LATEST_POINTER = "latest"
# <run_root>/<run id>
PLAN = "plan.json"
MIGRATOR_LOG = "migrator.log"
DATA_COPY_LOG = "data_copy.log"
DATA_CHECKS_REPORT = "data_checks.json"
VERIFICATION_REPORT = "verification.json"
VERIFICATION_MARKDOWN = "verification.md"
DECOMMISSION_RECORD = "decommission.json"
ROLLBACK_RECORD = "rollback.json"
REHEARSAL_REPORT = "rehearsal.json"
FENCE_RECORD = "fence.json"
DISCARDED_WRITES = "discarded_writes.json"
SCHEMA_PLAN = "schema_plan.json"  # source_ddl: per module what the schema move restores, finds and refuses
WARNINGS_LOG = "warnings.log"  # every step's warnings, so that they outlive the play's stdout
CONTRACT_CHANGES = "contract_changes.json"  # contract changes a resumed run took
STATE_RECORD = "state.json"  # the target's state schema as it was dropped at the run's completion
QUARANTINED_ROWS = "quarantined_rows.json"  # row data a NULL policy kept out, kept from the dropped state schema
FAILURE_RECORD = "failure-{module}-{stamp}.json"  # a failed module's statements and partial results
# <backup_root>/<run id>
MANIFEST = "manifest.json"
CONFIG_DIR = "config"
CONFIG_INDEX = "index.json"

RUN_FILES = {
    "plan": PLAN,
    "rehearsal_report": REHEARSAL_REPORT,
    "migrator_log": MIGRATOR_LOG,
    "data_copy_log": DATA_COPY_LOG,
    "data_checks_report": DATA_CHECKS_REPORT,
    "verification_report": VERIFICATION_REPORT,
    "verification_markdown": VERIFICATION_MARKDOWN,
    "decommission_record": DECOMMISSION_RECORD,
    "rollback_record": ROLLBACK_RECORD,
    "fence_record": FENCE_RECORD,
    "discarded_writes": DISCARDED_WRITES,
    "schema_plan": SCHEMA_PLAN,
    "warnings_log": WARNINGS_LOG,
    "contract_changes": CONTRACT_CHANGES,
    "state_record": STATE_RECORD,
    "quarantined_rows": QUARANTINED_ROWS,
}


def run_id_problem(run_id, option="run_id"):
    """Why ``run_id`` cannot name a run, or None."""
    if isinstance(run_id, str) and RUN_ID_PATTERN.match(run_id):
        return None
    return "%s %r must be %s" % (option, run_id, RUN_ID_RULE)


def run_files(run_dir):
    """{purpose: path} of every file a run directory may hold (published in the plan for the roles)."""
    return dict((key, os.path.join(run_dir, name)) for key, name in RUN_FILES.items())


def backup_files(backup_dir):
    """{purpose: path} of what the backup set holds besides its archives (published in the plan)."""
    config_dir = os.path.join(backup_dir, CONFIG_DIR)
    return {"manifest": os.path.join(backup_dir, MANIFEST), "config_dir": config_dir,
            "config_index": os.path.join(config_dir, CONFIG_INDEX)}


def read_json(path, error=ConsolidationError):
    """The JSON document at ``path``, or None when there is no such file; ``error`` for anything else."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise error("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    except ValueError as exc:
        raise error("%s is not valid JSON: %s" % (path, exc)) from None


def write_private_file(path, text):
    """Replace ``path`` atomically with ``text``, readable by its owner only (0600).

    A temporary file (mkstemp: 0600, a name of its own) in the same directory is
    written, flushed to disk and renamed over ``path``, then the directory is
    synced: a crash leaves the old file or the new one, never a torn one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_directory(directory)


def fsync_directory(path):
    """Make the renames and creations in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_private(path, text):
    """Append ``text`` to ``path``, created (or left by an older run) readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def append_warnings(run_dir, origin, messages):
    """Append each message to ``warnings.log`` of ``run_dir`` as one line: ``<UTC time> <origin>: <message>``.

    ``origin`` names the step or module that warns. A message's control characters are made visible, so that
    one warning is always one line. Returns the log's path.
    """
    stamp = utc_timestamp()
    path = os.path.join(run_dir, WARNINGS_LOG)
    append_private(path, "".join("%s %s: %s\n" % (stamp, visible(origin), visible(message)) for message in messages))
    return path


def write_private_json(path, data):
    write_private_file(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def directory_lock(path, busy=None):
    """Hold an exclusive lock on a directory while the block runs.

    When another process holds it: raise ``busy`` (an exception), or with ``busy`` None wait for it.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if busy is not None else 0))
        except (IOError, OSError) as exc:
            if busy is not None and exc.errno in (errno.EAGAIN, errno.EACCES):
                raise busy from None
            raise
        yield
    finally:
        os.close(fd)
