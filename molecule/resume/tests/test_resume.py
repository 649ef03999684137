"""What the rerun of an interrupted consolidation left behind in the Molecule instance: the tables the
first attempt had committed were kept, not copied again; the rest was copied and everything verified."""

from __future__ import annotations

import datetime

from instance_facts import RUN_ROOT, TARGET, read_json

RUN_DIR = f"{RUN_ROOT}/molecule-resume"


def copied_at(host, psql):
    """{(source database, table): completed_at} the copy recorded: in the state schema while the run keeps it,
    in the run directory's state.json once the completed run dropped it."""
    record = host.file(f"{RUN_DIR}/state.json")
    if record.exists:
        rows = [(row["source_database"], row["source_table"], row["completed_at"])
                for row in read_json(host, record.path)["copied_tables"]]
    else:
        query = ("SELECT source_database || '|' || source_table || '|' || (to_json(completed_at) #>> '{}') "
                 "FROM _consolidation.copied_tables")
        rows = [line.split("|") for line in psql(TARGET, query)]
    return {(database, table): datetime.datetime.fromisoformat(completed) for database, table, completed in rows}


def test_the_first_attempt_failed_with_its_copy_cut_off_inside_the_big_table(host, state_dir):
    interrupted = read_json(host, f"{state_dir}/interrupted.json")
    assert interrupted["playbook_rc"] != 0
    assert interrupted["killed_statement"].startswith("LOCK TABLE") and '"Products"' in interrupted["killed_statement"]
    assert len(interrupted["committed_before_kill"]) >= 3


def test_the_rerun_kept_what_was_committed_and_copied_the_rest_after_the_kill(host, psql, state_dir):
    interrupted = read_json(host, f"{state_dir}/interrupted.json")
    killed_at = datetime.datetime.fromisoformat(interrupted["killed_at"])
    copied = copied_at(host, psql)
    before = {(row["source_database"], row["source_table"]): datetime.datetime.fromisoformat(row["completed_at"])
              for row in interrupted["committed_before_kill"]}
    assert {table: copied[table] for table in before} == before
    assert copied[("ClassifiedAds_Product", "Products")] > killed_at
    assert len(copied) > len(before)


def test_the_resumed_run_verified_every_table(host):
    report = read_json(host, f"{RUN_DIR}/verification.json")
    assert report["passed"] is True
    assert report["summary"]["tables"] >= 26


def test_products_were_copied_once(psql):
    source = psql("ClassifiedAds_Product", 'SELECT count(*) FROM "Products"')
    target = psql("ClassifiedAds", 'SELECT count(*) FROM product."Products"')
    assert source == target and int(target[0]) > 2
