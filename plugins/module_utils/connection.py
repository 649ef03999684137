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

An option that is not given is not passed either: libpq then takes it from
its environment (``PGHOST``, ``PGPORT``, ``PGSSLMODE``...) or its own default,
for psycopg2 connections and client programs alike (:mod:`libpq`).

Passwords travel in memory to libpq or, for client programs such as
``pg_dump``, through a private 0600 pgpass file that is removed afterwards;
never on a command line. The same holds for the secrets of ``connect_params``
(``sslpassword``), which client programs read from a private 0600 service file.
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
from ansible_collections.classifiedads.consolidation.plugins.module_utils.libpq import (
    OPTIONS,
    SECRET_KEYWORDS,
    effective,
    timeout_fallback,
)

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
        port=dict(type="int"),
        user=dict(type="str"),
        password=dict(type="str", no_log=True),
        passfile=dict(type="path", no_log=False),
        sslmode=dict(type="str", choices=SSL_MODES),
        sslrootcert=dict(type="path"),
        ssl_cert=dict(type="path"),
        ssl_key=dict(type="path", no_log=False),
        connect_timeout=dict(type="int"),
        maintenance_db=dict(type="str", default="postgres"),
        connect_params=dict(type="dict"),
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


# Keywords connect_params may not carry: each has its own option, or the collection decides it.
_DECIDED = {"dbname": "the modules choose the database of each connection",
            "service": "client programs get the connection's service file from the collection",
            "application_name": "the collection names its sessions, so that a refusal can say who holds the run"}


def extra_keywords(endpoint):
    """The ``connect_params`` of ``endpoint`` as libpq keyword -> string value.

    Raises ConsolidationError naming every keyword that has its own option or
    that the collection decides, and every value a libpq service file cannot
    carry (client programs read these keywords from one).
    """
    given = endpoint.get("connect_params") or {}
    options = dict((keyword, option) for option, (keyword, _var) in OPTIONS.items())
    options["password"] = "password"
    side = getattr(endpoint, "side", None)
    where = "%s.connect_params" % side if side else "connect_params"
    problems, keywords = [], {}
    for keyword, value in sorted(given.items()):
        if keyword in options:
            problems.append("%s.%s: set the option %s instead" % (where, keyword, options[keyword]))
        elif keyword in _DECIDED:
            problems.append("%s.%s is not accepted: %s" % (where, keyword, _DECIDED[keyword]))
        elif value is None:
            continue
        else:
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            if "\n" in text or "\r" in text or text != text.strip():
                problems.append("%s.%s: a value with a line break or surrounding blanks cannot reach the client "
                                "programs (libpq's service file format)" % (where, keyword))
            keywords[keyword] = text
    if problems:
        raise ConsolidationError(problems)
    return keywords


def secrets_of(endpoint):
    """The secret values of a connection (its password, connect_params' sslpassword), to mask in output."""
    values = [endpoint.get("password")] + [(endpoint.get("connect_params") or {}).get(keyword)
                                           for keyword in SECRET_KEYWORDS]
    return [str(value) for value in values if value not in (None, "")]


def service_problems(endpoint, environ=None):
    """A refusal when the environment names a libpq service (``PGSERVICE``), else an empty list.

    psycopg2 would fill the keys a connection leaves out from that service, but the client programs cannot
    be given it (a service's dbname would outrank the database they are handed), so backup_set's pg_dump
    could read another server than its own counts, a copy or a verification. An empty PGSERVICE names a
    service too (libpq looks up the section ""), and psycopg2 cannot be told to skip it (``service=''``
    is looked up the same way): the only rule that keeps both paths on one server is to refuse it.
    """
    environ = os.environ if environ is None else environ
    if "PGSERVICE" not in environ:
        return []
    side = getattr(endpoint, "side", None)
    where = "the %s server" % side if side else "the server"
    return ["PGSERVICE=%s is set in the environment the modules run in: psycopg2 would take the keys the "
            "connection to %s leaves out from that service, pg_dump, pg_restore and psql would not (its dbname "
            "would outrank the database they are given), so they could reach different servers; unset PGSERVICE "
            "(an empty value still names a service) and give the keys as the %s options or its connect_params"
            % (environ["PGSERVICE"], where, side or "connection")]


def _refuse_service(endpoint):
    problems = service_problems(endpoint)
    if problems:
        raise ConsolidationError(problems)


def connect_params(endpoint, dbname):
    """psycopg2.connect's keywords: the options given, connect_params, and nothing libpq should decide itself."""
    _refuse_service(endpoint)
    params = dict((keyword, endpoint.get(option)) for option, (keyword, _var) in OPTIONS.items())
    params.update(dbname=dbname, password=endpoint.get("password"), application_name=APPLICATION_NAME)
    if params["connect_timeout"] is None:
        params["connect_timeout"] = timeout_fallback(endpoint)
    params.update(extra_keywords(endpoint))
    return dict((key, value) for key, value in params.items() if value is not None)


def connect_fix(exc, dbname):
    """The fix for a refusal whose cure is known, as a clause to append; else an empty string."""
    if "permission denied for database" in str(exc):  # a refused connection carries no SQLSTATE in psycopg2
        # The role exists and the password was right: only the database's CONNECT privilege is missing.
        return " (the role needs the CONNECT privilege: GRANT CONNECT ON DATABASE %s TO <role>)" % quote_ident(dbname)
    return ""


def connect(endpoint, dbname, autocommit=False, connection_factory=None):
    """Open a psycopg2 connection to ``dbname`` on ``endpoint``.

    ``connection_factory`` opens another kind of session (a LogicalReplicationConnection, which
    autocommits by nature and keeps ``autocommit`` read-only).

    Raises ConnectionFailure with the server's reason, scrubbed of the password, naming the side
    (source or target) when ``endpoint`` is an :class:`Endpoint`.
    """
    try:
        conn = psycopg2.connect(connection_factory=connection_factory, **connect_params(endpoint, dbname))
    except psycopg2.Error as exc:
        reason = str(exc).strip()
        for secret in secrets_of(endpoint):
            reason = reason.replace(secret, "********")
        side = getattr(endpoint, "side", None)
        where = ("the %s server %s" % (side, describe(endpoint, dbname))) if side else describe(endpoint, dbname)
        raise ConnectionFailure("cannot connect to %s: %s%s" % (where, reason, connect_fix(exc, dbname))) from None
    if connection_factory is None:
        conn.autocommit = autocommit
    return conn


def server_version_num(conn):
    return conn.server_version


# The section of the private service file that carries connect_params to client programs.
SERVICE = "classifiedads_consolidation"


@contextlib.contextmanager
def libpq_environment(endpoint, dbname=None):
    """Environment for libpq client programs (pg_dump, pg_restore, psql).

    The options given become libpq's variables (PGHOST, PGSSLCERT...); those
    not given stay as the environment has them, as they do for psycopg2
    connections in the same process. A given password is written to a private
    pgpass file, connect_params to a private service file (libpq reads every
    keyword from one, sslpassword included, and none has to reach argv); both
    are 0600 in a 0700 directory that exists only while the block runs.
    A PGSERVICE of the caller's is refused (:func:`service_problems`).
    """
    _refuse_service(endpoint)
    keywords = extra_keywords(endpoint)
    env = dict(os.environ)
    for key in ("PGSERVICEFILE", "PGDATABASE"):
        env.pop(key, None)
    for option, (_keyword, var) in OPTIONS.items():
        if endpoint.get(option) is not None and option != "passfile":
            env[var] = str(endpoint[option])
    fallback = timeout_fallback(endpoint, env)
    if fallback is not None:
        env["PGCONNECT_TIMEOUT"] = str(fallback)
    if dbname:
        env["PGDATABASE"] = dbname
    env["PGAPPNAME"] = APPLICATION_NAME
    private_dir = None
    try:
        if endpoint.get("password") or keywords:
            private_dir = tempfile.mkdtemp(prefix="cad-libpq-")
        if endpoint.get("password"):
            env["PGPASSFILE"] = _private_file(private_dir, "pgpass",
                                              "*:*:*:*:%s\n" % _pgpass_escape(endpoint["password"]))
            env.pop("PGPASSWORD", None)
        elif endpoint.get("passfile"):
            env["PGPASSFILE"] = endpoint["passfile"]
            env.pop("PGPASSWORD", None)
        if keywords:
            body = "".join("%s=%s\n" % item for item in sorted(keywords.items()))
            env["PGSERVICEFILE"] = _private_file(private_dir, "pg_service.conf", "[%s]\n%s" % (SERVICE, body))
            env["PGSERVICE"] = SERVICE
        yield env
    finally:
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)


def _private_file(directory, name, text):
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


def _pgpass_escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:")


def same_server(left, right):
    """Whether two endpoints name the same server (host and port, as libpq resolves them)."""
    return ((effective(left, "host") or "", effective(left, "port"))
            == (effective(right, "host") or "", effective(right, "port")))


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
