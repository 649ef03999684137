"""A resumed run's changed contract: each difference named, then taken or refused by how far the run has got."""

from __future__ import annotations

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import (
    build_plan,
    contract_changes,
    judge_contract_changes,
    refusal_message,
)

SERVER = {"host": "db1", "port": 5432}


def plan(*modules, target_database="ClassifiedAds", mode="existing", excludes=("__EFMigrationsHistory",)):
    return {"target_database": target_database, "mode": mode,
            "modules": build_plan(list(modules), target_database, SERVER, SERVER, list(excludes))}


def module(name="Product", schema="product", **extra):
    return dict(name=name, source_database="ClassifiedAds_" + name, schema=schema, **extra)


def texts(changes):
    return [change["text"] for change in changes]


def test_the_same_contract_has_no_change():
    assert contract_changes(plan(module()), plan(module())) == []


def test_each_kind_of_change_is_named():
    stored = plan(module(), module("Storage", "storage"), module("Identity", "identity"))
    new = plan(module(exclude_tables=["AuditLogEntries"], tables={"Products": {"truncate": True}}),
               module("Storage", "files"), module("Notification", "notification"))
    assert texts(contract_changes(stored, new)) == [
        "module Identity removed (schema identity)",
        "module Notification added (schema notification)",
        "module Product: exclude_tables gained AuditLogEntries",
        "module Product: table Products override added (product.Products, truncate)",
        "module Storage: schema storage -> files",
    ]


def test_global_exclusions_reach_every_module_and_a_dropped_one_is_named():
    stored = plan(module(), excludes=["__EFMigrationsHistory", "Outbox"])
    assert texts(contract_changes(stored, plan(module()))) == ["module Product: exclude_tables lost Outbox"]


def test_a_changed_override_names_before_and_after():
    stored = plan(module(tables={"Products": {"schema": "public"}}))
    new = plan(module(tables={"Products": {"schema": "public", "columns": {"UserId": {"on_null": "quarantine"}}}}))
    assert texts(contract_changes(stored, new)) == [
        "module Product: table Products override public.Products -> public.Products, columns UserId on_null quarantine"]


def test_target_database_mode_and_source_changes_are_named():
    stored = plan(module())
    new = plan(dict(module(), source_database="Other", source_schema="app"), target_database="Elsewhere",
               mode="fresh")
    assert texts(contract_changes(stored, new)) == [
        "target_database ClassifiedAds -> Elsewhere", "mode existing -> fresh",
        "module Product: source_database ClassifiedAds_Product -> Other",
        "module Product: source_schema public -> app"]


def test_a_hostile_name_is_named_as_it_is():
    stored = plan(module())
    changes = contract_changes(stored, plan(module(exclude_tables=[HOSTILE])))
    assert texts(changes) == ["module Product: exclude_tables gained " + HOSTILE]


def judged(stored, new, stage, present=()):
    applied, refused = judge_contract_changes(contract_changes(stored, new), stage, set(present))
    return texts(applied), [(change["text"], change["why"]) for change in refused]


def test_a_newly_excluded_table_is_taken_before_the_copy_and_refused_once_it_started():
    stored, new = plan(module()), plan(module(exclude_tables=["AuditLogEntries"]))
    assert judged(stored, new, "backed_up", ["product"]) == (["module Product: exclude_tables gained AuditLogEntries"],
                                                             [])
    applied, refused = judged(stored, new, "copy_started", ["product"])
    assert applied == []
    assert refused == [("module Product: exclude_tables gained AuditLogEntries",
                        "step 4 has started copying: the copy may have copied it already")]


def test_a_renamed_schema_is_refused_once_the_target_has_the_old_one_whatever_the_stage():
    stored, new = plan(module("Storage", "storage")), plan(module("Storage", "files"))
    assert judged(stored, new, "backed_up", []) == (["module Storage: schema storage -> files"], [])
    applied, refused = judged(stored, new, "opened", ["storage"])
    assert applied == [] and "step 2 has created the schema storage" in refused[0][1]


def test_a_removed_module_is_refused_once_its_schema_exists():
    stored, new = plan(module(), module("Storage", "storage")), plan(module())
    assert judged(stored, new, "opened", ["product"])[0] == ["module Storage removed (schema storage)"]
    assert judged(stored, new, "opened", ["product", "storage"])[0] == []


@pytest.mark.parametrize("stage, taken", [("copy_started", True), ("verified", False)])
def test_an_added_module_is_taken_until_the_verification(stage, taken):
    stored, new = plan(module()), plan(module(), module("Storage", "storage"))
    applied, refused = judged(stored, new, stage, ["product"])
    assert bool(applied) is taken and bool(refused) is not taken


def test_a_changed_source_is_refused_once_backed_up():
    stored, new = plan(module()), plan(dict(module(), source_database="Other"))
    assert judged(stored, new, "opened")[1] == []
    assert "the backup set holds the database as it was first named" in judged(stored, new, "backed_up")[1][0][1]


def test_the_target_database_never_changes():
    applied, refused = judged(plan(module()), plan(module(), target_database="Elsewhere"), "opened")
    assert applied == [] and refused[0][1] == "a run works on one target database"


def test_a_completed_run_takes_no_change():
    stored, new = plan(module()), plan(module(), module("Storage", "storage"))
    applied, refused = judged(stored, new, "completed", ["product"])
    assert applied == [] and "the run has completed" in refused[0][1]


def test_the_refusal_names_the_change_the_reason_and_the_way_out():
    _applied, refused = judge_contract_changes(
        contract_changes(plan(module()), plan(module(exclude_tables=["X"]))), "verified", {"product"})
    message = refusal_message(refused, "20261124T040000Z")
    assert "module Product: exclude_tables gained X (step 5 has verified the copy" in message
    assert "nothing was changed" in message
    assert "rollback.yml" in message and "plan.json of run 20261124T040000Z" in message
