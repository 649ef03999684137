"""Preflight judgements and run-id resolution, from plain facts."""

from __future__ import annotations

import json
import os

from ansible_collections.classifiedads.consolidation.plugins.module_utils.preflight import (
    decide_mode,
    mode_reason,
    resolve_run_id,
    server_problems,
)
from ansible_collections.classifiedads.consolidation.plugins.module_utils.runfiles import write_private_json

MODULES = [{"source_database": "ClassifiedAds_Product", "schema": "product"},
           {"source_database": "ClassifiedAds_Identity", "schema": "identity"}]


def source_with(*names, **overrides):
    entry = dict(size=1, allow_connections=True, tables=["T"], unreadable_tables=[])
    entry.update(overrides)
    return {"databases": {name: dict(entry) for name in names}}


TARGET_OK = {"user": "owner", "superuser": False, "createdb": True, "database_exists": False, "schemas": {}}


def test_all_present_and_allowed_is_clean():
    source = source_with("ClassifiedAds_Product", "ClassifiedAds_Identity")
    assert server_problems(MODULES, "existing", source, TARGET_OK) == []


def test_missing_unreadable_and_retired_databases_are_named():
    source = source_with("ClassifiedAds_Product", unreadable_tables=['a"; DROP TABLE x; --'],
                         allow_connections=False)
    problems = server_problems(MODULES, "existing", source, TARGET_OK)
    assert problems[0] == "legacy database(s) not found on the source server: ClassifiedAds_Identity"
    assert "does not allow connections" in problems[1]
    assert 'a"; DROP TABLE x; --' in problems[2]


def test_fresh_mode_ignores_legacy_databases():
    assert server_problems(MODULES, "fresh", {"databases": {}}, TARGET_OK) == []


def test_target_rights():
    no_createdb = dict(TARGET_OK, createdb=False)
    assert "needs CREATEDB" in server_problems(MODULES, "fresh", {"databases": {}}, no_createdb)[0]
    exists = dict(TARGET_OK, database_exists=True, allow_connections=True, can_create_in_database=False,
                  schemas={"product": {"owned_by_login": False, "owner": "app", "tables": 0}})
    problems = server_problems(MODULES, "fresh", {"databases": {}}, exists)
    assert "no CREATE privilege" in problems[0] and "does not own the existing schema(s) product" in problems[1]
    assert server_problems(MODULES, "fresh", {"databases": {}}, dict(exists, superuser=True)) == []


def test_auto_mode_is_fresh_only_without_any_legacy_database():
    assert decide_mode("auto", MODULES, {"databases": {}}) == "fresh"
    assert decide_mode("auto", MODULES, source_with("ClassifiedAds_Product")) == "existing"
    assert decide_mode("existing", MODULES, {"databases": {}}) == "existing"


def test_run_id_is_reused_only_for_the_same_target(tmp_path):
    run_root = str(tmp_path)
    run_id, resumed = resolve_run_id("", run_root, "ClassifiedAds")
    assert not resumed and len(run_id) == len("20261124T040000Z")
    os.makedirs(tmp_path / "r1")
    write_private_json(str(tmp_path / "r1" / "plan.json"), {"target_database": "ClassifiedAds"})
    (tmp_path / "latest").write_text("r1\n")
    assert resolve_run_id("", run_root, "ClassifiedAds") == ("r1", True)
    assert resolve_run_id("", run_root, "Other")[1] is False
    assert resolve_run_id("explicit", run_root, "ClassifiedAds") == ("explicit", False)
    assert oct((tmp_path / "r1" / "plan.json").stat().st_mode & 0o777) == "0o600"
    assert json.loads((tmp_path / "r1" / "plan.json").read_text()) == {"target_database": "ClassifiedAds"}


def test_auto_taking_the_fresh_path_names_every_database_it_looked_for_and_the_server():
    reason = mode_reason("auto", "fresh", MODULES, "db1:5432")
    assert "none of the legacy databases ClassifiedAds_Product, ClassifiedAds_Identity exists on db1:5432" in reason
    assert "fresh deployment" in reason and "check the names in consolidation_modules" in reason


def test_an_explicit_mode_or_found_databases_say_so():
    assert mode_reason("fresh", "fresh", MODULES, "db1:5432") == "consolidation_mode is fresh"
    assert mode_reason("auto", "existing", MODULES, "db1:5432") == "auto: legacy databases found on db1:5432"
