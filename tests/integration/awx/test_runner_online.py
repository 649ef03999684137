"""The AWX example's online mode (examples/aap/: sync, sync status, cutover) run the way AWX runs a job.

The jobs are launched as test_runner_jobs.py launches them (its fixtures: a private data directory per
job, the credentials injected by the example's credential types, survey answers as AWX writes them).
The sync job ends while its appliers keep streaming on the controller host; the cutover runs as the
online workflow's node after it.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import run_sql
from test_runner_jobs import (  # noqa: F401 (fixtures)  pylint: disable=unused-import
    EXAMPLE,
    assert_no_secret,
    awx_job,
    awx_site,
)

from ansible_collections.classifiedads.consolidation.plugins.module_utils.sync_names import applier_files, is_ours

pytestmark = pytest.mark.integration

ONLINE_WORKFLOW = {node["identifier"]: node for node in yaml.safe_load(
    (EXAMPLE / "workflow.yml").read_text())["controller_workflows"][1]["workflow_nodes"]}


def slots_of_ours(cluster):
    return [name for (name,) in run_sql(cluster, "postgres", "SELECT slot_name FROM pg_replication_slots")
            if is_ours(name)]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


@pytest.fixture
def applier_pids(awx_site, source_cluster):  # noqa: F811 (the imported fixture)
    """``applier_pids(run_id)``: {legacy database: pid}; whatever a failed test leaves streaming is stopped after."""
    seen = []

    def read(run_id):
        pids = {}
        for module in awx_site["vars"]["consolidation_modules"]:
            path = Path(applier_files(str(awx_site["root"] / "runs" / run_id), module["source_database"])["pid"])
            if path.exists():
                pids[module["source_database"]] = json.loads(path.read_text())["pid"]
        seen.extend(pids.values())
        return pids

    yield read
    for pid in seen:
        if alive(pid):
            os.kill(pid, 15)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in seen) and time.monotonic() < deadline:
        time.sleep(0.5)
    for name in slots_of_ours(source_cluster):
        run_sql(source_cluster, "postgres", "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                                            "WHERE slot_name = %s AND active_pid IS NOT NULL", (name,))
        time.sleep(1)
        run_sql(source_cluster, "postgres", "SELECT pg_drop_replication_slot(%s)", (name,))


def test_the_online_jobs_sync_show_the_lag_and_cut_over_through_ansible_runner(awx_job, awx_site, applier_pids,  # noqa: F811 (fixtures)
                                                                               source_cluster):
    legacy_names = [module["source_database"] for module in awx_site["vars"]["consolidation_modules"]]

    # Sync, blank run id and label: a new run, published for the status and cutover jobs; the appliers outlive it.
    sync = awx_job("sync")
    assert sync["status"] == "successful", sync["stdout"][-6000:]
    assert "SYNCING" in sync["stdout"]
    run_id = sync["artifacts"]["consolidation_run_id"]
    pids = applier_pids(run_id)
    assert sorted(pids) == sorted(legacy_names) and all(alive(pid) for pid in pids.values())
    assert len(slots_of_ours(source_cluster)) == len(legacy_names)

    status = awx_job("sync status", {"consolidation_run_id": run_id})
    assert status["status"] == "successful", status["stdout"][-6000:]
    for name in legacy_names:
        assert re.search(rf"{name}: lag .* applier streaming \(pid \d+\)", status["stdout"]), status["stdout"][-6000:]

    # The cutover as the online workflow's node after the approval: the run id is the sync job's artifact.
    cutover = awx_job("cutover", dict(ONLINE_WORKFLOW["cutover"]["extra_data"]),
                      artifacts={"consolidation_run_id": run_id})
    assert cutover["status"] == "successful", cutover["stdout"][-6000:]
    assert f"Run {run_id} PASSED" in cutover["stdout"]
    assert cutover["artifacts"]["verify_summary"][run_id]["passed"] is True
    assert slots_of_ours(source_cluster) == []
    assert not any(alive(pid) for pid in pids.values())

    assert_no_secret(*(job["dir"] / "artifacts" for job in (sync, status, cutover)), awx_site["root"])
