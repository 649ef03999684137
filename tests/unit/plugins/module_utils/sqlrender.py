"""psycopg2.sql composables as text without a connection, for unit tests of statement builders."""

from __future__ import annotations

from psycopg2 import sql


def render(composable) -> str:
    """psycopg2.sql without a connection: identifiers and literals quoted as PostgreSQL does."""
    if isinstance(composable, sql.Composed):
        return "".join(render(part) for part in composable.seq)
    if isinstance(composable, sql.Identifier):
        return ".".join('"' + part.replace('"', '""') + '"' for part in composable.strings)
    if isinstance(composable, sql.Literal):
        value = composable.wrapped
        return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"
    if isinstance(composable, sql.SQL):
        return composable.string
    if isinstance(composable, sql.Placeholder):
        return "%s"
    raise TypeError(composable)
