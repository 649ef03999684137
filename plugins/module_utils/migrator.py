# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the application's migrator and checking what it left behind.

The pure parts (connection string, which expected tables are missing, the
tail of a log) are unit-tested; ``table_inventory`` reads the catalog.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import connect

NPGSQL_SSL_MODES = {"disable": "Disable", "allow": "Allow", "prefer": "Prefer", "require": "Require",
                    "verify-ca": "VerifyCA", "verify-full": "VerifyFull"}


def _npgsql_value(value):
    """Quote a connection-string value when it holds a separator or quote (Npgsql/ADO.NET rules)."""
    text = str(value)
    if any(char in text for char in ';="\'') or text != text.strip():
        return '"%s"' % text.replace('"', '""')
    return text


def npgsql_connection_string(endpoint, database):
    """The shared ``ConnectionStrings:Default`` an ASP.NET/Npgsql app reads, for ``database`` on ``endpoint``.

    Carries the password only if the endpoint has one; a pgpass file is
    passed as Npgsql's ``Passfile`` instead.
    """
    parts = [("Host", endpoint.get("host") or "localhost"), ("Port", endpoint.get("port") or 5432),
             ("Database", database)]
    if endpoint.get("user"):
        parts.append(("Username", endpoint["user"]))
    if endpoint.get("password"):
        parts.append(("Password", endpoint["password"]))
    elif endpoint.get("passfile"):
        parts.append(("Passfile", endpoint["passfile"]))
    if endpoint.get("sslmode") and endpoint["sslmode"] != "prefer":
        parts.append(("SSL Mode", NPGSQL_SSL_MODES[endpoint["sslmode"]]))
    return ";".join("%s=%s" % (key, _npgsql_value(value)) for key, value in parts)


def missing_tables(expected, present):
    """Pure: expected {schema: [table]} minus the present set of (schema, table), as sorted 'schema.table'."""
    return sorted("%s.%s" % (schema, table) for schema, tables in expected.items() for table in tables
                  if (schema, table) not in present)


def log_tail(text, lines=25):
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def table_inventory(endpoint, database, schemas):
    """Set of (schema, table) in ``schemas`` plus a fingerprint of the catalog that DDL changes.

    Returns (None, None) when the database does not exist yet.
    """
    admin = connect(endpoint, endpoint["maintenance_db"], autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                return None, None
    finally:
        admin.close()
    conn = connect(endpoint, database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
                        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)", (list(schemas),))
            tables = set(cur.fetchall())
            # Any DDL a migration runs moves at least one of these (data-only migrations do not).
            cur.execute("SELECT (SELECT count(*) FROM pg_catalog.pg_namespace), "
                        "(SELECT count(*) FROM pg_catalog.pg_class), "
                        "(SELECT count(*) FROM pg_catalog.pg_attribute WHERE attnum > 0 AND NOT attisdropped), "
                        "(SELECT count(*) FROM pg_catalog.pg_constraint), "
                        "(SELECT count(*) FROM pg_catalog.pg_index)")
            fingerprint = list(cur.fetchone())
        return tables, fingerprint
    finally:
        conn.rollback()
        conn.close()
