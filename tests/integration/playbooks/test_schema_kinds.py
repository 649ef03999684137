"""consolidate.yml in source_ddl mode on every object kind: two feature modules and one ClassifiedAds module,
side by side in one target database.

The feature databases (devkit.features: Orders with its tables in public, Ledger in the schema app) hold
partitions, inheritance, views, materialized views, triggers, functions, a procedure, an aggregate, enum,
domain, composite and range types, identity/serial/unowned sequences, row-level security and policies,
grants and default privileges, comments, rules, extended statistics, storage settings, replica identity and
an extension in the source schema. Everything is compared by this test itself, source before the run
against target after it: row checksums per table and per leaf partition, answers of views and functions,
catalog facts (RLS, policies, ACLs, comments, triggers). The verification report and the run directory are
asserted on as well, but never trusted alone.

One --check run and one real run are shared by every test (module-scoped fixtures).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import psycopg2
import pytest
import yaml
from conftest import REPO, consolidation_vars, drop_database
from conftest import run_sql as query
from devkit import features, legacy
from psycopg2 import sql

pytestmark = pytest.mark.integration

PREFIX = "Kinds"
TARGET_DB = "Kinds_Consolidated"
CLASSIFIEDADS_MODULE = "Product"
# Left out of every module by the shipped defaults (consolidation_exclude_tables): in the legacy Product database only.
EXCLUDED_TABLES = tuple(yaml.safe_load((Path(REPO) / "roles" / "consolidation" / "defaults" / "main.yml").read_text())[
    "consolidation_exclude_tables"])


@dataclasses.dataclass(frozen=True)
class Side:
    """One module as seen on one server: its database and the schema its objects live in."""

    module: str
    database: str
    schema: str


def module_sides():
    """[(legacy side, consolidated side)] of the three modules."""
    pairs = [(Side(module.name, module.database(PREFIX), module.source_schema), Side(module.name, TARGET_DB,
                                                                                     module.schema))
             for module in features.MODULES]
    pairs.append((Side(CLASSIFIEDADS_MODULE, f"{PREFIX}_{CLASSIFIEDADS_MODULE}", "public"),
                  Side(CLASSIFIEDADS_MODULE, TARGET_DB, CLASSIFIEDADS_MODULE.lower())))
    return pairs


SIDES = module_sides()
FEATURE_SIDES = [pair for pair in SIDES if pair[0].module != CLASSIFIEDADS_MODULE]


def in_schema(info, side: Side, statement, params=None):
    """Rows of ``statement`` (the last one, if several) with search_path = the side's schema, then public, in a
    transaction that is rolled back: probes leave no rows behind. Catalog queries get ``%(schema)s`` and
    ``%(excluded)s`` (the tables the consolidation leaves out)."""
    if isinstance(statement, str) and "%(" in statement:
        params = {"schema": side.schema, "excluded": list(EXCLUDED_TABLES), **(params or {})}
    conn = psycopg2.connect(**info.connect_kwargs(side.database))
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SET LOCAL search_path = {}, public").format(sql.Identifier(side.schema)))
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.rollback()
        conn.close()


# -- what is compared: each a function of (cluster, side) ------------------------------------------------------

_OWN = ("NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = {catalog}::regclass AND e.objid = {oid} "
        "AND e.deptype = 'e')")
_KEPT = "c.relname <> ALL(%(excluded)s)"
_RELATIONS = ("SELECT c.oid, c.relname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n "
              "ON n.oid = c.relnamespace AND n.nspname = %(schema)s WHERE " + _KEPT + " AND " +
              _OWN.format(catalog="'pg_class'", oid="c.oid"))


def checksums(info, side: Side, kinds=("r",)):
    """{relation: (rows, md5 over the sorted row texts)} of every table (each leaf partition and inheritance
    child on its own: FROM ONLY) or materialized view of the side."""
    result = {}
    for _oid, name, kind in in_schema(info, side, _RELATIONS):
        if kind in kinds:
            result[name] = in_schema(info, side, sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) "
                "FROM ONLY {} AS t").format(sql.Identifier(side.schema, name)))[0]
    return result


def sample_answers(info, side: Side):
    return {name: in_schema(info, side, statement)
            for name, statement in features.SAMPLE_QUERIES.get(side.module, {}).items()}


def highest_ids(info, side: Side):
    """{table: max(id) (and max(invoice_no))} over every table with a sample insert (children included)."""
    result = {}
    for table, statement in features.SAMPLE_INSERTS.get(side.module, {}).items():
        columns = ["id"] + (["invoice_no"] if "invoice_no" in statement else [])
        result[table] = list(in_schema(info, side, sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.SQL("max({})").format(sql.Identifier(column)) for column in columns),
            sql.Identifier(side.schema, table)))[0])
    return result


def security(info, side: Side):
    """Row-level security flags per table and every policy, as the catalog deparses them."""
    flags = in_schema(info, side, "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
                                  "WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p') AND "
                                  + _KEPT + " ORDER BY 1")
    policies = in_schema(info, side, "SELECT tablename::text, policyname::text, permissive, roles::text[], cmd, qual, "
                                     "with_check FROM pg_policies WHERE schemaname = %(schema)s "
                                     "AND tablename <> ALL(%(excluded)s) ORDER BY 1, 2")
    return {"flags": flags, "policies": policies}


def grants(info, side: Side):
    """ACLs: relations (tables, partitions, views, sequences), columns, functions, the schema's grants to the
    feature roles and the default privileges of the schema."""
    own_relation = _KEPT + " AND " + _OWN.format(catalog="'pg_class'", oid="c.oid")
    own_function = _OWN.format(catalog="'pg_proc'", oid="p.oid")
    return {
        "relations": in_schema(info, side, "SELECT c.relname::text, c.relkind::text, c.relacl::text[] FROM pg_class c "
                                           "WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN "
                                           "('r', 'p', 'v', 'm', 'S', 'f') AND " + own_relation + " ORDER BY 1"),
        "columns": in_schema(info, side, "SELECT c.relname::text, a.attname::text, a.attacl::text[] FROM pg_attribute "
                                         "a JOIN pg_class c ON c.oid = a.attrelid WHERE c.relnamespace = "
                                         "%(schema)s::regnamespace AND a.attacl IS NOT NULL AND " + own_relation +
                                         " ORDER BY 1, 2"),
        "functions": in_schema(info, side, "SELECT p.oid::regprocedure::text, p.proacl::text[] FROM pg_proc p WHERE "
                                           "p.pronamespace = %(schema)s::regnamespace AND " + own_function +
                                           " ORDER BY 1"),
        "schema": in_schema(info, side, "SELECT a.grantee::regrole::text, a.privilege_type FROM pg_namespace n, "
                                        "aclexplode(n.nspacl) a WHERE n.nspname = %(schema)s AND a.grantee::regrole::"
                                        "text = ANY(%(roles)s) ORDER BY 1, 2", {"roles": list(features.ROLES)}),
        "default privileges": in_schema(info, side, "SELECT d.defaclrole::regrole::text, d.defaclobjtype::text, "
                                                    "d.defaclacl::text[] FROM pg_default_acl d WHERE "
                                                    "d.defaclnamespace = %(schema)s::regnamespace ORDER BY 1, 2"),
    }


def comments(info, side: Side):
    """Comments on relations and their columns, functions, types, constraints, triggers and policies."""
    return in_schema(info, side, """
        SELECT 'relation', c.relname::text, coalesce(a.attname::text, ''), d.description FROM pg_description d
          JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid
          LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
         WHERE c.relnamespace = %(schema)s::regnamespace AND c.relname <> ALL(%(excluded)s)
        UNION ALL
        SELECT 'function', p.oid::regprocedure::text, '', d.description FROM pg_description d
          JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND p.oid = d.objoid
         WHERE p.pronamespace = %(schema)s::regnamespace
           AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid
                           AND e.deptype = 'e')
        UNION ALL
        SELECT 'type', format_type(t.oid, NULL), '', d.description FROM pg_description d
          JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND t.oid = d.objoid
         WHERE t.typnamespace = %(schema)s::regnamespace
        UNION ALL
        SELECT 'constraint', k.conname::text, '', d.description FROM pg_description d
          JOIN pg_constraint k ON d.classoid = 'pg_constraint'::regclass AND k.oid = d.objoid
         WHERE k.connamespace = %(schema)s::regnamespace
        UNION ALL
        SELECT 'sequence/trigger/policy', coalesce(g.tgname, y.polname)::text, '', d.description FROM pg_description d
          LEFT JOIN pg_trigger g ON d.classoid = 'pg_trigger'::regclass AND g.oid = d.objoid
          LEFT JOIN pg_policy y ON d.classoid = 'pg_policy'::regclass AND y.oid = d.objoid
          JOIN pg_class c ON c.oid = coalesce(g.tgrelid, y.polrelid)
         WHERE c.relnamespace = %(schema)s::regnamespace
        ORDER BY 1, 2, 3""")


def triggers(info, side: Side):
    # pg_get_triggerdef names the table with its schema whatever the search_path
    return in_schema(info, side, "SELECT c.relname::text, g.tgname::text, g.tgenabled::text, replace("
                                 "pg_get_triggerdef(g.oid), ' ON ' || quote_ident(%(schema)s) || '.', ' ON ') "
                                 "FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE NOT g.tgisinternal "
                                 "AND c.relnamespace = %(schema)s::regnamespace AND " + _KEPT + " ORDER BY 1, 2")


def other_settings(info, side: Side):
    """Rules, extended statistics, storage parameters, replica identity, column statistics targets and storage."""
    return {
        # pg_rules names the table with its schema whatever the search_path
        "rules": in_schema(info, side, "SELECT tablename::text, rulename::text, replace(definition, ' TO ' || "
                                       "quote_ident(%(schema)s) || '.', ' TO ') FROM pg_rules "
                                       "WHERE schemaname = %(schema)s ORDER BY 1, 2"),
        "statistics": in_schema(info, side, "SELECT s.stxname::text, s.stxkind::text[], "
                                            "pg_get_statisticsobjdef_columns(s.oid) FROM pg_statistic_ext s WHERE "
                                            "s.stxnamespace = %(schema)s::regnamespace ORDER BY 1"),
        "relations": in_schema(info, side, "SELECT c.relname::text, c.reloptions, c.relreplident::text, "
                                           "(SELECT i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = "
                                           "c.oid AND i.indisreplident) FROM pg_class c WHERE c.relnamespace = "
                                           "%(schema)s::regnamespace AND c.relkind IN ('r', 'p', 'm') AND " + _KEPT +
                                           " ORDER BY 1"),
        "columns": in_schema(info, side, "SELECT c.relname::text, a.attname::text, a.attstattarget, a.attstorage::text "
                                         "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE "
                                         "c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p') "
                                         "AND a.attnum > 0 AND NOT a.attisdropped AND " + _KEPT + " ORDER BY 1, 2"),
    }


COMPARED = {"checksums": checksums, "materialized views": lambda info, side: checksums(info, side, ("m",)),
            "answers": sample_answers, "security": security, "grants": grants, "comments": comments,
            "triggers": triggers, "settings": other_settings}


def snapshot(info, which: int):
    """{module: {aspect: value}} of every module on one side (0 legacy, 1 consolidated)."""
    return {pair[which].module: {aspect: read(info, pair[which]) for aspect, read in COMPARED.items()}
            for pair in SIDES}


def databases(info):
    return [row[0] for row in query(info, "postgres", "SELECT datname::text FROM pg_database ORDER BY 1")]


# -- the runs -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def legacy_databases(source_cluster, target_cluster):
    features.create(source_cluster, PREFIX)
    features.create_roles(target_cluster)  # the grants name them: a target server must know them too
    legacy.create(source_cluster, 0.01, prefix=PREFIX, drop_existing=True, out=lambda line: None)
    yield
    drop_database(target_cluster, TARGET_DB)
    legacy.drop(source_cluster, prefix=PREFIX)
    features.drop(source_cluster, PREFIX)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, source_cluster, target_cluster):
    root = tmp_path_factory.mktemp("kinds")
    variables = consolidation_vars(source_cluster, target_cluster, root, TARGET_DB, PREFIX)
    classifiedads = [module for module in variables["consolidation_modules"] if module["name"] == CLASSIFIEDADS_MODULE]
    variables.update(consolidation_modules=features.consolidation_modules(PREFIX) + classifiedads,
                     migrator_mode="source_ddl", verify_checksum=True,
                     # the search_path clauses naming the legacy schema are rewritten (issue 9, item 1)
                     migrator_rewrite_search_path=True)
    return {"root": root, "vars": variables}


@pytest.fixture(scope="module")
def consolidated(legacy_databases, workspace, source_cluster, target_cluster, run_playbook):
    """The legacy side read before anything runs, a --check run, then the real run (its outcome kept, not
    asserted here, so that each test names what it needs)."""
    before = snapshot(source_cluster, 0)
    ids = {pair[0].module: highest_ids(source_cluster, pair[0]) for pair in FEATURE_SIDES}
    servers_before = (databases(source_cluster), databases(target_cluster))
    check = run_playbook("classifiedads.consolidation.consolidate", "--check", variables=workspace["vars"],
                         expect_rc=None)
    after_check = {"servers": (databases(source_cluster), databases(target_cluster)),
                   "legacy": snapshot(source_cluster, 0)}
    run = run_playbook("classifiedads.consolidation.consolidate", variables=workspace["vars"], expect_rc=None)
    return {"before": before, "ids": ids, "servers_before": servers_before, "check": check,
            "after_check": after_check, "run": run}


def failure(run) -> str:
    """The task that failed and the start of its message (a refusal can list hundreds of problems)."""
    output = run.output
    fatal = output.find("fatal: ")
    if fatal < 0:
        return output[-4000:]
    task = output.rfind("TASK [", 0, fatal)
    return output[task:task + 200].split("\n", 1)[0] + "\n" + output[fatal:fatal + 3000]


@pytest.fixture(scope="module")
def target(consolidated, target_cluster):
    """The consolidated side, read once after a successful run."""
    assert consolidated["run"].rc == 0, failure(consolidated["run"])
    return snapshot(target_cluster, 1)


@pytest.fixture(scope="module")
def run_dir(consolidated, workspace):
    assert consolidated["run"].rc == 0, failure(consolidated["run"])
    runs = workspace["root"] / "runs"
    return runs / (runs / "latest").read_text().strip()


def aspect(snap, name):
    return {module: values[name] for module, values in snap.items()}


# -- check mode -----------------------------------------------------------------------------------------------

def test_check_mode_changes_nothing_and_reports_the_schema_plan(consolidated):
    check = consolidated["check"]
    # no consolidated database, no scratch database left on either server, the legacy side untouched
    assert consolidated["after_check"]["servers"] == consolidated["servers_before"]
    assert consolidated["after_check"]["legacy"] == consolidated["before"]
    assert check.rc == 0, failure(check)
    for module, functions in features.SCHEMA_BOUND.items():
        for function in functions:
            assert function.split("(")[0] in check.output, (module, function, check.output[-6000:])
    # the plan a person reads: per module where it goes, how many objects, the extension, the findings
    assert re.search(r"module Ledger: \S+_Ledger\.app -> ledger\s+\(created\): \d+ object\(s\) \(.*TABLE \d+",
                     check.output), [line for line in check.output.splitlines() if "Ledger" in line]
    assert re.search(r"extensions: citext;\s+excluded tables: none;\s+2 function\(s\) naming the legacy schema",
                     check.output), [line for line in check.output.splitlines() if "Ledger" in line]


# -- data -----------------------------------------------------------------------------------------------------

def test_every_table_and_leaf_partition_holds_the_same_rows(consolidated, target):
    source = aspect(consolidated["before"], "checksums")
    assert all(source.values())
    assert aspect(target, "checksums") == source


def test_materialized_views_hold_the_same_rows(consolidated, target):
    source = aspect(consolidated["before"], "materialized views")
    assert all(source[pair[0].module] for pair in FEATURE_SIDES)
    assert aspect(target, "materialized views") == source


def test_an_insert_without_an_id_succeeds_in_every_table_after_the_copied_ids(consolidated, target, target_cluster):
    """Serial, identity and unowned sequences continue after the copied rows; triggers and defaults work (the
    ClassifiedAds tables have application-made uuid keys and no default to probe)."""
    problems = {}
    for legacy_side, new_side in FEATURE_SIDES:
        for table, statement in features.SAMPLE_INSERTS[legacy_side.module].items():
            copied = consolidated["ids"][legacy_side.module][table]
            try:
                new = list(in_schema(target_cluster, new_side, statement)[0])
            except psycopg2.Error as exc:
                problems[f"{new_side.schema}.{table}"] = str(exc).strip()
                continue
            if not all(value > highest for value, highest in zip(new, copied, strict=True)):
                problems[f"{new_side.schema}.{table}"] = f"new {new} not above the copied {copied}"
    assert problems == {}


def test_the_verification_compares_each_leaf_partition_and_passes(run_dir, target):
    report = json.loads((run_dir / "verification.json").read_text())
    assert report["summary"]["passed"] is True
    # the three modules' table names do not overlap
    states = {row["source_table"]: row["state"] for row in report["tables"]}
    for legacy_side, _new_side in FEATURE_SIDES:
        for table in target[legacy_side.module]["checksums"]:
            assert states.get(table) == "match", (legacy_side.module, table)


# -- behaviour ------------------------------------------------------------------------------------------------

def test_views_functions_and_procedures_answer_the_same_in_the_new_schema(consolidated, target):
    source = aspect(consolidated["before"], "answers")
    assert all(all(answers.values()) for module, answers in source.items() if module in features.SAMPLE_QUERIES)
    assert aspect(target, "answers") == source


def test_rewritten_search_path_clauses_name_the_new_schema_and_answer_the_same(consolidated, target,
                                                                               source_cluster, target_cluster):
    for legacy_side, new_side in FEATURE_SIDES:
        for function, reason in features.SCHEMA_BOUND[legacy_side.module].items():
            if reason != "search_path":
                continue
            config = in_schema(target_cluster, new_side,
                               "SELECT proconfig FROM pg_proc WHERE oid = %(f)s::regprocedure", {"f": function})
            assert config == [([f"search_path={new_side.schema}"],)], (new_side.module, function)
            # the legacy databases are fenced (read-only) after the run: reading them still works
            statement = f"SELECT {function}"
            assert in_schema(target_cluster, new_side, statement) == in_schema(source_cluster, legacy_side, statement)


# -- attached metadata ----------------------------------------------------------------------------------------

def test_row_level_security_stays_on_and_forced_with_the_same_policies(consolidated, target):
    source = aspect(consolidated["before"], "security")
    assert any(flag[1] for flag in source["Ledger"]["flags"]) and any(flag[2] for flag in source["Orders"]["flags"])
    assert aspect(target, "security") == source


def test_grants_are_equal_on_tables_columns_sequences_functions_schemas_and_defaults(consolidated, target):
    source = aspect(consolidated["before"], "grants")
    kinds = ("relations", "columns", "functions", "schema", "default privileges")
    assert all(source[pair[0].module][kind] for pair in FEATURE_SIDES for kind in kinds)
    assert aspect(target, "grants") == source


def test_comments_are_equal(consolidated, target):
    source = aspect(consolidated["before"], "comments")
    assert {row[0] for pair in FEATURE_SIDES for row in source[pair[0].module]} >= {"relation", "function", "type"}
    assert aspect(target, "comments") == source


def test_triggers_are_present_and_enabled(consolidated, target):
    source = aspect(consolidated["before"], "triggers")
    assert aspect(target, "triggers") == source
    assert {row[2] for rows in aspect(target, "triggers").values() for row in rows} == {"O"}


def test_rules_statistics_storage_and_replica_identity_are_equal(consolidated, target):
    source = aspect(consolidated["before"], "settings")
    assert aspect(target, "settings") == source


# -- what the run wrote down ----------------------------------------------------------------------------------

def _module_entries(document, module):
    """Every part of a JSON document that belongs to ``module``: a dict naming it (``name``/``module``) or
    held under its name."""
    found = []
    if isinstance(document, dict):
        if module in (document.get("name"), document.get("module")):
            found.append(document)
        for key, value in document.items():
            found.extend([value] if key == module else _module_entries(value, module))
    elif isinstance(document, list):
        for value in document:
            found.extend(_module_entries(value, module))
    return found


def test_the_schema_plan_lists_what_a_rename_cannot_carry(run_dir):
    plan = json.loads((run_dir / "schema_plan.json").read_text())
    for module, functions in features.SCHEMA_BOUND.items():
        entries = json.dumps(_module_entries(plan, module))
        for function, reason in functions.items():
            assert function.split("(")[0] in entries and reason in entries, (module, function, entries[:3000])
    ledger = json.dumps(_module_entries(plan, "Ledger"))
    assert "citext" in ledger  # the extension installed in the legacy schema, and where it went


def test_schema_fidelity_shows_no_difference_for_any_module(run_dir):
    report = json.loads((run_dir / "verification.json").read_text())
    fidelity = report["schema_fidelity"]
    assert fidelity["mode"] == "enforce" and fidelity["passed"] and fidelity["differences"] == 0, fidelity
    by_module = {entry["module"]: entry for entry in fidelity["modules"]}
    assert set(by_module) == {pair[0].module for pair in SIDES}
    for module, entry in by_module.items():
        assert entry["passed"] and entry["differences"] == 0, (module, entry)
        kinds = {kind["kind"]: kind for kind in entry["kinds"]}
        for kind in kinds.values():
            assert kind["missing"] == kind["extra"] == kind["changed"] == [], (module, kind)
        if module != "Product":
            # every kind the fixtures carry was compared, not just found absent on both sides
            assert all(kinds[name]["source"] > 0 for name in ("table", "partition", "function", "policy", "grant")), \
                (module, kinds)
    markdown = (run_dir / "verification.md").read_text()
    assert "fidelity" in markdown.lower()
