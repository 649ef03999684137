"""The cutover role end to end through ansible-playbook, on a copy of the legacy ClassifiedAds files.

Check mode with --diff first (nothing changes, the diff is shown, no password
anywhere in the output), then the cutover, a rerun that changes nothing, the
`restore` entry point (byte-identical originals) and its rerun, and a damaged
original that restore refuses by name. No database is involved: the role only
edits files.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from constants import MODULE_NAMES as MODULES

from ansible_collections.classifiedads.consolidation.plugins.module_utils.config_dotenv import dotenv_data
from ansible_collections.classifiedads.consolidation.plugins.module_utils.npgsql import shared_connection_string
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import backup_files

FIXTURES = Path(REPO) / "tests" / "fixtures" / "classifiedads_app"
SETTINGS = ["ClassifiedAds.WebAPI/appsettings.json", "ClassifiedAds.Background/appsettings.json",
            "ClassifiedAds.Migrator/appsettings.json"]
FILES = SETTINGS + [".env", "docker-compose.yml"]
ENV_KEYS = [f"Modules__{name}__ConnectionStrings__Default" for name in MODULES]
PASSWORD = "N3w\"Pa;ss$w0rd'x"
TARGET = {"host": "10.1.2.3", "port": 6432, "user": "classifiedads"}
# Every secret of the fixtures and the new password, in pieces that survive any escaping.
SECRETS = ["legacy-Placeholder", "certificate-Placeholder", "master-key-Placeholder", "N3w", "Pa;ss", "w0rd"]

PLAYBOOK = """\
- name: Run an entry point of the cutover role
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Include the role
      ansible.builtin.include_role:
        name: classifiedads.consolidation.cutover
        tasks_from: "{{ cutover_entry }}"
"""


def make_workspace(root: Path, extra: dict | None = None) -> dict:
    app_dir = root / "app"
    shutil.copytree(FIXTURES, app_dir)
    (app_dir / ".env").chmod(0o640)  # as a deployment keeps it; the mode must survive
    variables = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "cutover_plan": {"run_id": "t1", "backup_dir": str(root / "backups" / "t1"),
                         "backup_files": backup_files(str(root / "backups" / "t1")),
                         "target_database": "ClassifiedAds", "target": TARGET},
        "cutover_app_dir": str(app_dir),
        # The role's default password comes from the target connection.
        "consolidation_target": dict(TARGET, password=PASSWORD),
    }
    variables.update(extra or {})
    (root / "play.yml").write_text(PLAYBOOK)
    (root / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    return {"root": root, "app": app_dir, "backup": root / "backups" / "t1" / "config", "variables": variables,
            "originals": {name: (app_dir / name).read_bytes() for name in FILES},
            "modes": {name: stat.S_IMODE((app_dir / name).stat().st_mode) for name in FILES}}


@pytest.fixture(scope="module")
def run_role(run_playbook):
    """``run(workspace, *args, entry="main", expect_rc=0)``: the role's entry point with the workspace's
    ansible.cfg; returns (output, changed count)."""

    def run(workspace, *args, entry="main", expect_rc=0):
        done = run_playbook("play.yml", "-e", f"cutover_entry={entry}", "-v", *args,
                            variables=workspace["variables"], inventory="localhost,",
                            env=dict(os.environ, ANSIBLE_CONFIG=str(workspace["root"] / "ansible.cfg")),
                            cwd=workspace["root"], expect_rc=expect_rc)
        return done.output, done.changed

    return run


def assert_no_secret(output):
    leaked = [secret for secret in SECRETS if secret in output]
    assert not leaked, f"secrets in the output: {leaked}"


def current(workspace):
    return {name: (workspace["app"] / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("cutover"))


@pytest.fixture(scope="module")
def checked(workspace, run_role):
    return run_role(workspace, "--check", "--diff")[0]


@pytest.fixture(scope="module")
def applied(workspace, checked, run_role):
    return run_role(workspace, "--diff")


def test_check_mode_shows_the_masked_diff_and_changes_nothing(workspace, checked):
    assert current(workspace) == workspace["originals"]
    assert not (workspace["root"] / "backups").exists()
    assert '+  "ConnectionStrings": {' in checked
    assert "-          Modules__Product__ConnectionStrings__Default: ${Modules__Product__ConnectionStrings__Default}" \
        in checked
    assert "+          ConnectionStrings__Default: ${ConnectionStrings__Default}" in checked
    assert "+ConnectionStrings__Default=" in checked
    assert "Database=ClassifiedAds;Username=classifiedads;Password=********" in checked
    assert "Would change 5 of 5 file(s)" in checked
    assert_no_secret(checked)


def test_cutover_points_every_file_at_the_consolidated_database(workspace, applied):
    output, changed = applied
    assert changed > 0
    assert_no_secret(output)
    app = workspace["app"]
    shared = shared_connection_string(dict(TARGET, database="ClassifiedAds", password=PASSWORD))
    for name in SETTINGS:
        before = json.loads(workspace["originals"][name])
        after = json.loads((app / name).read_text())
        assert after["ConnectionStrings"] == {"Default": shared}
        assert [module for module, value in after["Modules"].items() if "ConnectionStrings" in value] == []
        # Every other key as before: the parsed original minus the per-module blocks.
        expected = copy.deepcopy(before)
        for module in expected["Modules"].values():
            module.pop("ConnectionStrings", None)
        rest = {key: value for key, value in after.items() if key != "ConnectionStrings"}
        assert rest == expected and list(rest) == list(expected)

    env_before = dotenv_data(workspace["originals"][".env"].decode())
    env_after = dotenv_data((app / ".env").read_text())
    expected_env = {key: value for key, value in env_before.items() if key not in ENV_KEYS}
    expected_env["ConnectionStrings__Default"] = shared_connection_string(
        {"host": "db", "port": 5432, "user": TARGET["user"], "database": "ClassifiedAds", "password": PASSWORD})
    assert env_after == expected_env

    compose_before = yaml.safe_load(workspace["originals"]["docker-compose.yml"])
    compose_after = yaml.safe_load((app / "docker-compose.yml").read_text())
    expected_compose = copy.deepcopy(compose_before)
    for service in ("migrator", "webapi", "background"):
        environment = expected_compose["services"][service]["environment"]
        for key in ENV_KEYS:
            environment.pop(key, None)
        environment["ConnectionStrings__Default"] = "${ConnectionStrings__Default}"
    expected_compose["services"]["db"]["environment"]["POSTGRES_DB"] = "ClassifiedAds"
    assert compose_after == expected_compose

    for name in FILES:
        assert stat.S_IMODE((app / name).stat().st_mode) == workspace["modes"][name], name


def test_originals_are_kept_private_and_indexed(workspace, applied):
    backup = workspace["backup"]
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    index = json.loads((backup / "index.json").read_text())
    assert sorted(entry["path"] for entry in index["files"].values()) == sorted(
        str(workspace["app"] / name) for name in FILES)
    for entry in index["files"].values():
        saved = backup / entry["name"]
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        name = os.path.relpath(entry["path"], workspace["app"])
        assert saved.read_bytes() == workspace["originals"][name]
        assert entry["mode"] == f"{workspace['modes'][name]:04o}"
    assert stat.S_IMODE((backup / "index.json").stat().st_mode) == 0o600


def test_second_cutover_changes_nothing(workspace, applied, run_role):
    after_first = current(workspace)
    output, changed = run_role(workspace)
    assert changed == 0, output[-4000:]
    assert current(workspace) == after_first


def test_restore_puts_the_originals_back_byte_for_byte(workspace, applied, run_role):
    output, changed = run_role(workspace, "--diff", entry="restore")
    assert changed > 0
    assert_no_secret(output)
    assert current(workspace) == workspace["originals"]
    for name in FILES:
        assert stat.S_IMODE((workspace["app"] / name).stat().st_mode) == workspace["modes"][name]
    output, changed = run_role(workspace, entry="restore")
    assert changed == 0, output[-4000:]


def test_a_damaged_original_is_refused_by_name(workspace, applied, run_role):
    run_role(workspace)  # cut over again: the saved originals are the true ones, not replaced
    index = json.loads((workspace["backup"] / "index.json").read_text())
    webapi = next(entry for entry in index["files"].values() if entry["path"].endswith("WebAPI/appsettings.json"))
    saved = workspace["backup"] / webapi["name"]
    assert saved.read_bytes() == workspace["originals"][SETTINGS[0]]
    saved.write_bytes(saved.read_bytes().replace(b"Fake", b"Real"))
    output, _changed = run_role(workspace, entry="restore", expect_rc=2)
    assert f"the saved original {webapi['name']} of {webapi['path']} does not match the sha256" in output
    restored = current(workspace)
    assert restored[SETTINGS[0]] != workspace["originals"][SETTINGS[0]]  # left cut over, not "restored" to junk
    assert {name: data for name, data in restored.items() if name != SETTINGS[0]} == {
        name: data for name, data in workspace["originals"].items() if name != SETTINGS[0]}
    assert_no_secret(output)


def test_missing_files_optional_or_not_and_an_empty_app_dir(tmp_path, run_role):
    workspace = make_workspace(tmp_path / "a")
    (workspace["app"] / ".env").unlink()
    output, _changed = run_role(workspace, "--check")
    assert "Not present, so not cut over (optional): .env" in output
    (workspace["app"] / SETTINGS[1]).unlink()
    output, _changed = run_role(workspace, "--check", expect_rc=2)
    assert f"{workspace['app']}/{SETTINGS[1]} does not exist" in output

    skipped = make_workspace(tmp_path / "b", {"cutover_app_dir": ""})
    output, changed = run_role(skipped)
    assert "this host has no application configuration to cut over; skipped" in output and changed == 0
    output, changed = run_role(skipped, entry="restore")
    assert "nothing to restore" in output and changed == 0
