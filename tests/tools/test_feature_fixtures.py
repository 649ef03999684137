"""The feature fixture databases (devkit.features) really hold every object kind they claim, read from the catalog."""

from __future__ import annotations

import psycopg2
import pytest
from devkit import features
from psycopg2 import sql

pytestmark = pytest.mark.integration

PREFIX = "FeatureCheck"

_IN_SCHEMA = "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = %(schema)s"
_OWN_FUNCTIONS = ("FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = %(schema)s "
                  "WHERE NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass "
                  "AND e.objid = p.oid AND e.deptype = 'e')")
_COLUMNS = ("FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p') " + _IN_SCHEMA +
            " JOIN pg_type t ON t.oid = a.atttypid WHERE a.attnum > 0 AND NOT a.attisdropped")
_GRANTEE = "a.grantee::regrole::text = ANY(%(roles)s)"


def _depends_on(dependent_kind: str, referenced_kind: str) -> str:
    """Relations of ``dependent_kind`` whose query reads another relation of ``referenced_kind``."""
    return ("SELECT count(*) FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass "
            "AND r.oid = d.objid JOIN pg_class c ON c.oid = r.ev_class " + _IN_SCHEMA +
            " JOIN pg_class ref ON ref.oid = d.refobjid"
            f" WHERE c.relkind = '{dependent_kind}' AND ref.relkind = '{referenced_kind}' AND ref.oid <> c.oid")


# kind (features.KINDS) -> (module, query counting the objects of that kind; more than zero means present).
KIND_CHECKS = {
    "range partitions": ("Orders", "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                                   + _IN_SCHEMA + " WHERE p.partstrat = 'r'"),
    "list partitions": ("Ledger", "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                                  + _IN_SCHEMA + " WHERE p.partstrat = 'l'"),
    "two partition levels": ("Orders", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA +
                                       " WHERE c.relkind = 'p' AND c.relispartition"),
    "default partition": ("Ledger", "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c "
                                    "ON c.oid = p.partrelid " + _IN_SCHEMA + " WHERE p.partdefid <> 0"),
    "inheritance child": ("Orders", "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                    + _IN_SCHEMA + " JOIN pg_class parent ON parent.oid = i.inhparent "
                                    "WHERE parent.relkind = 'r' AND NOT c.relispartition"),
    "view": ("Ledger", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA + " WHERE c.relkind = 'v'"),
    "view on a view": ("Orders", _depends_on("v", "v")),
    "materialized view (populated)": ("Orders", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA +
                                                " WHERE c.relkind = 'm' AND c.relispopulated AND c.reltuples > 0"),
    "materialized view on a view": ("Ledger", _depends_on("m", "v")),
    # tgtype bits: 1 row, 2 before, 4 insert
    "BEFORE INSERT row trigger setting a column": (
        "Orders", "SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid " + _IN_SCHEMA +
                  " JOIN pg_proc p ON p.oid = g.tgfoid WHERE g.tgtype & 7 = 7 AND p.prosrc ~ 'NEW\\.\\w+\\s*:='"),
    "AFTER row trigger writing an audit table": (
        "Ledger", "SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid " + _IN_SCHEMA +
                  " JOIN pg_proc p ON p.oid = g.tgfoid WHERE g.tgtype & 3 = 1 AND p.prosrc ILIKE '%%INSERT INTO%%'"),
    "statement trigger": ("Orders", "SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
                                    + _IN_SCHEMA + " WHERE g.tgtype & 1 = 0 AND NOT g.tgisinternal"),
    "SQL function": ("Orders", "SELECT count(*) " + _OWN_FUNCTIONS + " AND p.prokind = 'f' "
                               "AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'sql')"),
    "PL/pgSQL function": ("Ledger", "SELECT count(*) " + _OWN_FUNCTIONS + " AND p.prokind = 'f' "
                                    "AND p.prorettype <> 'trigger'::regtype "
                                    "AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')"),
    "procedure": ("Ledger", "SELECT count(*) " + _OWN_FUNCTIONS + " AND p.prokind = 'p'"),
    "aggregate with own state function": (
        "Orders", "SELECT count(*) " + _OWN_FUNCTIONS + " AND p.prokind = 'a' AND (SELECT s.pronamespace "
                  "FROM pg_aggregate g JOIN pg_proc s ON s.oid = g.aggtransfn WHERE g.aggfnoid = p.oid) = n.oid"),
    "enum column": ("Orders", "SELECT count(*) " + _COLUMNS + " AND t.typtype = 'e'"),
    "domain with CHECK column": ("Ledger", "SELECT count(*) " + _COLUMNS + " AND t.typtype = 'd' AND EXISTS (SELECT "
                                           "FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c')"),
    "composite column": ("Ledger", "SELECT count(*) " + _COLUMNS + " AND t.typtype = 'c' AND t.typnamespace = n.oid"),
    "range column": ("Orders", "SELECT count(*) " + _COLUMNS + " AND t.typtype = 'r' AND t.typnamespace = n.oid"),
    "identity column": ("Ledger", "SELECT count(*) " + _COLUMNS + " AND a.attidentity <> ''"),
    "serial column": ("Orders", "SELECT count(*) " + _COLUMNS + " AND a.attidentity = '' AND EXISTS (SELECT FROM "
                                "pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.refobjid = c.oid "
                                "AND d.refobjsubid = a.attnum AND d.deptype = 'a')"),
    "unowned sequence in a DEFAULT nextval": (
        "Orders", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA + " WHERE c.relkind = 'S' AND NOT EXISTS (SELECT "
                  "FROM pg_depend o WHERE o.classid = 'pg_class'::regclass AND o.objid = c.oid AND o.deptype IN "
                  "('a', 'i')) AND EXISTS (SELECT FROM pg_depend u WHERE u.classid = 'pg_attrdef'::regclass "
                  "AND u.refobjid = c.oid)"),
    "function in a column default": (
        "Ledger", "SELECT count(*) FROM pg_depend d JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass "
                  "AND p.oid = d.refobjid JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = %(schema)s "
                  "WHERE d.classid = 'pg_attrdef'::regclass"),
    "row-level security": ("Ledger", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA + " WHERE c.relrowsecurity"),
    "forced row-level security": ("Orders", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA +
                                            " WHERE c.relforcerowsecurity"),
    "policies per command and role": (
        "Orders", "SELECT (count(DISTINCT y.polcmd) >= 3)::int FROM pg_policy y JOIN pg_class c "
                  "ON c.oid = y.polrelid " + _IN_SCHEMA + " WHERE NOT 0::oid = ANY(y.polroles)"),
    "table grant": ("Orders", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA + ", aclexplode(c.relacl) a "
                              "WHERE c.relkind IN ('r', 'p') AND " + _GRANTEE),
    "column grant": ("Ledger", "SELECT count(*) " + _COLUMNS.replace("WHERE", ", aclexplode(a.attacl) a2 WHERE") +
                               " AND a2.grantee::regrole::text = ANY(%(roles)s)"),
    "sequence grant": ("Orders", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA + ", aclexplode(c.relacl) a "
                                 "WHERE c.relkind = 'S' AND " + _GRANTEE),
    "function grant": ("Ledger", "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                                 "AND n.nspname = %(schema)s, aclexplode(p.proacl) a WHERE " + _GRANTEE),
    "schema usage grant": ("Orders", "SELECT count(*) FROM pg_namespace n, aclexplode(n.nspacl) a "
                                     "WHERE n.nspname = %(schema)s AND a.privilege_type = 'USAGE' AND " + _GRANTEE),
    "default privileges": ("Ledger", "SELECT count(*) FROM pg_default_acl d JOIN pg_namespace n "
                                     "ON n.oid = d.defaclnamespace AND n.nspname = %(schema)s"),
    "comments on tables, columns, functions, types": (
        "Ledger", "SELECT (count(DISTINCT kind) = 4)::int FROM ("
                  "SELECT CASE WHEN d.objsubid = 0 THEN 'table' ELSE 'column' END AS kind FROM pg_description d "
                  "JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid AND c.relkind IN "
                  "('r', 'p') " + _IN_SCHEMA + " UNION ALL SELECT 'function' FROM pg_description d JOIN pg_proc p "
                  "ON d.classoid = 'pg_proc'::regclass AND p.oid = d.objoid JOIN pg_namespace n "
                  "ON n.oid = p.pronamespace AND n.nspname = %(schema)s UNION ALL SELECT 'type' FROM pg_description "
                  "d JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND t.oid = d.objoid JOIN pg_namespace n "
                  "ON n.oid = t.typnamespace AND n.nspname = %(schema)s) AS commented"),
    "rule": ("Orders", "SELECT count(*) FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class " + _IN_SCHEMA +
                       " WHERE r.rulename <> '_RETURN'"),
    "extended statistics": ("Ledger", "SELECT count(*) FROM pg_statistic_ext s JOIN pg_namespace n "
                                      "ON n.oid = s.stxnamespace AND n.nspname = %(schema)s"),
    "storage parameters": ("Orders", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA +
                                     " WHERE c.relkind = 'r' AND c.reloptions @> ARRAY['fillfactor=90', "
                                     "'autovacuum_vacuum_scale_factor=0.05']"),
    "column statistics target": ("Orders", "SELECT count(*) " + _COLUMNS + " AND a.attstattarget > 0"),
    "column storage": ("Ledger", "SELECT count(*) " + _COLUMNS + " AND a.attstorage <> t.typstorage"),
    "replica identity full": ("Orders", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA +
                                        " WHERE c.relreplident = 'f'"),
    "replica identity using index": ("Ledger", "SELECT count(*) FROM pg_class c " + _IN_SCHEMA +
                                               " WHERE c.relreplident = 'i' AND EXISTS (SELECT FROM pg_index i "
                                               "WHERE i.indrelid = c.oid AND i.indisreplident)"),
    "SET search_path naming the source schema": (
        "Ledger", "SELECT count(*) " + _OWN_FUNCTIONS + " AND 'search_path=' || %(schema)s = ANY(p.proconfig)"),
    "body naming the source schema": ("Orders", "SELECT count(*) " + _OWN_FUNCTIONS +
                                                " AND p.prosrc ILIKE '%%' || %(schema)s || '.%%'"),
    "extension in the source schema with a column of its type": (
        "Ledger", "SELECT count(*) " + _COLUMNS + " AND EXISTS (SELECT FROM pg_depend e JOIN pg_extension x ON "
                  "x.oid = e.refobjid AND x.extnamespace = n.oid WHERE e.classid = 'pg_type'::regclass "
                  "AND e.objid = t.oid AND e.deptype = 'e')"),
}


@pytest.fixture(scope="module")
def feature_dbs(source_cluster):
    features.create(source_cluster, PREFIX)
    yield source_cluster
    features.drop(source_cluster, PREFIX)


def _module(name):
    return next(module for module in features.MODULES if module.name == name)


def _query(info, dbname, statement, params=None, search_path=None):
    """Rows of the last statement, in a transaction that is rolled back (probes leave nothing behind)."""
    conn = psycopg2.connect(**info.connect_kwargs(dbname))
    try:
        with conn.cursor() as cur:
            if search_path:
                cur.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(search_path)))
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.rollback()
        conn.close()


def _count(info, dbname, kind, schema):
    return _query(info, dbname, KIND_CHECKS[kind][1], {"schema": schema, "roles": list(features.ROLES)})[0][0]


def test_every_listed_kind_has_a_catalog_check():
    assert sorted(KIND_CHECKS) == sorted(features.KINDS)


@pytest.mark.parametrize("kind", features.KINDS)
def test_the_fixture_holds_the_kind(feature_dbs, kind):
    module = _module(KIND_CHECKS[kind][0])
    assert _count(feature_dbs, module.database(PREFIX), kind, module.source_schema) > 0


def test_the_checks_find_nothing_in_an_empty_database(feature_dbs):
    """The catalog checks can fail: an empty schema has none of the kinds."""
    assert {kind: _count(feature_dbs, "postgres", kind, "public") for kind in features.KINDS} == dict.fromkeys(
        features.KINDS, 0)


@pytest.mark.parametrize("module", features.MODULES, ids=lambda module: module.name)
def test_rows_fill_every_leaf_partition_and_leave_nullable_columns_partly_null(feature_dbs, module):
    database = module.database(PREFIX)
    tables = _query(feature_dbs, database, "SELECT c.relname::text FROM pg_class c " + _IN_SCHEMA +
                    " WHERE c.relkind = 'r' AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.objid = c.oid "
                    "AND e.deptype = 'e') ORDER BY 1", {"schema": module.source_schema})
    counts = {table: _query(feature_dbs, database, sql.SQL("SELECT count(*) FROM ONLY {}").format(
        sql.Identifier(module.source_schema, table)))[0][0] for (table,) in tables}
    assert all(counts.values()), counts
    assert sum(counts.values()) >= 1000
    nullable = _query(feature_dbs, database, "SELECT c.relname::text, a.attname::text " + _COLUMNS +
                      " AND NOT a.attnotnull AND NOT c.relispartition",
                      {"schema": module.source_schema})
    null_count = sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL")
    with_nulls = [(table, column) for table, column in nullable if _query(feature_dbs, database, null_count.format(
        sql.Identifier(module.source_schema, table), sql.Identifier(column)))[0][0]]
    assert len(with_nulls) >= 3, nullable


@pytest.mark.parametrize("module", features.MODULES, ids=lambda module: module.name)
def test_sample_inserts_cover_every_table_and_work_without_an_id(feature_dbs, module):
    database = module.database(PREFIX)
    tables = _query(feature_dbs, database, "SELECT c.relname::text FROM pg_class c " + _IN_SCHEMA +
                    " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
                    {"schema": module.source_schema})
    assert sorted(features.SAMPLE_INSERTS[module.name]) == [table for (table,) in tables]
    for table, statement in features.SAMPLE_INSERTS[module.name].items():
        copied = _query(feature_dbs, database, sql.SQL("SELECT max(id) FROM {}").format(
            sql.Identifier(module.source_schema, table)))[0][0]
        new_id = _query(feature_dbs, database, statement, search_path=module.source_schema)[0][0]
        assert new_id > copied, table


@pytest.mark.parametrize("module", features.MODULES, ids=lambda module: module.name)
def test_sample_queries_answer_in_the_legacy_schema(feature_dbs, module):
    for name, statement in features.SAMPLE_QUERIES[module.name].items():
        assert _query(feature_dbs, module.database(PREFIX), statement, search_path=module.source_schema), name


@pytest.mark.parametrize("module", features.MODULES, ids=lambda module: module.name)
def test_exactly_the_schema_bound_functions_name_the_source_schema(feature_dbs, module):
    found = _query(feature_dbs, module.database(PREFIX),
                   "SELECT p.oid::regprocedure::text, CASE WHEN 'search_path=' || %(schema)s = ANY(p.proconfig) "
                   "THEN 'search_path' ELSE 'body' END " + _OWN_FUNCTIONS +
                   " AND ('search_path=' || %(schema)s = ANY(p.proconfig) OR p.prosrc ILIKE '%%' || %(schema)s "
                   "|| '.%%')", {"schema": module.source_schema}, search_path=module.source_schema)
    assert dict(found) == features.SCHEMA_BOUND[module.name]


def test_roles_are_created_once(feature_dbs):
    assert features.create_roles(feature_dbs) == []
    assert sorted(row[0] for row in _query(feature_dbs, "postgres", "SELECT rolname::text FROM pg_roles WHERE "
                                                                    "rolname = ANY(%s)", (list(features.ROLES),))) \
        == sorted(features.ROLES)
