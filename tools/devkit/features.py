"""Two legacy "feature" databases that use what PostgreSQL offers beyond plain tables.

Usage::

    python -m devkit.features create [--cluster NAME | --host H --port P --user U --passfile F] [--prefix Features]
    python -m devkit.features drop   [connection options] [--prefix Features]

``create`` makes ``<prefix>_Orders`` (tables in ``public``) and ``<prefix>_Ledger`` (tables in the schema
``app``) from ``devkit/sql/features_orders.sql`` and ``features_ledger.sql``, written for this project.
Between them they hold every object kind a schema move has to carry (the list is :data:`KINDS`): declarative
partitions on two levels with default partitions and a legacy inheritance child; views, one on another,
materialized views (one over a view); BEFORE/AFTER row and statement triggers; SQL and PL/pgSQL functions, a
procedure and an aggregate; enum, domain, composite and range types; identity, serial and unowned sequences;
a function in a column default; row-level security (forced on one table) with policies per command and role;
grants (table, column, sequence, function, schema) and default privileges to two roles; comments, a rule,
extended statistics, storage parameters, statistics targets, column storage, replica identity; the
extension ``citext`` installed in the source schema; a function with ``SET search_path`` naming the source
schema and one whose body names it (:data:`SCHEMA_BOUND`: what a schema rename cannot carry). About a
thousand rows each, in every leaf partition, with NULLs where the columns allow them; the triggers fire
while the rows go in, as they did in production.

The grants name the roles of :data:`ROLES`, which are cluster-wide: :func:`create_roles` makes them where
missing (``create`` does it on the source; a target server needs them too before grants can be restored).

:data:`MODULES` describes both databases for the consolidation contract (:func:`consolidation_modules`), and
for tests the queries whose answers must not change when the schema moves (:data:`SAMPLE_QUERIES`) and one
insert without an id per table (:data:`SAMPLE_INSERTS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

SQL_DIR = Path(__file__).resolve().parent / "sql"
DEFAULT_PREFIX = "Features"
ROLES = ("devkit_feature_reader", "devkit_feature_clerk")
MARKER = "devkit.features fixture"

# The object kinds the two databases hold between them (tests/tools/test_feature_fixtures.py checks each).
KINDS = (
    "range partitions", "list partitions", "two partition levels", "default partition", "inheritance child",
    "view", "view on a view", "materialized view (populated)", "materialized view on a view",
    "BEFORE INSERT row trigger setting a column", "AFTER row trigger writing an audit table", "statement trigger",
    "SQL function", "PL/pgSQL function", "procedure", "aggregate with own state function",
    "enum column", "domain with CHECK column", "composite column", "range column",
    "identity column", "serial column", "unowned sequence in a DEFAULT nextval", "function in a column default",
    "row-level security", "forced row-level security", "policies per command and role",
    "table grant", "column grant", "sequence grant", "function grant", "schema usage grant", "default privileges",
    "comments on tables, columns, functions, types", "rule", "extended statistics", "storage parameters",
    "column statistics target", "column storage", "replica identity full", "replica identity using index",
    "SET search_path naming the source schema", "body naming the source schema",
    "extension in the source schema with a column of its type",
)


@dataclasses.dataclass(frozen=True)
class FeatureModule:
    name: str
    source_schema: str  # in the legacy database
    schema: str  # its schema in the consolidated database
    script: str  # file under devkit/sql

    def database(self, prefix: str) -> str:
        return f"{prefix}_{self.name}"


ORDERS = FeatureModule("Orders", "public", "orders", "features_orders.sql")
LEDGER = FeatureModule("Ledger", "app", "ledger", "features_ledger.sql")
MODULES = (ORDERS, LEDGER)

# Functions a schema rename cannot follow: {module name: {function: what ties it to the source schema}}.
SCHEMA_BOUND = {
    "Orders": {"unpaid_total()": "search_path", "paid_invoice_count()": "body"},
    "Ledger": {"largest_entry()": "search_path", "fee_total()": "body"},
}

# Queries over views, materialized views and functions, written without a schema: run with search_path set to
# the module's schema, inside a transaction rolled back (a procedure's effect is read by the statement after
# it; the answer is the last statement's rows), they must answer the same before and after the move. The
# functions of SCHEMA_BOUND are left out on purpose: a schema rename cannot carry them.
SAMPLE_QUERIES = {
    "Orders": {
        "view order_totals": "SELECT * FROM order_totals ORDER BY customer_id",
        "view big_customers": "SELECT * FROM big_customers ORDER BY email",
        "materialized view monthly_orders": "SELECT * FROM monthly_orders ORDER BY month, region",
        "function customer_order_count": "SELECT customer_order_count(c) FROM generate_series(1, 120) c ORDER BY c",
        "function region_summary": "SELECT * FROM region_summary('eu')",
        "aggregate product_of": "SELECT region, product_of((amount % 2 + 1)::numeric) FROM orders GROUP BY 1 "
                                "ORDER BY 1",
        "type order_status": "SELECT enum_range(NULL::order_status)::text",
        "procedure cancel_orders_before": "CALL cancel_orders_before('2024-01-01'); "
                                          "SELECT status, count(*) FROM orders GROUP BY 1 ORDER BY 1",
    },
    "Ledger": {
        "view entry_lines": "SELECT * FROM entry_lines ORDER BY id",
        "materialized view daily_totals": "SELECT * FROM daily_totals ORDER BY day, kind",
        "function account_balance": "SELECT account_balance(a) FROM generate_series(1, 80) a ORDER BY a",
        "function kind_count": "SELECT kind_count(k) FROM unnest(enum_range(NULL::entry_kind)) k ORDER BY k",
        "procedure close_account": "CALL close_account(2); SELECT balance FROM accounts WHERE id = 2",
    },
}

# One insert per table that names no id; each returns the new row's id (and, for invoices, the number the
# unowned sequence gave). Run with search_path set to the module's schema, inside a transaction rolled back.
SAMPLE_INSERTS = {
    "Orders": {
        "customers": "INSERT INTO customers (email, name) VALUES ('new@example.org', 'New') RETURNING id",
        "orders": "INSERT INTO orders (ordered_on, region, customer_id, amount) VALUES ('2024-05-01', 'eu', 1, 2) "
                  "RETURNING id",
        "order_audit": "INSERT INTO order_audit (action) VALUES ('probe') RETURNING id",
        "invoices": "INSERT INTO invoices (order_id, amount) VALUES (1, 10) RETURNING id, invoice_no",
        "shipments": "INSERT INTO shipments (order_id, shipped_on) VALUES (1, '2024-03-01') RETURNING id",
        "shipments_returned": "INSERT INTO shipments_returned (order_id, shipped_on, reason) "
                              "VALUES (1, '2024-03-01', 'probe') RETURNING id",
    },
    "Ledger": {
        "accounts": "INSERT INTO accounts (code) VALUES ('ACC-NEW') RETURNING id",
        "account_log": "INSERT INTO account_log (event) VALUES ('probe') RETURNING id",
        "entries": "INSERT INTO entries (kind, booked_at, account_id, amount) "
                   "VALUES ('credit', '2024-06-01', 1, 5) RETURNING id",
    },
}


class FeatureError(RuntimeError):
    """The feature databases could not be built; the message says why."""


def consolidation_modules(prefix: str = DEFAULT_PREFIX) -> list[dict]:
    """The two modules as entries of ``consolidation_modules``."""
    return [{"name": module.name, "source_database": module.database(prefix), "schema": module.schema,
             "source_schema": module.source_schema} for module in MODULES]


def create_roles(server) -> list[str]:
    """Create the roles the grants name where missing (cluster-wide, NOLOGIN); return the ones created."""
    conn = _connect(server, "postgres")
    conn.autocommit = True
    created = []
    try:
        with conn.cursor() as cur:
            for role in ROLES:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
                    created.append(role)
    finally:
        conn.close()
    return created


def create(server, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Build both databases afresh (dropping earlier ones of the same names); return their names.

    ``server`` is anything with ``connect_kwargs(dbname)``: a :class:`devkit.legacy.Server` or a
    :class:`devkit.pgembed.ClusterInfo`.
    """
    create_roles(server)
    names = []
    for module in MODULES:
        name = module.database(prefix)
        _maintenance(server, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        _maintenance(server, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn = _connect(server, name)
        try:
            with conn, conn.cursor() as cur:
                # The legacy application's sessions resolved unqualified names in its own schema.
                cur.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(module.source_schema)))
                cur.execute((SQL_DIR / module.script).read_text())
                cur.execute(sql.SQL("COMMENT ON DATABASE {} IS %s").format(sql.Identifier(name)), (MARKER,))
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("VACUUM ANALYZE")
        except psycopg2.Error as exc:
            raise FeatureError(f"{name}: {str(exc).strip()}") from exc
        finally:
            conn.close()
        names.append(name)
    return names


def drop(server, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Drop both databases where they exist; return the names dropped. The roles stay (other databases may
    hold grants to them)."""
    dropped = []
    for module in MODULES:
        name = module.database(prefix)
        conn = _connect(server, "postgres")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                exists = cur.fetchone() is not None
        finally:
            conn.close()
        if exists:
            _maintenance(server, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            dropped.append(name)
    return dropped


def _connect(server, dbname: str):
    try:
        return psycopg2.connect(**server.connect_kwargs(dbname))
    except psycopg2.OperationalError as exc:
        raise FeatureError(f"cannot connect to database {dbname}: {str(exc).strip()}") from exc


def _maintenance(server, statement) -> None:
    conn = _connect(server, "postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.features",
                                     description="Build or drop the two legacy feature databases.")
    parser.add_argument("command", choices=("create", "drop"))
    parser.add_argument("--cluster", metavar="NAME", help="start if needed and use the embedded cluster NAME")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--user")
    parser.add_argument("--passfile", help="pgpass file holding the password")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX,
                        help=f"database names are <prefix>_Orders and <prefix>_Ledger (default: {DEFAULT_PREFIX})")
    args = parser.parse_args(argv)
    try:
        if args.cluster:
            from devkit.pgembed import EmbeddedCluster

            server = EmbeddedCluster(args.cluster).start()
        else:
            from devkit.legacy import Server

            server = Server(args.host, args.port, args.user, args.passfile)
        for name in (create if args.command == "create" else drop)(server, args.prefix):
            print(f"{args.command}: {name}")
    except (FeatureError, psycopg2.Error) as exc:
        print(f"devkit.features: {str(exc).strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
