"""Read a schema's tables from pg_catalog and compare two such snapshots.

:func:`read_schema` returns the shape documented in :mod:`devkit.reference_catalog`, so a test can
hold an actual database up against the hand-written reference and print :func:`diff` when they
differ. Only SQL against pg_catalog, the schema name always a bound parameter.
"""

from __future__ import annotations

_ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_IDENTITY = {"": None, "d": "by default", "a": "always"}
_CONSTRAINT_TYPES = {"c": "CHECK", "u": "UNIQUE", "x": "EXCLUDE", "t": "TRIGGER"}

_TABLES = """
SELECT c.relname::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
"""

_COLUMNS = """
SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS = """
SELECT c.relname::text, con.conname::text, con.contype::text,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       CASE WHEN fn.nspname = n.nspname THEN fc.relname::text ELSE fn.nspname || '.' || fc.relname END,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       con.confdeltype::text
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
ORDER BY c.relname, con.conname
"""

# Key columns first (indnkeyatts of them), then INCLUDE columns. An expression column has attnum 0
# and is printed by pg_get_indexdef. indoption (key columns only): bit 1 DESC, bit 2 NULLS FIRST;
# only a non-default order is spelled out.
_INDEXES = """
SELECT c.relname::text, i.relname::text, x.indisunique, am.amname::text, x.indnkeyatts,
       ARRAY(SELECT coalesce(a.attname::text, pg_get_indexdef(x.indexrelid, k.ord::int, true))
                    || CASE WHEN k.ord > x.indnkeyatts THEN ''
                            WHEN o.opt = 3 THEN ' DESC'
                            WHEN o.opt = 1 THEN ' DESC NULLS LAST'
                            WHEN o.opt = 2 THEN ' NULLS FIRST'
                            ELSE '' END
             FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             CROSS JOIN LATERAL (SELECT x.indoption[k.ord::int - 1] AS opt) AS o
             LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum AND k.attnum > 0
             ORDER BY k.ord),
       pg_get_expr(x.indpred, x.indrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = i.relam
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT x.indisprimary
ORDER BY c.relname, i.relname
"""


def read_schema(conn, schema: str = "public") -> dict:
    """Snapshot the tables of ``schema``: columns, keys, indexes and any other constraint.

    Defaults are printed with ``schema`` alone on the search_path, so a serial's
    ``nextval('t_id_seq'::regclass)`` reads the same whichever schema the table lives in. The
    session's search_path is restored afterwards.
    """
    params = {"schema": schema}
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('search_path')")
        (saved_path,) = cur.fetchone()
        cur.execute("SELECT set_config('search_path', quote_ident(%(schema)s), false)", params)
        try:
            cur.execute(_TABLES, params)
            tables = {
                name: {"columns": [], "primary_key": None, "foreign_keys": [], "indexes": [], "other_constraints": []}
                for (name,) in cur.fetchall()
            }
            cur.execute(_COLUMNS, params)
            for table, name, type_, not_null, default, identity in cur.fetchall():
                tables[table]["columns"].append({
                    "name": name, "type": type_, "not_null": not_null, "default": default,
                    "identity": _IDENTITY[identity],
                })
            cur.execute(_CONSTRAINTS, params)
            for table, name, kind, columns, references, ref_columns, on_delete in cur.fetchall():
                entry = tables[table]
                if kind == "p":
                    entry["primary_key"] = {"name": name, "columns": columns}
                elif kind == "f":
                    entry["foreign_keys"].append({
                        "name": name, "columns": columns, "references": references, "ref_columns": ref_columns,
                        "on_delete": _ON_DELETE[on_delete],
                    })
                else:
                    entry["other_constraints"].append({"name": name, "type": _CONSTRAINT_TYPES.get(kind, kind)})
            cur.execute(_INDEXES, params)
            for table, name, unique, method, key_count, columns, predicate in cur.fetchall():
                tables[table]["indexes"].append({
                    "name": name, "unique": unique, "method": method, "columns": columns[:key_count],
                    "include": columns[key_count:], "predicate": predicate,
                })
        finally:
            cur.execute("SELECT set_config('search_path', %(path)s, false)", {"path": saved_path})
    return tables


def diff(expected: dict, actual: dict, label: str = "") -> list[str]:
    """Readable differences between two snapshots (empty when they are equal), one line each."""
    prefix = f"{label}: " if label else ""
    lines = []
    for table in sorted(expected.keys() - actual.keys()):
        lines.append(f"{prefix}missing table {table}")
    for table in sorted(actual.keys() - expected.keys()):
        lines.append(f"{prefix}unexpected table {table}")
    for table in sorted(expected.keys() & actual.keys()):
        lines += [prefix + line for line in _diff_table(table, expected[table], actual[table])]
    return lines


def _diff_table(table: str, expected: dict, actual: dict) -> list[str]:
    lines = []
    want_cols = [c["name"] for c in expected["columns"]]
    have_cols = [c["name"] for c in actual["columns"]]
    if want_cols != have_cols:
        lines.append(f"{table}: columns expected {want_cols}, actual {have_cols}")
    have_by_name = {c["name"]: c for c in actual["columns"]}
    for column in expected["columns"]:
        other = have_by_name.get(column["name"])
        if other is None:
            continue
        for attribute in ("type", "not_null", "default", "identity"):
            if column[attribute] != other[attribute]:
                lines.append(f"{table}.{column['name']}: {attribute} expected {column[attribute]!r}, "
                             f"actual {other[attribute]!r}")
    if expected["primary_key"] != actual["primary_key"]:
        lines.append(f"{table}: primary key expected {expected['primary_key']}, actual {actual['primary_key']}")
    for kind in ("foreign_keys", "indexes", "other_constraints"):
        lines += _diff_named(table, kind, expected[kind], actual[kind])
    return lines


_LABELS = {"foreign_keys": "foreign key", "indexes": "index", "other_constraints": "constraint"}


def _diff_named(table: str, kind: str, expected: list, actual: list) -> list[str]:
    label = _LABELS[kind]
    want = {item["name"]: item for item in expected}
    have = {item["name"]: item for item in actual}
    lines = [f"{table}: missing {label} {name}" for name in sorted(want.keys() - have.keys())]
    lines += [f"{table}: unexpected {label} {have[name]}" for name in sorted(have.keys() - want.keys())]
    for name in sorted(want.keys() & have.keys()):
        if want[name] != have[name]:
            lines.append(f"{table}: {label} {name} expected {want[name]}, actual {have[name]}")
    return lines
