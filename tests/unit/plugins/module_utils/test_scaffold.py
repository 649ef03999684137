"""The shared pieces every module uses: errors, the journal, display helpers, run files, the module opening."""

from __future__ import annotations

import datetime
import os
import stat
import threading

import psycopg2
import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils import display, module, runfiles
from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import ConnectionFailure
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import (
    ConsolidationError,
    ProgramError,
    postgres_problem,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import PlanError


def test_a_domain_error_keeps_every_problem_and_joins_them_in_its_message():
    error = PlanError(["first", "second"])
    assert error.problems == ["first", "second"]
    assert str(error) == "first; second"
    assert isinstance(error, ConsolidationError) and isinstance(error, ValueError)


def test_a_single_message_is_one_problem():
    assert ConnectionFailure("cannot connect").problems == ["cannot connect"]


def test_error_problems_translates_domain_postgres_and_file_errors_and_nothing_else():
    assert module.error_problems(ConsolidationError(["a", "b"], done=1)) == ["a", "b"]
    assert module.error_problems(psycopg2.OperationalError("server closed the connection\n")) == [
        "server closed the connection"]
    missing = FileNotFoundError(2, "No such file or directory", "/nowhere/plan.json")
    assert module.error_problems(missing) == ["/nowhere/plan.json: No such file or directory"]
    assert module.error_problems(KeyError("bug")) is None


def test_a_connection_failure_names_the_side_that_failed():
    from ansible_collections.classifiedads.consolidation.plugins.module_utils.connection import Endpoint, connect

    endpoint = Endpoint("target", {"host": "127.0.0.1", "port": 1, "user": "ops", "password": "s3cret",
                                   "sslmode": "disable", "connect_timeout": 2})
    with pytest.raises(ConnectionFailure) as caught:
        connect(endpoint, "ClassifiedAds")
    assert str(caught.value).startswith("cannot connect to the target server ops@127.0.0.1:1/ClassifiedAds: ")
    assert "s3cret" not in str(caught.value)
    assert dict(endpoint)["host"] == "127.0.0.1"  # still the plain dictionary every caller reads


def test_an_error_raised_without_a_server_is_named_by_its_kind():
    assert postgres_problem(psycopg2.errors.NotNullViolation()) == "NotNullViolation"


def test_a_missing_server_is_named_with_its_role_and_the_way_to_set_it():
    message = module.missing_server("target")
    assert message.startswith("target is required (the server that holds the consolidated database)")
    assert "group/classifiedads.consolidation.all" in message


def test_the_argument_spec_builder_adds_both_servers_and_only_the_requested_parts():
    spec = module.argument_spec(run_files=("backup_root", "set_id"), label=dict(type="str"))
    assert set(spec) == {"source", "target", "backup_root", "set_id", "label"}
    assert spec["source"]["options"]["password"]["no_log"] is True
    assert "modules" in module.argument_spec(mapping=True)


# -- journal ----------------------------------------------------------------------------------------

def test_a_unique_journal_keeps_a_statement_once_and_is_safe_across_threads():
    journal = QueryJournal(unique=True)

    def add():
        for number in range(200):
            journal.record(None, f"SELECT {number % 10}")

    threads = [threading.Thread(target=add) for _thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(journal.queries) == sorted(f"SELECT {number}" for number in range(10))


def test_programs_are_recorded_and_a_change_is_not_run_in_check_mode():
    ran = []
    journal = QueryJournal(run=lambda argv, env, callback: ran.append(argv) or (0, "out", ""), check_mode=True)
    assert journal.run(["pg_dump", "--version"]) == (0, "out", "")
    assert journal.run_change(["pg_restore", "x"]) == (0, "", "")
    assert ran == [["pg_dump", "--version"]]
    assert journal.commands == [["pg_dump", "--version"], ["pg_restore", "x"]]


def test_a_program_that_cannot_start_is_a_domain_error_naming_it():
    def run(argv, env, callback):
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(ProgramError, match="cannot run /opt/pg_dump: No such file or directory"):
        QueryJournal(run=run).run(["/opt/pg_dump"])


# -- display ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, shown", [
    ("products", "products"),
    ("_x1", "_x1"),
    ("Products", '"Products"'),
    ("select", '"select"'),
    ("user", '"user"'),
    ("a$b", '"a$b"'),
    ("1abc", '"1abc"'),
    ("my table", '"my table"'),
    (HOSTILE, '"a""; DROP TABLE x; --"'),
    ("line\nbreak", '"line\u240abreak"'),
])
def test_names_are_quoted_as_postgres_quote_ident_writes_them_and_made_visible(name, shown):
    assert display.quote_ident(name) == shown


def test_qualified_names_skip_missing_parts():
    assert display.qualified("ClassifiedAds_Product", None, "Products") == '"ClassifiedAds_Product"."Products"'


def test_servers_are_named_without_secrets():
    endpoint = {"host": "db", "port": 5432, "user": "ops", "password": "s3cret"}
    assert display.address(endpoint) == "db:5432"
    assert display.describe(endpoint, "ClassifiedAds") == "ops@db:5432/ClassifiedAds"
    assert display.describe({"port": 5432}) == "(default user)@(local socket):5432"
    assert display.public_endpoint(endpoint) == {"host": "db", "port": 5432, "user": "ops"}


def test_timestamps_round_trip_in_utc():
    moment = datetime.datetime(2026, 11, 20, 8, 15, 0, 123456, tzinfo=datetime.UTC)
    assert display.utc_timestamp(moment) == "2026-11-20T08:15:00.123456Z"
    assert display.parse_utc(display.utc_timestamp(moment)) == moment
    assert display.parse_utc("2026-11-20T08:15:00Z") == moment.replace(microsecond=0)
    assert display.parse_utc("yesterday") is None
    assert display.utc_day(moment) == "20261120"
    assert display.utc_timestamp(moment, whole_seconds=True) == "2026-11-20T08:15:00Z"


def test_a_text_table_aligns_numbers_right_and_cuts_trailing_blanks():
    text = display.render_table(("name", "rows"), [["a", "5"], ["long\tname", "12345"]], numeric=("rows",))
    assert text.splitlines() == ["name        rows", "---------  -----", "a              5",
                                 "long\u2409name  12345"]


# -- run files --------------------------------------------------------------------------------------

@pytest.mark.parametrize("run_id", ["20261124T040000Z", "a", "x" * 64, "run-1.b_c"])
def test_good_run_ids(run_id):
    assert runfiles.run_id_problem(run_id) is None


@pytest.mark.parametrize("run_id", ["", "-x", "a/b", "x" * 65, "..", None, HOSTILE, "run1\n"])
def test_bad_run_ids_are_named_with_the_rule(run_id):
    assert "must be letters, digits" in runfiles.run_id_problem(run_id)


def test_private_json_is_0600_and_missing_files_read_as_none(tmp_path):
    path = str(tmp_path / runfiles.PLAN)
    assert runfiles.read_json(path) is None
    runfiles.write_private_json(path, {"run_id": "r"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert runfiles.read_json(path) == {"run_id": "r"}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConsolidationError, match="is not valid JSON"):
        runfiles.read_json(str(tmp_path / "bad.json"))


def test_an_appended_log_is_private_even_when_an_older_run_left_it_readable(tmp_path):
    path = tmp_path / runfiles.DATA_COPY_LOG
    path.write_text("first\n")
    path.chmod(0o644)
    runfiles.append_private(str(path), "second\n")
    assert path.read_text() == "first\nsecond\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    new = tmp_path / "new.log"
    runfiles.append_private(str(new), "")
    assert stat.S_IMODE(new.stat().st_mode) == 0o600


def test_run_files_are_all_inside_the_run_directory():
    files = runfiles.run_files("/runs/r1")
    assert files["plan"] == "/runs/r1/plan.json"
    assert all(os.path.dirname(path) == "/runs/r1" for path in files.values())


def test_a_directory_lock_is_exclusive(tmp_path):
    busy = ConsolidationError("busy")
    with runfiles.directory_lock(str(tmp_path), busy):
        with pytest.raises(ConsolidationError, match="busy"):
            with runfiles.directory_lock(str(tmp_path), busy):
                pass
    with runfiles.directory_lock(str(tmp_path), busy):
        pass
