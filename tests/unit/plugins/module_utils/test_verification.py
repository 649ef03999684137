"""What row_count_diff checks before it connects, and how it writes its report files, without a server."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.classifiedads.consolidation.plugins.module_utils import rowdiff, verification, verify_report
from ansible_collections.classifiedads.consolidation.plugins.module_utils.errors import ConsolidationError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import missing_server
from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import PlanError
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import run_id_problem

PRODUCT = {"name": "Product", "source_database": "ClassifiedAds_Product", "schema": "product",
           "source_schema": "public", "exclude_tables": [], "tables": {}}


def params(**values):
    given = dict(source={"host": "db1", "port": 5432}, target={"host": "db2", "port": 5432}, modules=[PRODUCT],
                 exclude_tables=["__EFMigrationsHistory"], target_database="ClassifiedAds", expect_tables={},
                 run_id="run-1", workers=2)
    given.update(values)
    return given


# -- options ------------------------------------------------------------------------------------

def test_every_problem_with_the_options_is_reported_at_once():
    with pytest.raises(PlanError) as caught:
        verification.validate(params(source=None, run_id="../escape", workers=0))
    assert caught.value.problems == [missing_server("source"), run_id_problem("../escape"),
                                     "workers must be at least 1"]


def test_the_modules_are_normalised_and_the_expectations_sorted():
    modules, expected = verification.validate(params(expect_tables={"product": ["b", "a"]}))
    assert [(module["name"], module["schema"], module["source_schema"]) for module in modules] == [
        ("Product", "product", "public")]
    assert expected == {"product": ["a", "b"]}


def test_a_fresh_deployment_check_needs_no_legacy_server():
    modules, expected = verification.validate(params(source=None, modules=[], run_id=None,
                                                     expect_tables={"identity": []}))
    assert modules == [] and expected == {"identity": []}


def test_nothing_to_verify_is_a_problem():
    with pytest.raises(PlanError) as caught:
        verification.validate(params(modules=[]))
    assert caught.value.problems == ["nothing to verify: give modules (legacy databases to compare) or expect_tables"]


def test_a_verification_that_cannot_run_is_a_domain_error():
    assert issubclass(verification.VerificationAborted, ConsolidationError)
    assert verification.VerificationAborted(["a", "b"]).problems == ["a", "b"]


# -- report files -------------------------------------------------------------------------------

def report(generated_at="2026-01-01T00:00:00Z", run_id="run-1"):
    return verify_report.build_report(dict(run_id=run_id, backup_set=run_id, generated_at=generated_at,
                                           target_database="ClassifiedAds", checksum=False, check_sequences=True,
                                           servers={}), [], [], rowdiff.summarize([], []))


def mode(path):
    return os.stat(path).st_mode & 0o777


def test_the_report_files_are_private_and_named_as_the_run_directory_names_them(tmp_path):
    report_dir = tmp_path / "run-1"
    dir_changed, written, on_disk = verification.write_report(str(report_dir), report())
    assert (dir_changed, written, on_disk) == (True, True, report())
    json_path, markdown_path = verification.report_paths(str(report_dir))
    assert (json_path, markdown_path) == (str(report_dir / "verification.json"), str(report_dir / "verification.md"))
    assert mode(report_dir) == 0o700 and mode(json_path) == mode(markdown_path) == 0o600
    with open(json_path) as handle:
        text = handle.read()
    assert json.loads(text) == report() and text.index('"format"') < text.index('"tables"')
    assert "**PASSED**" in (report_dir / "verification.md").read_text()


def test_the_same_result_later_is_left_as_it_is_with_its_first_time(tmp_path):
    verification.write_report(str(tmp_path), report())
    dir_changed, written, on_disk = verification.write_report(str(tmp_path), report("2026-01-02T00:00:00Z"))
    assert (dir_changed, written) == (False, False)
    assert on_disk["generated_at"] == "2026-01-01T00:00:00Z"


def test_a_different_result_an_unreadable_report_or_loose_modes_are_written_anew(tmp_path):
    verification.write_report(str(tmp_path), report())
    assert verification.write_report(str(tmp_path), report(run_id="run-2"))[1]
    json_path, markdown_path = verification.report_paths(str(tmp_path))
    with open(json_path, "w") as handle:
        handle.write("{not json")
    assert verification.write_report(str(tmp_path), report(run_id="run-2"))[1]
    os.chmod(markdown_path, 0o644)
    os.chmod(str(tmp_path), 0o755)
    dir_changed, written, _on_disk = verification.write_report(str(tmp_path), report(run_id="run-2"))
    assert dir_changed and written and mode(markdown_path) == 0o600 and mode(str(tmp_path)) == 0o700
