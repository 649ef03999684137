"""What a failed module result shows of the failing statement, and where its failure record goes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ansible_collections.classifiedads.consolidation.plugins.module_utils.journal import QueryJournal
from ansible_collections.classifiedads.consolidation.plugins.module_utils.module import (
    STATEMENT_SHOWN,
    failing_statement,
)


def journal_with(*statements):
    journal = QueryJournal()
    journal.queries.extend(statements)
    return journal


def test_the_failing_statement_is_cut_and_says_how_long_it_was():
    long = "COPY x (" + ", ".join(f'"c{n}"' for n in range(200)) + ") FROM STDIN"
    shown = failing_statement(None, journal_with("TRUNCATE x", long))
    assert shown.startswith(long[:STATEMENT_SHOWN]) and shown.endswith(f"... ({len(long)} characters)")
    assert failing_statement(None, journal_with("TRUNCATE x")) == "TRUNCATE x"
    assert failing_statement(None, journal_with()) is None


def test_the_failure_record_is_private_and_lands_in_the_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = journal_with("TRUNCATE x").save_failure(str(run_dir), "data_copy", {"queries": ["TRUNCATE x"]})
    assert os.path.dirname(path) == str(run_dir) and os.path.basename(path).startswith("failure-data_copy-")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(Path(path).read_text()) == {"queries": ["TRUNCATE x"]}


def test_without_a_run_directory_the_record_is_still_private(tmp_path):
    path = QueryJournal().save_failure(str(tmp_path / "not-yet"), "preflight", {"queries": []})
    try:
        assert os.path.basename(path).startswith("failure-preflight-")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        os.unlink(path)
