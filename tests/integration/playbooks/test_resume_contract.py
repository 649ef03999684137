"""A resumed consolidate.yml given a changed contract: what the run can still take is taken (plan.json rewritten,
the change reported and recorded), what it cannot is refused before anything changes, naming the change.

The run is cut off at step 3 (a migrator that fails), after step 2 created the module schemas and step 1
backed the legacy databases up: the point where a renamed schema is too late and a newly excluded table is not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import consolidation_vars, drop_database
from conftest import run_sql as query
from devkit import legacy

PREFIX = "RC"
TARGET_DB = "RC_Consolidated"
RUN_ID = "contract-resume-1"


@pytest.fixture(scope="module")
def legacy_rc(source_cluster, target_cluster):
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)
    yield
    drop_database(target_cluster, TARGET_DB)
    legacy.drop(source_cluster, prefix=PREFIX)


@pytest.fixture(scope="module")
def base_vars(legacy_rc, tmp_path_factory, source_cluster, target_cluster):
    root = tmp_path_factory.mktemp("contract")
    # The plan's order: step 1 backs up before step 3 fails (after_start would back up only after the start).
    return dict(consolidation_vars(source_cluster, target_cluster, root, TARGET_DB, PREFIX),
                consolidation_run_id=RUN_ID, consolidation_backup_timing="before_copy")


def module_named(modules, name):
    return next(module for module in modules if module["name"] == name)


def target_schemas(target_cluster):
    return sorted(row[0] for row in query(target_cluster, TARGET_DB, "SELECT nspname FROM pg_namespace WHERE "
                                                                     "nspname NOT LIKE 'pg\\_%%'"))


@pytest.fixture(scope="module")
def interrupted(base_vars, run_playbook, target_cluster):
    """The run stopped at step 3: backed up, module schemas created, nothing copied."""
    failing = dict(base_vars, migrator_command=["false"])
    done = run_playbook("classifiedads.consolidation.consolidate", variables=failing, expect_rc=2)
    run_dir = Path(base_vars["consolidation_run_root"]) / RUN_ID
    assert "storage" in target_schemas(target_cluster), done.output[-4000:]
    assert not (run_dir / "data_copy.log").exists()
    return run_dir


def test_a_schema_renamed_after_step_2_is_refused_and_nothing_changes(interrupted, base_vars, run_playbook,
                                                                      target_cluster):
    variables = json.loads(json.dumps(base_vars))
    module_named(variables["consolidation_modules"], "Storage")["schema"] = "files"
    plan_before = (interrupted / "plan.json").read_bytes()
    schemas_before = target_schemas(target_cluster)
    done = run_playbook("classifiedads.consolidation.consolidate", variables=variables, expect_rc=2)
    assert ("module Storage: schema storage -> files (step 2 has created the schema storage in the target" in
            done.output), done.output[-4000:]
    assert "nothing was changed" in done.output and "rollback.yml" in done.output
    assert (interrupted / "plan.json").read_bytes() == plan_before
    assert target_schemas(target_cluster) == schemas_before and "files" not in schemas_before
    assert not (interrupted / "contract_changes.json").exists()


def test_a_table_excluded_before_the_copy_is_taken_reported_and_left_uncopied(
        interrupted, base_vars, run_playbook, source_cluster, target_cluster):
    variables = json.loads(json.dumps(base_vars))
    module_named(variables["consolidation_modules"], "Product")["exclude_tables"] = ["AuditLogEntries"]
    legacy_rows = query(source_cluster, f"{PREFIX}_Product", 'SELECT count(*) FROM "AuditLogEntries"')[0][0]
    assert legacy_rows > 0, "the legacy table is empty: excluding it would prove nothing"
    done = run_playbook("classifiedads.consolidation.consolidate", variables=variables)
    change = "module Product: exclude_tables gained AuditLogEntries"
    assert f"took a changed contract (plan.json rewritten, recorded in {interrupted / 'contract_changes.json'}): " \
           f"{change}" in done.output, done.output[-6000:]
    plan = json.loads((interrupted / "plan.json").read_text())
    assert "AuditLogEntries" in module_named(plan["modules"], "Product")["exclude_tables"]
    record = json.loads((interrupted / "contract_changes.json").read_text())
    assert [amendment["changes"] for amendment in record["amendments"]] == [[change]]
    assert (interrupted / "contract_changes.json").stat().st_mode & 0o777 == 0o600
    assert query(target_cluster, TARGET_DB, 'SELECT count(*) FROM product."AuditLogEntries"') == [(0,)]
    report = json.loads((interrupted / "verification.json").read_text())
    assert report["summary"]["passed"] is True

    # Complete now: no change is taken any more.
    variables["consolidation_exclude_tables"] = ["__EFMigrationsHistory", "OutboxMessages"]
    refused = run_playbook("classifiedads.consolidation.consolidate", variables=variables, expect_rc=2)
    assert "exclude_tables gained OutboxMessages (the run has completed" in refused.output, refused.output[-4000:]
    assert json.loads((interrupted / "plan.json").read_text()) == plan
