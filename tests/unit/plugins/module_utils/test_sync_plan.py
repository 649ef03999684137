"""consolidation_sync and its slot prefix: validated with the verification they rely on, kept by a resumed run."""

from __future__ import annotations

import pytest
from constants import HOSTILE

from ansible_collections.classifiedads.consolidation.plugins.module_utils.plan import (
    PlanError,
    build_plan,
    contract_changes,
    judge_contract_changes,
    run_option_problems,
    sync_plan,
)

SERVER = {"host": "db1", "port": 5432}


def problems_of(*args):
    with pytest.raises(PlanError) as caught:
        sync_plan(*args)
    return caught.value.problems


def plan(sync=None):
    modules = build_plan([{"name": "Product", "source_database": "ClassifiedAds_Product", "schema": "product"}],
                         "ClassifiedAds", SERVER, SERVER, [])
    stored = {"target_database": "ClassifiedAds", "mode": "existing", "modules": modules}
    if sync is not None:
        stored["sync"] = sync
    return stored


def test_offline_and_online_are_recorded_with_their_prefix():
    assert sync_plan("offline", "classifiedads") == {"mode": "offline", "slot_prefix": "classifiedads"}
    assert sync_plan("online", "shop_2026", True) == {"mode": "online", "slot_prefix": "shop_2026"}


def test_online_refuses_a_verification_without_checksums_and_says_why():
    [problem] = problems_of("online", "classifiedads", False)
    assert "verify_checksum" in problem and "row counts equal" in problem and "offline" in problem


def test_online_refuses_to_run_without_the_fence_and_says_why():
    with pytest.raises(PlanError) as refused:
        sync_plan("online", "classifiedads", True, {"mode": "none", "reason": "the vendor said so"})
    [problem] = refused.value.problems
    assert "consolidation_fence=none" in problem and "lost" in problem
    assert sync_plan("online", "classifiedads", True, {"mode": "read_only", "reason": None})["mode"] == "online"
    assert sync_plan("offline", "classifiedads", True, {"mode": "none", "reason": "r"})["mode"] == "offline"


def test_offline_may_verify_by_counts_alone():
    assert sync_plan("offline", "classifiedads", False)["mode"] == "offline"


@pytest.mark.parametrize("prefix", ["", "Classified", "1ads", "ads-prod", "a" * 21, HOSTILE, None])
def test_a_prefix_a_slot_name_cannot_carry_is_refused(prefix):
    [problem] = problems_of("offline", prefix)
    assert "consolidation_sync_slot_prefix" in problem and "lower-case letters" in problem


def test_every_problem_is_reported_at_once():
    problems = problems_of("sometimes", "Bad-Prefix", False)
    assert len(problems) == 2 and "consolidation_sync must be one of offline, online" in problems[0]


def test_a_plan_from_before_online_mode_reads_as_offline():
    assert contract_changes(plan(), plan({"mode": "offline", "slot_prefix": "classifiedads"})) == []


def test_switching_the_mode_or_prefix_is_taken_before_the_copy_and_refused_once_it_started():
    changes = contract_changes(plan({"mode": "offline", "slot_prefix": "classifiedads"}),
                               plan({"mode": "online", "slot_prefix": "shop"}))
    assert [change["text"] for change in changes] == ["consolidation_sync offline -> online",
                                                      "consolidation_sync_slot_prefix classifiedads -> shop"]
    applied, refused = judge_contract_changes(changes, "backed_up", set())
    assert (len(applied), refused) == (2, [])
    applied, refused = judge_contract_changes(changes, "copy_started", set())
    assert applied == [] and "step 4 has started copying" in refused[0]["why"]


def test_the_options_of_the_copy_the_applier_and_the_status_are_checked_alike_and_all_at_once():
    assert run_option_problems("20261205T081000Z", "_consolidation", "classifiedads") == []
    problems = run_option_problems("../etc", "pg_state", "Bad-Prefix")
    assert len(problems) == 3
    assert problems[0].startswith("run_id ") and problems[1].startswith("state_schema: ") and "reserved" in problems[1]
    assert "consolidation_sync_slot_prefix" in problems[2]
