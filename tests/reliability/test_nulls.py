"""NULLs in a legacy column that the application's migration makes NOT NULL, with the mapping's policy
``fail``: refused before any row is copied, with the count and a few keys, never the rows themselves.
(The shipped policy, quarantine, is the operator's run: test_operator_run.py.)"""

from __future__ import annotations

import copy

from conftest import run_sql

from reliability.harness import copied_tables


def test_nulls_against_not_null_are_refused_before_the_copy_with_counts_when_the_policy_is_fail(
        consolidation, legacy, source_cluster, target_cluster):
    identity_db = f"{legacy.prefix}_Identity"
    nulls = run_sql(source_cluster, identity_db, 'SELECT count(*) FROM "UserClaims" WHERE "UserId" IS NULL')[0][0]
    assert nulls > 0, "the legacy fixture holds no NULL UserClaims.UserId: the scenario tests nothing"
    run = consolidation("NullsFail", modules=["Identity"])
    modules = copy.deepcopy(run.vars["consolidation_modules"])
    modules[0]["tables"]["UserClaims"]["columns"]["UserId"]["on_null"] = "fail"
    values = [row[0] for row in run_sql(source_cluster, identity_db,
                                        'SELECT "Value" FROM "UserClaims" WHERE "UserId" IS NULL')]

    done = run.play(expect_rc=2, consolidation_modules=modules)
    counted = f"{nulls} NULL{'' if nulls == 1 else 's'}"
    assert 'identity."UserClaims"' in done.output, done.output[-4000:]
    assert f'NULL in column(s) \\"UserId\\" ({counted}, e.g. Id=' in done.output
    assert "nothing was copied" in done.output and "on_null: default|quarantine" in done.output
    assert not any(value and value in done.output for value in values)  # no row contents
    # Refused before any row moved: nothing recorded as copied, every module table empty.
    assert copied_tables(target_cluster, run.target_database) == {}
    for (table,) in run_sql(target_cluster, run.target_database, "SELECT format('%I.%I', table_schema, table_name) "
                                                                 "FROM information_schema.tables WHERE table_schema "
                                                                 "= 'identity' AND table_type = 'BASE TABLE'"):
        rows = run_sql(target_cluster, run.target_database, f"SELECT count(*) FROM {table}")[0][0]
        assert rows == 0 or table == 'identity."Users"', (table, rows)  # Users: the migrator's seed rows
