# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One connection contract for every module of the collection.

A consolidation talks to two servers that may differ: the *source* that holds
the legacy per-module databases and the *target* that holds the consolidated
database. Every module takes them as ``source`` / ``target`` dictionaries with
the suboptions below (documented once in the ``connection`` doc fragment), so
a play sets them once through ``module_defaults`` and the
``group/classifiedads.consolidation.all`` action group.

Passwords travel in memory to libpq or, for client programs such as
``pg_dump``, through a private 0600 pgpass file that is removed afterwards;
never on a command line.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import shutil
import tempfile
import traceback

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import describe, quote_ident
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
    import psycopg2.extensions

    # Re-exported for the modules, which build their statements with it.
    from psycopg2 import sql  # noqa: F401  # pylint: disable=unused-import
except ImportError:  # pragma: no cover - reported through missing_required_lib
    psycopg2 = None
    sql = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

APPLICATION_NAME = "classifiedads.consolidation"

SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


def endpoint_options():
    """Suboptions of a ``source`` or ``target`` dictionary."""
    return dict(
        host=dict(type="str"),
        port=dict(type="int", default=5432),
        user=dict(type="str"),
        password=dict(type="str", no_log=True),
        passfile=dict(type="path", no_log=False),
        sslmode=dict(type="str", default="prefer", choices=SSL_MODES),
        sslrootcert=dict(type="path"),
        connect_timeout=dict(type="int", default=10),
        maintenance_db=dict(type="str", default="postgres"),
    )


def endpoint_spec(required=True):
    return dict(type="dict", required=required, options=endpoint_options())


class Endpoint(dict):
    """A ``source`` or ``target`` connection dictionary that knows which of the two it is, for messages."""

    # Constructible without arguments: Ansible rebuilds mappings as type(value)() when it masks secrets.
    def __init__(self, side=None, options=()):
        super(Endpoint, self).__init__(options)
        self.side = side


class ConnectionFailure(ConsolidationError):
    """A server could not be reached or refused us; the message carries no secret."""


def connect_params(endpoint, dbname):
    params = dict(
        dbname=dbname,
        host=endpoint.get("host"),
        port=endpoint.get("port"),
        user=endpoint.get("user"),
        password=endpoint.get("password"),
        passfile=endpoint.get("passfile"),
        sslmode=endpoint.get("sslmode"),
        sslrootcert=endpoint.get("sslrootcert"),
        connect_timeout=endpoint.get("connect_timeout"),
        application_name=APPLICATION_NAME,
    )
    return dict((key, value) for key, value in params.items() if value is not None)


def connect_fix(exc, dbname):
    """The fix for a refusal whose cure is known, as a clause to append; else an empty string."""
    if "permission denied for database" in str(exc):  # a refused connection carries no SQLSTATE in psycopg2
        # The role exists and the password was right: only the database's CONNECT privilege is missing.
        return " (the role needs the CONNECT privilege: GRANT CONNECT ON DATABASE %s TO <role>)" % quote_ident(dbname)
    return ""


def connect(endpoint, dbname, autocommit=False):
    """Open a psycopg2 connection to ``dbname`` on ``endpoint``.

    Raises ConnectionFailure with the server's reason, scrubbed of the password, naming the side
    (source or target) when ``endpoint`` is an :class:`Endpoint`.
    """
    try:
        conn = psycopg2.connect(**connect_params(endpoint, dbname))
    except psycopg2.Error as exc:
        reason = str(exc).strip()
        if endpoint.get("password"):
            reason = reason.replace(endpoint["password"], "********")
        side = getattr(endpoint, "side", None)
        where = ("the %s server %s" % (side, describe(endpoint, dbname))) if side else describe(endpoint, dbname)
        raise ConnectionFailure("cannot connect to %s: %s%s" % (where, reason, connect_fix(exc, dbname))) from None
    conn.autocommit = autocommit
    return conn


def server_version_num(conn):
    return conn.server_version


@contextlib.contextmanager
def libpq_environment(endpoint, dbname=None):
    """Environment for libpq client programs (pg_dump, pg_restore, psql).

    A given password is written to a private pgpass file (0600, in a 0700
    directory) that exists only while the block runs. Without a password or
    passfile the environment's own libpq settings apply, as they do for
    psycopg2 connections in the same process.
    """
    env = dict(os.environ)
    for key in ("PGSERVICE", "PGDATABASE"):
        env.pop(key, None)
    mapping = dict(PGHOST="host", PGPORT="port", PGUSER="user", PGSSLMODE="sslmode",
                   PGSSLROOTCERT="sslrootcert", PGCONNECT_TIMEOUT="connect_timeout")
    for var, key in mapping.items():
        if endpoint.get(key) is not None:
            env[var] = str(endpoint[key])
    if dbname:
        env["PGDATABASE"] = dbname
    env["PGAPPNAME"] = APPLICATION_NAME
    private_dir = None
    try:
        if endpoint.get("password"):
            private_dir = tempfile.mkdtemp(prefix="cad-pgpass-")
            passfile = os.path.join(private_dir, "pgpass")
            fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write("*:*:*:*:%s\n" % _pgpass_escape(endpoint["password"]))
            env["PGPASSFILE"] = passfile
            env.pop("PGPASSWORD", None)
        elif endpoint.get("passfile"):
            env["PGPASSFILE"] = endpoint["passfile"]
            env.pop("PGPASSWORD", None)
        yield env
    finally:
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)


def _pgpass_escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:")


def same_server(left, right):
    """Whether two endpoints name the same server (host and port)."""
    return (left.get("host") or "", int(left.get("port") or 5432)) == (
        right.get("host") or "", int(right.get("port") or 5432))


def program_runner(module):
    """``module.run_command`` for libpq client programs, with a whole environment and a private umask.

    ``run(argv, env, before_communicate)`` runs ``argv`` with exactly ``env``
    (from libpq_environment, which drops variables such as PGPASSWORD that
    would override the private pgpass file); run_command itself can only add
    variables.
    """

    def run(argv, env, before_communicate):
        saved = dict(os.environ)
        try:
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            return module.run_command(argv, cwd="/", umask=0o077, before_communicate_callback=before_communicate,
                                      handle_exceptions=False)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    return run
