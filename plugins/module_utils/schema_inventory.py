# -*- coding: utf-8 -*-
# Copyright: (c) 2026, ClassifiedAds platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Schema fidelity: the objects of one schema, kind by kind, and how two such inventories differ.

:func:`read_inventory` reads, for one schema of one database (plus named tables
a mapping override placed in another schema), every object of each kind of
:data:`KINDS` with a definition that does not depend on the schema's name: the
server prints it (``pg_get_indexdef`` and its kin, pretty, so that names are
qualified only when not visible) inside a transaction whose ``search_path`` is
the schema being read, then ``pg_catalog``, then the schemas holding the
database's extensions. A legacy ``public`` and a consolidated ``product``
then print the same text for the same object.

An inventory is ``{kind: {name: {"table": owning table or None, "definition": ...,
"verbatim": ...}}}``. Names are schema-relative (``Table``, ``Table.index``,
``func(integer)``; a grant is ``<object kind> <object name> <grantee>``, a
comment ``<object kind> <object name>``). ``verbatim`` is present where the
definition normalises the schema's own name (a function's ``SET search_path``):
two objects are the same when their definitions, or their verbatim texts, are.

Not compared: the schema itself (its name, owner and comment are the
mapping's and the schemas step's; its grants to other roles are compared, as
``schema (module schema) <grantee>``) and the owners of objects (a migrator or a
restore runs as another role); a grant to an object's own owner is ownership,
not a grant, and is left out with it. Function bodies are compared as text: a
body that names the legacy schema moves unchanged, and is the schema plan's
finding, not a difference here.

:func:`compare` is pure: per kind the counts, what is missing from the target,
what only the target has, what differs, and what an exclusion (with its reason)
set apart; exclusions that match nothing are returned as stale.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# The inventory's vocabulary, shared with the mapping's schema_exclusions (plan.py).
KINDS = ("table", "partition", "index", "constraint", "sequence", "type", "function", "trigger", "view",
         "materialized_view", "policy", "rls", "grant", "comment", "rule", "statistics", "extension")
# The reason given to the objects of a table the mapping excludes (exclude_tables).
EXCLUDE_TABLES_REASON = "exclude_tables"
SCHEMA_PLACEHOLDER = "<schema>"
MAX_SHOWN = 200  # characters of a definition shown in a difference

POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
TRIGGER_STATES = {"O": "enabled", "D": "disabled", "R": "enabled replica", "A": "enabled always"}
DEFAULT_ACL_OBJECTS = {"r": "tables", "S": "sequences", "f": "functions", "T": "types", "n": "schemas"}

# -- reading ------------------------------------------------------------------------------------

# Relations in scope: the schema's own and the named tables elsewhere (with the sequences their columns own),
# extension members left out (the extension kind stands for them).
SCOPE_QUERY = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE (n.nspname = %(schema)s
        OR (n.nspname, c.relname) IN (SELECT * FROM unnest(%(extra_schemas)s::text[], %(extra_tables)s::text[]))
        OR c.oid IN (SELECT d.objid FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                      JOIN pg_namespace tn ON tn.oid = t.relnamespace
                     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                       AND d.deptype IN ('a', 'i')
                       AND (tn.nspname, t.relname) IN (SELECT * FROM unnest(%(extra_schemas)s::text[],
                                                                           %(extra_tables)s::text[]))))
   AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'i', 'I', 'c')
   AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid
                   AND e.deptype = 'e')
"""

RELATIONS_QUERY = """
SELECT c.oid, c.relname::text, c.relkind::text, c.relispartition,
       (SELECT p.relname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
         WHERE i.inhrelid = c.oid AND c.relispartition),
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid, true) END,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
       coalesce(array_to_string(ARRAY(SELECT o FROM unnest(c.reloptions) o ORDER BY 1), ', '), ''),
       c.relreplident::text, c.relpersistence::text, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT i.relname::text FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
         WHERE x.indrelid = c.oid AND x.indisreplident),
       ARRAY(SELECT p.relname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
              WHERE i.inhrelid = c.oid AND NOT c.relispartition ORDER BY i.inhseqno),
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END,
       c.relispopulated
  FROM pg_class c
 WHERE c.oid = ANY(%(scope)s::oid[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
 ORDER BY 2
"""

COLUMNS_QUERY = """
SELECT a.attrelid, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid, true), a.attidentity::text, a.attgenerated::text,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname::text END,
       a.attstattarget, CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END
  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
 WHERE a.attrelid = ANY(%(scope)s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum
"""

SEQUENCES_QUERY = """
SELECT c.oid, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
       s.seqcycle,
       (SELECT t.relname::text FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
           AND d.deptype IN ('a', 'i')),
       (SELECT a.attname::text FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid
                AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
           AND d.deptype IN ('a', 'i'))
  FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
 WHERE c.oid = ANY(%(scope)s::oid[])
"""

INDEXES_QUERY = """
SELECT x.indexrelid, i.relname::text, t.relname::text, pg_get_indexdef(x.indexrelid, 0, true), x.indisclustered
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
 WHERE x.indrelid = ANY(%(scope)s::oid[])
"""

CONSTRAINTS_QUERY = """
SELECT con.oid, con.conname::text, t.relname::text, pg_get_constraintdef(con.oid, true)
  FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid
 WHERE con.conrelid = ANY(%(scope)s::oid[])
"""

TRIGGERS_QUERY = """
SELECT tg.oid, tg.tgname::text, t.relname::text, pg_get_triggerdef(tg.oid, true), tg.tgenabled::text
  FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid
 WHERE tg.tgrelid = ANY(%(scope)s::oid[]) AND NOT tg.tgisinternal
"""

POLICIES_QUERY = """
SELECT pol.oid, pol.polname::text, t.relname::text, pol.polcmd::text, pol.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END
               FROM unnest(pol.polroles) AS r ORDER BY 1),
       pg_get_expr(pol.polqual, pol.polrelid, true), pg_get_expr(pol.polwithcheck, pol.polrelid, true)
  FROM pg_policy pol JOIN pg_class t ON t.oid = pol.polrelid
 WHERE pol.polrelid = ANY(%(scope)s::oid[])
"""

RULES_QUERY = """
SELECT r.oid, r.rulename::text, t.relname::text, pg_get_ruledef(r.oid, true), r.ev_enabled::text
  FROM pg_rewrite r JOIN pg_class t ON t.oid = r.ev_class
 WHERE r.ev_class = ANY(%(scope)s::oid[]) AND r.rulename <> '_RETURN'
"""

# pg_get_statisticsobjdef qualifies the statistics object's own name whatever the search_path: built from parts.
STATISTICS_QUERY = """
SELECT s.oid, s.stxname::text, t.relname::text, array_to_string(s.stxkind, ','),
       ARRAY(SELECT a.attname::text FROM unnest(s.stxkeys) AS k
               JOIN pg_attribute a ON a.attrelid = s.stxrelid AND a.attnum = k ORDER BY a.attnum),
       {expressions}, s.stxstattarget
  FROM pg_statistic_ext s JOIN pg_class t ON t.oid = s.stxrelid
 WHERE s.stxrelid = ANY(%(scope)s::oid[])
"""

# Array types, multiranges and the row types of tables belong to another object; extension members to it.
TYPES_QUERY = """
SELECT t.oid, t.typname::text, t.typtype::text,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END, t.typnotnull,
       pg_get_expr(t.typdefaultbin, 0, true),
       ARRAY(SELECT con.conname || ' ' || pg_get_constraintdef(con.oid, true) FROM pg_constraint con
              WHERE con.contypid = t.oid ORDER BY con.conname),
       ARRAY(SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
              WHERE a.attrelid = t.typrelid AND t.typrelid <> 0 AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum),
       (SELECT format_type(r.rngsubtype, NULL) || coalesce(' COLLATE ' || co.collname, '')
               || ' OPCLASS ' || oc.opcname || ' CANONICAL ' || r.rngcanonical::regproc::text
               || ' SUBDIFF ' || r.rngsubdiff::regproc::text
          FROM pg_range r JOIN pg_opclass oc ON oc.oid = r.rngsubopc
          LEFT JOIN pg_collation co ON co.oid = r.rngcollation WHERE r.rngtypid = t.oid),
       (SELECT co.collname::text FROM pg_collation co WHERE co.oid = t.typcollation AND t.typtype = 'd'
           AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype))
  FROM pg_type t
 WHERE t.typnamespace = %(namespace)s AND t.typtype IN ('e', 'd', 'c', 'r')
   AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
   AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_type'::regclass AND e.objid = t.oid
                   AND e.deptype = 'e')
"""

FUNCTIONS_QUERY = """
SELECT p.oid, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.prokind::text,
       l.lanname::text, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prosrc,
       {sql_body}, p.provolatile::text, p.proisstrict, p.prosecdef, p.proleakproof, p.proparallel::text,
       p.procost, p.prorows, coalesce(p.proconfig, '{{}}'::text[]),
       (SELECT concat_ws(' ', 'SFUNC ' || a.aggtransfn::regproc::text,
                         'STYPE ' || format_type(a.aggtranstype, NULL),
                         'FINALFUNC ' || nullif(a.aggfinalfn, 0)::regproc::text,
                         'COMBINEFUNC ' || nullif(a.aggcombinefn, 0)::regproc::text,
                         'SORTOP ' || nullif(a.aggsortop, 0)::regoperator::text,
                         'INITCOND ' || quote_literal(a.agginitval), 'KIND ' || a.aggkind::text)
          FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = %(namespace)s
   AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid
                   AND e.deptype = 'e')
"""

# Grants: the ACL as PostgreSQL applies it (the default one where none is stored), the owner's own left out:
# ownership is not a grant, and the two sides' objects may well have different owners.
RELATION_GRANTS_QUERY = """
SELECT c.oid, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
       a.privilege_type, a.is_grantable
  FROM pg_class c,
       aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char",
                                                c.relowner))) AS a
 WHERE c.oid = ANY(%(scope)s::oid[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND a.grantee <> c.relowner
"""

COLUMN_GRANTS_QUERY = """
SELECT c.attrelid, c.attnum, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
       a.privilege_type, a.is_grantable
  FROM pg_attribute c, aclexplode(c.attacl) AS a
 WHERE c.attrelid = ANY(%(scope)s::oid[]) AND c.attacl IS NOT NULL
"""

FUNCTION_GRANTS_QUERY = """
SELECT p.oid, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
       a.privilege_type, a.is_grantable
  FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
 WHERE p.oid = ANY(%(functions)s::oid[]) AND a.grantee <> p.proowner
"""

TYPE_GRANTS_QUERY = """
SELECT t.oid, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
       a.privilege_type, a.is_grantable
  FROM pg_type t, aclexplode(coalesce(t.typacl, acldefault('T', t.typowner))) AS a
 WHERE t.oid = ANY(%(types)s::oid[]) AND a.grantee <> t.typowner
"""

DEFAULT_GRANTS_QUERY = """
SELECT d.defaclobjtype::text, pg_get_userbyid(d.defaclrole)::text,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
       a.privilege_type, a.is_grantable
  FROM pg_default_acl d, aclexplode(d.defaclacl) AS a
 WHERE d.defaclnamespace = %(namespace)s
"""

# The schema's own grants, the owner's left out: its name differs between the sides, its grantees must not.
SCHEMA_GRANTS_QUERY = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
       a.privilege_type, a.is_grantable
  FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
 WHERE n.oid = %(namespace)s AND a.grantee <> n.nspowner
"""

COMMENTS_QUERY = """
SELECT d.classoid::regclass::text, d.objoid, d.objsubid, d.description
  FROM pg_description d
 WHERE d.objoid = ANY(%(objects)s::oid[])
"""

EXTENSIONS_QUERY = """
SELECT e.extname::text, n.nspname::text, e.extversion FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
"""


def search_path_value(schemas):
    """A search_path setting naming ``schemas`` in order, each quoted (any name is safe there)."""
    return ", ".join('"%s"' % name.replace('"', '""') for name in schemas)


def _privileges(rows):
    """'INSERT, SELECT*' from (privilege, grantable) pairs: sorted, ``*`` marking WITH GRANT OPTION."""
    return ", ".join(sorted(privilege + ("*" if grantable else "") for privilege, grantable in rows))


def normalize_config(config, schema):
    """A function's SET clauses with the schema's own name in ``search_path`` replaced by a placeholder."""
    normalized = []
    for entry in config:
        name, _sep, value = entry.partition("=")
        if name.lower() == "search_path":
            items = [item.strip() for item in value.split(",")]
            items = [SCHEMA_PLACEHOLDER if item in (schema, '"%s"' % schema.replace('"', '""')) else item
                     for item in items]
            entry = "%s=%s" % (name, ", ".join(items))
        normalized.append(entry)
    return normalized


def column_text(type_name, not_null, default, identity, generated, collation, statistics, storage):
    """One column as a line of DDL describes it after its name, to compare and to show."""
    parts = [type_name]
    if collation:
        parts.append("COLLATE %s" % collation)
    if not_null:
        parts.append("NOT NULL")
    if generated == "s":
        parts.append("GENERATED ALWAYS AS (%s) STORED" % default)
    elif default is not None:
        parts.append("DEFAULT %s" % default)
    if identity:
        parts.append("GENERATED %s AS IDENTITY" % ("ALWAYS" if identity == "a" else "BY DEFAULT"))
    if statistics is not None and statistics >= 0:
        parts.append("STATISTICS %d" % statistics)
    if storage:
        parts.append("STORAGE %s" % {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}.get(storage, storage))
    return " ".join(parts)


class InventoryReader(object):
    """Reads one inventory through ``journal`` on ``conn`` (an autocommit session), in one read-only transaction."""

    def __init__(self, conn, journal):
        self.conn = conn
        self.journal = journal
        self.version = conn.server_version

    def _rows(self, cur, query, params):
        self.journal.execute(cur, query, params)
        return cur.fetchall()

    def read(self, schema, extra_tables=()):
        """The inventory of ``schema`` plus ``extra_tables`` ([(schema, table)] placed elsewhere by the mapping)."""
        extra_tables = sorted(set((s, t) for s, t in extra_tables if s != schema))
        with self.conn.cursor() as cur:
            self.journal.execute(cur, "BEGIN READ ONLY")
            try:
                return self._read(cur, schema, extra_tables)
            finally:
                self.journal.execute(cur, "ROLLBACK")

    def _read(self, cur, schema, extra_tables):
        extensions = self._rows(cur, EXTENSIONS_QUERY, None)
        path = [schema] + sorted(set(s for s, _t in extra_tables)) + ["pg_catalog"]
        path += sorted(set(ext_schema for _name, ext_schema, _version in extensions if ext_schema not in path))
        self.journal.execute(cur, "SELECT set_config('search_path', %s, true)", (search_path_value(path),))
        found = self._rows(cur, "SELECT oid FROM pg_namespace WHERE nspname = %s", (schema,))
        inventory = dict((kind, {}) for kind in KINDS)
        inventory["extensions_elsewhere"] = sorted(name for name, ext_schema, _version in extensions
                                                   if ext_schema != schema)
        if not found:
            return inventory
        namespace = found[0][0]
        params = {"schema": schema, "namespace": namespace, "extra_schemas": [s for s, _t in extra_tables],
                  "extra_tables": [t for _s, t in extra_tables]}
        params["scope"] = [oid for (oid,) in self._rows(cur, SCOPE_QUERY, params)]
        objects = {}  # (catalog, oid) -> (object kind, name, table), for grants and comments
        columns = {}  # (relation oid, attnum) -> (table, column)

        def add(kind, name, table, definition, verbatim=None, catalog=None, oid=None):
            entry = {"table": table, "definition": definition}
            if verbatim is not None and verbatim != definition:
                entry["verbatim"] = verbatim
            inventory[kind].setdefault(name, entry)
            if catalog is not None:
                objects[(catalog, oid)] = (kind, name, table)

        relation_columns = {}
        for row in self._rows(cur, COLUMNS_QUERY, params):
            relation_columns.setdefault(row[0], []).append([row[2], column_text(*row[3:])])
            columns[(row[0], row[1])] = row[2]
        sequences = dict((row[0], row[1:]) for row in self._rows(cur, SEQUENCES_QUERY, params))
        for (oid, name, relkind, is_partition, parent, bound, partition_key, options, replica_identity,
             persistence, rls, force_rls, replica_index, inherits, view, populated) in self._rows(
                cur, RELATIONS_QUERY, params):
            table = name
            if relkind in ("r", "p", "f"):
                definition = {"partitioned": relkind == "p", "columns": relation_columns.get(oid, []),
                              "options": options, "persistence": persistence,
                              "replica_identity": replica_identity + ((" " + replica_index) if replica_index else "")}
                if relkind == "f":
                    definition["foreign"] = True
                if partition_key:
                    definition["partition_key"] = partition_key
                if inherits:
                    definition["inherits"] = list(inherits)
                if is_partition:
                    definition.update(parent=parent, bound=bound)
                add("partition" if is_partition else "table", name, table, definition, catalog="pg_class", oid=oid)
                if rls or force_rls:
                    add("rls", name, table, {"enabled": rls, "forced": force_rls})
            elif relkind in ("v", "m"):
                definition = {"query": view, "options": options}
                if relkind == "m":
                    definition["populated"] = populated
                add("view" if relkind == "v" else "materialized_view", name, table, definition,
                    catalog="pg_class", oid=oid)
            elif relkind == "S":
                (type_name, start, increment, minimum, maximum, cache, cycle, owner_table,
                 owner_column) = sequences.get(oid, (None,) * 9)
                definition = {"type": type_name, "start": start, "increment": increment, "min": minimum,
                              "max": maximum, "cache": cache, "cycle": cycle, "persistence": persistence,
                              "owned_by": "%s.%s" % (owner_table, owner_column) if owner_table else None}
                add("sequence", name, owner_table, definition, catalog="pg_class", oid=oid)
        for oid, name, table, definition, clustered in self._rows(cur, INDEXES_QUERY, params):
            add("index", "%s.%s" % (table, name), table, definition + (" CLUSTER" if clustered else ""),
                catalog="pg_class", oid=oid)
        for oid, name, table, definition in self._rows(cur, CONSTRAINTS_QUERY, params):
            add("constraint", "%s.%s" % (table, name), table, definition, catalog="pg_constraint", oid=oid)
        for oid, name, table, definition, enabled in self._rows(cur, TRIGGERS_QUERY, params):
            add("trigger", "%s.%s" % (table, name), table,
                {"definition": definition, "state": TRIGGER_STATES.get(enabled, enabled)},
                catalog="pg_trigger", oid=oid)
        for oid, name, table, command, permissive, roles, using, check in self._rows(cur, POLICIES_QUERY, params):
            add("policy", "%s.%s" % (table, name), table,
                {"command": POLICY_COMMANDS.get(command, command), "permissive": permissive, "roles": list(roles),
                 "using": using, "with_check": check}, catalog="pg_policy", oid=oid)
        for oid, name, table, definition, enabled in self._rows(cur, RULES_QUERY, params):
            add("rule", "%s.%s" % (table, name), table, {"definition": definition, "state": enabled},
                catalog="pg_rewrite", oid=oid)
        expressions = "pg_get_statisticsobjdef_expressions(s.oid)" if self.version >= 140000 else "NULL::text[]"
        for oid, name, table, kinds, keys, exprs, target in self._rows(
                cur, STATISTICS_QUERY.format(expressions=expressions), params):
            add("statistics", "%s.%s" % (table, name), table,
                {"kinds": kinds, "columns": list(keys), "expressions": list(exprs or []), "target": target},
                catalog="pg_statistic_ext", oid=oid)
        type_oids = []
        for (oid, name, typtype, labels, base, not_null, default, checks, attributes, range_text,
             collation) in self._rows(cur, TYPES_QUERY, params):
            if typtype == "e":
                definition = {"kind": "enum", "labels": list(labels)}
            elif typtype == "d":
                definition = {"kind": "domain", "base": base, "not_null": not_null, "default": default,
                              "constraints": list(checks), "collation": collation}
            elif typtype == "c":
                definition = {"kind": "composite", "attributes": list(attributes)}
            else:
                definition = {"kind": "range", "definition": range_text}
            add("type", name, None, definition, catalog="pg_type", oid=oid)
            type_oids.append(oid)
        sql_body = "pg_get_function_sqlbody(p.oid)" if self.version >= 140000 else "NULL::text"
        function_oids = []
        for (oid, signature, kind, language, arguments, result, source, body, volatility, strict, definer, leakproof,
             parallel, cost, rows, config, aggregate) in self._rows(
                cur, FUNCTIONS_QUERY.format(sql_body=sql_body), params):
            definition = {"kind": {"f": "function", "p": "procedure", "a": "aggregate", "w": "window"}.get(kind, kind),
                          "language": language, "arguments": arguments, "result": result, "source": source,
                          "sql_body": body, "volatility": volatility, "strict": strict, "security_definer": definer,
                          "leakproof": leakproof, "parallel": parallel, "cost": float(cost), "rows": float(rows),
                          "aggregate": aggregate}
            verbatim = dict(definition, config=list(config))
            definition["config"] = normalize_config(config, schema)
            add("function", signature, None, definition, verbatim=verbatim, catalog="pg_proc", oid=oid)
            function_oids.append(oid)
        for name, ext_schema, _version in extensions:
            if ext_schema == schema:
                add("extension", name, None, {"extension": name})
        self._read_grants(cur, params, dict(params, types=type_oids, functions=function_oids), objects, columns, add)
        self._read_comments(cur, objects, columns, add)
        return inventory

    def _read_grants(self, cur, params, grant_params, objects, columns, add):
        grants = {}

        def collect(key, grantee, privilege, grantable):
            if key is not None:
                grants.setdefault(key + (grantee,), []).append((privilege, grantable))

        for oid, grantee, privilege, grantable in self._rows(cur, RELATION_GRANTS_QUERY, params):
            kind, name, table = objects.get(("pg_class", oid), (None, None, None))
            collect((kind, name, table) if kind else None, grantee, privilege, grantable)
        for oid, attnum, grantee, privilege, grantable in self._rows(cur, COLUMN_GRANTS_QUERY, params):
            kind, name, table = objects.get(("pg_class", oid), (None, None, None))
            collect(("column", "%s.%s" % (name, columns.get((oid, attnum))), table) if kind else None,
                    grantee, privilege, grantable)
        for query, catalog in ((FUNCTION_GRANTS_QUERY, "pg_proc"), (TYPE_GRANTS_QUERY, "pg_type")):
            for oid, grantee, privilege, grantable in self._rows(cur, query, grant_params):
                collect(objects.get((catalog, oid)), grantee, privilege, grantable)
        for objtype, role, grantee, privilege, grantable in self._rows(cur, DEFAULT_GRANTS_QUERY, params):
            collect(("default_privileges", "%s for %s" % (DEFAULT_ACL_OBJECTS.get(objtype, objtype), role), None),
                    grantee, privilege, grantable)
        for grantee, privilege, grantable in self._rows(cur, SCHEMA_GRANTS_QUERY, params):
            collect(("schema", "(module schema)", None), grantee, privilege, grantable)
        for (kind, name, table, grantee), privileges in grants.items():
            add("grant", "%s %s %s" % (kind, name, grantee), table, _privileges(privileges))

    def _read_comments(self, cur, objects, columns, add):
        if not objects:
            return
        for catalog, oid, subid, text in self._rows(cur, COMMENTS_QUERY, {"objects": sorted(o for _c, o in objects)}):
            kind, name, table = objects.get((catalog, oid), (None, None, None))
            if kind is None:
                continue
            if subid:
                kind, name = "column", "%s.%s" % (name, columns.get((oid, subid)))
            add("comment", "%s %s" % (kind, name), table, text)


def read_inventory(conn, journal, schema, extra_tables=()):
    """The inventory of ``schema`` on ``conn`` (see the module's docstring)."""
    return InventoryReader(conn, journal).read(schema, extra_tables)


# -- comparing ----------------------------------------------------------------------------------

def _shown(value):
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def describe_change(source, target):
    """Short lines saying how two definitions of one object differ (by key, or by column for a table)."""
    if not (isinstance(source, dict) and isinstance(target, dict)):
        return ["source: %s; target: %s" % (_shown(source), _shown(target))]
    lines = []
    for key in sorted(set(source) | set(target)):
        old, new = source.get(key), target.get(key)
        if old == new:
            continue
        if key == "columns":
            old_columns, new_columns = dict(old or []), dict(new or [])
            names = [name for name, _text in old or []]
            names += [name for name, _text in new or [] if name not in old_columns]
            for column in names:
                if column not in new_columns:
                    lines.append("column %s: missing in the target" % column)
                elif column not in old_columns:
                    lines.append("column %s: only in the target" % column)
                elif old_columns[column] != new_columns[column]:
                    lines.append("column %s: %s -> %s" % (column, _shown(old_columns[column]),
                                                          _shown(new_columns[column])))
            if not lines and [name for name, _t in old or []] != [name for name, _t in new or []]:
                lines.append("columns in another order")
            continue
        lines.append("%s: %s -> %s" % (key, _shown(old), _shown(new)))
    return lines


def _same(source_entry, target_entry):
    if source_entry["definition"] == target_entry["definition"]:
        return True
    verbatim = source_entry.get("verbatim", source_entry["definition"])
    return verbatim == target_entry.get("verbatim", target_entry["definition"])


def _partition_tree(inventories, roots):
    """``roots`` with every partition below them, on either side."""
    tables = set(roots)
    grown = True
    while grown:
        grown = False
        for inventory in inventories:
            for name, entry in inventory.get("partition", {}).items():
                if name not in tables and entry["definition"].get("parent") in tables:
                    tables.add(name)
                    grown = True
    return tables


def compare(source, target, exclusions=(), exclude_tables=()):
    """How the ``target`` inventory differs from the ``source`` one; pure.

    ``exclusions`` are the mapping's ``schema_exclusions`` ({kind, name, reason});
    every object of a table in ``exclude_tables`` (or a partition below one) is
    excluded with the reason ``exclude_tables``. Returns ``{"kinds": [{kind,
    source, target, missing, extra, changed, excluded}], "differences": n,
    "stale_exclusions": [...]}``: counts are of the objects found on each side,
    ``differences`` counts what is missing, extra or changed and not excluded.
    """
    explicit = dict(((entry["kind"], entry["name"]), entry["reason"]) for entry in exclusions)
    excluded_tables = _partition_tree((source, target), exclude_tables)
    used = set()
    kinds, differences = [], 0
    for kind in KINDS:
        left, right = source.get(kind, {}), target.get(kind, {})
        if kind == "extension":
            # An extension the target has in another schema (its placement) is there all the same.
            right = dict(right, **dict((name, left[name]) for name in target.get("extensions_elsewhere", [])
                                       if name in left and name not in right))
        result = {"kind": kind, "source": len(left), "target": len(right), "missing": [], "extra": [],
                  "changed": [], "excluded": []}
        for name in sorted(set(left) | set(right)):
            if name in left and name not in right:
                state, detail = "missing", None
            elif name in right and name not in left:
                state, detail = "extra", None
            elif not _same(left[name], right[name]):
                state, detail = "changed", describe_change(left[name]["definition"], right[name]["definition"])
            else:
                state, detail = "same", None
            owner = (left.get(name) or right.get(name))["table"]
            reason = explicit.get((kind, name))
            if reason is not None:
                used.add((kind, name))
            elif owner is not None and owner in excluded_tables:
                reason = EXCLUDE_TABLES_REASON
            if reason is not None:
                result["excluded"].append({"name": name, "reason": reason, "difference": state})
                continue
            if state == "changed":
                result["changed"].append({"name": name, "differences": detail})
            elif state != "same":
                result[state].append(name)
            if state != "same":
                differences += 1
        kinds.append(result)
    stale = [dict(entry) for entry in exclusions if (entry["kind"], entry["name"]) not in used]
    return {"kinds": kinds, "differences": differences, "stale_exclusions": stale}


def difference_lines(comparison):
    """One line per difference that counts (not excluded): ``<kind> <name>: <what>``."""
    lines = []
    for result in comparison["kinds"]:
        for name in result["missing"]:
            lines.append("%s %s: missing in the target" % (result["kind"], name))
        for name in result["extra"]:
            lines.append("%s %s: only in the target" % (result["kind"], name))
        for entry in result["changed"]:
            lines.append("%s %s: differs (%s)" % (result["kind"], entry["name"], "; ".join(entry["differences"])))
    return lines


def excluded_lines(comparison):
    """One line per excluded object that differs or was named, with its reason."""
    return ["%s %s (%s): %s" % (result["kind"], entry["name"], entry["difference"], entry["reason"])
            for result in comparison["kinds"] for entry in result["excluded"]
            if entry["reason"] != EXCLUDE_TABLES_REASON or entry["difference"] != "same"]


def stale_lines(comparison):
    """One line per exclusion that matched no object on either side."""
    return ["%s %s (reason given: %s): matches no object on either side" % (
        entry["kind"], entry["name"], entry["reason"]) for entry in comparison["stale_exclusions"]]
