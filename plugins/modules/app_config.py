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

import os

from ansible_collections.classifiedads.consolidation.plugins.module_utils.app_config import FORMATS, requested_values
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_compose import services_problem
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_file import ConfigFile
from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_store import ConfigStore
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import ConsolidationModule
from ansible_collections.classifiedads.consolidation.plugins.module_utils.npgsql import NPGSQL_SSL_MODES


def main():
    # No server: this module edits files on the application's host, which needs no psycopg2.
    module = ConsolidationModule(
        dict(
            path=dict(type="path", required=True),
            format=dict(type="str", choices=list(FORMATS)),
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
                sslmode=dict(type="str", choices=list(NPGSQL_SSL_MODES)),
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
    )
    params = module.params
    present = params["state"] == "present"
    if present and params["format"] == "compose":
        problem = services_problem(params["remove"] + list(params["set"]) + params["connection_string_keys"],
                                   params["services"])
        if problem:
            module.fail([problem])
    store = ConfigStore(params["backup_dir"]) if params["backup_dir"] else None
    secrets = set(value for value in params["secret_values"] if value)
    with module.failures():
        values, value_secrets = requested_values(params["set"], params["connection_string_keys"], params["connection"],
                                                 params["connection_string"]) if present else ({}, set())
        secrets |= value_secrets
        module.no_log_values.update(secrets)
        config = ConfigFile(os.path.realpath(params["path"]), store, module.atomic_move, module.warn,
                            module.check_mode, module._diff, secrets)
        if present:
            changed, result = config.cut_over(params["format"], params["remove"], values, params["services"],
                                              params["prune_empty"])
        else:
            changed, result = config.put_back()
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
