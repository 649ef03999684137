#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: app_config
short_description: Point an application configuration file at the consolidated database
version_added: 0.1.0
description:
  - Edits one configuration file of the application in place so that it uses the single shared connection string of
    the consolidated database. It removes keys (the per-module connection strings) and sets keys (the shared one),
    leaving everything else as it was - other keys, their order, comments, indentation, line endings, a UTF-8 byte
    order mark, the file's mode and owner.
  - Only the spans that change are rewritten. The result is parsed again and must equal the parsed original with
    exactly the requested changes, otherwise nothing is written.
  - Before the first change the original is saved under O(backup_dir) (see there); O(state=restored) puts it back.
  - Diffs (C(--diff)) mask every password of a connection string (C(Password=********)), values under
    secret-looking names, and O(secret_values). Passwords never appear in the result.
author:
  - ClassifiedAds platform team (@classifiedads)
attributes:
  check_mode:
    description: Reports whether the file would change, and with C(--diff) how; writes nothing, saves no original.
    support: full
  diff_mode:
    description: Returns the file before and after the edit (or the restore), secrets masked.
    support: full
options:
  path:
    description:
      - The configuration file. A symbolic link is followed; the file it points to is edited.
    type: path
    required: true
  format:
    description:
      - C(json) for .NET C(appsettings.json) files (comments and trailing commas, which .NET accepts, are kept;
        other syntax errors are refused with their line and column).
      - C(dotenv) for a C(.env) file as Docker Compose reads it (C(KEY=VALUE) lines, C(export), quotes, comments).
      - C(compose) for a Docker Compose file; the C(environment) of each of O(services) is edited.
      - Required with O(state=present).
    type: str
    choices: [json, dotenv, compose]
  state:
    description:
      - C(present) applies O(remove) and O(set).
      - C(restored) puts back the original saved under O(backup_dir) when the file was first changed, after checking
        its sha256 against the one recorded then, with its recorded mode (and owner, when running as root).
        Nothing happens when the file already is that original, or when no original was saved for it.
    type: str
    choices: [present, restored]
    default: present
  remove:
    description:
      - Keys to remove; a key that is not there is fine.
      - C(json) - key paths with C(:) as separator, as .NET configuration spells them, compared case-insensitively,
        for example C(Modules:Product:ConnectionStrings:Default).
      - C(dotenv) - variable names, for example C(Modules__Product__ConnectionStrings__Default).
      - C(compose) - variable names, removed from the environment of every service of O(services), or
        C(<service>:<name>) for one service only; a variable that a service merges from an anchor with a merge key
        (C(<<) followed by an alias) is removed at the anchor.
    type: list
    elements: str
    default: []
  set:
    description:
      - Keys to set, as key (spelled as in O(remove)) to value. An existing key keeps its place; a new key goes where
        the first removed key was (C(json) - just before the member that leads to it), else first in its object
        (C(json)) or last (C(dotenv), C(compose)).
      - Values are strings for C(dotenv) and C(compose) (Compose interpolates C(${...}) in them; write C($$) for a
        literal C($)), any JSON value for C(json).
      - A secret written here must also be listed in O(secret_values); prefer O(connection_string_keys) for the
        shared connection string.
    type: dict
    default: {}
  connection_string_keys:
    description:
      - Keys (spelled as in O(remove)) that receive the shared connection string, built from O(connection) or taken
        from O(connection_string).
    type: list
    elements: str
    default: []
  connection:
    description:
      - The consolidated database as the application reaches it, for O(connection_string_keys). The connection
        string is C(Host=...;Port=...;Database=...;Username=...;Password=...), plus C(Passfile) (without a
        password), C(SSL Mode) (unless C(prefer)) and O(connection.options), quoted by Npgsql's rules.
    type: dict
    suboptions:
      host:
        description: Host name or address the application connects to (for a Compose service, its name).
        type: str
      port:
        description: Port the application connects to.
        type: int
        default: 5432
      database:
        description: The consolidated database.
        type: str
        required: true
      user:
        description: Role the application logs in as.
        type: str
      password:
        description: Its password.
        type: str
      passfile:
        description: A pgpass file the application reads instead (used only without O(connection.password)).
        type: str
      sslmode:
        description: libpq-style SSL mode, written as Npgsql's C(SSL Mode) unless C(prefer) (its default).
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      options:
        description: Further Npgsql keywords and values, for example C(Maximum Pool Size) to C(50).
        type: dict
        default: {}
  connection_string:
    description:
      - The complete shared connection string, instead of building it from O(connection).
    type: str
  services:
    description:
      - C(compose) only - the services whose environment O(remove), O(set) and O(connection_string_keys) apply
        to (keys of the form C(<service>:<name>) name their service themselves).
      - An edit that would also change a service it does not target (through a shared anchor) is refused.
    type: list
    elements: str
    default: []
  prune_empty:
    description:
      - C(json) only - when a removed key leaves the object that held it empty (a per-module C(ConnectionStrings)
        block), remove that object too. Objects further up are kept.
    type: bool
    default: true
  backup_dir:
    description:
      - Directory of the run's backup set (the plan's C(backup_dir)). Before the first change of the file its
        original is copied to C(<backup_dir>/config/<name>) (mode 0600, directory 0700), C(<name>) being derived
        from the path, and recorded in C(<backup_dir>/config/index.json) with its path, sha256, size, mode and
        owner.
      - An original already recorded for the path is never replaced, so reruns keep the true original; it is
        checked against its sha256 before the file is changed again.
      - Required with O(state=restored). Without it O(state=present) saves nothing.
    type: path
  secret_values:
    description:
      - Further values to mask in diffs wherever they occur.
    type: list
    elements: str
    default: []
notes:
  - Writes atomically (a temporary file in the same directory, renamed over the original).
  - PyYAML (which ansible-core requires) is needed on the managed node for C(format=compose) only.
'''

EXAMPLES = r'''
- name: Point the WebAPI at the consolidated database
  classifiedads.consolidation.app_config:
    path: /srv/classifiedads/ClassifiedAds.WebAPI/appsettings.json
    format: json
    remove:
      - Modules:AuditLog:ConnectionStrings:Default
      - Modules:Configuration:ConnectionStrings:Default
      - Modules:Identity:ConnectionStrings:Default
      - Modules:Notification:ConnectionStrings:Default
      - Modules:Product:ConnectionStrings:Default
      - Modules:Storage:ConnectionStrings:Default
    connection_string_keys: [ConnectionStrings:Default]
    connection:
      host: 127.0.0.1
      database: ClassifiedAds
      user: classifiedads
      password: "{{ vault_classifiedads_db_password }}"
    backup_dir: /var/backups/classifiedads-consolidation/20261124T040000Z

- name: Compose passes one variable instead of six
  classifiedads.consolidation.app_config:
    path: /srv/classifiedads/docker-compose.yml
    format: compose
    services: [migrator, webapi, background]
    remove:
      - Modules__AuditLog__ConnectionStrings__Default
      - Modules__Configuration__ConnectionStrings__Default
      - Modules__Identity__ConnectionStrings__Default
      - Modules__Notification__ConnectionStrings__Default
      - Modules__Product__ConnectionStrings__Default
      - Modules__Storage__ConnectionStrings__Default
    set:
      ConnectionStrings__Default: ${ConnectionStrings__Default}
    backup_dir: /var/backups/classifiedads-consolidation/20261124T040000Z

- name: Roll back, put the original back
  classifiedads.consolidation.app_config:
    path: /srv/classifiedads/ClassifiedAds.WebAPI/appsettings.json
    state: restored
    backup_dir: /var/backups/classifiedads-consolidation/20261124T040000Z
'''

RETURN = r'''
path:
  description: The file edited or restored (symbolic links resolved).
  returned: always
  type: str
  sample: /srv/classifiedads/ClassifiedAds.WebAPI/appsettings.json
removed:
  description: Keys that were (or in check mode would be) removed, as given in O(remove); C(<service>:<name>) for
    C(compose).
  returned: state is present
  type: list
  elements: str
  sample: [Modules:AuditLog:ConnectionStrings:Default]
updated:
  description: Keys that were (or would be) added or changed; C(<service>:<name>) for C(compose). Values are not
    returned.
  returned: state is present
  type: list
  elements: str
  sample: [ConnectionStrings:Default]
backup:
  description: The saved original of the file, if one is (or, in check mode, would be) kept under O(backup_dir).
  returned: when O(backup_dir) is given and an original is or would be saved
  type: dict
  contains:
    path:
      description: Where the original is kept.
      type: str
    sha256:
      description: Its sha256.
      type: str
    created:
      description: Whether this run saved it (or would save it, in check mode); false when it was already there.
      type: bool
restored:
  description:
    - C(restore) when the original was (or in check mode would be) put back, C(mode) when only its mode was reset,
      C(none) when the file already was the original, C(not saved) when no original was recorded for it.
  returned: state is restored
  type: str
  sample: restore
'''

import datetime
import fcntl
import json
import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.classifiedads.consolidation.plugins.module_utils.app_config import (
    ConfigEditError,
    RestoreError,
    backup_name,
    connection_string_secrets,
    decode_document,
    document_secrets,
    edit_document,
    encode_document,
    mask_text,
    restore_action,
    sha256_hex,
    shared_connection_string,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.preflight import write_private_json

INDEX_NAME = "index.json"


def _mode(info):
    return "%04o" % stat.S_IMODE(info.st_mode)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _config_dir(backup_dir):
    return os.path.join(backup_dir, "config")


def _load_index(config_dir):
    try:
        with open(os.path.join(config_dir, INDEX_NAME)) as handle:
            index = json.load(handle)
    except FileNotFoundError:
        return {"files": {}}
    if not isinstance(index, dict) or not isinstance(index.get("files"), dict):
        raise RestoreError("%s is not an index of saved originals" % os.path.join(config_dir, INDEX_NAME))
    return index


def _prepare_config_dir(config_dir):
    """The private directory of saved originals (0700); a symlink or foreign directory is refused."""
    if not os.path.isdir(os.path.dirname(config_dir)):
        os.makedirs(os.path.dirname(config_dir), 0o700)
    if not os.path.lexists(config_dir):
        os.mkdir(config_dir, 0o700)
    info = os.lstat(config_dir)
    if not stat.S_ISDIR(info.st_mode):
        raise RestoreError("%s is not a directory (a symlink?): refusing to keep originals there" % config_dir)
    if info.st_uid != os.geteuid():
        raise RestoreError("%s belongs to uid %d, not to this user: refusing to keep originals there"
                           % (config_dir, info.st_uid))
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(config_dir, 0o700)


class _Locked:
    """An exclusive lock on the directory of saved originals while the index is read and written."""

    def __init__(self, directory):
        self.directory = directory
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.directory, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _write_new_file(path, data):
    """Create ``path`` (0600) with ``data``; never replaces an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def save_original(config_dir, path, data, info, fmt):
    """Keep ``data`` as the original of ``path`` unless one is recorded already; returns (entry, created)."""
    _prepare_config_dir(config_dir)
    with _Locked(config_dir):
        index = _load_index(config_dir)
        name = backup_name(path)
        if name in index["files"]:
            return index["files"][name], False
        target = os.path.join(config_dir, name)
        if os.path.lexists(target):  # left by an interrupted run before the index recorded it
            os.unlink(target)
        _write_new_file(target, data)
        entry = {"path": path, "name": name, "format": fmt, "sha256": sha256_hex(data), "size": len(data),
                 "mode": _mode(info),
                 "uid": info.st_uid, "gid": info.st_gid,
                 "saved_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        index["files"][name] = entry
        index["version"] = 1
        write_private_json(os.path.join(config_dir, INDEX_NAME), index)
        return entry, True


def _write_atomically(module, path, data, mode=None, owner=None):
    """Replace ``path`` by a file with ``data``: a temporary file beside it, renamed over it.

    Keeps the mode and owner of the file it replaces, or sets ``mode``/``owner`` when given.
    """
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        module.atomic_move(tmp, path, unsafe_writes=False, keep_dest_attrs=mode is None)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if mode is not None:
        os.chmod(path, int(mode, 8))
    if owner is not None and os.geteuid() == 0:
        os.chown(path, owner[0], owner[1])


def _diff(path, before, after, secrets, fmt):
    secrets = set(secrets)
    if fmt:
        secrets |= document_secrets(fmt, before) | document_secrets(fmt, after)
    return {"before_header": path, "after_header": path, "before": mask_text(before, secrets),
            "after": mask_text(after, secrets)}


def apply(module, path, secrets):
    params = module.params
    if not os.path.isfile(path):
        module.fail_json(msg="%s does not exist or is not a regular file" % path)
    data = _read(path)
    info = os.stat(path)
    set_values = dict(params["set"])
    if params["connection_string_keys"]:
        if params["connection_string"]:
            shared = params["connection_string"]
        elif params["connection"]:
            shared = shared_connection_string(params["connection"])
        else:
            module.fail_json(msg="connection_string_keys needs connection or connection_string")
        secrets.update(connection_string_secrets(shared))
        for key in params["connection_string_keys"]:
            set_values[key] = shared
    for value in set_values.values():
        if isinstance(value, str):
            secrets.update(connection_string_secrets(value))
    for secret in secrets:
        module.no_log_values.add(secret)
    try:
        text, bom = decode_document(data)
        result = edit_document(params["format"], text, params["remove"], set_values, params["services"],
                               params["prune_empty"])
    except ConfigEditError as exc:
        module.fail_json(msg="%s: %s" % (path, exc))
    new_data = encode_document(result.text, bom)
    changed = new_data != data
    output = dict(path=path, removed=result.removed, updated=result.updated)
    if module._diff:
        output["diff"] = _diff(path, text, result.text, secrets, params["format"])

    if params["backup_dir"]:
        config_dir = _config_dir(params["backup_dir"])
        name = backup_name(path)
        try:
            entry = _load_index(config_dir)["files"].get(name) if os.path.isdir(config_dir) else None
        except (RestoreError, ValueError) as exc:
            module.fail_json(msg="%s: %s" % (path, exc), **output)
        if entry is not None:
            saved = os.path.join(config_dir, entry["name"])
            saved_sha = sha256_hex(_read(saved)) if os.path.isfile(saved) else None
            if saved_sha != entry["sha256"] and changed:
                module.fail_json(msg="the saved original %s of %s is missing or does not match the sha256 recorded "
                                     "when it was saved; refusing to change the file without a way back"
                                     % (saved, path), **output)
            if saved_sha != entry["sha256"]:
                module.warn("the saved original %s of %s is missing or does not match the sha256 recorded when it "
                            "was saved: restoring this file would fail" % (saved, path))
            if changed and sha256_hex(data) != entry["sha256"]:
                module.warn("%s changed since its original was saved in %s; restoring puts back that original, "
                            "not its current content" % (path, saved))
            output["backup"] = dict(path=saved, sha256=entry["sha256"], created=False)
        elif changed:
            output["backup"] = dict(path=os.path.join(config_dir, name), sha256=sha256_hex(data), created=True)

    if changed and not module.check_mode:
        if params["backup_dir"]:
            try:
                entry, created = save_original(_config_dir(params["backup_dir"]), path, data, info,
                                               params["format"])
            except (OSError, RestoreError) as exc:
                module.fail_json(msg="cannot save the original of %s: %s" % (path, exc), **output)
            output["backup"] = dict(path=os.path.join(_config_dir(params["backup_dir"]), entry["name"]),
                                    sha256=entry["sha256"], created=created)
        try:
            _write_atomically(module, path, new_data)
        except OSError as exc:
            module.fail_json(msg="cannot write %s: %s" % (path, exc), **output)
    module.exit_json(changed=changed, **output)


def restore(module, path, secrets):
    config_dir = _config_dir(module.params["backup_dir"])
    output = dict(path=path)
    try:
        entry = _load_index(config_dir)["files"].get(backup_name(path)) if os.path.isdir(config_dir) else None
    except (RestoreError, ValueError) as exc:
        module.fail_json(msg=str(exc), **output)
    if entry is None:
        module.exit_json(changed=False, restored="not saved",
                         msg="no original of %s was saved in %s: nothing to restore" % (path, config_dir), **output)
    saved = os.path.join(config_dir, entry["name"])
    output["backup"] = dict(path=saved, sha256=entry["sha256"], created=False)
    current = _read(path) if os.path.isfile(path) else None
    current_mode = _mode(os.stat(path)) if current is not None else None
    original = _read(saved) if os.path.isfile(saved) else None
    try:
        action = restore_action(path, entry, sha256_hex(current) if current is not None else None, current_mode,
                                sha256_hex(original) if original is not None else None)
    except RestoreError as exc:
        module.fail_json(msg=str(exc), **output)
    output["restored"] = action
    if action == "restore" and module._diff:
        try:
            before = decode_document(current)[0] if current is not None else ""
            output["diff"] = _diff(path, before, decode_document(original)[0], secrets, entry.get("format"))
        except ConfigEditError:
            output["diff"] = {"before_header": path, "after_header": path, "prepared": "binary content differs"}
    if action != "none" and not module.check_mode:
        try:
            if action == "mode":
                os.chmod(path, int(entry["mode"], 8))
            else:
                _write_atomically(module, path, original, mode=entry["mode"], owner=(entry["uid"], entry["gid"]))
        except OSError as exc:
            module.fail_json(msg="cannot restore %s: %s" % (path, exc), **output)
    module.exit_json(changed=action != "none", **output)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            format=dict(type="str", choices=["json", "dotenv", "compose"]),
            state=dict(type="str", default="present", choices=["present", "restored"]),
            remove=dict(type="list", elements="str", default=[]),
            set=dict(type="dict", default={}),
            connection_string_keys=dict(type="list", elements="str", default=[], no_log=False),
            connection=dict(type="dict", options=dict(
                host=dict(type="str"),
                port=dict(type="int", default=5432),
                database=dict(type="str", required=True),
                user=dict(type="str"),
                password=dict(type="str", no_log=True),
                passfile=dict(type="str", no_log=False),
                sslmode=dict(type="str", choices=["disable", "allow", "prefer", "require", "verify-ca",
                                                  "verify-full"]),
                options=dict(type="dict", default={}),
            )),
            connection_string=dict(type="str", no_log=True),
            services=dict(type="list", elements="str", default=[]),
            prune_empty=dict(type="bool", default=True),
            backup_dir=dict(type="path"),
            secret_values=dict(type="list", elements="str", default=[], no_log=True),
        ),
        mutually_exclusive=[("connection", "connection_string")],
        required_if=[("state", "present", ("format",)), ("state", "restored", ("backup_dir",))],
        supports_check_mode=True,
    )
    params = module.params
    unqualified = [key for key in params["remove"] + list(params["set"]) + params["connection_string_keys"]
                   if ":" not in key]
    if params["format"] == "compose" and params["state"] == "present" and unqualified and not params["services"]:
        module.fail_json(msg="format=compose needs services for %s: the services whose environment is edited"
                         % ", ".join(unqualified))
    path = os.path.realpath(params["path"])
    secrets = set(value for value in params["secret_values"] if value)
    if params["state"] == "restored":
        restore(module, path, secrets)
    else:
        apply(module, path, secrets)


if __name__ == "__main__":
    main()
