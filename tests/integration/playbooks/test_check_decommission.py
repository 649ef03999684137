"""consolidate.yml --check with the real run's variables, decommission_confirm included.

An operator prepares one set of variables and tries it with --check first. In
check mode nothing is copied or verified, so the decommission step can only say
what the real run would retire once its verification passes: it must neither
fail on the missing plan and report nor touch a legacy database. The confirmation
needs no verification: a mistyped one fails the check run, as it fails the real one.
"""

from __future__ import annotations

import psycopg2
import pytest
from conftest import consolidation_vars
from conftest import run_sql as query
from devkit import legacy

pytestmark = pytest.mark.integration

PREFIX = "DryDecom"
TARGET_DB = "DryDecom_Consolidated"


def catalog(info):
    """Every database's name, whether it accepts connections, its connection limit and its own settings."""
    return query(info, "postgres", "SELECT d.datname, d.datallowconn, d.datconnlimit, s.setconfig FROM pg_database d "
                                   "LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0 "
                                   "ORDER BY 1")


@pytest.fixture(scope="module")
def legacy_databases(source_cluster):
    legacy.create(source_cluster, 0.02, prefix=PREFIX, out=lambda line: None)
    yield
    legacy.drop(source_cluster, prefix=PREFIX)


@pytest.mark.parametrize("typo", [False, True], ids=["confirmed", "mistyped"])
def test_check_mode_judges_the_confirmation_says_what_would_be_retired_and_changes_nothing(
        typo, legacy_databases, tmp_path, source_cluster, target_cluster, run_playbook):
    variables = consolidation_vars(source_cluster, target_cluster, tmp_path, TARGET_DB, PREFIX)
    databases = [module["source_database"] for module in variables["consolidation_modules"]]
    confirm = databases[:-1] + [databases[-1].lower()] if typo else databases
    variables["decommission_confirm"] = confirm
    before = catalog(source_cluster), catalog(target_cluster)
    relations = {database: query(source_cluster, database, "SELECT count(*) FROM pg_class") for database in databases}

    done = run_playbook("classifiedads.consolidation.consolidate", "--check", variables=variables,
                        expect_rc=2 if typo else 0)

    refusal = ("Check mode: decommission refused by guard confirmation: decommission_confirm must name exactly the "
               f"databases to retire: {', '.join(databases)} (given: {', '.join(confirm)}; not confirmed: "
               f"{databases[-1]}; not a database of this decommission (a typo?): {databases[-1].lower()}).")
    if typo:
        assert done.recap["failed"] == 1 and refusal in done.output, done.output[-8000:]
        assert "would retire" not in done.output
        assert 'FAILED at task "Refuse a confirmation that does not name exactly the databases' in done.output
        assert "Next: fix the cause named above and run the check again, then run without --check" in done.output
        assert "rollback -e consolidation_run_id" not in done.output
    else:
        assert done.recap["failed"] == 0, done.output[-8000:]
        assert (f"Check mode: would retire {', '.join(databases)} only after this run's verification passes"
                in done.output), done.output[-8000:]
        assert "decommission refused" not in done.output
    assert (catalog(source_cluster), catalog(target_cluster)) == before
    assert not (tmp_path / "runs").exists() and not (tmp_path / "backups").exists()
    for database in databases:
        conn = psycopg2.connect(**source_cluster.connect_kwargs(database))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_class")
                assert [cur.fetchone()] == relations[database]
        finally:
            conn.close()


# The decommission role alone, given a run's plan whose run directory holds no plan.json and no verification report:
# what consolidate.yml hands it in check mode, and what a real run must refuse.
DECOMMISSION_PLAYBOOK = """
- name: Decommission the legacy databases of a run that verified nothing
  hosts: consolidation_controller
  gather_facts: false
  module_defaults:
    group/classifiedads.consolidation.all:
      source: "{{ consolidation_source }}"
  tasks:
    - name: Step 8, decommission
      ansible.builtin.import_role:
        name: classifiedads.consolidation.decommission
      vars:
        decommission_plan:
          run_id: 20261205T000000Z
          run_dir: "{{ consolidation_run_root }}/20261205T000000Z"
          files:
            verification_report: "{{ consolidation_run_root }}/20261205T000000Z/verification.json"
          backup_root: "{{ consolidation_backup_root }}"
          modules: "{{ consolidation_modules }}"
"""


def test_a_real_run_without_a_verification_still_refuses(
        legacy_databases, tmp_path, source_cluster, target_cluster, run_playbook):
    variables = consolidation_vars(source_cluster, target_cluster, tmp_path, TARGET_DB, PREFIX)
    databases = [module["source_database"] for module in variables["consolidation_modules"]]
    variables["decommission_confirm"] = databases
    (tmp_path / "decommission.yml").write_text(DECOMMISSION_PLAYBOOK)
    before = catalog(source_cluster)

    checked = run_playbook(str(tmp_path / "decommission.yml"), "--check", variables=variables)
    assert f"Check mode: would retire {', '.join(databases)} only after" in checked.output, checked.output[-8000:]
    done = run_playbook(str(tmp_path / "decommission.yml"), variables=variables, expect_rc=2)

    assert "decommission refused by guards mapping, verification" in done.output, done.output[-8000:]
    assert "no verification report at" in done.output
    assert catalog(source_cluster) == before
    assert not (tmp_path / "backups").exists()
