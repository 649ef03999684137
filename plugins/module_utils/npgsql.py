# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Npgsql (ADO.NET) connection strings: building the shared one, reading one back.

The consolidated application reads one ``ConnectionStrings:Default``; the
migrator gets it in its environment, the configuration files get it written
in. Values are quoted by Npgsql's rules (double quotes, a quote doubled)
whenever they hold a separator, a quote or surrounding blanks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.libpq import effective

NPGSQL_SSL_MODES = {"disable": "Disable", "allow": "Allow", "prefer": "Prefer", "require": "Require",
                    "verify-ca": "VerifyCA", "verify-full": "VerifyFull"}

# Certificate options of the connection contract -> Npgsql keyword.
NPGSQL_CERTIFICATES = (("sslrootcert", "Root Certificate"), ("ssl_cert", "SSL Certificate"), ("ssl_key", "SSL Key"))


def quote_value(value):
    """A connection-string value, quoted when it holds a separator or quote (Npgsql/ADO.NET rules)."""
    text = str(value)
    if any(char in text for char in ';="\'') or text != text.strip():
        return '"%s"' % text.replace('"', '""')
    return text


def npgsql_connection_string(endpoint, database, options=None):
    """The ``ConnectionStrings:Default`` an ASP.NET/Npgsql app reads, for ``database`` on ``endpoint``.

    Carries the password only if the endpoint has one; a pgpass file is
    passed as Npgsql's ``Passfile`` instead. Host and port not given are the
    ones libpq reaches here (PGHOST, PGPORT), since the application has to
    reach the same server. A client certificate and its key travel as
    Npgsql's keywords, an encrypted key's ``connect_params.sslpassword`` as
    ``SSL Password``. ``options`` are further Npgsql keywords (``Maximum Pool
    Size``, say), appended in their order; a None value leaves its keyword out.
    """
    parts = [("Host", effective(endpoint, "host") or "localhost"), ("Port", effective(endpoint, "port")),
             ("Database", database)]
    if endpoint.get("user"):
        parts.append(("Username", endpoint["user"]))
    if endpoint.get("password"):
        parts.append(("Password", endpoint["password"]))
    elif endpoint.get("passfile"):
        parts.append(("Passfile", endpoint["passfile"]))
    if endpoint.get("sslmode") and endpoint["sslmode"] != "prefer":
        parts.append(("SSL Mode", NPGSQL_SSL_MODES[endpoint["sslmode"]]))
    parts.extend((keyword, endpoint[option]) for option, keyword in NPGSQL_CERTIFICATES if endpoint.get(option))
    if (endpoint.get("connect_params") or {}).get("sslpassword"):
        parts.append(("SSL Password", endpoint["connect_params"]["sslpassword"]))
    parts.extend((name, value) for name, value in (options or {}).items() if value is not None)
    return ";".join("%s=%s" % (key, quote_value(value)) for key, value in parts)


def shared_connection_string(connection):
    """The shared connection string for ``connection`` (host, port, database, user, password,
    passfile, sslmode and extra ``options`` keywords), quoted by Npgsql's rules."""
    return npgsql_connection_string(connection, connection["database"], connection.get("options"))


def connection_string_pairs(text):
    """(keyword, value) pairs of an ADO.NET/Npgsql-style connection string, as far as it parses."""
    pairs, pos, end = [], 0, len(text)
    while pos < end:
        while pos < end and (text[pos].isspace() or text[pos] == ";"):
            pos += 1
        equals = text.find("=", pos)
        if pos >= end or equals < 0:
            break
        keyword, pos = text[pos:equals].strip(), equals + 1
        while pos < end and text[pos] in " \t":
            pos += 1
        if pos < end and text[pos] in "\"'":
            quote, chars, pos = text[pos], [], pos + 1
            while pos < end:
                if text[pos] == quote:
                    if text.startswith(quote * 2, pos):
                        chars.append(quote)
                        pos += 2
                        continue
                    pos += 1
                    break
                chars.append(text[pos])
                pos += 1
            value = "".join(chars)
        else:
            stop = text.find(";", pos)
            stop = end if stop < 0 else stop
            value, pos = text[pos:stop].strip(), stop
        pairs.append((keyword, value))
    return pairs
