# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The originals of configuration files, saved in the run's backup set before their first change.

``<backup_dir>/config`` (0700) holds each original (0600) under a name
derived from its path, and ``index.json`` records, per name, the path,
sha256, size, mode and owner of the original. An original once recorded is
never replaced, so reruns keep the true one; before it is put back it must
still match its recorded sha256.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import stat

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import utc_timestamp
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import (
    CONFIG_DIR,
    CONFIG_INDEX,
    directory_lock,
    read_json,
    write_private_json,
)


class ConfigStoreError(ConsolidationError):
    """A saved original cannot be kept or put back."""


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def file_mode(info):
    """The permission bits of an ``os.stat`` result, as recorded (``0640``)."""
    return "%04o" % stat.S_IMODE(info.st_mode)


def read_if_file(path):
    """The bytes of the regular file ``path``, or None when there is none."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        return handle.read()


def backup_name(path):
    """Stable, readable and collision-free file name for the saved original of ``path``."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", path.strip("/"))[-120:].lstrip("._-") or "file"
    return "%s.%s" % (readable, hashlib.sha256(path.encode("utf-8")).hexdigest()[:12])


def restore_action(path, entry, current_sha256, current_mode, backup_sha256):
    """What putting the original of ``path`` back takes: ``none``, ``mode`` or ``restore``.

    ``current_*`` describe the file now (None if it is missing),
    ``backup_sha256`` the saved copy (None if missing). The saved copy is
    only consulted when the file differs from the recorded original, and it
    must match the sha256 recorded when it was taken.
    """
    if current_sha256 == entry["sha256"]:
        return "none" if current_mode == entry["mode"] else "mode"
    if backup_sha256 is None:
        raise ConfigStoreError("the saved original %s of %s is missing" % (entry["name"], path))
    if backup_sha256 != entry["sha256"]:
        raise ConfigStoreError("the saved original %s of %s does not match the sha256 recorded when it was saved "
                               "(damaged or tampered with); refusing to restore it" % (entry["name"], path))
    return "restore"


def _write_new_file(path, data):
    """Create ``path`` (0600) with ``data``; never replaces an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class ConfigStore(object):
    """The saved originals of one backup set (``backup_dir``)."""

    def __init__(self, backup_dir):
        self.directory = os.path.join(backup_dir, CONFIG_DIR)
        self.index_path = os.path.join(self.directory, CONFIG_INDEX)

    def index(self):
        """The index, ``{"files": {name: entry}}``; empty when nothing was saved yet."""
        index = read_json(self.index_path, error=ConfigStoreError)
        if index is None:
            return {"files": {}}
        if not isinstance(index, dict) or not isinstance(index.get("files"), dict):
            raise ConfigStoreError("%s is not an index of saved originals" % self.index_path)
        return index

    def entry(self, path):
        """What the index records about the original of ``path``, or None."""
        if not os.path.isdir(self.directory):
            return None
        return self.index()["files"].get(backup_name(path))

    def saved_path(self, name):
        """Where the original saved under ``name`` (an index entry's, or ``backup_name(path)``) is kept."""
        return os.path.join(self.directory, name)

    def read_saved(self, entry):
        """The saved original an index entry names, or None when it is gone."""
        return read_if_file(self.saved_path(entry["name"]))

    def _prepare(self):
        """The private directory of saved originals (0700); a symlink or foreign directory is refused."""
        parent = os.path.dirname(self.directory)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o700)
        if not os.path.lexists(self.directory):
            os.mkdir(self.directory, 0o700)
        info = os.lstat(self.directory)
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigStoreError("%s is not a directory (a symlink?): refusing to keep originals there"
                                   % self.directory)
        if info.st_uid != os.geteuid():
            raise ConfigStoreError("%s belongs to uid %d, not to this user: refusing to keep originals there"
                                   % (self.directory, info.st_uid))
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(self.directory, 0o700)

    def save(self, path, data, info, fmt):
        """Keep ``data`` (whose ``os.stat`` is ``info``) as the original of ``path`` unless one is recorded
        already; returns (entry, whether this call saved it)."""
        self._prepare()
        # Another task (another file of the same play) may hold it: wait.
        with directory_lock(self.directory):
            index = self.index()
            name = backup_name(path)
            if name in index["files"]:
                return index["files"][name], False
            target = os.path.join(self.directory, name)
            if os.path.lexists(target):  # left by an interrupted run before the index recorded it
                os.unlink(target)
            _write_new_file(target, data)
            entry = {"path": path, "name": name, "format": fmt, "sha256": sha256_hex(data), "size": len(data),
                     "mode": file_mode(info), "uid": info.st_uid, "gid": info.st_gid, "saved_at": utc_timestamp()}
            index["files"][name] = entry
            index["version"] = 1
            write_private_json(self.index_path, index)
            return entry, True
