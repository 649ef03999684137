"""Connection string for the migrator, expected tables, and schema actions."""

from __future__ import annotations

from ansible_collections.classifiedads.consolidation.plugins.module_utils.migrator import (
    log_tail,
    missing_tables,
    npgsql_connection_string,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.schemas import schema_actions


def test_connection_string_carries_password_or_passfile():
    endpoint = {"host": "db", "port": 5433, "user": "app", "password": "s3cret", "sslmode": "prefer"}
    assert npgsql_connection_string(endpoint, "ClassifiedAds") == (
        "Host=db;Port=5433;Database=ClassifiedAds;Username=app;Password=s3cret")
    endpoint = {"host": "db", "port": 5432, "user": "app", "passfile": "/run/pgpass", "sslmode": "require"}
    assert npgsql_connection_string(endpoint, "ClassifiedAds") == (
        "Host=db;Port=5432;Database=ClassifiedAds;Username=app;Passfile=/run/pgpass;SSL Mode=Require")


def test_connection_string_quotes_separators():
    endpoint = {"host": "db", "port": 5432, "user": "app", "password": 'p;w="x'}
    assert npgsql_connection_string(endpoint, "Class;ifiedAds").endswith(
        'Database="Class;ifiedAds";Username=app;Password="p;w=""x"')


def test_missing_tables_are_named_schema_dot_table():
    expected = {"product": ["Products", "OutboxMessages"], "public": ["schemaversions"]}
    assert missing_tables(expected, {("product", "Products")}) == ["product.OutboxMessages", "public.schemaversions"]
    assert missing_tables(expected, {("product", "Products"), ("product", "OutboxMessages"),
                                     ("public", "schemaversions")}) == []


def test_log_tail_keeps_the_last_lines():
    assert log_tail("a\nb\nc\n", lines=2) == "b\nc"


def test_schema_actions():
    existing = {"product": "app", "public": "pg_database_owner"}
    actions = schema_actions(["product", "public", "auditlog"], existing, "app")
    assert actions == [{"name": "product", "owner": "app", "action": "exists"},
                       {"name": "public", "owner": "pg_database_owner", "action": "exists"},
                       {"name": "auditlog", "owner": "app", "action": "created"}]
