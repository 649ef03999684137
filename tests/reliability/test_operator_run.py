"""Scenarios read from the shared operator's run (conftest.operator_run): a password login, ``-vvv``,
the data copy killed in the middle of a table, and the rerun with the same run id."""

from __future__ import annotations

import json

import psycopg2
from conftest import run_sql
from psycopg2 import sql

from reliability.conftest import BIG_SCHEMA, BIG_TABLE, OPERATOR_DATABASE
from reliability.harness import copied_tables, files_containing, files_under


def test_copy_killed_mid_table_then_rerun_resumes_and_verifies(operator_run, legacy, source_cluster, target_cluster):
    assert operator_run.killed.rc != 0
    assert operator_run.copying_when_killed > 0 and len(operator_run.copied_before_kill) >= 3
    # The table cut off mid-COPY was rolled back: nothing of it was committed.
    assert operator_run.big_rows_after_kill == 0
    assert (f"{legacy.prefix}_Notification", BIG_TABLE) not in operator_run.copied_before_kill

    resumed = operator_run.resumed
    assert resumed.rc == 0, resumed.output[-6000:]
    recorded = copied_tables(target_cluster, OPERATOR_DATABASE, operator_run.consolidation.run_dir())
    # Tables committed before the kill were kept, not copied again.
    assert {table: recorded[table] for table in operator_run.copied_before_kill} == operator_run.copied_before_kill
    assert (f"{legacy.prefix}_Notification", BIG_TABLE) in recorded

    report = json.loads((operator_run.consolidation.run_dir() / "verification.json").read_text())
    assert report["summary"]["passed"] is True
    rows_and_ids = sql.SQL('SELECT count(*), count(DISTINCT "Id") FROM {}')
    source_rows = run_sql(source_cluster, f"{legacy.prefix}_Notification",
                          rows_and_ids.format(sql.Identifier(BIG_TABLE)))[0]
    big_target = sql.SQL("{}.{}").format(sql.Identifier(BIG_SCHEMA), sql.Identifier(BIG_TABLE))
    target_rows = run_sql(target_cluster, OPERATOR_DATABASE, rows_and_ids.format(big_target))[0]
    assert target_rows == source_rows and source_rows[0] == source_rows[1]


def test_a_vvv_run_with_a_password_shows_it_nowhere(operator_run, source_cluster, target_cluster):
    secret = operator_run.password
    for run in (operator_run.killed, operator_run.resumed):
        assert secret not in run.output
        assert "ESTABLISH LOCAL CONNECTION" in run.output  # printed at -vvv only: the verbose run it claims to be
    written = files_under(operator_run.consolidation.run_root, operator_run.consolidation.backup_root)
    assert any(path.name == "verification.json" for path in written)
    assert files_containing(secret, written) == []
    assert files_containing(secret, [source_cluster.log_file, target_cluster.log_file]) == []
    assert operator_run.argv_samples > 20
    assert operator_run.argv_hits == []


def test_every_identity_serial_and_nextval_column_accepts_a_new_row(operator_run, target_cluster):
    assert operator_run.resumed.rc == 0
    conn = psycopg2.connect(**target_cluster.connect_kwargs(OPERATOR_DATABASE))
    try:
        with conn.cursor() as cur:
            cur.execute("""
                SELECT a.attrelid::regclass::text, c.relnamespace::regnamespace::text, c.relname,
                       array_agg(a.attname ORDER BY a.attnum) FILTER (WHERE a.attidentity <> ''
                                 OR pg_get_expr(d.adbin, d.adrelid) LIKE '%%nextval(%%'),
                       array_agg(a.attname ORDER BY a.attnum) FILTER (WHERE a.attidentity = '' AND a.attgenerated = ''
                                 AND coalesce(pg_get_expr(d.adbin, d.adrelid), '') NOT LIKE '%%nextval(%%')
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
                WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
                  AND c.relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema', '_consolidation')
                GROUP BY 1, 2, 3
                HAVING bool_or(a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE '%%nextval(%%')""")
            tables = cur.fetchall()
        assert tables, "no table with an identity, serial or nextval column: the scenario tests nothing"
        failures, inserted = {}, []
        for name, schema, table, _sequence_fed, others in tables:
            target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            columns = sql.SQL(", ").join(map(sql.Identifier, others or []))
            # A copy of an existing row with every sequence-fed column left to its default: a new row as the
            # application inserts it. Rolled back, so the table stays as the copy made it.
            with conn.cursor() as cur:
                try:
                    cur.execute(sql.SQL("INSERT INTO {t} ({c}) SELECT {c} FROM {t} LIMIT 1").format(t=target,
                                                                                                    c=columns))
                    if cur.rowcount:  # an empty table copied no value a sequence could be behind
                        inserted.append(name)
                except psycopg2.Error as exc:
                    failures[name] = str(exc).splitlines()[0]
                conn.rollback()
        assert failures == {}
        assert inserted, f"none of {[row[0] for row in tables]} holds a row to start from"
    finally:
        conn.close()


def test_nulls_against_not_null_are_quarantined_by_the_shipped_policy_and_verification_passes(
        operator_run, legacy, source_cluster, target_cluster):
    assert operator_run.resumed.rc == 0
    nulls = run_sql(source_cluster, f"{legacy.prefix}_Identity",
                    'SELECT count(*) FROM "UserClaims" WHERE "UserId" IS NULL')[0][0]
    assert nulls > 0, "the legacy fixture holds no NULL UserClaims.UserId: the scenario tests nothing"
    # The completed run dropped its state schema, keeping the quarantined rows for review in its run directory.
    run_dir = operator_run.consolidation.run_dir()
    quarantine = run_dir / "quarantined_rows.json"
    assert quarantine.stat().st_mode & 0o777 == 0o600
    kept = [row for row in json.loads(quarantine.read_text())["rows"] if row["source_table"] == "UserClaims"]
    assert len(kept) == nulls and all(row["row"]["UserId"] is None for row in kept)
    report = json.loads((run_dir / "verification.json").read_text())
    assert report["summary"]["passed"] is True
    [claims] = [row for row in report["tables"] if row["source_table"] == "UserClaims"]
    assert claims["ok"] and claims["source_rows"] == claims["target_rows"] + nulls
    assert claims["null_policy"]["columns"] == {"UserId": "quarantine"}
    assert claims["null_policy"]["quarantined_rows"] == nulls == len(claims["null_policy"]["quarantined_keys"])
    markdown = (run_dir / "verification.md").read_text()
    assert "## NULL policies" in markdown
    assert all(key in markdown for key in claims["null_policy"]["quarantined_keys"])
