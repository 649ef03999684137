"""data_copy and row_count_diff on what pg_dump creates in the target, against real PostgreSQL 15.

The legacy schema holds a declarative partition hierarchy of two levels with a default partition,
a legacy inheritance parent and child, triggers that would reject or change the copied rows (on the
partitioned table, so cloned onto its partitions, and on plain tables, in every firing mode),
materialized views built on each other through a view, a sequence a column default uses without
owning it and one no column uses, and row-level security. The target schema is built from the same
DDL under another name, materialized views WITH NO DATA, as a schema-only restore leaves them.
"""

from __future__ import annotations

import secrets

import psycopg2
import pytest
from conftest import drop_database, endpoint, execute, run_sql
from psycopg2 import sql

pytestmark = pytest.mark.integration

SOURCE_DB = "Kinds_Legacy"
TARGET_DB = "Kinds_Consolidated"
SCHEMA = "kinds"
RUN_ID = "kinds-1"
COPIER = "kinds_copier"

# Executed with the search_path set to the schema that receives the objects.
DDL = """
CREATE FUNCTION reject_row() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'trigger fired during the copy'; END$$;
CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW := jsonb_populate_record(NEW, jsonb_build_object('what', 'SHOUTED', 'title', 'SHOUTED'));
    RETURN NEW; END$$;

CREATE SEQUENCE ticket_numbers;
CREATE TABLE "Tickets" (id bigint PRIMARY KEY DEFAULT nextval('ticket_numbers'), title text);
CREATE SEQUENCE invoice_numbers START 1000;

CREATE TABLE "Events" (id bigint NOT NULL, at date NOT NULL, what text, ticket bigint REFERENCES "Tickets",
                       PRIMARY KEY (id, at))
  PARTITION BY RANGE (at);
CREATE TABLE "Events_2025" PARTITION OF "Events" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
  PARTITION BY RANGE (id);
CREATE TABLE "Events_2025_low" PARTITION OF "Events_2025" FOR VALUES FROM (0) TO (500);
CREATE TABLE "Events_2025_high" PARTITION OF "Events_2025" FOR VALUES FROM (500) TO (MAXVALUE);
CREATE TABLE "Events_2026" PARTITION OF "Events" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE "Events_other" PARTITION OF "Events" DEFAULT;
CREATE INDEX "Events_what" ON "Events" (what);

CREATE TABLE "Animals" (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE "Dogs" (breed text) INHERITS ("Animals");

CREATE TABLE "EventNotes" (event_id bigint NOT NULL, event_at date NOT NULL, note text,
                           FOREIGN KEY (event_id, event_at) REFERENCES "Events");

CREATE MATERIALIZED VIEW "EventCounts" AS
  SELECT date_part('year', at)::int AS year, count(*) AS n FROM "Events" GROUP BY 1 WITH NO DATA;
CREATE VIEW "EventYears" AS SELECT year, n FROM "EventCounts" WHERE n > 0;
CREATE MATERIALIZED VIEW "EventSummary" AS SELECT count(*) AS years, sum(n) AS events FROM "EventYears"
  WITH NO DATA;
CREATE MATERIALIZED VIEW "NeverFilled" AS SELECT count(*) AS n FROM "Animals" WITH NO DATA;
"""

# After the legacy rows went in: each would reject or change a row the copy writes.
TRIGGER_DDL = """
CREATE TRIGGER "Events_reject" BEFORE INSERT ON "Events" FOR EACH ROW EXECUTE FUNCTION reject_row();
CREATE TRIGGER "Events_shout" BEFORE INSERT ON "Events_2026" FOR EACH ROW EXECUTE FUNCTION shout();
ALTER TABLE "Events_2026" ENABLE ALWAYS TRIGGER "Events_shout";
CREATE TRIGGER "Animals_replica" BEFORE INSERT ON "Animals" FOR EACH ROW EXECUTE FUNCTION reject_row();
ALTER TABLE "Animals" ENABLE REPLICA TRIGGER "Animals_replica";
CREATE TRIGGER "Dogs_reject" BEFORE INSERT ON "Dogs" FOR EACH ROW EXECUTE FUNCTION reject_row();
CREATE TRIGGER "Tickets_shout" BEFORE INSERT ON "Tickets" FOR EACH ROW EXECUTE FUNCTION shout();
"""

DATA = """
INSERT INTO "Tickets" (title) SELECT 'ticket ' || g FROM generate_series(1, 25) g;
INSERT INTO "Events" SELECT g, DATE '2025-01-01' + (g % 700), 'event ' || g, 1 + g % 25
  FROM generate_series(1, 1200) g;
INSERT INTO "Events" VALUES (5000, '2030-05-01', 'far future', NULL), (5001, '2019-01-01', 'past', 3);
INSERT INTO "EventNotes" SELECT id, at, 'note' FROM "Events" WHERE id % 10 = 0;
INSERT INTO "Animals" SELECT g, 'animal ' || g FROM generate_series(1, 40) g;
INSERT INTO "Dogs" SELECT g, 'dog ' || g, 'breed ' || (g % 3) FROM generate_series(100, 129) g;
SELECT setval('invoice_numbers', 4321);
"""

TRIGGERS = ("SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT t.tgisinternal ORDER BY 1, 2")
LEAVES = ("Events_2025_low", "Events_2025_high", "Events_2026", "Events_other", "Animals", "Dogs", "Tickets",
          "EventNotes")


def connect(info, dbname, **login):
    conn = psycopg2.connect(**dict(info.connect_kwargs(dbname), **login))
    conn.autocommit = True
    return conn


def build(info, dbname, schema, data):
    with connect(info, dbname) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cur.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        cur.execute(DDL)
        if data:
            cur.execute(DATA)
            cur.execute('REFRESH MATERIALIZED VIEW "EventCounts"; REFRESH MATERIALIZED VIEW "EventSummary"')
        cur.execute(TRIGGER_DDL)
    conn.close()


def own_rows(info, dbname, schema, table):
    """The table's own rows (ONLY), as text, sorted: what must arrive in the same table of the target."""
    rows = run_sql(info, dbname, sql.SQL("SELECT t::text FROM ONLY {}.{} t ORDER BY 1").format(
        sql.Identifier(schema), sql.Identifier(table)))
    return [row[0] for row in rows]


@pytest.fixture
def kinds(source_cluster, target_cluster):
    for info, dbname in ((source_cluster, SOURCE_DB), (target_cluster, TARGET_DB)):
        drop_database(info, dbname)
        execute(info, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    build(source_cluster, SOURCE_DB, "public", data=True)
    build(target_cluster, TARGET_DB, SCHEMA, data=False)
    yield
    drop_database(source_cluster, SOURCE_DB)
    drop_database(target_cluster, TARGET_DB)


def copy_args(source_cluster, target_cluster, **extra):
    return dict(dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=TARGET_DB,
                     run_id=RUN_ID, parallel=2,
                     modules=[{"name": "Kinds", "source_database": SOURCE_DB, "schema": SCHEMA}]), **extra)


def verify_args(source_cluster, target_cluster, **extra):
    return dict(dict(source=endpoint(source_cluster), target=endpoint(target_cluster), target_database=TARGET_DB,
                     run_id=RUN_ID, checksum=True, fail_on_mismatch=False,
                     modules=[{"name": "Kinds", "source_database": SOURCE_DB, "schema": SCHEMA}]), **extra)


def by_table(result):
    return dict((row["target_table"], row) for row in result["tables"])


def test_partitions_inheritance_triggers_views_and_sequences(run_module, source_cluster, target_cluster, kinds):
    triggers_before = run_sql(target_cluster, TARGET_DB, TRIGGERS, (SCHEMA,))

    planned = run_module("data_copy", copy_args(source_cluster, target_cluster), check=True)
    assert not planned["failed"], planned.get("msg")
    planned_tables = by_table(planned)
    # Every leaf is a table of its own, named with its parent; the partitioned tables hold no rows to copy.
    assert set(planned_tables) == set(LEAVES)
    assert planned_tables["Events_2025_low"]["partition_of"] == "Events_2025"
    assert planned_tables["Events_other"]["partition_of"] == "Events"
    assert planned_tables["Dogs"]["partition_of"] is None
    assert planned_tables["Animals"]["rows"] == 40  # its own rows, not its child's too
    assert [(entry["name"], entry["action"]) for entry in planned["materialized_views"]] == [
        ("EventCounts", "would_refresh"), ("EventSummary", "would_refresh")]
    assert 'REFRESH MATERIALIZED VIEW "kinds"."EventCounts"' in planned["queries"]
    # Check mode changed nothing.
    assert run_sql(target_cluster, TARGET_DB, "SELECT count(*) FROM kinds.\"Events\"") == [(0,)]
    assert run_sql(target_cluster, TARGET_DB, "SELECT bool_or(relispopulated) FROM pg_class WHERE relkind = 'm'") \
        == [(False,)]

    result = run_module("data_copy", copy_args(source_cluster, target_cluster))
    assert not result["failed"], result.get("msg")
    for table in LEAVES:
        assert own_rows(target_cluster, TARGET_DB, SCHEMA, table) == own_rows(source_cluster, SOURCE_DB, "public",
                                                                              table), table
    # Neither the rejecting triggers nor the ALWAYS one that upper-cases fired; all are back as they were.
    for table in ("Events", "Tickets"):
        assert run_sql(target_cluster, TARGET_DB, sql.SQL("SELECT count(*) FROM kinds.{} t WHERE t::text LIKE "
                                                          "'%SHOUTED%'").format(sql.Identifier(table))) == [(0,)]
    assert run_sql(target_cluster, TARGET_DB, TRIGGERS, (SCHEMA,)) == triggers_before
    # The foreign keys of and to the partitioned table came off for the load and are back, valid.
    restored = sorted((entry["target_table"], entry["name"]) for entry in result["deferred"]
                      if entry["kind"] == "foreign_key" and entry["action"] == "restored")
    assert restored == [("EventNotes", "EventNotes_event_id_event_at_fkey"), ("Events", "Events_ticket_fkey")]
    assert run_sql(target_cluster, TARGET_DB, "SELECT conrelid::regclass::text, convalidated FROM pg_constraint "
                                              "WHERE contype = 'f' AND conparentid = 0 ORDER BY 1") == [
        ('kinds."EventNotes"', True), ('kinds."Events"', True)]
    disabled = [entry["name"] for entry in result["deferred"] if entry["action"] == "disabled_during_copy"]
    assert disabled.count("Events_reject") == 4 and "Events_shout" in disabled and "Animals_replica" in disabled

    # Materialized views: populated in the source -> refreshed, in dependency order; equal to the source's.
    assert [(entry["name"], entry["action"]) for entry in result["materialized_views"]] == [
        ("EventCounts", "refreshed"), ("EventSummary", "refreshed")]
    for view in ("EventCounts", "EventSummary"):
        statement = sql.SQL("SELECT t::text FROM {}.{} t ORDER BY 1")
        assert run_sql(target_cluster, TARGET_DB, statement.format(sql.Identifier(SCHEMA), sql.Identifier(view))) \
            == run_sql(source_cluster, SOURCE_DB, statement.format(sql.Identifier("public"), sql.Identifier(view))), \
            view
    assert run_sql(target_cluster, TARGET_DB, "SELECT relispopulated FROM pg_class WHERE relname = 'NeverFilled'") \
        == [(False,)]

    # A default that uses a sequence it does not own, and a sequence no column uses, both continue.
    new_id = run_sql(target_cluster, TARGET_DB, "INSERT INTO kinds.\"Tickets\" (title) VALUES ('new') RETURNING id")
    assert new_id[0][0] > 25
    run_sql(target_cluster, TARGET_DB, "DELETE FROM kinds.\"Tickets\" WHERE id = %s", (new_id[0][0],))
    assert run_sql(target_cluster, TARGET_DB, "SELECT nextval('kinds.invoice_numbers')") == [(4322,)]
    assert any(entry["target_sequence"] == "kinds.invoice_numbers" and entry["setval"] == [4321, True]
               for entry in result["sequences"])
    run_sql(target_cluster, TARGET_DB, "SELECT setval('kinds.invoice_numbers', 4321)")

    # The verification compares every leaf on its own; the partitioned tables hold no rows of their own.
    verified = run_module("row_count_diff", verify_args(source_cluster, target_cluster))
    assert not verified["failed"], verified.get("msg")
    assert verified["summary"]["passed"], verified["table_text"]
    rows = by_table(verified)
    assert rows["Events"]["partitioned"] and rows["Events"]["source_rows"] == rows["Events"]["target_rows"] == 0
    assert rows["Events_2025"]["partitioned"] and rows["Events_2025"]["partition_of"] == "Events"
    assert rows["Events_2025_high"]["partition_of"] == "Events_2025" and rows["Events_2025_high"]["target_rows"] > 0
    assert rows["Animals"]["target_rows"] == 40 and rows["Dogs"]["target_rows"] == 30
    assert sum(row["source_rows"] for row in verified["tables"]) == 1202 + 40 + 30 + 25 + 121
    assert [entry["state"] for entry in verified["sequences"] if entry["sequence"] == "invoice_numbers"] == ["ok"]

    # A sequence no column uses that stands behind its legacy one fails the verification.
    run_sql(target_cluster, TARGET_DB, "SELECT setval('kinds.invoice_numbers', 10)")
    behind = run_module("row_count_diff", verify_args(source_cluster, target_cluster))
    assert not behind["summary"]["passed"]
    assert [entry["state"] for entry in behind["sequences"] if entry["sequence"] == "invoice_numbers"] == ["behind"]
    run_sql(target_cluster, TARGET_DB, "SELECT setval('kinds.invoice_numbers', 4321)")

    # A rerun copies nothing and refreshes nothing: the views are populated and no table changed.
    rerun = run_module("data_copy", copy_args(source_cluster, target_cluster))
    assert not rerun["failed"] and not rerun["changed"], rerun.get("msg")
    assert [entry["action"] for entry in rerun["materialized_views"]] == ["unchanged", "unchanged"]


def test_rows_in_the_wrong_partition_or_table_and_a_missing_leaf_fail(run_module, source_cluster, target_cluster,
                                                                      kinds):
    assert not run_module("data_copy", copy_args(source_cluster, target_cluster))["failed"]
    assert run_module("row_count_diff", verify_args(source_cluster, target_cluster))["summary"]["passed"]
    run_sql(target_cluster, TARGET_DB, 'DROP TRIGGER "Events_reject" ON kinds."Events"; ALTER TABLE kinds."EventNotes" '
                                       'DROP CONSTRAINT "EventNotes_event_id_event_at_fkey"')
    # Same rows in the partitioned table as a whole, in the wrong leaf: the 2026 rows now sit in the default one.
    run_sql(target_cluster, TARGET_DB, 'ALTER TABLE kinds."Events" DETACH PARTITION kinds."Events_2026";'
                                       'INSERT INTO kinds."Events" SELECT * FROM kinds."Events_2026";'
                                       'TRUNCATE kinds."Events_2026"')
    # An inheritance child's row moved into its parent: the same rows counting both tables.
    run_sql(target_cluster, TARGET_DB, 'INSERT INTO kinds."Animals" SELECT id, name FROM kinds."Dogs" '
                                       'WHERE id = 100; DELETE FROM kinds."Dogs" WHERE id = 100')
    moved = run_module("row_count_diff", verify_args(source_cluster, target_cluster))
    assert not moved["summary"]["passed"]
    rows = by_table(moved)
    assert rows["Events_2026"]["state"] == "mismatch" and rows["Events_other"]["state"] == "mismatch"
    assert rows["Animals"]["state"] == "mismatch" and rows["Dogs"]["state"] == "mismatch"
    assert rows["Events"]["state"] == "match"

    run_sql(target_cluster, TARGET_DB, 'DROP TABLE kinds."Events_2025_low"')
    missing = run_module("row_count_diff", verify_args(source_cluster, target_cluster))
    assert by_table(missing)["Events_2025_low"]["state"] == "missing" and not missing["summary"]["passed"]


# -- row-level security -------------------------------------------------------------------------------

@pytest.fixture
def secrets_table(source_cluster, target_cluster, kinds):
    """A legacy table under forced RLS whose policy hides half the rows, owned by the copy's source role."""
    password = secrets.token_urlsafe(16)
    execute(source_cluster, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(COPIER)))
    execute(source_cluster, sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER PASSWORD %s").format(sql.Identifier(COPIER)),
            params=(password,))
    for info, dbname, schema in ((source_cluster, SOURCE_DB, "public"), (target_cluster, TARGET_DB, SCHEMA)):
        run_sql(info, dbname, sql.SQL(
            "CREATE TABLE {0}.\"Secrets\" (id int PRIMARY KEY, owner_name text);"
            "ALTER TABLE {0}.\"Secrets\" ENABLE ROW LEVEL SECURITY;"
            "ALTER TABLE {0}.\"Secrets\" FORCE ROW LEVEL SECURITY;"
            "CREATE POLICY own ON {0}.\"Secrets\" USING (id % 2 = 0)").format(sql.Identifier(schema)))
    run_sql(source_cluster, SOURCE_DB, "INSERT INTO \"Secrets\" SELECT g, 'user ' || g FROM generate_series(1, 50) g")
    run_sql(source_cluster, SOURCE_DB, sql.SQL(
        "ALTER TABLE \"Secrets\" OWNER TO {0}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {0};"
        "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {0}").format(sql.Identifier(COPIER)))
    source = dict(endpoint(source_cluster), user=COPIER, password=password)
    del source["passfile"]
    yield source
    drop_database(source_cluster, SOURCE_DB)
    execute(source_cluster, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(COPIER)))


def test_row_level_security_is_refused_before_anything_changes_then_bypassed(run_module, source_cluster, target_cluster,
                                                                             secrets_table):
    args = copy_args(source_cluster, target_cluster, source=secrets_table)
    for check in (True, False):
        refused = run_module("data_copy", args, check=check)
        assert refused["failed"]
        assert ('Kinds_Legacy:public."Secrets": row-level security is enabled and forced on the source table and '
                'role kinds_copier is subject to its policies') in refused["msg"]
        assert "ALTER ROLE kinds_copier BYPASSRLS" in refused["msg"]
    assert run_sql(target_cluster, TARGET_DB, "SELECT count(*) FROM pg_namespace WHERE nspname = '_consolidation'") \
        == [(0,)]
    assert run_sql(target_cluster, TARGET_DB, 'SELECT count(*) FROM kinds."Tickets"') == [(0,)]

    # The verification as that role must not count the visible half and pass: the table is an error.
    run_module("data_copy", copy_args(source_cluster, target_cluster))  # as the superuser: every row
    hidden = run_module("row_count_diff", verify_args(source_cluster, target_cluster, source=secrets_table))
    assert not hidden["summary"]["passed"]
    row = by_table(hidden)["Secrets"]
    assert row["state"] == "error" and "row-level security" in " ".join(row["reasons"]), row

    execute(source_cluster, sql.SQL("ALTER ROLE {} BYPASSRLS").format(sql.Identifier(COPIER)))
    copied = run_module("data_copy", dict(args, run_id="kinds-2", truncate=True))
    assert not copied["failed"], copied.get("msg")
    assert by_table(copied)["Secrets"]["rows"] == 50
    assert run_sql(target_cluster, TARGET_DB, 'SELECT count(*) FROM kinds."Secrets"') == [(50,)]
    verified = run_module("row_count_diff", verify_args(source_cluster, target_cluster, source=secrets_table,
                                                        run_id="kinds-2"))
    assert verified["summary"]["passed"], verified["table_text"]
    assert by_table(verified)["Secrets"]["source_rows"] == 50
    # RLS is still on, and forced, in the target.
    assert run_sql(target_cluster, TARGET_DB, "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                                              "WHERE relname = 'Secrets'") == [(True, True)]


def test_a_plain_legacy_table_loads_into_a_partitioned_target_and_verifies_as_a_whole(
        run_module, source_cluster, target_cluster, kinds):
    """A migrator may partition a table the legacy schema kept plain: its rows are routed, compared as a whole."""
    run_sql(source_cluster, SOURCE_DB, 'CREATE TABLE "Readings" (id int PRIMARY KEY, at date NOT NULL);'
                                       "INSERT INTO \"Readings\" SELECT g, DATE '2025-06-01' + g FROM "
                                       "generate_series(1, 400) g")
    run_sql(target_cluster, TARGET_DB, 'CREATE TABLE kinds."Readings" (id int, at date NOT NULL, PRIMARY KEY (id, at))'
                                       ' PARTITION BY RANGE (at);'
                                       'CREATE TABLE kinds."Readings_2025" PARTITION OF kinds."Readings" '
                                       "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
                                       'CREATE TABLE kinds."Readings_later" PARTITION OF kinds."Readings" DEFAULT;'
                                       'INSERT INTO kinds."Readings" VALUES (1, \'2020-01-01\')')
    args = copy_args(source_cluster, target_cluster, modules=[{
        "name": "Kinds", "source_database": SOURCE_DB, "schema": SCHEMA, "tables": {"Readings": {"truncate": True}}}])
    result = run_module("data_copy", args)
    assert not result["failed"], result.get("msg")
    assert by_table(result)["Readings"]["rows"] == 400
    assert run_sql(target_cluster, TARGET_DB, 'SELECT tableoid::regclass::text, count(*) FROM kinds."Readings" '
                                              "GROUP BY 1 ORDER BY 1") == [
        ('kinds."Readings_2025"', 213), ('kinds."Readings_later"', 187)]
    verified = run_module("row_count_diff", verify_args(source_cluster, target_cluster))
    assert verified["summary"]["passed"], verified["table_text"]
    assert by_table(verified)["Readings"]["target_rows"] == 400 and "Readings_2025" not in by_table(verified)
    run_sql(target_cluster, TARGET_DB, 'DELETE FROM kinds."Readings_later" WHERE id = 400')
    assert by_table(run_module("row_count_diff", verify_args(source_cluster, target_cluster)))["Readings"][
        "state"] == "mismatch"


def test_a_partitioned_legacy_table_onto_a_plain_target_table_is_refused_before_anything_changes(
        run_module, source_cluster, target_cluster, kinds):
    run_sql(target_cluster, TARGET_DB, 'DROP TABLE kinds."Events" CASCADE;'
                                       'CREATE TABLE kinds."Events" (id bigint, at date, what text, ticket bigint)')
    for check in (True, False):
        refused = run_module("data_copy", copy_args(source_cluster, target_cluster), check=check)
        assert refused["failed"]
        assert ('Kinds_Legacy:public."Events" is partitioned in the source but a plain table in the target'
                in refused["msg"]), refused["msg"]
    assert run_sql(target_cluster, TARGET_DB, "SELECT count(*) FROM pg_namespace WHERE nspname = '_consolidation'") \
        == [(0,)]


def test_a_foreign_key_to_a_partitioned_table_from_a_table_not_loaded_comes_off_and_back(
        run_module, source_cluster, target_cluster, kinds):
    """TRUNCATE of a partition is refused while another table's key references its partitioned table."""
    result = run_module("data_copy", copy_args(source_cluster, target_cluster,
                                               exclude_tables=["__EFMigrationsHistory", "EventNotes"]))
    assert not result["failed"], result.get("msg")
    assert ("EventNotes", "EventNotes_event_id_event_at_fkey", "restored") in [
        (entry["target_table"], entry["name"], entry["action"]) for entry in result["deferred"]]
    assert run_sql(target_cluster, TARGET_DB, "SELECT convalidated FROM pg_constraint WHERE conname = "
                                              "'EventNotes_event_id_event_at_fkey' AND conparentid = 0") == [(True,)]
