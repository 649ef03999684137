# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What libpq does with a connection option nobody gave: its environment variable, else its built-in default.

The connection contract leaves an option out of the connection rather than
filling in a default, so that libpq reads ``PGPORT``, ``PGSSLMODE``... exactly
as ``psql`` would (PostgreSQL 15, "Environment Variables"). Where the
collection itself must name the value libpq will use (reports, the server
identity, the Npgsql string written for the application) it asks
:func:`effective` here, which follows the same order.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

# Option of the connection contract -> (libpq keyword, environment variable libpq reads for it).
# The password has a variable too (PGPASSWORD) but is never written into the environment.
OPTIONS = {
    "host": ("host", "PGHOST"),
    "port": ("port", "PGPORT"),
    "user": ("user", "PGUSER"),
    "passfile": ("passfile", "PGPASSFILE"),
    "sslmode": ("sslmode", "PGSSLMODE"),
    "sslrootcert": ("sslrootcert", "PGSSLROOTCERT"),
    "ssl_cert": ("sslcert", "PGSSLCERT"),
    "ssl_key": ("sslkey", "PGSSLKEY"),
    "connect_timeout": ("connect_timeout", "PGCONNECT_TIMEOUT"),
}

# libpq's compiled-in defaults, for the options the collection ever names.
BUILT_IN = {"port": 5432, "sslmode": "prefer"}

# libpq waits forever without a timeout; an unreachable server must fail a run, not hang it.
CONNECT_TIMEOUT = 10

# libpq keywords whose value is a secret (PostgreSQL 15 "Parameter Key Words").
SECRET_KEYWORDS = ("password", "sslpassword")


def effective(endpoint, option, environ=None):
    """The value libpq uses for ``option`` of ``endpoint``: the given one, else its environment variable,
    else the built-in default (None when libpq has none, e.g. the host: the local socket)."""
    environ = os.environ if environ is None else environ
    value = endpoint.get(option)
    if value is None:
        value = environ.get(OPTIONS[option][1]) or None
    if value is None:
        value = BUILT_IN.get(option)
    if option == "port" and value is not None and str(value).isdigit():
        return int(value)
    return value


def timeout_fallback(endpoint, environ=None):
    """CONNECT_TIMEOUT when neither the connection nor ``PGCONNECT_TIMEOUT`` sets one, else None."""
    environ = os.environ if environ is None else environ
    if endpoint.get("connect_timeout") is None and not environ.get("PGCONNECT_TIMEOUT"):
        return CONNECT_TIMEOUT
    return None
