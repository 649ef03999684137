"""Plan-time data checks against two real PostgreSQL 15 servers.

Each test builds a legacy database on ``source_cluster`` and a target database on ``target_cluster``
whose tables demand more than the legacy rows give (a column the target lacks, narrower types,
unique, foreign and check constraints the source never had), then runs data_copy: every problem must
be reported at once, with its count and the offending rows' keys, before any row moves, in check
mode the same way.
"""

from __future__ import annotations

import json
import os
import stat

import pytest
from conftest import drop_database, endpoint, run_sql
from constants import HOSTILE
from psycopg2 import sql

from ansible_collections.classifiedads.consolidation.plugins.module_utils.display import quote_ident

pytestmark = pytest.mark.integration

SOURCE_DB, TARGET_DB = "DataChecks_Legacy", "DataChecks_Target"
SCHEMA = "checked"

# The legacy tables: no constraint but the primary keys, rows that break the target's rules.
LEGACY = """
CREATE TABLE "Lost" ("Id" int PRIMARY KEY, "Kept" text, "Extra" text);
INSERT INTO "Lost" VALUES (1, 'k', 'gone'), (2, 'k', NULL), (3, 'k', 'also gone');
CREATE TABLE "Narrow" ("Id" int PRIMARY KEY, "Code" text, "Price" numeric(12,4), "Stamp" timestamp(6));
INSERT INTO "Narrow" VALUES (1, 'abc', 1.25, '2020-01-01 00:00:00'), (2, 'abcdefg', 1.255, '2020-01-01 00:00:00.5'),
                            (3, 'xxxxxxxx', 12345.5, NULL), (4, 'abcde ', 'NaN', NULL);
CREATE TABLE "Wide" ("Id" int PRIMARY KEY, "Big" bigint, "At" timestamptz);
INSERT INTO "Wide" VALUES (1, 1, NULL), (2, 3000000000, '2020-01-01 10:00+02');
CREATE TABLE "Dups" ("Id" int PRIMARY KEY, "Email" text);
INSERT INTO "Dups" VALUES (1, 'a'), (2, 'a'), (3, 'a'), (4, 'b'), (5, 'b'), (6, 'c'), (7, NULL), (8, NULL);
CREATE TABLE "Parents" ("Id" int PRIMARY KEY);
INSERT INTO "Parents" VALUES (1);
CREATE TABLE "Children" ("Id" int PRIMARY KEY, "ParentId" int);
INSERT INTO "Children" VALUES (10, 1), (11, 99), (12, NULL), (13, 98);
CREATE TABLE "Checked" ("Id" int PRIMARY KEY, "Qty" int);
INSERT INTO "Checked" VALUES (1, 0), (2, -1), (3, 5), (4, -7), (5, NULL);
CREATE TABLE "Divides" ("Id" int PRIMARY KEY, "Qty" int);
INSERT INTO "Divides" VALUES (1, 0);
CREATE TABLE x ("Id" int PRIMARY KEY);
"""

# The target: what the application's migration would declare.
TARGET = """
CREATE TABLE checked."Lost" ("Id" int PRIMARY KEY, "Kept" text, "Required" int NOT NULL);
CREATE TABLE checked."Narrow" ("Id" int PRIMARY KEY, "Code" varchar(5), "Price" numeric(6,2), "Stamp" timestamp(0));
CREATE TABLE checked."Wide" ("Id" int PRIMARY KEY, "Big" integer, "At" timestamp);
CREATE TABLE checked."Dups" ("Id" int PRIMARY KEY, "Email" text CONSTRAINT "UQ_Email" UNIQUE);
CREATE TABLE checked."Parents" ("Id" int PRIMARY KEY);
CREATE TABLE checked."Children" ("Id" int PRIMARY KEY,
                                 "ParentId" int CONSTRAINT "FK_Children_Parents" REFERENCES checked."Parents");
CREATE FUNCTION checked.positive(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0';
CREATE TABLE checked."Checked" ("Id" int PRIMARY KEY, "Qty" int CONSTRAINT "CK_Qty" CHECK ("Qty" >= 0),
                                CONSTRAINT "CK_Qty_positive" CHECK (checked.positive("Qty")));
CREATE TABLE checked."Divides" ("Id" int PRIMARY KEY, "Qty" int CONSTRAINT "CK_Divides" CHECK (100 / "Qty" > 0));
CREATE TABLE checked.x ("Id" int PRIMARY KEY);
"""

HOSTILE_TARGET = quote_ident(HOSTILE)
HOSTILE_KEY = HOSTILE + " key"  # its index is a relation too: the table's name is taken


def hostile_table(schema, column_type, unique):
    return sql.SQL("CREATE TABLE {}.{} ({} int PRIMARY KEY, {} {}{})").format(
        sql.Identifier(schema), sql.Identifier(HOSTILE), sql.Identifier("Id"), sql.Identifier(HOSTILE),
        sql.SQL(column_type),
        sql.SQL(" CONSTRAINT {} UNIQUE").format(sql.Identifier(HOSTILE_KEY)) if unique else sql.SQL(""))


def fresh(info, name):
    drop_database(info, name)
    run_sql(info, "postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def target_state(info):
    """Constraints and row counts of every table in the target schema: what a refused copy must leave as it was."""
    constraints = run_sql(info, TARGET_DB, "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                                           "FROM pg_constraint WHERE connamespace = %s::regnamespace ORDER BY 1, 2",
                          (SCHEMA,))
    counts = {}
    for (table,) in run_sql(info, TARGET_DB, "SELECT relname FROM pg_class WHERE relkind = 'r' AND "
                                             "relnamespace = %s::regnamespace", (SCHEMA,)):
        counts[table] = run_sql(info, TARGET_DB, sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(SCHEMA), sql.Identifier(table)))[0][0]
    return constraints, counts


def copy_args(source_cluster, target_cluster, **extra):
    return dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=TARGET_DB,
                run_id="checks", modules=[{"name": "Checked", "source_database": SOURCE_DB, "schema": SCHEMA}],
                **extra)


@pytest.fixture()
def broken(source_cluster, target_cluster):
    fresh(source_cluster, SOURCE_DB)
    fresh(target_cluster, TARGET_DB)
    run_sql(source_cluster, SOURCE_DB, LEGACY)
    run_sql(source_cluster, SOURCE_DB, hostile_table("public", "text", unique=False))
    run_sql(source_cluster, SOURCE_DB, sql.SQL("INSERT INTO {} VALUES (1, 'abcd'), (2, 'abcd'), (3, 'ab')").format(
        sql.Identifier(HOSTILE)))
    run_sql(target_cluster, TARGET_DB, "CREATE SCHEMA checked;" + TARGET)
    run_sql(target_cluster, TARGET_DB, hostile_table(SCHEMA, "varchar(3)", unique=True))
    yield
    drop_database(source_cluster, SOURCE_DB)
    drop_database(target_cluster, TARGET_DB)


def by_subject(problems):
    return dict(((problem["target"].split(".", 1)[1], problem["subject"]), problem) for problem in problems)


# (target table as quoted, subject) -> (count, keys) every run must report.
EXPECTED = {
    ('"Lost"', 'column "Extra"'): (2, ["1", "3"]),
    ('"Lost"', 'column "Required"'): (3, ["1", "2", "3"]),
    ('"Narrow"', 'column "Code"'): (3, ["2", "3", "4"]),
    ('"Narrow"', 'column "Price"'): (2, ["2", "3"]),
    ('"Narrow"', 'column "Stamp"'): (1, ["2"]),
    ('"Wide"', 'column "Big"'): (1, ["2"]),
    ('"Wide"', 'column "At"'): (1, ["2"]),
    ('"Dups"', 'unique key "UQ_Email"'): (5, ["a", "b"]),
    ('"Children"', 'foreign key "FK_Children_Parents"'): (2, ["11", "13"]),
    ('"Checked"', 'check "CK_Qty"'): (2, ["2", "4"]),
    (HOSTILE_TARGET, 'column ' + HOSTILE_TARGET): (2, ["1", "2"]),
    (HOSTILE_TARGET, 'unique key ' + quote_ident(HOSTILE_KEY)): (2, ["abcd"]),
}


def assert_reported(result):
    assert result["failed"], result
    problems = result["data_checks"]["problems"]
    found = by_subject(problems)
    assert sorted(found) == sorted(EXPECTED), sorted(found)
    for subject, (count, keys) in EXPECTED.items():
        assert (found[subject]["count"], found[subject]["keys"]) == (count, keys), (subject, found[subject])
    # Each problem is one line of the message, with its count and keys; no row content beyond keys.
    for line in (
            f'{SOURCE_DB}:public."Narrow" -> checked."Narrow": column "Code": 3 rows hold values longer than 5 '
            'characters (character varying(5)); keys 2, 3, 4 ("Id")',
            f'{SOURCE_DB}:public."Children" -> checked."Children": foreign key "FK_Children_Parents": 2 rows '
            f'reference no row of {SOURCE_DB}:public."Parents" (the source table filling checked."Parents"); '
            'keys 11, 13 ("Id")'):
        assert line in result["problems"]
    assert "also gone" not in json.dumps(result) and "xxxxxxxx" not in json.dumps(result)
    # The column match still names the tables whose columns differ.
    assert any('only in the source: "Extra"' in problem for problem in result["problems"])


def test_every_data_problem_is_reported_before_any_row_moves(run_module, source_cluster, target_cluster, broken,
                                                             tmp_path):
    report = tmp_path / "data_checks.json"
    before = target_state(target_cluster)
    assert all(count == 0 for count in before[1].values())

    checked = run_module("data_copy", copy_args(source_cluster, target_cluster, data_checks_report=str(report)),
                         check=True)
    assert_reported(checked)
    assert not report.exists()  # check mode writes nothing, and says what it could not check
    assert any('check "CK_Qty_positive" cannot be checked before the copy' in warning
               for warning in checked["data_checks"]["not_checked"])
    assert checked["data_checks"]["report"] is None
    assert target_state(target_cluster) == before

    result = run_module("data_copy", copy_args(source_cluster, target_cluster, data_checks_report=str(report)))
    assert_reported(result)
    assert result["problems"][-1] == (f"{len(EXPECTED)} data problems found before the copy (counts above; every "
                                      f"one with its keys in {report})")
    assert result["data_checks"]["report"] == str(report)
    assert stat.S_IMODE(os.stat(report).st_mode) == 0o600
    written = json.loads(report.read_text())
    assert written["problems"] == result["data_checks"]["problems"]
    # A check calling a function of the target's own cannot be evaluated on the source: said, not guessed.
    assert any('check "CK_Qty_positive" cannot be checked before the copy (it calls a function that is not built '
               'in or not immutable)' in warning for warning in written["warnings"])
    # A check whose evaluation fails on the source is said so; the snapshot survives it (the tables after
    # "Divides" were all checked above).
    assert any('check "CK_Divides" cannot be checked before the copy (evaluating it on the source failed: '
               'division by zero)' in warning for warning in written["warnings"])
    # Nothing copied, no key dropped, the hostile name did nothing.
    assert target_state(target_cluster) == before
    assert run_sql(source_cluster, SOURCE_DB, "SELECT to_regclass('public.x') IS NOT NULL") == [(True,)]
    assert run_sql(target_cluster, TARGET_DB, "SELECT to_regclass('checked.x') IS NOT NULL") == [(True,)]


def test_constraints_the_source_data_keeps_let_the_copy_proceed(run_module, source_cluster, target_cluster):
    """A target constraint the source lacks costs one scan and passes when the data keeps it; one the
    source enforces itself costs nothing."""
    fresh(source_cluster, SOURCE_DB)
    fresh(target_cluster, TARGET_DB)
    try:
        run_sql(source_cluster, SOURCE_DB, """
            CREATE TABLE "Parents" ("Id" int PRIMARY KEY, "Name" text UNIQUE);
            CREATE TABLE "Children" ("Id" int PRIMARY KEY, "ParentId" int REFERENCES "Parents", "Qty" int,
                                     "Code" text);
            INSERT INTO "Parents" VALUES (1, 'one'), (2, 'two');
            INSERT INTO "Children" VALUES (10, 1, 3, 'ab'), (11, NULL, NULL, NULL)""")
        run_sql(target_cluster, TARGET_DB, """CREATE SCHEMA checked;
            CREATE TABLE checked."Parents" ("Id" int PRIMARY KEY, "Name" text UNIQUE);
            CREATE TABLE checked."Children" ("Id" int PRIMARY KEY, "ParentId" int REFERENCES checked."Parents",
                                             "Qty" int CHECK ("Qty" > 0), "Code" varchar(2))""")
        args = copy_args(source_cluster, target_cluster)
        checked = run_module("data_copy", args, check=True)
        assert not checked["failed"], checked.get("msg")
        # The varchar(2) rule and the check are one scan each; the primary keys, the unique key and the
        # foreign key the source enforces itself cost none.
        assert checked["data_checks"] == {"problems": [], "not_checked": [], "scans": 2, "report": None}
        result = run_module("data_copy", args)
        assert not result["failed"], result.get("msg")
        assert run_sql(target_cluster, TARGET_DB, 'SELECT count(*) FROM checked."Children"') == [(2,)]
    finally:
        drop_database(source_cluster, SOURCE_DB)
        drop_database(target_cluster, TARGET_DB)
