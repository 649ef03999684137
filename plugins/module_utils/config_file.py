# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cutting one configuration file over to the shared connection string, and putting its original back.

``ConfigFile.cut_over`` edits the file (see ``app_config``), saves its
original in the backup set's ``ConfigStore`` before the first change and
replaces the file atomically; ``ConfigFile.put_back`` restores the saved
original after checking its sha256. Both return (changed, result) and raise
a ``ConsolidationError`` whose ``details`` are the result so far; in check
mode they only say what they would do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible_collections.classifiedads.consolidation.plugins.module_utils.app_config import (
    edit_document,
    masked_diff,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_store import (
    ConfigStoreError,
    backup_name,
    file_mode,
    read_if_file,
    restore_action,
    sha256_hex,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_text import (
    ConfigEditError,
    decode_document,
    encode_document,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError


class ConfigFileError(ConsolidationError):
    """The file cannot be cut over or put back; ``details`` hold the result so far."""


def write_atomically(atomic_move, path, data, mode=None, owner=None):
    """Replace ``path`` by a file with ``data``: a temporary file beside it, moved over it with
    ``atomic_move`` (AnsibleModule's, which keeps the mode, owner and SELinux context of what it replaces).

    ``mode`` and ``owner`` (uid, gid; only as root) are set instead when given.
    """
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        atomic_move(tmp, path, unsafe_writes=False, keep_dest_attrs=mode is None)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if mode is not None:
        os.chmod(path, int(mode, 8))
    if owner is not None and os.geteuid() == 0:
        os.chown(path, owner[0], owner[1])


class ConfigFile(object):
    """The configuration file ``path`` (symbolic links resolved) and its saved original in ``store``.

    ``store`` is a ``ConfigStore`` or None (then no original is kept);
    ``warn(message)`` receives what the operator should know; ``secrets``
    are masked in diffs (with those the file itself holds).
    """

    def __init__(self, path, store, atomic_move, warn, check_mode=False, diff=False, secrets=()):
        self.path = path
        self.store = store
        self.atomic_move = atomic_move
        self.warn = warn
        self.check_mode = check_mode
        self.diff = diff
        self.secrets = set(secrets)

    def cut_over(self, fmt, remove, set_values, services=(), prune_empty=True):
        """Remove and set keys; returns (changed, result with path, removed, updated, diff, backup)."""
        path = self.path
        if not os.path.isfile(path):
            raise ConfigFileError("%s does not exist or is not a regular file" % path)
        data = read_if_file(path)
        info = os.stat(path)
        try:
            text, bom = decode_document(data)
            edit = edit_document(fmt, text, remove, set_values, services, prune_empty)
        except ConfigEditError as exc:
            raise ConfigEditError("%s: %s" % (path, exc)) from None
        new_data = encode_document(edit.text, bom)
        changed = new_data != data
        result = dict(path=path, removed=edit.removed, updated=edit.updated)
        if self.diff:
            result["diff"] = masked_diff(path, text, edit.text, self.secrets, fmt)
        if self.store is not None:
            self._check_original(data, changed, result)
        if changed and not self.check_mode:
            if self.store is not None:
                try:
                    entry, created = self.store.save(path, data, info, fmt)
                except (OSError, ConfigStoreError) as exc:
                    raise ConfigFileError("cannot save the original of %s: %s" % (path, exc), **result) from None
                result["backup"] = dict(path=self.store.saved_path(entry["name"]), sha256=entry["sha256"],
                                        created=created)
            try:
                write_atomically(self.atomic_move, path, new_data)
            except OSError as exc:
                raise ConfigFileError("cannot write %s: %s" % (path, exc), **result) from None
        return changed, result

    def _check_original(self, data, changed, result):
        """Put the (planned) saved original into ``result``; refuse a change without a sound one."""
        path, store = self.path, self.store
        try:
            entry = store.entry(path)
        except ConfigStoreError as exc:
            raise ConfigFileError("%s: %s" % (path, exc), **result) from None
        if entry is None:
            if changed:
                result["backup"] = dict(path=store.saved_path(backup_name(path)), sha256=sha256_hex(data),
                                        created=True)
            return
        saved = store.saved_path(entry["name"])
        original = store.read_saved(entry)
        if original is None or sha256_hex(original) != entry["sha256"]:
            if changed:
                raise ConfigFileError("the saved original %s of %s is missing or does not match the sha256 recorded "
                                      "when it was saved; refusing to change the file without a way back"
                                      % (saved, path), **result)
            self.warn("the saved original %s of %s is missing or does not match the sha256 recorded when it "
                      "was saved: restoring this file would fail" % (saved, path))
        if changed and sha256_hex(data) != entry["sha256"]:
            self.warn("%s changed since its original was saved in %s; restoring puts back that original, "
                      "not its current content" % (path, saved))
        result["backup"] = dict(path=saved, sha256=entry["sha256"], created=False)

    def put_back(self):
        """Restore the saved original; returns (changed, result with path, backup, restored, diff)."""
        path, store = self.path, self.store
        result = dict(path=path)
        try:
            entry = store.entry(path)
        except ConfigStoreError as exc:
            raise ConfigFileError(exc.problems, **result) from None
        if entry is None:
            return False, dict(result, restored="not saved",
                               msg="no original of %s was saved in %s: nothing to restore" % (path, store.directory))
        result["backup"] = dict(path=store.saved_path(entry["name"]), sha256=entry["sha256"], created=False)
        current = read_if_file(path)
        current_mode = file_mode(os.stat(path)) if current is not None else None
        original = store.read_saved(entry)
        try:
            action = restore_action(path, entry, sha256_hex(current) if current is not None else None, current_mode,
                                    sha256_hex(original) if original is not None else None)
        except ConfigStoreError as exc:
            raise ConfigFileError(exc.problems, **result) from None
        result["restored"] = action
        if action == "restore" and self.diff:
            try:
                before = decode_document(current)[0] if current is not None else ""
                result["diff"] = masked_diff(path, before, decode_document(original)[0], self.secrets,
                                             entry.get("format"))
            except ConfigEditError:
                result["diff"] = {"before_header": path, "after_header": path, "prepared": "binary content differs"}
        if action != "none" and not self.check_mode:
            try:
                if action == "mode":
                    os.chmod(path, int(entry["mode"], 8))
                else:
                    write_atomically(self.atomic_move, path, original, mode=entry["mode"],
                                     owner=(entry["uid"], entry["gid"]))
            except OSError as exc:
                raise ConfigFileError("cannot restore %s: %s" % (path, exc), **result) from None
        return action != "none", result
