"""migrator_run with real commands and a real server: secrets, failures, timeout, post-condition, changed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import REPO, drop_database, endpoint, execute

PASSWORD = "migrator-Secret-4711"
DATABASE = "Migrator_Run"


@pytest.fixture
def password_target(target_cluster):
    """A login role with a password (not a pgpass file) that owns an empty target database."""
    drop_database(target_cluster, DATABASE)
    execute(target_cluster, "DROP ROLE IF EXISTS migrator_owner")
    execute(target_cluster, f"CREATE ROLE migrator_owner LOGIN PASSWORD '{PASSWORD}'")
    execute(target_cluster, f'CREATE DATABASE "{DATABASE}" OWNER migrator_owner')
    yield dict(endpoint(target_cluster), user="migrator_owner", password=PASSWORD, passfile=None)
    drop_database(target_cluster, DATABASE)
    execute(target_cluster, "DROP ROLE IF EXISTS migrator_owner")


def args(target, tmp_path, command, **extra):
    base = dict(target=target, target_database=DATABASE, command=command, log_file=str(tmp_path / "run" / "m.log"))
    base.update(extra)
    return base


def test_connection_string_travels_in_the_environment_and_is_masked(run_module, password_target, tmp_path):
    script = 'echo "argv: $*"; echo "conn: $ConnectionStrings__Default"; exit 3'
    result = run_module("migrator_run", args(password_target, tmp_path, ["/bin/sh", "-c", script, "sh", "x"]))
    assert result["failed"] and "exit status 3" in result["msg"]
    log = Path(result["log_file"]).read_text()
    assert "argv: x" in log
    assert f"Database={DATABASE};Username=migrator_owner;Password=********" in log
    assert PASSWORD not in log and PASSWORD not in str(result)
    assert os.stat(result["log_file"]).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "run").st_mode & 0o777 == 0o700


def test_a_hanging_migrator_is_killed(run_module, password_target, tmp_path):
    result = run_module("migrator_run", args(password_target, tmp_path,
                                             ["/bin/sh", "-c", "echo started; sleep 30"], timeout=1))
    assert result["failed"] and "did not finish within 1 s" in result["msg"] and "started" in result["msg"]
    assert result["duration"] < 20


def test_a_hanging_wrapper_is_killed_with_the_processes_it_started(run_module, password_target, tmp_path):
    # A wrapper script whose migrator runs as its child, holding the output pipe: the shape of `dotnet run`.
    marker = tmp_path / "child-alive"
    script = f'echo started; (trap "" TERM; touch {marker}; exec sleep 317) & wait'
    result = run_module("migrator_run", args(password_target, tmp_path, ["/bin/sh", "-c", script], timeout=2))
    assert result["failed"] and "did not finish within 2 s" in result["msg"]
    assert result["duration"] < 60
    assert marker.exists()
    leftovers = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == b"sleep\x00317\x00":
                leftovers.append(entry.name)
        except OSError:
            pass
    assert not leftovers


def test_success_without_the_expected_tables_fails(run_module, password_target, tmp_path):
    result = run_module("migrator_run", args(password_target, tmp_path, ["true"],
                                             expect_tables={"product": ["Products"]}))
    assert result["failed"] and "product.Products" in result["msg"]


def test_standin_migrator_then_rerun_reports_no_change(run_module, password_target, tmp_path):
    command = [sys.executable, str(Path(REPO) / "tools" / "bin" / "classifiedads-migrator")]
    expect = {"product": ["Products"], "identity": ["DataProtectionKeys"], "public": ["schemaversions"]}
    check = run_module("migrator_run", args(password_target, tmp_path, command, expect_tables=expect), check=True)
    assert check["changed"] and check["missing_tables"] == ["identity.DataProtectionKeys", "product.Products",
                                                            "public.schemaversions"]
    assert not (tmp_path / "run").exists()
    first = run_module("migrator_run", args(password_target, tmp_path, command, expect_tables=expect))
    assert not first["failed"], first["msg"]
    assert first["changed"] and first["rc"] == 0 and first["missing_tables"] == []
    second = run_module("migrator_run", args(password_target, tmp_path, command, expect_tables=expect))
    assert not second["failed"] and not second["changed"]
    assert run_module("migrator_run", args(password_target, tmp_path, command, expect_tables=expect),
                      check=True)["changed"] is False
