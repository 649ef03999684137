"""consolidate.yml end to end on two real servers: the plan, the run, the rerun, the outcome.

The legacy databases (real ClassifiedAds tables, generated rows, mixed-case
names) live on ``source_cluster``; the consolidated database goes to
``target_cluster``, a different server, as in a move to new hardware.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
from conftest import REPO, consolidation_vars, drop_database, endpoint, last_task
from conftest import run_sql as query
from constants import MODULE_SCHEMAS as MODULES
from devkit import legacy
from psycopg2 import sql

PREFIX = "E2E"
TARGET_DB = "E2E_Consolidated"


def server_snapshot(info):
    """Every database's catalog (schemas, relations, constraints) and every table's exact row count."""
    snapshot = {}
    databases = [row[0] for row in query(info, "postgres", "SELECT datname FROM pg_database WHERE datallowconn "
                                                           "AND NOT datistemplate ORDER BY 1")]
    for database in databases:
        conn = psycopg2.connect(**info.connect_kwargs(database))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', "
                            "'pg_toast') ORDER BY 1, 2")
                relations = cur.fetchall()
                cur.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE connamespace NOT IN ('pg_catalog'::regnamespace, "
                            "'information_schema'::regnamespace) ORDER BY 1, 2")
                constraints = cur.fetchall()
                counts = {}
                for schema, name, kind in relations:
                    if kind == "r":
                        cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema),
                                                                                 sql.Identifier(name)))
                        counts[f"{schema}.{name}"] = cur.fetchone()[0]
        finally:
            conn.close()
        snapshot[database] = {"relations": relations, "constraints": constraints, "counts": counts}
    return snapshot


def fence_settings(info):
    """``{legacy database: its own settings}`` of every legacy database that has any (the write fence's catalog)."""
    return dict(query(info, "postgres", "SELECT d.datname, s.setconfig FROM pg_db_role_setting s JOIN pg_database d "
                                        "ON d.oid = s.setdatabase WHERE s.setrole = 0 AND d.datname LIKE %s",
                      (PREFIX + "\\_%",)))


def task_results(output):
    """``[(task name, [result word per host or item])]`` in the order the play printed them, up to its recap."""
    tasks = []
    for block in re.split(r"\n(?=TASK \[)", output.split("PLAY RECAP", 1)[0]):
        banner = re.match(r"TASK \[(.*?)\] \*", block)
        if banner:
            words = re.findall(r"^(ok|changed|skipping|fatal|failed|included):", block, re.MULTILINE)
            tasks.append((banner.group(1), words))
    return tasks


def longest_skipped_stretch(output):
    """The most tasks in a row that printed nothing but skipped lines: the wall an operator scrolls through."""
    longest = current = 0
    for _name, words in task_results(output):
        current = current + 1 if words and set(words) == {"skipping"} else 0
        longest = max(longest, current)
    return longest


@pytest.fixture(scope="module")
def legacy_e2e(source_cluster):
    legacy.create(source_cluster, 0.02, prefix=PREFIX, out=lambda line: None)
    yield
    legacy.drop(source_cluster, prefix=PREFIX)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, source_cluster, target_cluster):
    root = tmp_path_factory.mktemp("e2e")
    extra = dict(consolidation_vars(source_cluster, target_cluster, root, TARGET_DB, PREFIX), verify_checksum=True)
    # As on a fresh controller: neither the backup root nor its parent exists yet, for --check nor for the run.
    extra["consolidation_backup_root"] = str(root / "volumes" / "backups")
    assert [module["source_database"] for module in extra["consolidation_modules"]] == [
        f"{PREFIX}_{name}" for name, _schema in MODULES]
    return {"root": root, "vars": extra}


@pytest.fixture(scope="module")
def consolidate(run_playbook):
    """consolidate.yml with a workspace's variables: (output, changed tasks)."""

    def run(workspace, *args):
        done = run_playbook("classifiedads.consolidation.consolidate", *args, variables=workspace["vars"])
        return done.output, done.changed

    return run


@pytest.fixture(scope="module")
def consolidated(legacy_e2e, workspace, source_cluster, target_cluster, consolidate):
    """Check mode first (nothing may change on either server), then the real run."""
    before = (server_snapshot(source_cluster), server_snapshot(target_cluster))
    check_output = consolidate(workspace, "--check")[0]
    after = (server_snapshot(source_cluster), server_snapshot(target_cluster))
    files_after_check = sorted(str(path) for path in workspace["root"].rglob("*") if path.name != "vars.json")
    fence_after_check = fence_settings(source_cluster)
    output, changed = consolidate(workspace)
    return {"before": before, "check_output": check_output, "check_after": after, "output": output,
            "changed": changed, "files_after_check": files_after_check, "fence_after_check": fence_after_check}


def test_check_mode_is_the_plan_and_changes_nothing(consolidated, workspace):
    assert consolidated["check_after"] == consolidated["before"]
    assert consolidated["files_after_check"] == []  # the backup root's missing parent included
    assert f"{PREFIX}_Product" in consolidated["check_output"]
    assert f"Check mode, write fence: would be fenced: {PREFIX}_Product, {PREFIX}_Identity" in consolidated[
        "check_output"]
    assert consolidated["fence_after_check"] == {}


def test_run_consolidates_and_verifies(consolidated, target_cluster, workspace):
    assert consolidated["changed"] > 0
    latest = (workspace["root"] / "runs" / "latest").read_text().strip()
    report = json.loads((workspace["root"] / "runs" / latest / "verification.json").read_text())
    assert report["summary"]["passed"] is True
    assert report["fence"] == {"mode": "read_only", "reason": None}
    schemas = {row[0] for row in query(target_cluster, TARGET_DB, "SELECT nspname FROM pg_namespace")}
    assert {schema for _name, schema in MODULES} <= schemas


def quarantined_rows(workspace):
    """The rows a NULL policy kept out, as the completed run exported them from its dropped state schema."""
    latest = (workspace["root"] / "runs" / "latest").read_text().strip()
    return json.loads((workspace["root"] / "runs" / latest / "quarantined_rows.json").read_text())["rows"]


def test_every_table_matches_the_legacy_source(consolidated, source_cluster, target_cluster, workspace):
    source_snapshot = consolidated["before"][0]
    target = server_snapshot(target_cluster)[TARGET_DB]["counts"]
    quarantined = {}
    for row in quarantined_rows(workspace):
        quarantined[row["source_table"]] = quarantined.get(row["source_table"], 0) + 1
    for name, schema in MODULES:
        for table, count in source_snapshot[f"{PREFIX}_{name}"]["counts"].items():
            table_name = table.split(".", 1)[1]
            if table_name == "__EFMigrationsHistory":
                continue
            destination = "public" if table_name in ("schemaversions", "CacheEntries") else schema
            assert target[f"{destination}.{table_name}"] + quarantined.get(table_name, 0) == count, table


def test_null_shadow_keys_are_found_before_the_copy_and_quarantined_by_the_defaults(consolidated, source_cluster,
                                                                                    target_cluster, workspace):
    """The quirky legacy Identity database holds claims whose shadow key is NULL; the shipped defaults quarantine
    them: --check already names them, the run copies the rest, keeps them in the state schema (exported to the run
    directory when the run completes), restores the foreign keys validated, and the verification passes listing
    every quarantined key."""
    notes = ['identity.\\"UserClaims\\".\\"UserId\\": 1 NULL -> quarantined (policy)',
             'identity.\\"RoleClaims\\".\\"RoleId\\": 2 NULLs -> quarantined (policy)']
    for output in (consolidated["check_output"], consolidated["output"]):
        for note in notes:
            assert note in output, output[-4000:]
    legacy_nulls = [row[0] for row in query(source_cluster, f"{PREFIX}_Identity",
                                            'SELECT \'{"Id": "\' || "Id" || \'"}\' FROM "UserClaims" '
                                            'WHERE "UserId" IS NULL UNION ALL SELECT \'{"Id": "\' || "Id" || \'"}\' '
                                            'FROM "RoleClaims" WHERE "RoleId" IS NULL ORDER BY 1')]
    kept = sorted((json.dumps(row["key"]), row["target_schema"], row["run_id"]) for row in quarantined_rows(workspace))
    latest = (workspace["root"] / "runs" / "latest").read_text().strip()
    assert [row[0] for row in kept] == legacy_nulls and {row[1:] for row in kept} == {("identity", latest)}
    assert query(target_cluster, TARGET_DB, "SELECT conname, convalidated FROM pg_constraint WHERE conname IN "
                                            "('FK_UserClaims_Users_UserId', 'FK_RoleClaims_Roles_RoleId') "
                                            "ORDER BY 1") == [("FK_RoleClaims_Roles_RoleId", True),
                                                              ("FK_UserClaims_Users_UserId", True)]
    report = json.loads((workspace["root"] / "runs" / latest / "verification.json").read_text())
    policies = {row["source_table"]: row for row in report["tables"] if row.get("null_policy")}
    assert sorted(policies) == ["RoleClaims", "UserClaims"]
    assert all(row["ok"] and row["source_checksum"] == row["target_checksum"] for row in policies.values())
    keys = sorted(key for row in policies.values() for key in row["null_policy"]["quarantined_keys"])
    assert keys == sorted("Id=" + json.loads(key)["Id"] for key in legacy_nulls)
    markdown = (workspace["root"] / "runs" / latest / "verification.md").read_text()
    assert "## NULL policies" in markdown and all(key in markdown for key in keys)


def test_source_databases_are_unchanged(consolidated, source_cluster):
    assert server_snapshot(source_cluster) == consolidated["before"][0]


def test_legacy_databases_refuse_writes_after_the_cutover_and_serve_reads(consolidated, source_cluster, workspace):
    databases = [f"{PREFIX}_{name}" for name, _schema in MODULES]
    assert fence_settings(source_cluster) == dict.fromkeys(databases, ["default_transaction_read_only=on"])
    conn = psycopg2.connect(**source_cluster.connect_kwargs(f"{PREFIX}_Product"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT count(*) FROM "Products"')
            assert cur.fetchone()[0] > 0
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                cur.execute('DELETE FROM "Products" WHERE false')
    finally:
        conn.close()
    latest = (workspace["root"] / "runs" / "latest").read_text().strip()
    record = json.loads((workspace["root"] / "runs" / latest / "fence.json").read_text())
    assert sorted(entry["database"] for entry in record["databases"]) == sorted(databases)
    assert {entry["state"] for entry in record["databases"]} == {"fenced"}


def test_steps_that_do_not_apply_print_no_wall_of_skipped_tasks(consolidated):
    """No application control, cutover, smoke test or decommission in this run: each says so once, or prints one
    skipped include, instead of a skipped line for every task it has (26 in a row, 90 lines, before)."""
    for output in (consolidated["check_output"], consolidated["output"]):
        assert longest_skipped_stretch(output) <= 3, [name for name, words in task_results(output)]
        assert len(re.findall(r"^skipping:", output, re.MULTILINE)) <= 20


def test_read_only_checks_are_not_changed_in_check_mode(consolidated):
    """--check reports as changed exactly what the run would change, not the checks that only read."""
    changed = {name.split(" : ", 1)[-1] for name, words in task_results(consolidated["check_output"])
               if "changed" in words}
    assert {name.rsplit(" ", 1)[0] for name in changed} == {
        "Open the run", "Make the legacy databases refuse writes and end the sessions that could still",
        "Back up the legacy databases into set", "Ensure the database and its module schemas exist,",
        "Run the migrator against", "Copy the legacy tables into"}, changed


def test_the_summary_is_the_last_thing_printed(consolidated, workspace):
    latest = (workspace["root"] / "runs" / "latest").read_text().strip()
    run_dir = workspace["root"] / "runs" / latest
    summary = last_task(consolidated["output"])
    assert f"Run {latest} PASSED, verification of {TARGET_DB}: 34 table(s): 28 match, 6 excluded;" in summary, summary
    assert f"{run_dir}/verification.md" in summary
    assert f"decommission_confirm naming {PREFIX}_Product" in summary
    assert f"rollback -e consolidation_run_id={latest}" in summary
    check = last_task(consolidated["check_output"])
    assert ", CHECK MODE: nothing was changed" in check and "Next: run without --check to consolidate" in check


def state_schema_exists(target_cluster):
    return query(target_cluster, TARGET_DB, "SELECT to_regnamespace('_consolidation') IS NOT NULL") == [(True,)]


def test_the_completed_run_drops_its_state_schema_keeping_its_record(consolidated, target_cluster, workspace):
    assert not state_schema_exists(target_cluster)
    latest = (workspace["root"] / "runs" / "latest").read_text().strip()
    run_dir = workspace["root"] / "runs" / latest
    for name in ("state.json", "quarantined_rows.json"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o600, name
    record = json.loads((run_dir / "state.json").read_text())
    assert record["run_id"] == latest and record["quarantined_rows"]["count"] == 3
    copied = {(row["source_database"], row["source_table"]) for row in record["copied_tables"]}
    assert (f"{PREFIX}_Identity", "UserClaims") in copied and (f"{PREFIX}_Product", "Products") in copied
    assert "is complete: its state (_consolidation) was dropped" in consolidated["output"]


def test_second_run_changes_nothing(consolidated, workspace, consolidate, target_cluster):
    latest = (workspace["root"] / "runs" / "latest").read_text().strip()
    run_dir = workspace["root"] / "runs" / latest
    names = ("state.json", "quarantined_rows.json")
    records = {name: (run_dir / name).read_text() for name in names}
    output, changed = consolidate(workspace)
    assert changed == 0, output[-6000:]
    # The lease it took for the rerun went again with its schema; the records stand as the run left them.
    assert not state_schema_exists(target_cluster)
    assert {name: (run_dir / name).read_text() for name in records} == records
    # Verified again without the state schema: the quarantine and the copy's records come from the run directory,
    # so the tables with a NULL policy still match (legacy rows = copied + quarantined, key by key).
    report = json.loads((run_dir / "verification.json").read_text())
    assert report["summary"]["passed"] is True, report["summary"]
    policies = [row for row in report["tables"] if row.get("null_policy")]
    assert sorted(row["null_policy"]["quarantined_rows"] for row in policies) == [1, 2]
    assert all(row["ok"] for row in policies)


def test_new_rows_continue_after_the_copied_sequences(consolidated, target_cluster):
    query(target_cluster, TARGET_DB, 'INSERT INTO identity."DataProtectionKeys" ("FriendlyName", "Xml") '
                                     "VALUES ('after-consolidation', '<key/>')")
    query(target_cluster, TARGET_DB, "INSERT INTO public.schemaversions (scriptname, applied) "
                                     "VALUES ('after-consolidation.sql', now())")
    # Leave the tables as the copy made them for whatever runs next.
    query(target_cluster, TARGET_DB, """DELETE FROM identity."DataProtectionKeys" WHERE "FriendlyName" = """
                                     "'after-consolidation'")
    query(target_cluster, TARGET_DB, "DELETE FROM public.schemaversions WHERE scriptname = 'after-consolidation.sql'")


def test_legacy_history_rows_stay_out_of_the_module_schemas(consolidated, target_cluster):
    rows = query(target_cluster, TARGET_DB, 'SELECT "MigrationId" FROM public."__EFMigrationsHistory"')
    assert all(not row[0].startswith("2025122810000") for row in rows)
    stray = query(target_cluster, TARGET_DB, "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                             "c.relnamespace WHERE c.relname = '__EFMigrationsHistory' "
                                             "AND n.nspname <> 'public'")
    assert stray == []


def test_an_unusable_backup_root_fails_before_the_run_directory_is_written(legacy_e2e, tmp_path, source_cluster,
                                                                           target_cluster, run_playbook):
    (tmp_path / "mnt").write_text("the backup volume is not mounted")
    variables = consolidation_vars(source_cluster, target_cluster, tmp_path, "Unusable_Consolidated", PREFIX)
    variables["consolidation_backup_root"] = str(tmp_path / "mnt" / "backups")
    done = run_playbook("classifiedads.consolidation.consolidate", variables=variables, expect_rc=2)
    assert f"cannot be created: {tmp_path / 'mnt'} is not a directory" in done.output
    assert not (tmp_path / "runs").exists()
    summary = last_task(done.output)
    assert 'FAILED before the run was opened, at task "Check that pg_dump can read the source and the backup will ' \
           'fit" (its error is printed above): no run directory was written' in summary, summary


@pytest.fixture(scope="module")
def fresh_workspace(tmp_path_factory, source_cluster, target_cluster):
    """No legacy database exists: the plan's fresh-deployment path."""
    root = tmp_path_factory.mktemp("fresh")
    extra = {
        "consolidation_source": endpoint(source_cluster),
        "consolidation_target": endpoint(target_cluster),
        "consolidation_target_database": "Fresh_Consolidated",
        "consolidation_modules": [{"name": name, "source_database": f"Fresh_{name}", "schema": schema}
                                  for name, schema in MODULES],
        "consolidation_run_root": str(root / "runs"),
        "consolidation_backup_root": str(root / "backups"),
        "migrator_command": [sys.executable, str(Path(REPO) / "tools" / "bin" / "classifiedads-migrator")],
    }
    yield {"root": root, "vars": extra}
    drop_database(target_cluster, "Fresh_Consolidated")


def test_fresh_deployment_creates_schemas_and_tables_then_changes_nothing(fresh_workspace, target_cluster,
                                                                          consolidate):
    output, changed = consolidate(fresh_workspace)
    assert changed > 0 and "(fresh)" in output
    # auto took the fresh path: it names every database it looked for, as a mistyped name would look the same
    assert "none of the legacy databases Fresh_Product, Fresh_Identity, Fresh_Storage" in output
    assert not (fresh_workspace["root"] / "backups").exists()
    tables = set(query(target_cluster, "Fresh_Consolidated",
                       "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n "
                       "ON n.oid = c.relnamespace WHERE c.relkind = 'r'"))
    for expected in ("product.Products", "identity.DataProtectionKeys", "auditlog.IdempotentRequests",
                     "configuration.LocalizationEntries", "public.schemaversions", "public.__EFMigrationsHistory"):
        assert (expected,) in tables
    latest = (fresh_workspace["root"] / "runs" / "latest").read_text().strip()
    report = json.loads((fresh_workspace["root"] / "runs" / latest / "verification.json").read_text())
    assert report["passed"] is True
    assert consolidate(fresh_workspace)[1] == 0


def test_a_failed_step_ends_with_the_summary_naming_it_and_the_rerun(tmp_path, source_cluster, target_cluster,
                                                                     run_playbook):
    """The step's own error first, then, last, the summary: FAILED, the task, the run id and how to resume."""
    variables = {
        "consolidation_source": endpoint(source_cluster),
        "consolidation_target": endpoint(target_cluster),
        "consolidation_target_database": "Failing_Consolidated",
        "consolidation_modules": [{"name": name, "source_database": f"Failing_{name}", "schema": schema}
                                  for name, schema in MODULES],
        "consolidation_run_root": str(tmp_path / "runs"),
        "consolidation_backup_root": str(tmp_path / "backups"),
        "migrator_command": [sys.executable, "-c", "raise SystemExit(3)"],
    }
    try:
        done = run_playbook("classifiedads.consolidation.consolidate", variables=variables, expect_rc=2)
    finally:
        drop_database(target_cluster, "Failing_Consolidated")
    latest = (tmp_path / "runs" / "latest").read_text().strip()
    assert done.output.count("fatal: ") == 2, done.output[-6000:]
    summary = last_task(done.output)
    assert f'Run {latest} FAILED at task "Run the migrator against Failing_Consolidated"' in summary, summary
    assert f"run again with -e consolidation_run_id={latest}: the run resumes" in summary
    assert f"Reports: run directory {tmp_path / 'runs' / latest}" in summary
