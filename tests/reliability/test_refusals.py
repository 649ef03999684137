"""Scenarios where consolidate.yml must refuse, and refuse before it changes what it must not."""

from __future__ import annotations

import secrets
import textwrap

import pytest
from conftest import consolidation_vars, endpoint, execute, run_sql
from devkit import migrator as standin_migrator
from devkit.pgembed import free_port
from psycopg2 import sql

from reliability.harness import copied_tables, files_under, kill, processes_with_environment

NOBODY = "rel_nobody"


def databases(info):
    return {row[0] for row in execute(info, "SELECT datname FROM pg_database")}


@pytest.fixture(scope="module")
def nobody(source_cluster, target_cluster):
    """A login role with a password and no privilege beyond PUBLIC's (no CREATEDB, no SELECT on any table)."""
    password = "Nobody-" + secrets.token_hex(8)
    for info in (source_cluster, target_cluster):
        execute(info, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(NOBODY), sql.Literal(password)))
    yield password
    for info in (source_cluster, target_cluster):
        execute(info, sql.SQL("DROP ROLE {}").format(sql.Identifier(NOBODY)))


def _as(info, user, password):
    return {"host": info.host, "port": info.port, "user": user, "password": password, "sslmode": "disable"}


def _wrong_password(source, target, legacy, password):
    return {"consolidation_source": _as(source, source.user, "wrong-" + password)}


def _closed_port(source, target, legacy, password):
    return {"consolidation_target": dict(endpoint(target), port=free_port())}


def _missing_database(source, target, legacy, password):
    modules = consolidation_vars(source, target, "/", None, legacy.prefix)["consolidation_modules"]
    modules[2]["source_database"] = f"{legacy.prefix}_Storge"  # one mistyped name among six
    return {"consolidation_modules": modules}


def _no_select(source, target, legacy, password):
    return {"consolidation_source": _as(source, NOBODY, password)}


def _no_createdb(source, target, legacy, password):
    return {"consolidation_target": _as(target, NOBODY, password)}


@pytest.mark.parametrize(("make_vars", "expected"), [
    pytest.param(_wrong_password, ["cannot connect to the source server", "password authentication failed"],
                 id="wrong-password-source"),
    pytest.param(_closed_port, ["cannot connect to the target server", "Connection refused"],
                 id="unreachable-target"),
    pytest.param(_missing_database, ["legacy database(s) not found on the source server: Rel_Storge"],
                 id="missing-legacy-database"),
    pytest.param(_no_select, ["the source role cannot SELECT from Rel_"], id="no-select-on-source"),
    pytest.param(_no_createdb, ["the target database does not exist and the target role rel_nobody may not create "
                                "databases (needs CREATEDB)"], id="no-createdb-on-target"),
])
def test_preflight_names_side_and_cause_before_any_change(make_vars, expected, consolidation, legacy, nobody,
                                                          source_cluster, target_cluster):
    run = consolidation("Preflight", **make_vars(source_cluster, target_cluster, legacy, nobody))
    before = databases(source_cluster), databases(target_cluster)
    done = run.play(expect_rc=2)
    for phrase in expected:
        assert phrase in done.output, done.output[-4000:]
    assert nobody not in done.output
    assert (databases(source_cluster), databases(target_cluster)) == before
    assert not run.run_root.exists() and not run.backup_root.exists()


def target_tables(info, database):
    """{schema.table: row count} of every table in ``database`` outside the copy's state schema."""
    found = {}
    for schema, table in run_sql(info, database, "SELECT table_schema, table_name FROM information_schema.tables "
                                                 "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                                                 "('pg_catalog', 'information_schema', '_consolidation')"):
        found[f"{schema}.{table}"] = run_sql(info, database, sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)))[0][0]
    return found


def test_target_table_holding_unrelated_rows_is_refused_before_copying(consolidation, target_cluster):
    run = consolidation("Unrelated", modules=["Product"])
    # The consolidated database is already in use: migrated, and the application has written a product.
    standin_migrator.migrate(target_cluster.connect_kwargs(run.target_database), log=lambda line: None)
    # A table the mapping does not allow to be emptied (unlike the migrator's seeded ones).
    run_sql(target_cluster, run.target_database,
            'INSERT INTO product."AuditLogEntries" ("UserId", "Action", "CreatedDateTime") '
            "VALUES (gen_random_uuid(), 'UNRELATED-1', now())")
    before = target_tables(target_cluster, run.target_database)

    done = run.play(expect_rc=2)
    assert 'product."AuditLogEntries"' in done.output, done.output[-4000:]
    assert "truncate" in done.output
    assert target_tables(target_cluster, run.target_database) == before
    assert run_sql(target_cluster, run.target_database,
                   'SELECT "Action" FROM product."AuditLogEntries"') == [("UNRELATED-1",)]


def _migrator_script(tmp_path, body):
    script = tmp_path / f"migrator-{secrets.token_hex(4)}.sh"
    script.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


def _assert_nothing_copied(info, database):
    assert target_tables(info, database) == {}
    # The state schema may exist (the run's lease is there since step 2), but records no copied table.
    assert copied_tables(info, database) == {}


def test_a_failing_migrator_fails_the_run_with_its_log_tail_and_nothing_is_copied(
        consolidation, target_cluster, tmp_path):
    script = _migrator_script(tmp_path, """\
        for step in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do
            echo "applying migration $step"
        done
        echo "Unhandled exception: relation ProductsX does not exist" >&2
        exit 1
        """)
    run = consolidation("MigratorFails", modules=["Product"], migrator_command=["/bin/sh", str(script)])
    done = run.play(expect_rc=2)
    assert "the migrator failed with exit status 1" in done.output, done.output[-4000:]
    assert "Unhandled exception: relation ProductsX does not exist" in done.output
    assert "applying migration 30" in done.output
    assert "Unhandled exception" in (run.run_dir() / "migrator.log").read_text()
    _assert_nothing_copied(target_cluster, run.target_database)


def test_a_hanging_migrator_is_stopped_at_its_timeout_with_its_log_tail_and_nothing_is_copied(
        consolidation, target_cluster, tmp_path):
    script = _migrator_script(tmp_path, """\
        echo "run $RELIABILITY_RUN waiting for a lock on __EFMigrationsHistory"
        exec sleep 300
        """)
    run = consolidation("MigratorHangs", modules=["Product"], migrator_command=["/bin/sh", str(script)],
                        migrator_timeout=3)
    try:
        done = run.play(expect_rc=2, timeout=120)
        # Its log tail, which also shows that the play's environment reached it.
        assert f"run {run.marker.split('=')[1]} waiting for a lock" in done.output, done.output[-4000:]
        assert "the migrator did not finish within 3 s and was killed" in done.output
        _assert_nothing_copied(target_cluster, run.target_database)
        # Nothing that inherited the play's environment still runs.
        assert processes_with_environment(run.marker) == []
    finally:
        kill(processes_with_environment(run.marker))


def test_a_backup_root_that_is_a_file_fails_before_anything_is_written(consolidation, target_cluster, tmp_path):
    blocker = tmp_path / "backups"
    blocker.write_text("the backup volume is not mounted\n")
    run = consolidation("BackupRoot", modules=["Product"], consolidation_backup_root=str(blocker))
    done = run.play(expect_rc=2)
    assert f"{blocker} is not a directory" in done.output, done.output[-4000:]
    assert not run.run_root.exists()
    assert blocker.read_text() == "the backup volume is not mounted\n"
    assert run.target_database not in databases(target_cluster)


def test_a_backup_root_too_small_fails_before_anything_is_written(consolidation, target_cluster):
    # No filesystem of a chosen size can be mounted here: a margin no disk can meet stands for a full one.
    run = consolidation("BackupSpace", modules=["Product"], backup_space_factor=1e12)
    done = run.play(expect_rc=2)
    assert "The backup set needs" in done.output and "are free" in done.output, done.output[-4000:]
    assert not run.run_root.exists() and files_under(run.backup_root) == []
    assert run.target_database not in databases(target_cluster)


def test_preflight_names_a_legacy_database_the_source_role_may_not_connect_to_and_the_grant(
        consolidation, legacy, nobody, source_cluster, target_cluster):
    locked = f"{legacy.prefix}_Configuration"
    run = consolidation("NoConnect", consolidation_source=_as(source_cluster, NOBODY, nobody))
    execute(source_cluster, sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(locked)))
    try:
        before = databases(source_cluster), databases(target_cluster)
        done = run.play(expect_rc=2)
    finally:
        execute(source_cluster, sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(sql.Identifier(locked)))
    assert (f"the source role {NOBODY} may not connect to the legacy database {locked}: GRANT CONNECT ON DATABASE "
            f'\\"{locked}\\" TO {NOBODY}') in done.output, done.output[-4000:]
    # Only that database: the others are open to PUBLIC.
    assert done.output.count("may not connect to the legacy database") == done.output.count(
        f"may not connect to the legacy database {locked}")
    assert nobody not in done.output
    assert (databases(source_cluster), databases(target_cluster)) == before
    assert not run.run_root.exists() and not run.backup_root.exists()


def test_a_hanging_migrator_whose_work_runs_in_a_child_is_killed_with_its_children(
        consolidation, target_cluster, tmp_path):
    # A wrapper (dotnet run, a script, a docker compose client) whose work runs in a process it started.
    script = _migrator_script(tmp_path, """\
        echo "wrapper starting the migrator"
        sleep 300
        echo "never printed"
        """)
    run = consolidation("MigratorChild", modules=["Product"], migrator_command=["/bin/sh", str(script)],
                        migrator_timeout=3)
    try:
        done = run.play(expect_rc=2, timeout=120)
        assert "the migrator did not finish within 3 s and was killed" in done.output, done.output[-4000:]
        assert "wrapper starting the migrator" in done.output
        _assert_nothing_copied(target_cluster, run.target_database)
        assert processes_with_environment(run.marker) == []
    finally:
        kill(processes_with_environment(run.marker))
