# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read one schema's table definitions from pg_catalog into the plain data ``ddl_clone`` plans with.

The same reader serves the source schema and the target schemas, so an
existing target table compares with the definition it should have field by
field. The caller sets the search_path first (``ddl_clone.search_path_statement``):
it decides how types, defaults and index definitions are printed. Names and
schemas are always bound parameters; every query reads pg_catalog only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.classifiedads.consolidation.plugins.module_utils.ddl_clone import (
    destination,
    index_tail,
    search_path_for,
    search_path_statement,
)

NAMESPACE_QUERY = "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s"

TABLES_QUERY = """
SELECT c.oid, c.relname, c.relkind, c.relpersistence,
       c.relispartition OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                                   WHERE i.inhrelid = c.oid OR i.inhparent = c.oid),
       c.reloftype <> 0,
       (SELECT count(*) FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal)
FROM pg_catalog.pg_class c
WHERE c.relnamespace = %(ns)s AND c.relkind IN ('r', 'p')
  AND (%(names)s::text[] IS NULL OR c.relname = ANY(%(names)s::text[]))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid
                    AND e.deptype = 'e')
ORDER BY c.relname
"""

OTHER_RELATIONS_QUERY = """
SELECT c.relname FROM pg_catalog.pg_class c
WHERE c.relnamespace = %(ns)s AND c.relkind IN ('v', 'm', 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid
                    AND e.deptype = 'e')
ORDER BY c.relname
"""

COLUMNS_QUERY = """
SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid, a.attnotnull,
       a.attidentity, a.attgenerated, pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       CASE WHEN a.attcollation <> t.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Sequences of the schema, with the column that owns them: deptype 'a' for a
# serial (OWNED BY), 'i' for an identity column's internal sequence.
SEQUENCES_QUERY = """
SELECT s.relname, pg_catalog.format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement, q.seqmin, q.seqmax,
       q.seqcache, q.seqcycle, d.deptype, tn.nspname, tc.relname, a.attname, d.refobjid
FROM pg_catalog.pg_class s
JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid
LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = s.oid
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE s.relkind = 'S' AND s.relnamespace = %(ns)s
ORDER BY s.relname
"""

DEFAULT_SEQUENCES_QUERY = """
SELECT ad.adrelid, sn.nspname, s.relname
FROM pg_catalog.pg_attrdef ad
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
WHERE ad.adrelid = ANY(%(oids)s)
ORDER BY ad.adrelid, ad.adnum
"""

_COLUMN_NAMES = """ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.attnum ORDER BY k.ord)"""

CONSTRAINTS_QUERY = """
SELECT con.conrelid, con.conname, con.contype, pg_catalog.pg_get_constraintdef(con.oid),
       {columns}, rn.nspname, rc.relname, {ref_columns},
       con.confmatchtype, con.confupdtype, con.confdeltype, {delete_set_columns},
       con.condeferrable, con.condeferred, con.convalidated
FROM pg_catalog.pg_constraint con
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY(%(oids)s) AND con.contype IN ('p', 'u', 'c', 'f', 'x')
ORDER BY con.conrelid, con.conname
"""

# Indexes that are not the implementation of a primary key, unique or exclusion
# constraint (those come back with their constraint).
INDEXES_QUERY = """
SELECT x.indrelid, i.relname, x.indisunique, x.indisvalid, pg_catalog.pg_get_indexdef(x.indexrelid),
       quote_ident(i.relname), quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind = 'p'
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE x.indrelid = ANY(%(oids)s)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                  WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x'))
ORDER BY x.indrelid, i.relname
"""

TYPES_QUERY = """
SELECT t.oid, t.typname, t.typtype, t.typcategory, t.typelem, t.typbasetype,
       t.typtype = 'c' AND rc.relkind <> 'c',
       CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
                                            WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END,
       CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
       t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 0),
       CASE WHEN t.typtype = 'd' AND t.typcollation <> bt.typcollation
            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END,
       (SELECT x.extname FROM pg_catalog.pg_depend e JOIN pg_catalog.pg_extension x ON x.oid = e.refobjid
        WHERE e.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND e.objid = t.oid AND e.deptype = 'e'
          AND e.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass)
FROM pg_catalog.pg_type t
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = t.typrelid
LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_catalog.pg_collation co ON co.oid = t.typcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
WHERE t.typnamespace = %(ns)s AND (%(names)s::text[] IS NULL OR t.typname = ANY(%(names)s::text[]))
ORDER BY t.typname
"""

DOMAIN_CONSTRAINTS_QUERY = """
SELECT con.contypid, con.conname, pg_catalog.pg_get_constraintdef(con.oid)
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_type t ON t.oid = con.contypid
WHERE t.typnamespace = %(ns)s AND con.contype = 'c'
ORDER BY con.contypid, con.conname
"""

# What the schema's tables (columns, defaults, constraints, indexes) and
# domains reference, identified by pg_identify_object; ddl_clone decides
# which references it can satisfy.
DEPENDENCIES_QUERY = """
WITH tabs AS (
    SELECT c.oid, c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace = %(ns)s AND c.relkind IN ('r', 'p')
), owners AS (
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, t.oid AS objid, t.relname, NULL::oid AS domain_oid
    FROM tabs t
    UNION ALL
    SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, ad.oid, t.relname, NULL
    FROM pg_catalog.pg_attrdef ad JOIN tabs t ON t.oid = ad.adrelid
    UNION ALL
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, con.oid, t.relname, NULL
    FROM pg_catalog.pg_constraint con JOIN tabs t ON t.oid = con.conrelid
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, x.indexrelid, t.relname, NULL
    FROM pg_catalog.pg_index x JOIN tabs t ON t.oid = x.indrelid
    UNION ALL
    SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, ty.oid, NULL, ty.oid
    FROM pg_catalog.pg_type ty WHERE ty.typnamespace = %(ns)s AND ty.typtype = 'd'
    UNION ALL
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, con.oid, NULL, ty.oid
    FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_type ty ON ty.oid = con.contypid
    WHERE ty.typnamespace = %(ns)s
)
SELECT o.relname, o.domain_oid, pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
       r.type, r.schema, r.identity, d.refobjid,
       (SELECT x.extname FROM pg_catalog.pg_depend e JOIN pg_catalog.pg_extension x ON x.oid = e.refobjid
        WHERE e.classid = d.refclassid AND e.objid = d.refobjid AND e.deptype = 'e'
          AND e.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass)
FROM owners o
JOIN pg_catalog.pg_depend d ON d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'n'
CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.refclassid, d.refobjid, 0) r
WHERE r.schema IS NOT NULL
ORDER BY 1, 3, 6
"""

_TYPE_KINDS = {"e": "enum", "d": "domain", "c": "composite", "r": "range", "m": "multirange", "b": "base",
               "p": "pseudo"}


def _fetch(cur, query, params):
    cur.execute(query, params)
    return cur.fetchall()


def set_search_path(cur, schemas):
    cur.execute(search_path_statement(schemas))


def schema_oid(cur, schema):
    rows = _fetch(cur, NAMESPACE_QUERY, (schema,))
    return rows[0][0] if rows else None


def read_catalog(cur, schema, server_version_num, table_names=None, type_names=None, dependencies=False):
    """The tables (``table_names`` of them, or all), sequences and types of ``schema``.

    Runs in the caller's transaction, under the search_path the caller set.
    Returns None when the schema does not exist.
    """
    ns = schema_oid(cur, schema)
    if ns is None:
        return None
    names = list(table_names) if table_names is not None else None
    tables, by_oid = {}, {}
    for oid, name, kind, persistence, inherits, typed, triggers in _fetch(
            cur, TABLES_QUERY, {"ns": ns, "names": names}):
        unsupported = []
        if kind == "p":
            unsupported.append("partitioned tables are not supported")
        if inherits:
            unsupported.append("tables in an inheritance or partition hierarchy are not supported")
        if typed:
            unsupported.append("typed tables (CREATE TABLE ... OF type) are not supported")
        table = {"name": name, "persistence": persistence, "columns": [], "constraints": [], "foreign_keys": [],
                 "indexes": [], "default_sequences": [], "triggers": triggers, "unsupported": unsupported}
        tables[name] = table
        by_oid[oid] = table
    oids = list(by_oid)

    for relid, name, type_, type_oid, not_null, identity, generated, default, collation in _fetch(
            cur, COLUMNS_QUERY, {"oids": oids}):
        by_oid[relid]["columns"].append({
            "name": name, "type": type_, "type_oid": type_oid, "not_null": not_null, "identity": identity or "",
            "generated": generated or "", "default": None if identity else default, "collation": collation,
            "identity_sequence": None,
        })

    sequences = {}
    for row in _fetch(cur, SEQUENCES_QUERY, {"ns": ns}):
        (name, type_, start, increment, minimum, maximum, cache, cycle, deptype, owner_schema, owner_table,
         owner_column, owner_oid) = row
        sequence = {"name": name, "type": type_, "start": start, "increment": increment, "min": minimum,
                    "max": maximum, "cache": cache, "cycle": cycle, "owned_by": None}
        if deptype == "i":
            for column in by_oid.get(owner_oid, {"columns": []})["columns"]:
                if column["name"] == owner_column:
                    column["identity_sequence"] = sequence
            continue
        if deptype == "a":
            sequence["owned_by"] = {"schema": owner_schema, "table": owner_table, "column": owner_column,
                                    "deptype": deptype}
        sequences[name] = sequence

    for relid, seq_schema, seq_name in _fetch(cur, DEFAULT_SEQUENCES_QUERY, {"oids": oids}):
        by_oid[relid]["default_sequences"].append((seq_schema, seq_name))

    delete_set_columns = "NULL::text[]"
    if server_version_num >= 150000:
        delete_set_columns = _COLUMN_NAMES.format(keys="con.confdelsetcols", rel="con.conrelid")
    constraints_query = CONSTRAINTS_QUERY.format(
        columns=_COLUMN_NAMES.format(keys="con.conkey", rel="con.conrelid"),
        ref_columns=_COLUMN_NAMES.format(keys="con.confkey", rel="con.confrelid"),
        delete_set_columns=delete_set_columns)
    for row in _fetch(cur, constraints_query, {"oids": oids}):
        (relid, name, kind, definition, columns, ref_schema, ref_table, ref_columns, match, on_update, on_delete,
         set_columns, deferrable, deferred, validated) = row
        table = by_oid[relid]
        if kind == "f":
            table["foreign_keys"].append({
                "name": name, "columns": list(columns), "ref_schema": ref_schema, "ref_table": ref_table,
                "ref_columns": list(ref_columns), "match": match, "on_update": on_update, "on_delete": on_delete,
                "delete_set_columns": list(set_columns) if set_columns else None, "deferrable": deferrable,
                "deferred": deferred, "validated": validated,
            })
        else:
            table["constraints"].append({"name": name, "type": kind, "definition": definition})

    for relid, name, unique, valid, definition, quoted_index, qualified_table, partitioned in _fetch(
            cur, INDEXES_QUERY, {"oids": oids}):
        table = by_oid[relid]
        if not valid:
            table["unsupported"].append("index %s is invalid (a failed CREATE INDEX CONCURRENTLY?): drop or "
                                        "rebuild it first" % name)
            continue
        table["indexes"].append({"name": name, "unique": unique,
                                 "definition": index_tail(definition, unique, quoted_index, qualified_table,
                                                          partitioned)})

    types, types_by_oid = read_types(cur, ns, type_names)
    catalog = {"schema": schema, "tables": tables, "sequences": sequences, "types": types,
               "types_by_oid": types_by_oid, "other_relations": [], "dependencies": []}
    if dependencies:
        catalog["other_relations"] = [name for (name,) in _fetch(cur, OTHER_RELATIONS_QUERY, {"ns": ns})]
        catalog["dependencies"] = [
            {"table": table, "domain_oid": domain_oid, "dependent": dependent, "ref_type": ref_type,
             "ref_schema": ref_schema, "ref_identity": identity, "ref_oid": ref_oid, "ref_extension": extension}
            for table, domain_oid, dependent, ref_type, ref_schema, identity, ref_oid, extension
            in _fetch(cur, DEPENDENCIES_QUERY, {"ns": ns})]
    return catalog


def read_types(cur, ns, type_names=None):
    names = list(type_names) if type_names is not None else None
    types, by_oid = {}, {}
    for row in _fetch(cur, TYPES_QUERY, {"ns": ns, "names": names}):
        (oid, name, typtype, category, element, base, rowtype, labels, base_type, not_null, default, collation,
         extension) = row
        kind = _TYPE_KINDS.get(typtype, typtype)
        if category == "A" and element:
            kind = "array"
        elif rowtype:
            kind = "table row"
        type_ = {"oid": oid, "name": name, "kind": kind, "element": element, "base": base, "extension": extension}
        if kind == "enum":
            type_["labels"] = list(labels)
        elif kind == "domain":
            type_.update(base_type=base_type, not_null=not_null, default=default, collation=collation,
                         constraints=[])
        types[name] = type_
        by_oid[oid] = type_
    for type_oid, name, definition in _fetch(cur, DOMAIN_CONSTRAINTS_QUERY, {"ns": ns}):
        if type_oid in by_oid and by_oid[type_oid]["kind"] == "domain":
            by_oid[type_oid]["constraints"].append({"name": name, "definition": definition})
    return types, by_oid


def read_source(conn, module):
    """The catalog of one module's source schema, read in one REPEATABLE READ snapshot; None if it is missing."""
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    try:
        with conn.cursor() as cur:
            set_search_path(cur, (module["source_schema"],))
            return read_catalog(cur, module["source_schema"], conn.server_version, dependencies=True)
    finally:
        conn.rollback()


def read_target(conn, module, source_tables):
    """What already exists in the target where ``module``'s tables land.

    Each target schema is read under the search_path its statements will run
    with (``ddl_clone.search_path_for``), so definitions print alike. Returns
    ``({"tables", "sequences", "types"}, missing_schemas)``.
    """
    landing = {}
    for name in source_tables:
        place = destination(module, name)
        if place is not None:
            landing.setdefault(place[0], []).append(place[1])
    landing.setdefault(module["schema"], [])
    found = {"tables": {}, "sequences": {}, "types": {}}
    missing = []
    try:
        with conn.cursor() as cur:
            for schema in sorted(landing):
                set_search_path(cur, search_path_for(schema, module["schema"]))
                catalog = read_catalog(cur, schema, conn.server_version, table_names=landing[schema])
                if catalog is None:
                    missing.append(schema)
                    continue
                for name, table in catalog["tables"].items():
                    found["tables"][(schema, name)] = table
                for name, sequence in catalog["sequences"].items():
                    found["sequences"][(schema, name)] = sequence
                if schema == module["schema"]:
                    found["types"] = catalog["types"]
    finally:
        conn.rollback()
    return found, missing
