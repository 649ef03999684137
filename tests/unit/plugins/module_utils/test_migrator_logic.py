"""Connection string for the migrator, expected tables, the timeout and the log, and schema actions."""

from __future__ import annotations

import os
import stat
import subprocess
import time

from ansible_collections.classifiedads.consolidation.plugins.module_utils.migrator import (
    keep_log,
    log_tail,
    missing_tables,
    process_tree,
    run_with_timeout,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.npgsql import npgsql_connection_string
from ansible_collections.classifiedads.consolidation.plugins.module_utils.schemas import schema_actions


def test_connection_string_carries_password_or_passfile():
    endpoint = {"host": "db", "port": 5433, "user": "app", "password": "s3cret", "sslmode": "prefer"}
    assert npgsql_connection_string(endpoint, "ClassifiedAds") == (
        "Host=db;Port=5433;Database=ClassifiedAds;Username=app;Password=s3cret")
    endpoint = {"host": "db", "port": 5432, "user": "app", "passfile": "/run/pgpass", "sslmode": "require"}
    assert npgsql_connection_string(endpoint, "ClassifiedAds") == (
        "Host=db;Port=5432;Database=ClassifiedAds;Username=app;Passfile=/run/pgpass;SSL Mode=Require")


def test_connection_string_quotes_separators():
    endpoint = {"host": "db", "port": 5432, "user": "app", "password": 'p;w="x'}
    assert npgsql_connection_string(endpoint, "Class;ifiedAds").endswith(
        'Database="Class;ifiedAds";Username=app;Password="p;w=""x"')


def test_missing_tables_are_named_schema_dot_table():
    expected = {"product": ["Products", "OutboxMessages"], "public": ["schemaversions"]}
    assert missing_tables(expected, {("product", "Products")}) == ["product.OutboxMessages", "public.schemaversions"]
    assert missing_tables(expected, {("product", "Products"), ("product", "OutboxMessages"),
                                     ("public", "schemaversions")}) == []


def test_log_tail_keeps_the_last_lines():
    assert log_tail("a\nb\nc\n", lines=2) == "b\nc"


def test_schema_actions():
    existing = {"product": "app", "public": "pg_database_owner"}
    actions = schema_actions(["product", "public", "auditlog"], existing, "app")
    assert actions == [{"name": "product", "owner": "app", "action": "exists"},
                       {"name": "public", "owner": "pg_database_owner", "action": "exists"},
                       {"name": "auditlog", "owner": "app", "action": "created"}]


def run_command(argv, cwd=None, environ_update=None, before_communicate_callback=None):
    """AnsibleModule.run_command as far as the migrator uses it: a real process, the callback before communicate."""
    process = subprocess.Popen(argv, cwd=cwd, env=dict(os.environ, **(environ_update or {})), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    before_communicate_callback(process)
    stdout, stderr = process.communicate()
    return process.returncode, stdout, stderr


def test_a_migrator_that_finishes_in_time_gives_its_output_and_status(tmp_path):
    rc, output, timed_out, duration = run_with_timeout(
        run_command, ["/bin/sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 4'], 10, cwd=str(tmp_path),
        environ_update={"GREETING": "hello"})
    assert (rc, output, timed_out) == (4, "hello\noops\n", False) and duration < 10


def test_a_hanging_migrator_is_killed_after_the_timeout():
    started = time.monotonic()
    _rc, output, timed_out, duration = run_with_timeout(run_command, ["/bin/sh", "-c", "echo started; exec sleep 30"],
                                                        0.5)
    assert timed_out and output == "started\n" and 0.5 <= duration < 10 and time.monotonic() - started < 10


def test_the_log_is_private_and_holds_no_password(tmp_path):
    path = tmp_path / "run" / "migrator.log"
    written = keep_log(str(path), "Password=s3cret;x\n", ["s3cret"])
    assert written == path.read_text() == "Password=********;x\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_the_process_tree_holds_every_descendant_and_nothing_else():
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 13: 10, 20: 1, 21: 20}
    assert sorted(process_tree(10, parents)) == [10, 11, 12, 13]
    assert process_tree(12, parents) == [12]
