"""The closing summary of consolidate.yml (plugins/module_utils/run_summary.py): verdict, run id, reports, next step."""

from __future__ import annotations

from ansible_collections.classifiedads.consolidation.plugins.module_utils.run_summary import run_summary

RUN = "20261205T050724Z"
RUN_DIR = f"/var/lib/runs/{RUN}"


def plan(mode="existing", rehearsal=False, backup_timing="before_copy", timing_reason=None):
    return {"run_id": RUN, "run_dir": RUN_DIR, "backup_dir": f"/backups/{RUN}", "mode": mode,
            "rehearsal": rehearsal, "target_database": "Consolidated",
            "backup_timing": {"timing": backup_timing, "reason": timing_reason},
            "modules": [{"source_database": "Legacy_Product"}, {"source_database": "Legacy_Identity"}],
            "files": {"plan": f"{RUN_DIR}/plan.json"}}


def verification(passed, match=10, excluded=2, mismatch=0):
    summary = {"tables": match + excluded + mismatch, "match": match, "mismatch": mismatch, "missing": 0, "extra": 0,
               "excluded": excluded, "present": 0, "error": 0, "sequences": 0, "passed": passed}
    return {"passed": passed, "summary": summary,
            "report": {"json": f"{RUN_DIR}/verification.json", "markdown": f"{RUN_DIR}/verification.md"}}


def test_a_verified_run_passes_naming_its_reports_the_decommission_and_the_rollback():
    done = run_summary(plan(), verification(True))
    assert done["verdict"] == "PASSED"
    # The verification's own counts, excluded tables included: "every table matches" would not be true.
    assert done["lines"][0] == (f"Run {RUN} PASSED, verification of Consolidated: 12 table(s): 10 match, "
                                "2 excluded - PASSED")
    text = "\n".join(done["lines"])
    assert f"{RUN_DIR}/verification.md" in text and f"backup set: /backups/{RUN}" in text
    assert "decommission_confirm naming Legacy_Product, Legacy_Identity" in text
    assert f"rollback -e consolidation_run_id={RUN}" in text


def test_a_failed_task_is_failed_even_after_a_passing_verification():
    done = run_summary(plan(), verification(True), failed_task="Copy the legacy tables")
    assert done["verdict"] == "FAILED"
    assert done["lines"][0] == f'Run {RUN} FAILED at task "Copy the legacy tables" (its error is printed above).'
    assert any(f"run again with -e consolidation_run_id={RUN}" in line for line in done["lines"])
    assert not any("decommission_confirm" in line for line in done["lines"])


def test_a_failed_verification_that_did_not_stop_the_play_is_failed():
    done = run_summary(plan(), verification(False, mismatch=2))
    assert done["verdict"] == "FAILED"
    assert done["lines"][0] == (f"Run {RUN} FAILED (continued, verify_fail_on_mismatch is false), verification of "
                                "Consolidated: 14 table(s): 10 match, 2 mismatch, 2 excluded - FAILED")
    assert not any("decommission_confirm" in line for line in done["lines"])


def test_a_run_without_a_verification_result_is_never_passed():
    done = run_summary(plan(), None)
    assert done["verdict"] == "NOT VERIFIED" and "PASSED" not in "\n".join(done["lines"])


def test_check_mode_says_nothing_changed_and_to_run_for_real():
    done = run_summary(plan(), None, check_mode=True)
    assert done["verdict"] == "CHECK MODE"
    assert done["lines"][-1] == "Next: run without --check to consolidate"


def test_a_failed_check_run_says_nothing_changed_and_offers_no_resume_or_rollback():
    done = run_summary(plan(), None, failed_task="Refuse a confirmation", check_mode=True)
    assert done["verdict"] == "FAILED"
    assert done["lines"][0] == (f'Run {RUN} FAILED at task "Refuse a confirmation" (its error is printed above; '
                                "check mode: nothing was changed).")
    assert done["lines"][-1] == "Next: fix the cause named above and run the check again, then run without --check"
    assert not any("consolidation_run_id" in line for line in done["lines"])


def test_a_failure_before_the_plan_names_the_task_and_no_run_directory():
    done = run_summary(None, None, failed_task="Validate the contract and check both servers")
    assert done["verdict"] == "FAILED"
    assert 'at task "Validate the contract and check both servers"' in done["lines"][0]
    assert "no run directory was written" in done["lines"][0]


def test_a_fresh_deployment_has_no_backup_set_and_nothing_to_retire():
    done = run_summary(plan(mode="fresh"), verification(True, match=0, excluded=0))
    text = "\n".join(done["lines"])
    assert done["verdict"] == "PASSED" and "backup set" not in text and "no legacy database to retire" in text


def test_after_the_decommission_the_next_step_is_only_the_rollback_from_the_final_backups():
    done = run_summary(plan(), verification(True), decommissioned=True)
    assert done["lines"][-1].startswith("Next: the legacy databases are retired")


def backup_line(done):
    return next(line for line in done["lines"] if "backup set:" in line)


def test_the_summary_says_where_the_backup_went():
    assert backup_line(run_summary(plan(), verification(True))) == (
        f"  backup set: /backups/{RUN} (taken before the copy, inside the window)")
    after = backup_line(run_summary(plan(backup_timing="after_start"), verification(True)))
    assert after == (f"  backup set: /backups/{RUN} (taken after the application started, outside the window: the "
                     "fenced legacy databases as copied)")
    # A failed run may have ended before its backup: the operator learns that the rollback does not need one.
    failed = backup_line(run_summary(plan(backup_timing="after_start"), None, failed_task="Copy the legacy tables"))
    assert "not yet, if the run failed before that (rollback.yml does not need it then)" in failed
    fallback = backup_line(run_summary(plan(timing_reason="consolidation_fence is none: ..."), verification(True)))
    assert fallback.endswith("inside the window; consolidation_fence is none: ...)")
    online = dict(plan(backup_timing="after_start"), sync={"mode": "online", "slot_prefix": "classifiedads"})
    assert backup_line(run_summary(online, None, playbook="sync")).endswith(
        "(taken by sync.yml before the copy, while the application ran: outside the window)")


def test_after_sync_the_run_is_syncing_never_passed_and_the_next_steps_are_status_cutover_or_rollback():
    done = run_summary(plan(), None, playbook="sync")
    assert done["verdict"] == "SYNCING" and "PASSED" not in "\n".join(done["lines"])
    assert done["lines"][0].startswith(f"Run {RUN} SYNCING") and "keeps running on the legacy" in done["lines"][0]
    steps = [line for line in done["lines"] if line.startswith("Next: ")]
    assert [step.split(":")[1].strip() for step in steps] == ["watch the lag", "in the window", "or give up the run"]
    assert f"classifiedads.consolidation.cutover -e consolidation_run_id={RUN}" in steps[1]
    assert "drops the slots and publications" in steps[2] and "keeps WAL" in steps[2]


def test_a_failed_sync_says_to_rerun_sync_or_roll_back():
    done = run_summary(plan(), None, failed_task="Start the appliers", playbook="sync")
    assert done["verdict"] == "FAILED"
    text = "\n".join(done["lines"])
    assert f"run sync again: ansible-playbook classifiedads.consolidation.sync -e consolidation_run_id={RUN}" in text
    assert f"rollback -e consolidation_run_id={RUN} (stops the appliers, drops the slots" in text


def test_a_failed_cutover_keeps_its_slots_and_says_to_rerun_it_or_roll_back():
    done = run_summary(plan(), verification(True), failed_task="Start the application", playbook="cutover")
    assert done["verdict"] == "FAILED"
    text = "\n".join(done["lines"])
    assert "run cutover again" in text and "resume from their slots, which keep WAL" in text
    assert "lifts the fence, drops the slots and publications" in text
    assert "decommission_confirm" not in text


def test_a_cutover_failed_after_its_drain_says_the_rerun_verifies_and_cuts_over():
    done = run_summary(plan(), verification(True), failed_task="Start the application", playbook="cutover",
                       drained=True)
    text = "\n".join(done["lines"])
    assert done["verdict"] == "FAILED" and "run cutover again" in text
    assert "the slots were dropped: the rerun verifies again, cuts over and starts" in text
    assert "resume from their slots" not in text


def test_a_passed_cutover_is_judged_like_a_consolidation():
    done = run_summary(plan(), verification(True), playbook="cutover")
    assert done["verdict"] == "PASSED" and "decommission_confirm naming Legacy_Product" in "\n".join(done["lines"])
