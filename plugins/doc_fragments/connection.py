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
          - Host name or IP address of the server; a path starting with C(/) means a Unix socket directory (what
            community.postgresql calls C(login_unix_socket)).
          - Omitted means libpq's default (C(PGHOST), else the local socket).
        type: str
      port:
        description:
          - TCP port of the server.
          - Omitted means libpq's default (C(PGPORT), else 5432).
        type: int
      user:
        description: Role to log in as. Omitted means libpq's default (C(PGUSER), else the OS user).
        type: str
      password:
        description:
          - Password of O(source.user). Never logged; client programs such as C(pg_dump) receive it through a private
            0600 pgpass file that exists only while they run.
          - Omitted means libpq finds it itself (C(PGPASSFILE), C(~/.pgpass)) or the server needs none.
        type: str
      passfile:
        description: A pgpass file to read the password from, as libpq's C(passfile) parameter (C(PGPASSFILE)).
        type: path
      sslmode:
        description:
          - libpq C(sslmode) (community.postgresql's C(ssl_mode)).
          - Omitted means libpq's default (C(PGSSLMODE), else C(prefer)).
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      sslrootcert:
        description:
          - CA certificate file for O(source.sslmode=verify-ca) or O(source.sslmode=verify-full), libpq's
            C(sslrootcert) (community.postgresql's C(ca_cert)).
          - Omitted means libpq's default (C(PGSSLROOTCERT), else C(~/.postgresql/root.crt)).
        type: path
      ssl_cert:
        description:
          - Client certificate file, libpq's C(sslcert), for servers that authenticate clients by certificate
            (a C(cert) rule in C(pg_hba.conf)).
          - Omitted means libpq's default (C(PGSSLCERT), else C(~/.postgresql/postgresql.crt)).
        type: path
      ssl_key:
        description:
          - Private key of O(source.ssl_cert), libpq's C(sslkey). An encrypted key takes its passphrase from
            C(sslpassword) in O(source.connect_params).
          - Omitted means libpq's default (C(PGSSLKEY), else C(~/.postgresql/postgresql.key)).
        type: path
      connect_timeout:
        description:
          - Seconds to wait for a connection before failing.
          - Omitted means C(PGCONNECT_TIMEOUT), else 10 (libpq itself would wait forever).
        type: int
      maintenance_db:
        description: Database to connect to for server-wide work (listing or creating databases).
        type: str
        default: postgres
      connect_params:
        description:
          - Further libpq connection keywords (PostgreSQL's "Parameter Key Words"), such as C(target_session_attrs),
            C(sslcrl), C(sslpassword), C(keepalives_idle) or C(options), as in community.postgresql.
          - A keyword that has its own option above (C(host), C(sslcert)...) is refused rather than silently
            overriding it; so are C(dbname), C(service) and C(application_name), which the collection decides.
          - Client programs such as C(pg_dump) read these keywords from a private 0600 service file that exists only
            while they run; an C(sslpassword) is masked in the task's output like a password.
        type: dict
  target:
    description:
      - How to reach the server that holds (or will hold) the consolidated database. Same suboptions as O(source);
        it may be the same server.
    type: dict
    suboptions: *endpoint
requirements:
  - psycopg2 (C(psycopg2-binary) is enough) on the managed node
notes:
  - An option left out is not replaced by a default of the collection's; libpq takes it from its environment
    variables (C(PGHOST), C(PGPORT), C(PGUSER), C(PGSSLMODE), C(PGSSLCERT)...) on the managed node, as C(psql) would,
    for the module's own sessions and for the client programs it runs. Set them with the task's C(environment).
  - C(PGSERVICE) is refused, because the module's own sessions would read the keys left out from that service but client
    programs such as C(pg_dump) cannot be given it (a service's C(dbname) would outrank the database they are
    given), so the two could reach different servers. Unset it (an empty value still names a service) and name the
    server with the options, O(source.connect_params) or the other variables instead.
  - Identifiers are always quoted, so mixed-case names such as C(ClassifiedAds_Product) work as they are.
'''
