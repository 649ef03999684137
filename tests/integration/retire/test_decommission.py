"""Decommission (plan step 8) against real servers: every guard refuses on its own, check mode changes
nothing, drop and rename work, and a rerun changes nothing.

The legacy databases live on ``source_cluster``, the consolidated database on
``target_cluster``; ``consolidate.yml`` produces the real verification report and
backup set that the guards check. The helpers here (``Workspace``) also drive
``test_rollback.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import psycopg2
import pytest
from conftest import consolidation_vars, drop_database, endpoint
from conftest import run_sql as query
from devkit import legacy

pytestmark = pytest.mark.integration

PREFIX = "Retire"
TARGET_DB = "Retire_Consolidated"
RUN = "retire-run-1"
NAMES = ("Product", "Identity", "Storage", "Notification", "AuditLog", "Configuration")

# Drives the decommission role for a run, as consolidate.yml's step 8 will: the plan of the
# run comes from its plan.json (the restore role's load_run), the role gets it explicitly.
DECOMMISSION_PLAYBOOK = """
- name: Decommission the legacy databases of a run
  hosts: consolidation_controller
  gather_facts: false
  module_defaults:
    group/classifiedads.consolidation.all:
      source: "{{ consolidation_source }}"
      target: "{{ consolidation_target | default(consolidation_source) }}"
  tasks:
    - name: Load the run
      ansible.builtin.import_role:
        name: classifiedads.consolidation.restore
        tasks_from: load_run
      vars:
        restore_run_id: "{{ consolidation_run_id }}"
        restore_run_root: "{{ consolidation_run_root }}"
    - name: Step 8, decommission
      ansible.builtin.import_role:
        name: classifiedads.consolidation.decommission
      vars:
        decommission_plan: "{{ restore_run_plan }}"
"""


class Workspace:
    """A run root, a backup root and the variables of consolidate.yml for one legacy prefix."""

    def __init__(self, root: Path, source, target, prefix: str, run_playbook):
        self.root, self.source, self.target, self.prefix = root, source, target, prefix
        self.run_playbook = run_playbook
        self.databases = [f"{prefix}_{name}" for name in NAMES]
        self.vars = consolidation_vars(source, target, root, None, prefix)  # each run names its database
        assert [module["source_database"] for module in self.vars["consolidation_modules"]] == self.databases
        (root / "decommission.yml").write_text(DECOMMISSION_PLAYBOOK)

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def set_dir(self, run_id: str) -> Path:
        return self.root / "backups" / run_id

    def playbook(self, playbook: str, *args: str, expect_rc: int = 0, **extra) -> tuple[str, int]:
        """Run a playbook with this workspace's variables (and ``extra``); (output, changed tasks)."""
        done = self.run_playbook(playbook, *args, variables=dict(self.vars, **extra), expect_rc=expect_rc)
        return done.output, done.changed

    def consolidate(self, run_id: str, target_database: str) -> None:
        self.playbook("classifiedads.consolidation.consolidate", consolidation_run_id=run_id,
                      consolidation_target_database=target_database)
        report = json.loads((self.run_dir(run_id) / "verification.json").read_text())
        assert report["passed"] is True and report["backup_set"] == run_id

    def decommission(self, run_id: str, *args: str, expect_rc: int = 0, **extra) -> tuple[str, int]:
        extra.setdefault("decommission_confirm", self.databases)
        return self.playbook(str(self.root / "decommission.yml"), *args, expect_rc=expect_rc,
                             consolidation_run_id=run_id, **extra)

    def rollback(self, run_id: str, *args: str, expect_rc: int = 0, **extra) -> tuple[str, int]:
        return self.playbook("classifiedads.consolidation.rollback", *args, expect_rc=expect_rc,
                             consolidation_run_id=run_id, **extra)

    def catalog(self) -> dict[str, bool]:
        """Every database of this prefix on the source server (retired and scratch ones too): datallowconn."""
        rows = query(self.source, "postgres", "SELECT datname, datallowconn FROM pg_database WHERE datname LIKE %s",
                     (self.prefix + "\\_%",))
        return dict(rows)

    def target_databases(self) -> dict[str, bool]:
        """Every database of this prefix on the target server: datallowconn."""
        return dict(query(self.target, "postgres", "SELECT datname, datallowconn FROM pg_database "
                                                   "WHERE datname LIKE %s", (self.prefix + "\\_%",)))

    def record(self, run_id: str) -> dict:
        return json.loads((self.run_dir(run_id) / "decommission.json").read_text())


def files_under(*roots: Path) -> dict[str, tuple[int, float]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime) for root in roots for path in root.rglob("*")
            if path.is_file()}


def failed_guards(result: dict) -> list[str]:
    return [entry["guard"] for entry in result.get("guards", []) if not entry["passed"]]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, source_cluster, target_cluster, run_playbook):
    root = tmp_path_factory.mktemp("decommission")
    legacy.create(source_cluster, 0.01, prefix=PREFIX, out=lambda line: None)
    space = Workspace(root, source_cluster, target_cluster, PREFIX, run_playbook)
    space.consolidate(RUN, TARGET_DB)
    yield space
    for name in [*space.catalog(), TARGET_DB]:
        info = target_cluster if name == TARGET_DB else source_cluster
        drop_database(info, name)


@pytest.fixture(scope="module")
def final_backup(workspace, run_module, source_cluster):
    """The final generation, as the role takes it: so that each refusal below has one reason only."""
    result = run_module("backup_set", dict(source=endpoint(source_cluster), databases=workspace.databases,
                                           backup_root=str(workspace.root / "backups"), set_id=RUN, label="final",
                                           verification_report=str(workspace.run_dir(RUN) / "verification.json")))
    assert not result["failed"], result
    return result


@pytest.fixture()
def retire_args(workspace, final_backup, source_cluster, tmp_path):
    """Module arguments for the whole mapping, with a private copy of the run directory to tamper with."""
    run_dir = tmp_path / RUN
    shutil.copytree(workspace.run_dir(RUN), run_dir)
    return dict(source=endpoint(source_cluster), databases=workspace.databases, confirm=workspace.databases,
                run_dir=str(run_dir), backup_root=str(workspace.root / "backups"), set_id=RUN)


def edit_report(run_dir: str, **changes) -> None:
    path = Path(run_dir) / "verification.json"
    report = json.loads(path.read_text())
    report.update(changes)
    path.write_text(json.dumps(report))


def assert_refused(run_module, args, guard, *phrases, check=False):
    result = run_module("database_retire", args, check=check)
    assert result["failed"], result
    assert failed_guards(result) == [guard], result["msg"]
    assert result["msg"].startswith(f"decommission refused by guard {guard}: "), result["msg"]
    for phrase in phrases:
        assert phrase in result["msg"], result["msg"]
    return result


# -- every guard refuses on its own -------------------------------------------------------------


def test_all_guards_pass_in_check_mode(workspace, run_module, retire_args):
    before = workspace.catalog()
    result = run_module("database_retire", retire_args, check=True)
    assert not result["failed"], result["msg"]
    assert result["changed"] and result["to_retire"] == workspace.databases
    assert all(entry["passed"] for entry in result["guards"])
    assert any(query.startswith("ALTER DATABASE") and "RENAME TO" in query for query in result["queries"])
    assert workspace.catalog() == before
    assert not (Path(retire_args["run_dir"]) / "decommission.json").exists()


def test_refused_without_a_verification_report(workspace, run_module, retire_args):
    os.unlink(Path(retire_args["run_dir"]) / "verification.json")
    assert_refused(run_module, retire_args, "verification", "no verification report at")


def test_refused_with_a_failing_report(workspace, run_module, retire_args):
    edit_report(retire_args["run_dir"], passed=False)
    assert_refused(run_module, retire_args, "verification", "did not pass")


def test_refused_with_a_report_of_another_backup_set(workspace, run_module, retire_args):
    edit_report(retire_args["run_dir"], backup_set="another-run")
    assert_refused(run_module, retire_args, "verification", "was made for backup set 'another-run', not "
                                                            f"'{RUN}'")


def test_refused_without_or_with_a_wrong_confirmation(workspace, run_module, retire_args):
    assert_refused(run_module, dict(retire_args, confirm=[]), "confirmation", "not confirmed: Retire_Product")
    typo = [name.replace("Retire_Storage", "Retire_Storgae") for name in workspace.databases]
    assert_refused(run_module, dict(retire_args, confirm=typo), "confirmation", "not confirmed: Retire_Storage",
                   "(a typo?): Retire_Storgae")


def test_refused_while_a_session_is_connected(workspace, run_module, retire_args, source_cluster):
    holder = psycopg2.connect(**source_cluster.connect_kwargs("Retire_Notification"),
                              application_name="pytest-session-holder")
    try:
        result = assert_refused(run_module, retire_args, "sessions", "connected to Retire_Notification",
                                f"pid {holder.get_backend_pid()}", "application 'pytest-session-holder'",
                                f"user {source_cluster.user}")
        with holder.cursor() as cur:
            cur.execute("SELECT 1")  # still connected: the refusal touched nothing
    finally:
        holder.close()
    assert result["databases"][3]["sessions"][0]["application"] == "pytest-session-holder"


def test_refused_with_a_damaged_final_archive(workspace, run_module, retire_args, tmp_path):
    backups = tmp_path / "backups"
    shutil.copytree(workspace.set_dir(RUN), backups / RUN)
    archive = backups / RUN / "Retire_AuditLog.final.dump"
    archive.write_bytes(archive.read_bytes()[:-10])
    assert_refused(run_module, dict(retire_args, backup_root=str(backups)), "final_backup",
                   f"Retire_AuditLog: archive {archive} has")


def test_refused_for_a_database_outside_the_mapping(workspace, run_module, retire_args):
    args = dict(retire_args, databases=["postgres"], confirm=["postgres"])
    result = run_module("database_retire", args)
    assert "mapping" in failed_guards(result), result["msg"]
    assert "not a legacy database of run" in result["msg"]
    assert query(workspace.source, "postgres", "SELECT datallowconn FROM pg_database WHERE datname = 'postgres'") \
        == [(True,)]


def test_role_check_mode_changes_nothing(workspace):
    before = (workspace.catalog(), files_under(workspace.root / "runs", workspace.root / "backups"))
    output, _changed = workspace.decommission(RUN, "--check")
    assert "Check mode, would retire 6 database(s)" in output
    for database in workspace.databases:  # one line of the printed table each
        assert re.search(rf'^\s*"{database}\s+retire\s+rename\s+{database}_retired_\d{{8}}\s', output, re.M), database
    assert (workspace.catalog(), files_under(workspace.root / "runs", workspace.root / "backups")) == before


def test_role_refusal_names_the_guard(workspace):
    before = workspace.catalog()
    output, _changed = workspace.decommission(RUN, expect_rc=2,
                                              decommission_confirm=workspace.databases[:5] + ["Retire_Configuraton"])
    assert "decommission refused by guard confirmation" in output
    assert workspace.catalog() == before


def test_an_empty_confirmation_means_not_now(workspace):
    """A blank AWX survey field sends an empty string: the step says it was not asked for and changes nothing."""
    before = (workspace.catalog(), files_under(workspace.root / "runs", workspace.root / "backups"))
    for empty in ("", []):
        output, changed = workspace.decommission(RUN, decommission_confirm=empty)
        assert "Step 8 not requested: decommission_confirm is empty" in output and changed == 0
        assert "decommission refused" not in output
    assert (workspace.catalog(), files_under(workspace.root / "runs", workspace.root / "backups")) == before


# -- drop, rename, idempotence ------------------------------------------------------------------


def test_drop_mode_drops_after_every_guard(workspace, run_module, source_cluster):
    args = dict(source=endpoint(source_cluster), databases=["Retire_Storage"], confirm=["Retire_Storage"],
                mode="drop", run_dir=str(workspace.run_dir(RUN)), backup_root=str(workspace.root / "backups"),
                set_id=RUN)
    result = run_module("database_retire", args)
    assert not result["failed"], result["msg"]
    assert result["changed"] and result["to_retire"] == ["Retire_Storage"]
    assert 'DROP DATABASE "Retire_Storage"' in result["queries"]
    assert "Retire_Storage" not in workspace.catalog()
    entry = workspace.record(RUN)["databases"][0]
    assert (entry["database"], entry["mode"], entry["state"], entry["retired_name"]) == (
        "Retire_Storage", "drop", "retired", None)
    assert entry["final_archive"]["file"] == "Retire_Storage.final.dump" and entry["properties"]["owner"]
    again = run_module("database_retire", args)
    assert not again["failed"] and not again["changed"], again["msg"]


def test_role_renames_the_rest_and_terminates_sessions_when_told(workspace, source_cluster):
    holder = psycopg2.connect(**source_cluster.connect_kwargs("Retire_Identity"), application_name="pytest-holder")
    try:
        output, changed = workspace.decommission(RUN, decommission_terminate_sessions=True)
        with pytest.raises(psycopg2.OperationalError):
            with holder.cursor() as cur:
                cur.execute("SELECT 1")
    finally:
        holder.close()
    assert changed > 0
    assert "terminated 1 session(s)" in output
    catalog = workspace.catalog()
    record = workspace.record(RUN)
    retired = {entry["database"]: entry for entry in record["databases"]}
    for database in workspace.databases:
        assert database not in catalog
        if database == "Retire_Storage":
            assert retired[database]["mode"] == "drop"
            continue
        name = retired[database]["retired_name"]
        assert re.fullmatch(re.escape(database) + r"_retired_\d{8}", name)
        assert catalog[name] is False  # closed to connections
        assert retired[database]["state"] == "retired" and retired[database]["mode"] == "rename"
    path = workspace.run_dir(RUN) / "decommission.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    manifest = json.loads((workspace.set_dir(RUN) / "manifest.json").read_text())
    assert {entry["database"] for entry in manifest["archives"] if entry["label"] == "final"} == set(
        workspace.databases)


def test_second_run_changes_nothing(workspace):
    before = workspace.catalog()
    output, changed = workspace.decommission(RUN)
    assert changed == 0, output[-6000:]
    assert "already retired" in output
    assert workspace.catalog() == before
