"""--skip-tags skips the tasks carrying that tag, never a whole step.

The cutover and the decommission are included only when they apply; a skipped include takes every task in
it along. An operator who leaves out the reports (--skip-tags report) must still get the configuration cut
over and the confirmed legacy databases retired: otherwise the application would start on its legacy
configuration against fenced databases while the summary says PASSED.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, consolidation_vars, drop_database, execute
from devkit import legacy as legacy_fixture

from reliability.conftest import Consolidation

PREFIX = "RelSkip"
TARGET_DB = f"{PREFIX}_Consolidated"
FIXTURES = Path(REPO) / "tests" / "fixtures" / "classifiedads_app"
WEBAPI_SETTINGS = "ClassifiedAds.WebAPI/appsettings.json"


def present(info):
    return {row[0] for row in execute(info, "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                                      params=(PREFIX + "_",))}


@pytest.fixture
def consolidation(source_cluster, target_cluster, run_playbook, tmp_path):
    legacy_fixture.create(source_cluster, 0.01, prefix=PREFIX, drop_existing=True, out=lambda line: None)
    app_dir = tmp_path / "app"
    shutil.copytree(FIXTURES, app_dir)
    variables = {**consolidation_vars(source_cluster, target_cluster, tmp_path, TARGET_DB, PREFIX),
                 "cutover_app_dir": str(app_dir)}
    legacy = [module["source_database"] for module in variables["consolidation_modules"]]
    variables["decommission_confirm"] = legacy
    try:
        yield Consolidation(tmp_path, variables, run_playbook), app_dir, legacy
    finally:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
        for name in legacy:
            drop_database(source_cluster, f"{name}_retired_{stamp}")
        legacy_fixture.drop(source_cluster, prefix=PREFIX)
        drop_database(target_cluster, TARGET_DB)


def test_skipping_the_reports_still_cuts_over_and_retires(consolidation, source_cluster):
    run, app_dir, legacy = consolidation
    original = (app_dir / WEBAPI_SETTINGS).read_text()
    assert f"Database={TARGET_DB};" not in original

    done = run.play("--skip-tags", "report")

    assert " - PASSED" in done.output, done.output[-4000:]
    settings = (app_dir / WEBAPI_SETTINGS).read_text()
    assert f"Database={TARGET_DB};" in settings and "Database=ClassifiedAds_Product;" not in settings
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    assert present(source_cluster) == {f"{name}_retired_{stamp}" for name in legacy}
    assert json.loads((run.run_dir() / "verification.json").read_text())["summary"]["passed"] is True
    # Only the report tasks were left out: the retirement is still recorded for rollback.yml.
    assert (run.run_dir() / "decommission.json").is_file()
    assert "Summarise the cutover" not in done.output and "Summarise the decommission" not in done.output
