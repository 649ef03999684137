# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The source/target connection contract shared by every module
    # (plugins/module_utils/connection.py holds the matching argument spec).
    DOCUMENTATION = r'''
options:
  source:
    description:
      - How to reach the server that holds the legacy per-module databases.
      - Every module of the collection accepts both O(source) and O(target) so that a play can set them once with
        C(module_defaults) for C(group/classifiedads.consolidation.all); a module ignores the one it does not use.
    type: dict
    suboptions: &endpoint
      host:
        description:
          - Host name or IP address of the server; a path starting with C(/) means a Unix socket directory.
          - Omitted means libpq's default (C(PGHOST) or the local socket).
        type: str
      port:
        description: TCP port of the server.
        type: int
        default: 5432
      user:
        description: Role to log in as. Omitted means libpq's default (C(PGUSER) or the OS user).
        type: str
      password:
        description:
          - Password of O(source.user). Never logged; client programs such as C(pg_dump) receive it through a private
            0600 pgpass file that exists only while they run.
          - Omitted means libpq finds it itself (C(PGPASSFILE), C(~/.pgpass)) or the server needs none.
        type: str
      passfile:
        description: A pgpass file to read the password from, as libpq's C(passfile) parameter.
        type: path
      sslmode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      sslrootcert:
        description: CA certificate file for O(source.sslmode=verify-ca) or O(source.sslmode=verify-full).
        type: path
      connect_timeout:
        description: Seconds to wait for a connection before failing.
        type: int
        default: 10
      maintenance_db:
        description: Database to connect to for server-wide work (listing or creating databases).
        type: str
        default: postgres
  target:
    description:
      - How to reach the server that holds (or will hold) the consolidated database. Same suboptions as O(source);
        it may be the same server.
    type: dict
    suboptions: *endpoint
requirements:
  - psycopg2 (C(psycopg2-binary) is enough) on the managed node
notes:
  - Identifiers are always quoted, so mixed-case names such as C(ClassifiedAds_Product) work as they are.
'''
